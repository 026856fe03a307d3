"""Constrained recommendation: regret under latency budgets, with at most top-k measurements.

    python -m benchmarks.constrained [--top-k 3] [--figure cpu_ms latency_ms] [--modality image text]

For each fine-tuning target of the shared records (`../shared/data/transfergraph/{image,text}`)
and each latency budget of a grid on `local`:
- transfer ground truth: a model's best full fine-tune accuracy on the target (TransferGraph's
  ground truth); the stage-1 score of each model comes from the ranker trained without that
  target (LODO, `hf_spider.ranker.evaluation.evaluate_ranking`, method `spider`);
- device ground truth: the config-only measurements of the model's architecture on `local`
  (`results/device_cost_runs.jsonl`); the catalog is restricted to models whose architecture
  was measured there. A variant is feasible when its measured figure is within the budget; a
  variant's transfer is its model's (the records hold no per-variant accuracy);
- device predictions: the cost model (`hardware.cost.CostModel`, with its held-out intervals)
  fitted on the *other* architectures (5 folds grouped by architecture), so no model is
  predicted from its own measurement;
- methods: `off` (stage-1 top-k, then measure), `copeland` and `fused`
  (`hardware.joint.rank_jointly`); each measures its top-k models (all variants of a model
  count as one measurement) and recommends the measured feasible variant with the best stage-1
  score. `exhaustive` measures every model and picks the same way: the floor that the stage-1
  ranking alone leaves.
Regret = best feasible accuracy (by exhaustive measurement) - accuracy of the recommendation, in
points. A method whose k measured models all break the budget recommends nothing: a miss.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results"
RUNS = RESULTS / "device_cost_runs.jsonl"
SHARED = REPO.parent / "shared" / "data" / "transfergraph"
METHODS = ("off", "copeland", "fused", "exhaustive")
VARIANTS = ("fp32", "int8-dynamic")
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # positions on the log grid of budgets


def lodo_scores(modality: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(stage-1 LODO score, best full fine-tune accuracy) per target and model.

    Kept in `results/constrained_stage1_<modality>.json` with a hash of the records and the
    ranker's code, so a rerun after new device measurements does not retrain the LODO folds."""
    import hashlib

    parts = sorted((SHARED / modality).glob("*.csv")) + sorted((REPO / "hf_spider" / "ranker").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()[:16]
    cache = RESULTS / f"constrained_stage1_{modality}.json"
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved.get("digest") == digest:
            return saved["scores"], saved["truth"]
    from hf_spider.ranker.evaluation import evaluate_ranking
    from hf_spider.ranker.records import load_records

    records = load_records([SHARED / modality]).with_ground_truth("best_eval")
    result = evaluate_ranking(records, protocol="lodo", methods=("spider",), workers=1)
    scores: dict[str, dict[str, float]] = {}
    for row in result["predictions"]:
        scores.setdefault(row["target"], {})[row["model"]] = row["score"]
    truth: dict[str, dict[str, float]] = {}
    for row in records.perf.itertuples():
        if row.dataset in scores:
            truth.setdefault(row.dataset, {})[row.model] = float(row.accuracy)
    cache.write_text(json.dumps({"digest": digest, "scores": scores, "truth": truth}))
    return scores, truth


def measured_architectures() -> list[dict]:
    """Store-like records (with facts) of the config-only runs, one per architecture and variant."""
    from hf_spider.hardware.cost import records_from_runs

    runs = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    return records_from_runs(runs)


def heldout_predictions(records: list[dict], figure: str, folds: int = 5, seed: int = 0) -> dict:
    """{config_hash: {variant: (predicted figure, band)}} from cost models that never saw the
    architecture's compute shape (grouped K-fold); bands are their own inner held-out 90% intervals."""
    from hf_spider.hardware.cost import fit_with_intervals, shape_key

    # folds by compute shape: two configs that differ only in vocabulary or labels stay together
    shape = {id(r): shape_key(r["config"]) for r in records}
    groups = sorted(set(shape.values()))
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[i]: k % folds for k, i in enumerate(order)}
    out: dict[str, dict[str, tuple[float, tuple[float, float] | None]]] = {}
    for fold in range(folds):
        train = [r for r in records if fold_of[shape[id(r)]] != fold]
        model = fit_with_intervals(train)
        for r in records:
            if fold_of[shape[id(r)]] != fold:
                continue
            value = model.predict(r["facts"], r["variant"])[figure]
            if value is not None:
                out.setdefault(r["config_hash"], {})[r["variant"]] = (
                    value,
                    model.interval(figure, r["variant"]),
                )
    return out


