"""Model Spider's recipe for training tasks (issue 11, item 3): sub-tasks of the zoo's datasets.

    python -m benchmarks.subtasks build [--modality text image] [--per-root 40]
    python -m benchmarks.subtasks eval  [--modality text image]
    python -m benchmarks.subtasks transfergraph [--modality text image]
    python -m benchmarks.subtasks plot   # benchmarks/results/subtasks_curve.png from eval's JSON
    python -m benchmarks.subtasks markdown   # the tables of benchmarks/ranking.md from the JSON

`build` writes `benchmarks/subtask_records/<modality>/` (`hf_spider.zoo.subtasks`) and the time it
took to `benchmarks/results/subtasks_build_<modality>.json`. `eval` is in `benchmarks/ranking.md`,
section "Model Spider sub-tasks": `eval` holds out whole root datasets (prior, LogME, the
residual trained on the other roots' sub-tasks, with and without the data token);
`transfergraph` runs `eval ranking --protocol transfergraph` on the shared records with the
sub-tasks added to the training data (the ranker's parts chosen per fold by nested CV as ever).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def build(modalities: list[str], per_root: int, exclude: list[str]) -> None:
    import torch

    from hf_spider.zoo.specs import MODELS
    from hf_spider.zoo.subtasks import build_subtasks

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)  # a shared machine: one thread per process (docs/zoo.md)
    for modality in modalities:
        start, cpu = time.perf_counter(), time.process_time()
        models = [m for m, spec in MODELS.items() if spec.modality == modality and m not in exclude]
        summary = build_subtasks(
            modality, per_root=per_root, models=models, progress=lambda line: print(line, flush=True)
        )
        summary["excluded_models"] = [m for m in exclude if MODELS.get(m) and MODELS[m].modality == modality]
        summary.update(
            per_root=per_root,
            wall_s=round(time.perf_counter() - start, 1),
            cpu_s=round(time.process_time() - cpu, 1),
            load_average=[round(x, 2) for x in os.getloadavg()],
            date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            machine=f"{platform.machine()}, {os.cpu_count()} cores (shared VM)",
        )
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / f"subtasks_build_{modality}.json").write_text(json.dumps(summary, indent=1) + "\n")
        print(json.dumps(summary))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.subtasks", description=__doc__)
    parser.add_argument("command", choices=["build", "eval", "transfergraph", "plot", "markdown"])
    parser.add_argument("--modality", nargs="+", default=["text", "image"], choices=["text", "image"])
    parser.add_argument("--per-root", type=int, default=40, help="sub-tasks sampled per root dataset")
    parser.add_argument("--exclude", nargs="*", default=[], help="zoo models left out of the build")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.modality, args.per_root, args.exclude)
    elif args.command == "eval":
        evaluate(args.modality)
    elif args.command == "plot":
        plot(args.modality)
    elif args.command == "markdown":
        markdown(args.modality)
    else:
        transfergraph(args.modality)


def transfergraph(modalities: list[str]) -> None:
    """TransferGraph's protocol on the shared records, the sub-tasks added to what every fold
    trains on; the task token carries the data part (zero on the shared datasets, which have no
    sample here)."""
    from hf_spider._paths import REPO_DIR
    from hf_spider.ranker import load_records
    from hf_spider.ranker.evaluation import evaluate_ranking
    from hf_spider.ranker.model import RankerConfig
    from hf_spider.zoo.subtasks import DEFAULT_OUT

    for modality in modalities:
        start = time.perf_counter()
        records = load_records(
            [REPO_DIR.parent / "shared" / "data" / "transfergraph" / modality, DEFAULT_OUT / modality]
        )
        result = evaluate_ranking(
            records,
            protocol="transfergraph",
            config=RankerConfig(task_data=True),
            methods=("spider", "static", "collaborative", "transfergraph"),
            workers=2,
        )
        result.pop("predictions", None)
        result["wall_s"] = round(time.perf_counter() - start, 1)
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
        result["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        (RESULTS / f"subtasks_transfergraph_{modality}.json").write_text(
            json.dumps(result, indent=1, default=str) + "\n"
        )
        print(modality, json.dumps(result["mean"], default=str), result["wall_s"], flush=True)


# Training steps of the learned residual tried on the sub-tasks (one run, checkpoints).
STEPS = (0, 100, 300)
VARIANTS = ("meta", "meta+data")  # task token without / with the probe data token's summary


def _parents(folder: Path) -> dict[str, str]:
    import pandas as pd

    frame = pd.read_csv(folder / "target_datasets.csv")
    return dict(zip(frame["target_dataset"], frame["parent"], strict=True))


class _HeldOut:
    """Leave-one-root-out over the sub-tasks of one modality: train on the sub-tasks of the other
    roots, rank the models of every sub-task of the held-out root. Figures are cached per
    (held-out root, second root left out, variant) so that nested cross-validation reuses them."""

    def __init__(self, modality: str, seed: int = 0, folder: Path | None = None):
        from hf_spider.ranker import load_records
        from hf_spider.ranker.tokens import tokens_for
        from hf_spider.zoo.subtasks import DEFAULT_OUT

        folder = folder or DEFAULT_OUT / modality
        self.records = load_records([folder])
        self.tokens, _ = tokens_for(self.records, catalog=False)
        self.modality, self.seed = modality, seed
        usable = self.records.datasets[~self.records.datasets["failed"]]["dataset"]
        parents = _parents(folder)
        self.by_root: dict[str, list[str]] = {}
        for d in sorted(usable):
            self.by_root.setdefault(parents[d], []).append(d)
        self.roots = sorted(r for r, ds in self.by_root.items() if len(ds) >= 2)
        self.left_out = sorted(set(parents.values()) - set(self.roots))
        self._memo: dict[tuple, dict] = {}

    def taus(self, i: int, h: int | None, variant: str, n_train: int | None = None) -> dict:
        """{method or (variant, steps): [tau_w per sub-task of root i]}, training without roots i and h
        (on `n_train` of their sub-tasks, sampled, when given)."""
        key = (i, h, variant, n_train)
        if key in self._memo:
            return self._memo[key]
        import numpy as np
        from scipy.stats import weightedtau

        from hf_spider.ranker.inference import dataset_context, score_context, scores_of
        from hf_spider.ranker.model import RankerConfig
        from hf_spider.ranker.training import fit, training_contexts

        held = self.roots[i]
        train = [
            d
            for r in self.roots
            if r not in (held, self.roots[h] if h is not None else None)
            for d in self.by_root[r]
        ]
        if n_train is not None and n_train < len(train):
            train = sorted(
                np.random.default_rng(self.seed).choice(train, size=n_train, replace=False).tolist()
            )
        perf = self.records.usable()
        tests = []
        for d in self.by_root[held]:
            rows = perf[perf["dataset"] == d]
            ctx = dataset_context(self.records, d, list(rows["model"]), train, self.tokens, card=False)
            tests.append((d, ctx, rows["accuracy"].to_numpy()))
        out: dict = {"prior": [], "logme": []}
        for d, ctx, gt in tests:
            out["prior"].append(float(weightedtau(gt, score_context(None, ctx)).statistic))
            logme = scores_of(self.records, d).get("logme", {})
            out["logme"].append(
                float(weightedtau(gt, np.array([logme.get(m, np.nan) for m in ctx.models])).statistic)
            )
        contexts = training_contexts(
            self.records, self.modality, train, self.tokens, card=False, use_scores=False
        )
        cfg = RankerConfig(steps=max(STEPS), ensemble=1, task_data=variant == "meta+data")

        def record(model, steps):
            out[(variant, steps)] = [
                float(weightedtau(gt, score_context(model, ctx, use_features=False)).statistic)
                for _, ctx, gt in tests
            ]

        fit(contexts, cfg, seed=self.seed, checkpoints={s: (lambda m, s=s: record(m, s)) for s in STEPS})
        self._memo[key] = out
        return out


def evaluate(modalities: list[str]) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    RESULTS.mkdir(exist_ok=True)
    for modality in modalities:
        with threadpool_limits(1):
            result = _evaluate_modality(modality)
        print(json.dumps({modality: result}, indent=1), flush=True)
        (RESULTS / f"subtasks_heldout_{modality}.json").write_text(json.dumps(result, indent=1) + "\n")


def _evaluate_modality(modality: str, folder: Path | None = None) -> dict:
    """Held-out roots: the prior, LogME and the residual trained on the other roots' sub-tasks
    (with and without the data token), the choice among them checked by nested cross-validation
    over roots (`selection.nested_choice`, floor: the prior alone), and tau_w against the number
    of training sub-tasks."""
    import numpy as np

    from hf_spider.ranker.selection import nested_choice

    start = time.perf_counter()
    ho = _HeldOut(modality, folder=folder)
    n = len(ho.roots)
    options = [("prior", 0)] + [(v, s) for v in VARIANTS for s in STEPS if s]

    def score(i, h, option):
        if option[0] == "prior":
            return float(np.mean(ho.taus(i, h, VARIANTS[0])["prior"]))
        return float(np.mean(ho.taus(i, h, option[0])[option]))

    best, info = nested_choice(score, n, options, ("prior", 0), 0.005)
    per_root = {}
    for i, root in enumerate(ho.roots):
        row: dict = {"sub-tasks": len(ho.by_root[root])}
        for v in VARIANTS:
            t = ho.taus(i, None, v)
            row["prior"], row["logme"] = float(np.mean(t["prior"])), float(np.nanmean(t["logme"]))
            row.update({f"{v}@{s}": float(np.mean(t[(v, s)])) for s in STEPS if s})
        per_root[root] = row
    fewest = min(sum(len(ho.by_root[r]) for r in ho.roots if r != root) for root in ho.roots)
    curve = {}
    for n_train in [x for x in (8, 32) if x < fewest] + [None]:
        point = {
            "prior": float(
                np.mean([np.mean(ho.taus(i, None, VARIANTS[0], n_train)["prior"]) for i in range(n)])
            )
        }
        point.update(
            {
                v: float(np.mean([np.mean(ho.taus(i, None, v, n_train)[(v, 300)]) for i in range(n)]))
                for v in VARIANTS
            }
        )
        curve[str(n_train or "all")] = point
    keys = [k for k in next(iter(per_root.values())) if k != "sub-tasks"]
    return {
        "roots": per_root,
        "left_out": ho.left_out,
        "mean_over_roots": {k: float(np.mean([r[k] for r in per_root.values()])) for k in keys},
        "nested": {
            "chosen": f"{best[0]}@{best[1]}",
            **{k: (f"{v[0]}@{v[1]}" if isinstance(v, tuple) else v) for k, v in info.items()},
        },
        "tau_w_by_training_subtasks_steps300": curve,
        "wall_s": round(time.perf_counter() - start, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def plot(modalities: list[str]) -> None:
    """Held-out tau_w against the number of training sub-tasks, one panel per modality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(modalities), figsize=(5 * len(modalities), 3.6), squeeze=False)
    for ax, modality in zip(axes[0], modalities, strict=True):
        data = json.loads((RESULTS / f"subtasks_heldout_{modality}.json").read_text())
        curve = data["tau_w_by_training_subtasks_steps300"]
        labels = list(curve)
        xs = range(len(labels))
        for key, style in (("prior", "k--"), ("meta", "C0o-"), ("meta+data", "C1s-")):
            ax.plot(
                xs,
                [curve[x][key] for x in labels],
                style,
                label=key if key == "prior" else f"residual, {key}",
            )
        ax.axhline(data["mean_over_roots"]["logme"], color="C2", lw=1, label="LogME")
        ax.set_xticks(list(xs), labels)
        ax.set_xlabel("training sub-tasks (other roots; 'all' = every one)")
        ax.set_ylabel("held-out mean tau_w")
        ax.set_title(f"{modality}: roots held out in turn")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "subtasks_curve.png", dpi=110)


def markdown(modalities: list[str]) -> None:
    """Held-out roots table per modality (mean tau_w over each root's sub-tasks)."""
    for modality in modalities:
        path = RESULTS / f"subtasks_heldout_{modality}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text())
        cols = [k for k in next(iter(data["roots"].values())) if k != "sub-tasks"]
        print(f"\n{modality} ({data['date']}, {data['wall_s']} s wall, load {data['load_average'][0]})\n")
        print("| held-out root | sub-tasks | " + " | ".join(cols) + " |")
        print("| --- | ---: | " + " | ".join("---:" for _ in cols) + " |")
        for root, row in data["roots"].items():
            print(f"| {root} | {row['sub-tasks']} | " + " | ".join(f"{row[c]:.3f}" for c in cols) + " |")
        mean = data["mean_over_roots"]
        print("| **mean over roots** | | " + " | ".join(f"{mean[c]:.3f}" for c in cols) + " |")
        print(f"\nnested: {data['nested']}")
        print(f"curve: {data['tau_w_by_training_subtasks_steps300']}")


if __name__ == "__main__":
    main()
