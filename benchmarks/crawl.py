"""Crawl throughput against the loopback Hub, and catalog load/filter time at 100,000 entries.

Run: `python -m benchmarks.crawl [--models 2000] [--entries 100000] [--workers 8]`.
Prints a table and writes `benchmarks/results/crawl.json`.

Protocol:
- crawl: `--models` valid model repos (README with YAML card, config.json, a small safetensors
  file) served by `hf_spider.testing.HubServer` on 127.0.0.1 in a separate process (listing page
  size 100). One full
  crawl into an empty catalog with 1 worker, one with `--workers`, then an incremental re-crawl
  (every model unchanged). Wall time, models/s, HTTP calls the crawler made (retries included;
  one call per file fetched).
- catalog: `--entries` tokens (the embedded catalog's 349 models, replicated under new ids with
  varied sizes) written as SQLite and as JSON Lines; median of 3 `Catalog.load` and of 5
  `filter(task=..., max_params=...)` runs.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hf_spider.catalog import Catalog, crawl
from hf_spider.catalog._store import CatalogStore, write_jsonl
from hf_spider.testing import write_repo

RESULTS = Path(__file__).resolve().parent / "results"


def _safetensors(n: int) -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [n, 8], "data_offsets": [0, 32 * n]}}).encode()
    return struct.pack("<Q", len(header)) + header + b"\0" * (32 * n)


def build_hub(root: Path, n: int) -> None:
    for i in range(n):
        vision = i % 2 == 0
        config = (
            {
                "model_type": "vit",
                "architectures": ["ViTForImageClassification"],
                "hidden_size": 64 + i % 7,
                "image_size": 224,
            }
            if vision
            else {
                "model_type": "bert",
                "architectures": ["BertForSequenceClassification"],
                "hidden_size": 64 + i % 5,
            }
        )
        card = (
            f"---\nlicense: apache-2.0\ndatasets: [{'imagenet-1k' if vision else 'imdb'}]\n"
            f"tags: [bench]\n---\n# model {i}\n"
        )
        files = {"README.md": card, "config.json": config, "model.safetensors": _safetensors(1 + i % 50)}
        write_repo(root, f"org{i % 40}/model-{i:05d}", files, meta={"downloads": i, "likes": i % 13})


def bench_crawl(n: int, workers: int) -> list[dict]:
    """Full crawls with 1 and `workers` workers, then an incremental one; the Hub runs in its own process."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hub"
        build_hub(root, n)
        server = subprocess.Popen(
            [sys.executable, "-m", "hf_spider.testing.hub_server", str(root)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            url = server.stdout.readline().strip()
            cases = [("full crawl, 1 worker", 1, "a"), (f"full crawl, {workers} workers", workers, "b")]
            cases.append(("re-crawl, all unchanged", workers, "b"))
            for label, w, name in cases:
                started = time.perf_counter()
                report = crawl(Path(tmp) / f"cat-{name}", endpoint=url, workers=w)
                seconds = time.perf_counter() - started
                done = len(report.unchanged if label.startswith("re-crawl") else report.new)
                assert done == n and not report.failed, report.summary()
                rows.append(
                    {
                        "case": label,
                        "models": n,
                        "seconds": seconds,
                        "models_per_s": n / seconds,
                        "requests": report.requests,
                    }
                )
        finally:
            server.terminate()
            server.wait()
    return rows


def _median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def bench_catalog(entries: int) -> list[dict]:
    base = list(Catalog.load("model_cards"))
    tokens = []
    for i in range(entries):
        token = base[i % len(base)]
        data = token.to_dict()
        data["model_id"] = f"{token.model_id}-copy{i}"
        data["num_parameters"] = int((token.num_parameters or 10**6) * (0.5 + (i % 97) / 64))
        tokens.append(type(token).from_dict(data))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sqlite_file = Path(tmp) / "c.sqlite"
        store = CatalogStore(sqlite_file)
        store.upsert_many(tokens)
        store.close()
        jsonl_file = Path(tmp) / "c.jsonl"
        write_jsonl(jsonl_file, tokens)
        for fmt, file in (("sqlite", sqlite_file), ("jsonl", jsonl_file)):
            load = _median_time(lambda file=file: Catalog.load(file), 3)
            catalog = Catalog.load(file)

            def query(catalog=catalog):
                return catalog.filter(task="image-classification", max_params=90e6)

            filt = _median_time(query, 5)
            hits = len(query())
            get = _median_time(lambda catalog=catalog: [catalog.get(m) for m in catalog.model_ids[:1000]], 3)
            vectors = _median_time(lambda catalog=catalog: catalog.vectors(), 1)
            rows.append(
                {
                    "format": fmt,
                    "entries": len(catalog),
                    "file_mb": file.stat().st_size / 1e6,
                    "load_s": load,
                    "filter_s": filt,
                    "filter_hits": hits,
                    "get_1000_s": get,
                    "vectors_s": vectors,
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)
    machine = f"{platform.node()} {platform.machine()} {platform.processor() or ''} python {platform.python_version()}"
    crawl_rows = bench_crawl(args.models, args.workers)
    catalog_rows = bench_catalog(args.entries)
    print(f"machine: {machine}")
    print(f"{'case':32} {'models':>7} {'seconds':>8} {'models/s':>9} {'requests':>9}")
    for r in crawl_rows:
        print(
            f"{r['case']:32} {r['models']:7d} {r['seconds']:8.2f} {r['models_per_s']:9.1f} {r['requests']:9d}"
        )
    print(
        f"{'format':8} {'entries':>8} {'MB':>6} {'load s':>7} {'filter s':>9} {'hits':>6} {'get x1000 s':>11} {'vectors s':>9}"
    )
    for r in catalog_rows:
        print(
            f"{r['format']:8} {r['entries']:8d} {r['file_mb']:6.1f} {r['load_s']:7.3f} {r['filter_s']:9.4f} "
            f"{r['filter_hits']:6d} {r['get_1000_s']:11.4f} {r['vectors_s']:9.3f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "crawl.json"
    out.write_text(
        json.dumps(
            {
                "machine": machine,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "crawl": crawl_rows,
                "catalog": catalog_rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