def evaluate(
    scores: dict[str, float],
    truth: dict[str, float],
    measured: dict[str, dict[str, float]],
    predicted: dict[str, dict[str, tuple[float, tuple[float, float] | None]]],
    budget: float,
    top_k: int,
) -> dict[str, dict] | None:
    """Every method on one target and budget; None when no model of the target fits the budget."""
    from hf_spider.hardware.constraints import Constraints
    from hf_spider.hardware.joint import Prediction, rank_jointly

    models = [m for m in scores if m in truth and m in measured]
    feasible = [m for m in models if min(measured[m].values()) <= budget]
    if not feasible:
        return None
    best = max(truth[m] for m in feasible)
    stage1 = sorted(((m, scores[m]) for m in models), key=lambda t: -t[1])
    cons = Constraints(max_latency_ms=budget)
    out = {}
    for method in METHODS:
        if method == "exhaustive":
            chosen = [m for m, _ in stage1]
        else:
            preds = {
                m: [
                    Prediction(m, v, {"latency_ms": value}, {"latency_ms": band})
                    for v, (value, band) in predicted.get(m, {}).items()
                ]
                for m in models
            }
            joint = rank_jointly(stage1, preds, cons, "off" if method == "off" else method)
            chosen = joint.order[:top_k]
        fits = [m for m in chosen if min(measured[m].values()) <= budget]
        pick = max(fits, key=lambda m: scores[m]) if fits else None
        out[method] = {
            "measurements": len(chosen),
            "pick": pick,
            "regret": None if pick is None else 100.0 * (best - truth[pick]),
        }
    floor = out["exhaustive"]["pick"]
    for method in METHODS:
        pick = out[method]["pick"]
        # the loss from measuring only the top-k, beside the stage-1 ranking's own (exhaustive)
        out[method]["vs_exhaustive"] = None if pick is None else 100.0 * (truth[floor] - truth[pick])
    out["best_feasible"] = {"accuracy": best, "n_feasible": len(feasible), "n_models": len(models)}
    return out


def run(modality: str, figure: str, top_k: int, scores, truth, archs) -> dict:
    predicted_by_arch = heldout_predictions(archs, figure)
    measured: dict[str, dict[str, float]] = {}
    predicted: dict[str, dict] = {}
    for r in archs:
        if r.get(figure) is None:
            continue
        for model in r.get("models") or [r["model"]]:
            measured.setdefault(model, {})[r["variant"]] = float(r[figure])
            if r["variant"] in predicted_by_arch.get(r["config_hash"], {}):
                predicted.setdefault(model, {})[r["variant"]] = predicted_by_arch[r["config_hash"]][
                    r["variant"]
                ]
    in_catalog = sorted({m for t in truth.values() for m in t} & set(measured))
    # the grid: log-spaced between the cheapest and the dearest architecture's cheapest variant,
    # ends left out (one model fits, or all do); a grid of measured values would put budgets
    # exactly on figures shared by many models
    cheapest = [min(measured[m].values()) for m in in_catalog]
    grid = np.geomspace(min(cheapest), max(cheapest), len(QUANTILES) + 2)[1:-1]
    budgets = [float(b) for b in grid]
    rows = []
    for q, budget in zip(QUANTILES, budgets, strict=True):
        for target in sorted(scores):
            result = evaluate(scores[target], truth[target], measured, predicted, budget, top_k)
            if result is not None:
                rows.append({"quantile": q, "budget": budget, "target": target, **result})
    return {
        "modality": modality,
        "figure": figure,
        "top_k": top_k,
        "catalog_models": len(in_catalog),
        "architectures": len({r["config_hash"] for r in archs}),
        "budgets": dict(zip(map(str, QUANTILES), budgets, strict=True)),
        "rows": rows,
        "summary": summarise(rows),
    }


