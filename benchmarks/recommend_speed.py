"""Speed of a recommendation (`../shared/BENCHMARKS.md`): brute force vs stage 1 vs two-stage.

Same zoo, same data sample, same machine, one run, per target of the local benchmark:
- brute force: LogME over every zoo candidate of the target's modality (one forward pass each);
- stage 1: `hf_spider.recommend(..., stages=("rank",))` — task metadata + the learned ranker over
  the whole catalog (embedded catalog + offline zoo);
- two-stage: `hf_spider.recommend(..., stages=("rank", "probe"), top_k=K)` — stage 1, then forward
  passes of the top-K reachable candidates, fused by the ranker.
Each method starts with a cold feature cache (its own `HF_SPIDER_HOME`). Reported: wall and CPU
seconds, model forward passes over the sample, and tau_w (both conventions), top-1 regret and
hit@3 against the fine-tuned accuracies of the zoo records (`benchmarks/zoo_records/`).
Also: the ranker's time over a 10,000-card catalog.

    python -m benchmarks.recommend_speed [--targets a,b] [--sample 256] [--top-k 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RECORDS = REPO / "benchmarks" / "zoo_records"
SHARED = REPO.parent / "shared" / "data" / "transfergraph"
RESULTS = REPO / "benchmarks" / "results"


@contextlib.contextmanager
def cold_home():
    """A fresh HF_SPIDER_HOME (no feature, export or catalog cache); the zoo stays where it is."""
    from hf_spider import _paths

    saved = {k: os.environ.get(k) for k in ("HF_SPIDER_HOME", "HF_SPIDER_ZOO")}
    os.environ["HF_SPIDER_ZOO"] = str(_paths.zoo_dir())
    with tempfile.TemporaryDirectory(prefix="hfspider-bench-") as home:
        os.environ["HF_SPIDER_HOME"] = home
        try:
            yield Path(home)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


class Clock:
    def __enter__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu


def metrics(gt: dict[str, float], scores: dict[str, float]) -> dict[str, float]:
    """tau_w (rank=True and rank=None), top-1 regret (points), hit@3 over the models in `gt`."""
    from scipy.stats import weightedtau

    models = sorted(gt)
    g = np.array([gt[m] for m in models])
    # a model the method did not score ranks last (the method gave it no chance)
    floor = min((v for v in scores.values() if v is not None), default=0.0) - 1.0
    s = np.array([scores.get(m) if scores.get(m) is not None else floor for m in models], dtype=float)
    first = models[int(np.argmax(s))]
    top3 = [models[i] for i in np.argsort(-s)[:3]]
    best = models[int(np.argmax(g))]
    return {
        "tau_w_rank_true": float(weightedtau(g, s).statistic),
        "tau_w_rank_none": float(weightedtau(g, s, rank=None).statistic),
        "top1_regret": float(100 * (g.max() - gt[first])),
        "hit_at_3": float(best in top3),
        "n_models": len(models),
    }


def brute_force(dataset: str, candidates: list[str], sample: int) -> tuple[dict[str, float], int, Clock]:
    import hf_spider.estimators as est
    from hf_spider.models import extract_features
    from hf_spider.tasks import load_task

    scores: dict[str, float] = {}
    with Clock() as clock:
        task = load_task(dataset, sample=sample, probe=False)
        for model_id in candidates:
            feats = extract_features(
                model_id, task.inputs, modality=task.modality, cache_key=task.fingerprint, use_cache=False
            )
            scores[model_id] = float(est.score("logme", feats, task.labels))
    return scores, len(candidates), clock


def _families() -> dict[str, str]:
    """Source-dataset family of each zoo target, from the `family` column of its target_datasets.csv
    (the tweets_* tasks are all cut from one set of tweets)."""
    import pandas as pd

    out: dict[str, str] = {}
    for path in RECORDS.glob("*/target_datasets.csv"):
        frame = pd.read_csv(path)
        if {"target_dataset", "family"} <= set(frame.columns):
            out.update(
                {str(t): str(f) for t, f in zip(frame["target_dataset"], frame["family"], strict=True)}
            )
    return out


FAMILIES = _families()


def family(target: str) -> str:
    """The source dataset of a target: class-subset tasks (`fashion_mnist_sub5_2`) share their parent's,
    and a target kept apart by protocol (`rotten_tomatoes@linear_probe`) is its dataset's."""
    base = target.split("@", 1)[0]
    return FAMILIES.get(base, base.split("_sub")[0])


def lodo_ranker(records, target: str):
    """A ranker meta-trained without the target's records, nor those of tasks cut from the same
    source dataset (leave one dataset out: the class-subset siblings share the target's images)."""
    from dataclasses import replace

    from hf_spider.ranker import train_ranker

    def keep(df):
        if "dataset" not in df.columns:
            return df
        return df[df["dataset"].map(family) != family(target)]

    held_out = replace(
        records, perf=keep(records.perf), scores=keep(records.scores), datasets=keep(records.datasets)
    )
    ranker, _ = train_ranker(held_out)  # as `hf-spider train` would, hyperparameters cross-validated
    return ranker


def hf_spider_run(dataset: str, stages: tuple[str, ...], sample: int, top_k: int, ranker):
    import hf_spider

    with Clock() as clock:
        recs = hf_spider.recommend(dataset, stages=stages, sample=sample, top_k=top_k, ranker=ranker)
    # the final order as a score: earlier = higher
    order = [r["model_id"] for r in recs.ranking()]
    scores = {m: float(len(order) - i) for i, m in enumerate(order)}
    return scores, int(recs.meta.get("forward_passes") or 0), clock, recs


