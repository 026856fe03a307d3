"""Stage-1 ranking speed: the shipped ranker scoring N catalog models for one task, from tokens.

Candidates are the embedded catalog's real tokens (349 Hub models), repeated under new ids up to N,
so most have no history, as in a crawl of the Hub. Two paths are timed:
- `vectors`: the catalog's stored token vectors are passed in (`Catalog.vectors()`, what
  `rank_catalog` does with a catalog);
- `tokens`: every token is vectorised again (a plain list of `ModelToken`s).

    python -m benchmarks.ranker_speed [--sizes 1000 10000 100000] [--threads 1]

Writes `benchmarks/results/ranker_speed.json`; the table is copied into `benchmarks/ranking.md`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
TASKS = {
    "text": {"name": "imdb", "modality": "text", "num_classes": 2, "num_examples": 25000},
    "image": {"name": "beans", "modality": "image", "num_classes": 3, "num_examples": 1034},
}


def candidates(n: int, modality: str):
    from hf_spider.catalog import Catalog

    base = [t for t in Catalog.load("model_cards") if t.modality == modality]
    out = []
    for i in range(n):
        t = base[i % len(base)]
        out.append(t if i < len(base) else dataclasses.replace(t, model_id=f"{t.model_id}-copy{i}"))
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from hf_spider.ranker import Ranker

    ranker = Ranker.default()
    rows = []
    for modality, task in TASKS.items():
        for n in args.sizes:
            tokens = candidates(n, modality)
            vectors = np.stack([t.vector() for t in tokens])
            ranker.score(tokens[:50], task, vectors=vectors[:50])  # warm-up
            with_vectors = best_of(
                lambda tokens=tokens, task=task, vectors=vectors: ranker.score(tokens, task, vectors=vectors),
                args.repeats,
            )
            from_tokens = best_of(
                lambda tokens=tokens, task=task: ranker.score(tokens, task), max(1, args.repeats - 1)
            )
            row = {
                "modality": modality,
                "candidates": n,
                "ms_with_vectors": round(1000 * with_vectors, 1),
                "ms_from_tokens": round(1000 * from_tokens, 1),
                "us_per_candidate_with_vectors": round(1e6 * with_vectors / n, 2),
            }
            rows.append(row)
            print(row, flush=True)
    result = {
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads {args.threads}",
        "load_average": os.getloadavg(),
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ranker_speed.json").write_text(json.dumps(result, indent=1))
    print("| modality | candidates | ms (stored vectors) | ms (tokens re-vectorised) | µs per candidate |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['modality']} | {r['candidates']:,} | {r['ms_with_vectors']} | {r['ms_from_tokens']} | "
            f"{r['us_per_candidate_with_vectors']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