def summarise(rows: list[dict]) -> list[dict]:
    out = []
    for q in QUANTILES:
        mine = [r for r in rows if r["quantile"] == q]
        if not mine:
            continue
        for method in METHODS:
            out.append({"quantile": q, "budget": mine[0]["budget"], **_stats(mine, method)})
    for method in METHODS:
        out.append({"quantile": "all", **_stats(rows, method)})
    return out


def _stats(rows: list[dict], method: str) -> dict:
    regrets = [r[method]["regret"] for r in rows if r[method]["regret"] is not None]
    losses = [r[method]["vs_exhaustive"] for r in rows if r[method]["vs_exhaustive"] is not None]
    return {
        "method": method,
        "targets": len(rows),
        "misses": sum(r[method]["pick"] is None for r in rows),
        "mean_regret": float(np.mean(regrets)) if regrets else None,
        "max_regret": float(np.max(regrets)) if regrets else None,
        "within_2": float(np.mean([x <= 2.0 for x in regrets])) if regrets else None,
        "mean_vs_exhaustive": float(np.mean(losses)) if losses else None,
        "measurements": max(r[method]["measurements"] for r in rows),
    }


def print_table(result: dict) -> None:
    print(
        f"\n{result['modality']}, latency figure {result['figure']}, top-k {result['top_k']}: "
        f"{result['catalog_models']} catalog models on {result['architectures']} measured architectures"
    )
    print(
        "| budget | method | targets | misses | mean regret | max regret | within 2 | vs exhaustive | measurements |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def fmt(value, pattern="{:.2f}"):
        return "-" if value is None else pattern.format(value)

    for s in result["summary"]:
        budget = "**all**" if s["quantile"] == "all" else f"{s['budget']:.3g} ms"
        print(
            f"| {budget} | {s['method']} | {s['targets']} | {s['misses']} | {fmt(s['mean_regret'])} | "
            f"{fmt(s['max_regret'])} | {fmt(s['within_2'], '{:.0%}')} | {fmt(s['mean_vs_exhaustive'])} | "
            f"{s['measurements']} |"
        )


def plot(results: list[dict], path: Path) -> None:
    """Mean regret (top) and misses (bottom) per budget, one column per modality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(2, len(results), figsize=(5.4 * len(results), 6.2), squeeze=False, sharex="col")
    styles = dict(zip(METHODS, ("o-", "s-", "^-", "k:"), strict=True))
    for col, result in enumerate(results):
        top, bottom = axes[0][col], axes[1][col]
        for method in METHODS:
            rows = [s for s in result["summary"] if s["method"] == method and s["quantile"] != "all"]
            xs = [s["budget"] for s in rows]
            ys = [s["mean_regret"] if s["mean_regret"] is not None else np.nan for s in rows]
            top.plot(xs, ys, styles[method], label=method)
            bottom.plot(xs, [s["misses"] for s in rows], styles[method], label=method)
        top.axhline(2.0, color="grey", lw=0.8, ls="--")
        top.set_ylabel("mean regret (accuracy points)")
        top.set_title(f"{result['modality']}: {result['catalog_models']} models, top-{result['top_k']}")
        top.legend(fontsize=8)
        bottom.set_ylabel("misses (targets with no pick)")
        bottom.set_xlabel(f"latency budget ({result['figure']}, ms)")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("Under a latency budget: regret vs exhaustive measurement, and misses (lower is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--modality", nargs="+", default=["image", "text"], choices=["image", "text"])
    parser.add_argument(
        "--figure", nargs="+", default=["cpu_ms", "latency_ms"], choices=["cpu_ms", "latency_ms"]
    )
    args = parser.parse_args(argv)
    started = time.time()
    archs = measured_architectures()
    results = []
    for modality in args.modality:
        scores, truth = lodo_scores(modality)
        for figure in args.figure:
            result = run(modality, figure, args.top_k, scores, truth, archs)
            print_table(result)
            results.append(result)
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "seconds": round(time.time() - started, 1),
        "runs_file": str(RUNS.relative_to(REPO)),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "constrained.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    plot([r for r in results if r["figure"] == args.figure[0]], REPO / "benchmarks" / "constrained.png")
    print(
        f"\n{meta}\nwritten: benchmarks/results/constrained.json, benchmarks/constrained.png", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