def ranker_10k_ms(ranker) -> float:
    """Stage-1 time over 10,000 cards (the embedded catalog's tokens replicated under new ids)."""
    from hf_spider.catalog import Catalog
    from hf_spider.tasks import load_task

    base = list(Catalog.load(None))
    tokens = []
    for i in range(10_000):
        t = base[i % len(base)].to_dict()
        t["model_id"] = f"{t['model_id']}-copy{i}"
        tokens.append(t)
    cat = Catalog(tokens)
    task = load_task(str(_dataset_folder("rotten_tomatoes")), sample=0)
    candidates = list(cat)
    ranker.rank(candidates[:100], task)  # warm-up
    start = time.perf_counter()
    ranker.rank(candidates, task)
    return 1000 * (time.perf_counter() - start)


def _dataset_folder(name: str) -> Path:
    from hf_spider import _paths

    return _paths.zoo_dir() / "datasets" / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", help="comma list of zoo datasets (default: every target in the records)")
    parser.add_argument("--sample", type=int, default=256)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--records", default=str(RECORDS), help="the zoo's records (targets)")
    parser.add_argument(
        "--train-records",
        nargs="*",
        default=[str(SHARED / "image"), str(SHARED / "text")],
        help="more records the LODO ranker trains on (default: the shared Hub records)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", dest="json_out", default=str(RESULTS / "recommend_speed.json"))
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from hf_spider.ranker.records import load_records
    from hf_spider.zoo import installed

    root = Path(args.records)
    zoo_dirs = [root] if (root / "records.csv").is_file() else sorted(p for p in root.iterdir() if p.is_dir())
    zoo_records = load_records(zoo_dirs)
    perf = zoo_records.perf[~zoo_records.perf["failed"]]
    all_records = load_records([*zoo_dirs, *[d for d in args.train_records if Path(d).is_dir()]])
    zoo_models = set(installed()["models"])
    targets = args.targets.split(",") if args.targets else sorted(set(perf["dataset"]))
    results = {}
    ranker = None
    for target in targets:
        folder = _dataset_folder(target)
        if not (folder / "README.md").is_file():
            print(f"skip {target}: not installed in the zoo", file=sys.stderr)
            continue
        rows = perf[perf["dataset"] == target]
        gt = {m: float(a) for m, a in zip(rows["model"], rows["accuracy"], strict=True) if m in zoo_models}
        if len(gt) < 3:
            print(f"skip {target}: fewer than 3 zoo models with records", file=sys.stderr)
            continue
        candidates = sorted(gt)
        ranker = lodo_ranker(all_records, target)  # meta-training is not part of a recommendation's time
        out = {}
        with cold_home():
            scores, passes, clock = brute_force(str(folder), candidates, args.sample)
        out["brute_force_logme"] = {
            "wall_s": clock.wall,
            "cpu_s": clock.cpu,
            "forward_passes": passes,
            **metrics(gt, scores),
        }
        with cold_home():
            scores, passes, clock, _ = hf_spider_run(str(folder), ("rank",), args.sample, args.top_k, ranker)
        out["stage1"] = {
            "wall_s": clock.wall,
            "cpu_s": clock.cpu,
            "forward_passes": passes,
            **metrics(gt, scores),
        }
        with cold_home():
            scores, passes, clock, recs = hf_spider_run(
                str(folder), ("rank", "probe"), args.sample, args.top_k, ranker
            )
        out["two_stage"] = {
            "wall_s": clock.wall,
            "cpu_s": clock.cpu,
            "forward_passes": passes,
            "probed": [r["model_id"] for r in recs.rows if r["stage"] == "probe"],
            **metrics(gt, scores),
        }
        results[target] = out
        print(
            f"{target}: "
            + ", ".join(f"{k} {v['wall_s']:.1f}s tau_w {v['tau_w_rank_true']:.3f}" for k, v in out.items()),
            flush=True,
        )

    methods = ("brute_force_logme", "stage1", "two_stage")
    mean = {
        m: {
            k: float(np.mean([results[t][m][k] for t in results]))
            for k in (
                "wall_s",
                "cpu_s",
                "forward_passes",
                "tau_w_rank_true",
                "tau_w_rank_none",
                "top1_regret",
                "hit_at_3",
            )
        }
        for m in methods
        if results
    }
    ranker_ms = ranker_10k_ms(ranker) if ranker is not None else None
    payload = {
        "protocol": {
            "sample": args.sample,
            "top_k": args.top_k,
            "threads": args.threads,
            "records": str(args.records),
            "ranker": "meta-trained per target on the zoo and shared records, without the records of the "
            "target's source dataset (the target and its class-subset siblings: LODO)",
            "cold_cache": True,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "targets": results,
        "mean": mean,
        "ranker_10k_cards_ms": ranker_ms,
    }
    Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json_out).write_text(json.dumps(payload, indent=2) + "\n")

    header = f"{'target':<22}{'method':<20}{'wall s':>8}{'cpu s':>8}{'passes':>8}{'tau_w':>8}{'tau_w*':>8}{'regret':>8}{'hit@3':>7}"
    print(header)
    for target, out in [*results.items(), ("MEAN", mean)]:
        for m in methods:
            if m in out:
                v = out[m]
                print(
                    f"{target:<22}{m:<20}{v['wall_s']:>8.1f}{v['cpu_s']:>8.1f}{v['forward_passes']:>8.1f}"
                    f"{v['tau_w_rank_true']:>8.3f}{v['tau_w_rank_none']:>8.3f}{v['top1_regret']:>8.2f}{v['hit_at_3']:>7.2f}"
                )
    if ranker_ms is not None:
        print(f"ranker over 10,000 cards: {ranker_ms:.1f} ms")
    print("tau_w = weightedtau rank=True, tau_w* = rank=None; regret in accuracy points")
    print(f"results: {args.json_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
