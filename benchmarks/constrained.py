"""Constrained recommendation: regret under device budgets, with at most top-k measurements.

    python -m benchmarks.constrained [--top-k 3] [--figure cpu_ms latency_ms memory_mb size_mb]
        [--modality image text]
    python -m benchmarks.constrained --train-learned   # writes hf_spider/hardware/joint_learned.json

For each fine-tuning target of the shared records (`../shared/data/transfergraph/{image,text}`)
and each budget of a grid on `local` (latency as CPU time or wall p50, peak memory, file size):
- transfer ground truth: a model's best full fine-tune accuracy on the target (TransferGraph's
  ground truth); the stage-1 score of each model comes from the ranker trained without that
  target (LODO, `hf_spider.ranker.evaluation.evaluate_ranking`, method `spider`);
- device ground truth: the config-only measurements of the model's architecture on `local`
  (`results/device_cost_third_pass.jsonl`, the quiet pass timed for 2 s); the catalog is restricted to models whose architecture
  was measured there. A variant is feasible when its measured figure is within the budget; a
  variant's transfer is its model's (the records hold no per-variant accuracy);
- device predictions: the cost model (`hardware.cost.CostModel`, with its held-out intervals)
  fitted on the *other* architectures (5 folds grouped by architecture), so no model is
  predicted from its own measurement;
- methods: `off` (stage-1 top-k, then measure), `copeland`, `fused` and `learned`
  (`hardware.joint.rank_jointly`); `learned` is scored with weights fitted without the target
  (nested: the outer fold leaves the target out, an inner leave-one-target-out over the others
  picks the L2 strength; `nested_learned`), trained on the cases of `TRAIN_FIGURES`; each
  measures its top-k models (all variants of a model
  count as one measurement) and recommends the measured feasible variant with the best stage-1
  score. `exhaustive` measures every model and picks the same way: the floor that the stage-1
  ranking alone leaves.
Regret = best feasible accuracy (by exhaustive measurement) - accuracy of the recommendation, in
points. A method whose k measured models all break the budget recommends nothing: a miss.

`--train-learned` fits the shipped weights of `--joint learned` on every target's cases (the L2
strength by leave-one-target-out over them): deterministic, numpy only, about a minute.
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
RUNS = RESULTS / "device_cost_third_pass.jsonl"  # the quiet, long-timed pass: the product's reference runs
SIBLINGS = RESULTS / "device_cost_siblings.jsonl"  # trained on as the product does, never a candidate
SHARED = REPO.parent / "shared" / "data" / "transfergraph"
METHODS = ("off", "copeland", "fused", "learned", "exhaustive")
# figure measured -> (the cost model's figure, the budget it is checked against)
BUDGET_OF = {
    "cpu_ms": ("latency_ms", "max_latency_ms"),
    "latency_ms": ("latency_ms", "max_latency_ms"),
    "memory_mb": ("memory_mb", "max_memory_mb"),
    "size_mb": ("size_mb", "max_size_mb"),
}
UNIT = {"cpu_ms": "ms", "latency_ms": "ms", "memory_mb": "MiB", "size_mb": "MiB"}
# the learned score trains on these budgets' cases; wall-clock latency is evaluated, not trained on:
# under load it measures the load more than the model (the sweep's first pass, constrained.md), and
# on a quiet core at 1 thread it repeats cpu_ms
TRAIN_FIGURES = ("cpu_ms", "memory_mb", "size_mb")
L2_GRID = (0.0001, 0.001, 0.01, 0.1, 1.0)
LEARNED_FILE = REPO / "hf_spider" / "hardware" / "joint_learned.json"
VARIANTS = ("fp32", "int8-dynamic")
QUANTILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # positions on the log grid of budgets


def stage1_digest(modality: str) -> str:
    """A hash of what the stage-1 LODO scores are computed from: the records and the ranker's code
    (its command line, `cli.py`, computes none of them)."""
    import hashlib

    code = [p for p in sorted((REPO / "hf_spider" / "ranker").glob("*.py")) if p.name != "cli.py"]
    parts = sorted((SHARED / modality).glob("*.csv")) + code
    return hashlib.sha256(b"".join(p.read_bytes() for p in parts)).hexdigest()[:16]


def lodo_scores(modality: str) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """(stage-1 LODO score, best full fine-tune accuracy) per target and model.

    Kept in `results/constrained_stage1_<modality>.json` with a hash of the records and the
    ranker's code, so a rerun after new device measurements does not retrain the LODO folds."""
    digest = stage1_digest(modality)
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


def cached_stage1(modality: str) -> tuple[dict, dict, str]:
    """(scores, truth, digest) as kept in `results/constrained_stage1_<modality>.json`, without
    checking the digest against the records and ranker code (`lodo_scores` does)."""
    saved = json.loads((RESULTS / f"constrained_stage1_{modality}.json").read_text())
    return saved["scores"], saved["truth"], saved["digest"]


def measured_architectures(path: Path = RUNS) -> list[dict]:
    """Store-like records (with facts) of the config-only runs, one per architecture and variant."""
    from hf_spider.hardware.cost import records_from_runs

    if not path.exists():
        return []
    runs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records_from_runs(runs)


def heldout_predictions(records: list[dict], figure: str, folds: int = 5, seed: int = 0) -> dict:
    """{config_hash: {variant: (predicted figure, band)}} from cost models that never saw the
    architecture's compute shape (grouped K-fold), trained also on the sibling sizes the product
    trains on (`SIBLINGS`); bands are their own inner held-out 90% intervals."""
    from hf_spider.hardware.cost import fit_with_intervals, shape_key

    siblings = measured_architectures(SIBLINGS)

    # folds by compute shape: two configs that differ only in vocabulary or labels stay together
    shape = {id(r): shape_key(r["config"]) for r in records}
    groups = sorted(set(shape.values()))
    order = np.random.default_rng(seed).permutation(len(groups))
    fold_of = {groups[i]: k % folds for k, i in enumerate(order)}
    out: dict[str, dict[str, tuple[float, tuple[float, float] | None]]] = {}
    for fold in range(folds):
        train = [r for r in records if fold_of[shape[id(r)]] != fold]
        held = {shape[id(r)] for r in records if fold_of[shape[id(r)]] == fold}
        model = fit_with_intervals(train + [r for r in siblings if shape_key(r["config"]) not in held])
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


def make_case(
    scores: dict[str, float],
    truth: dict[str, float],
    measured: dict[str, dict[str, float]],
    predicted: dict[str, dict[str, tuple[float, tuple[float, float] | None]]],
    figure: str,
    budget: float,
) -> dict | None:
    """One target under one budget: its catalog, stage-1 order and what fits; None when no model
    of the target fits the budget."""
    models = [m for m in scores if m in truth and m in measured]
    feasible = [m for m in models if min(measured[m].values()) <= budget]
    if not feasible:
        return None
    stage1 = sorted(((m, scores[m]) for m in models), key=lambda t: -t[1])
    return {
        "figure": figure,
        "budget": budget,
        "models": models,
        "feasible": set(feasible),
        "stage1": stage1,
        "scores": scores,
        "truth": truth,
        "predicted": predicted,
        # what measuring the whole catalog recommends: the feasible model of best stage-1 score
        "floor": max(feasible, key=lambda m: scores[m]),
    }


def _joint(case: dict, method: str, weights=None):
    from hf_spider.hardware.joint import Prediction, rank_jointly

    fig = BUDGET_OF[case["figure"]][0]
    preds = {
        m: [
            Prediction(m, v, {fig: value}, {fig: band})
            for v, (value, band) in case["predicted"].get(m, {}).items()
        ]
        for m in case["models"]
    }
    return rank_jointly(case["stage1"], preds, _constraints(case), method, weights=weights)


def learned_case(case: dict) -> dict | None:
    """The learned score's view of a case: the kept candidates' features (`joint.learned_features`,
    what `rank_jointly` scores), whether each fits (measured), and the label (the index of the
    model exhaustive measurement picks; None when the drop rule dropped it). None when nothing is
    predicted to fit (the learned score is not used then)."""
    from hf_spider.hardware.joint import LEARNED_FEATURES, learned_features

    joint = _joint(case, "learned", weights=np.zeros(len(LEARNED_FEATURES)))
    if joint.none_predicted_to_fit:
        return None
    dropped = set(joint.dropped)
    kept = [m for m, _ in case["stage1"] if m not in dropped]  # stage-1 order, as rank_jointly reads it
    truth, scores = case["truth"], case["scores"]
    return {
        "x": learned_features(joint, [m for m, _ in case["stage1"]], kept, _constraints(case)),
        "label": kept.index(case["floor"]) if case["floor"] in kept else None,
        "fits": np.asarray([m in case["feasible"] for m in kept]),
        "score": np.asarray([scores[m] for m in kept]),
        "truth": np.asarray([100.0 * truth[m] for m in kept]),
        "floor": 100.0 * truth[case["floor"]],
    }


def _constraints(case: dict):
    from hf_spider.hardware.constraints import Constraints

    return Constraints(**{BUDGET_OF[case["figure"]][1]: case["budget"]})


def _pick(chosen, fits, score):
    """What a constrained run recommends after measuring `chosen`: the best transfer `score` among
    those that `fits`; None when none does (a miss)."""
    fitting = [m for m in chosen if fits(m)]
    return max(fitting, key=score) if fitting else None


def evaluate(case: dict, top_k: int, weights=None) -> dict[str, dict]:
    """Every method on one case (`make_case`); `learned` with `weights` (skipped when None)."""
    scores, truth, stage1 = case["scores"], case["truth"], case["stage1"]
    best = max(truth[m] for m in case["feasible"])
    out = {}
    for method in METHODS:
        if method == "exhaustive":
            chosen = [m for m, _ in stage1]
        elif method == "learned" and weights is None:
            continue
        else:
            chosen = _joint(case, method, weights if method == "learned" else None).order[:top_k]
        pick = _pick(chosen, lambda m: m in case["feasible"], lambda m: scores[m])
        out[method] = {
            "measurements": len(chosen),
            "pick": pick,
            "regret": None if pick is None else 100.0 * (best - truth[pick]),
        }
    floor = out["exhaustive"]["pick"]
    for method in out:
        pick = out[method]["pick"]
        # the loss from measuring only the top-k, beside the stage-1 ranking's own (exhaustive)
        out[method]["vs_exhaustive"] = None if pick is None else 100.0 * (truth[floor] - truth[pick])
    out["best_feasible"] = {
        "accuracy": best,
        "n_feasible": len(case["feasible"]),
        "n_models": len(case["models"]),
    }
    return out


def _learned_outcome(c: dict, w: np.ndarray, top_k: int) -> float | None:
    """Points lost to exhaustive measurement by the learned order's top-k (None: a miss)."""
    from hf_spider.hardware.joint import learned_order

    # the product's order (`joint.learned_order`); case rows are the kept models in stage-1 order
    chosen = learned_order(list(range(len(c["x"]))), c["x"], w)[:top_k]
    pick = _pick(chosen, lambda i: c["fits"][i], lambda i: c["score"][i])
    return None if pick is None else c["floor"] - c["truth"][pick]


def _fit(cases: list[dict], l2: float) -> np.ndarray:
    from hf_spider.hardware.joint import fit_learned

    return fit_learned([(c["x"], c["label"]) for c in cases if c["label"] is not None], l2)


def select_l2(cases: list[dict], top_k: int) -> tuple[float, list[dict]]:
    """The L2 strength of `L2_GRID` with the fewest misses, then the least mean loss to exhaustive
    measurement, over a leave-one-target-out of `cases` (the largest on ties: the simplest)."""
    targets = sorted({c["target"] for c in cases})
    trials = []
    for l2 in L2_GRID:
        outcomes = []
        for t in targets:
            w = _fit([c for c in cases if c["target"] != t], l2)
            outcomes += [_learned_outcome(c, w, top_k) for c in cases if c["target"] == t]
        losses = [x for x in outcomes if x is not None]
        trials.append(
            {
                "l2": l2,
                "misses": outcomes.count(None),
                "mean_vs_exhaustive": float(np.mean(losses)) if losses else None,
            }
        )
    best = min(trials, key=lambda r: (r["misses"], round(r["mean_vs_exhaustive"] or 0.0, 9), -r["l2"]))
    return best["l2"], trials


def training_cases(archs: list[dict], stage1: dict[str, tuple[dict, dict]]) -> list[dict]:
    """The learned score's cases: every target x budget of `TRAIN_FIGURES`, both modalities."""
    out = []
    for figure in TRAIN_FIGURES:
        measured, predicted = figure_data(archs, figure)
        for modality, (scores, truth) in stage1.items():
            for budget in budget_grid(truth, measured).values():
                for target in sorted(scores):
                    case = make_case(scores[target], truth[target], measured, predicted, figure, budget)
                    c = None if case is None else learned_case(case)
                    if c is not None:
                        out.append({**c, "target": target, "modality": modality, "figure": figure})
    return out


def train_learned(cases: list[dict], top_k: int) -> dict:
    """The shipped weights: fitted on every case, the L2 strength by leave-one-target-out."""
    from hf_spider.hardware.joint import LEARNED_FEATURES, LEARNED_NONNEGATIVE, LEARNED_NONPOSITIVE

    l2, trials = select_l2(cases, top_k)
    w = _fit(cases, l2)
    return {
        "features": list(LEARNED_FEATURES),
        "weights": [round(float(x), 6) for x in w],
        "nonnegative": list(LEARNED_NONNEGATIVE),
        "nonpositive": list(LEARNED_NONPOSITIVE),
        "l2": l2,
        "model": "conditional logit over a case's kept candidates (softmax of features @ weights), "
        "label: the candidate exhaustive measurement recommends; mean log-likelihood - l2/2 |w|^2",
        "trained_on": {
            "cases": len(cases),
            "labelled": sum(c["label"] is not None for c in cases),
            "targets": sorted({c["target"] for c in cases}),
            "figures": list(TRAIN_FIGURES),
            "budgets_per_figure": len(QUANTILES),
            "top_k": top_k,
            "runs_file": str(RUNS.relative_to(REPO)),
            # the stage-1 scores trained on (`results/constrained_stage1_<modality>.json`)
            "stage1_digests": {m: cached_stage1(m)[2] for m in ("image", "text")},
            "l2_selection": trials,
        },
        "command": "python -m benchmarks.constrained --train-learned",
    }


def nested_learned(cases: list[dict], top_k: int, progress=None) -> dict[str, dict]:
    """{target: {"l2", "weights"}}: for each target, weights fitted on the other targets' cases
    with the L2 strength an inner leave-one-target-out over those targets picks."""
    out = {}
    targets = sorted({c["target"] for c in cases})
    for i, t in enumerate(targets):
        rest = [c for c in cases if c["target"] != t]
        l2, _ = select_l2(rest, top_k)
        out[t] = {"l2": l2, "weights": _fit(rest, l2).tolist()}
        if progress:
            progress(f"nested learned: {i + 1}/{len(targets)} targets held out")
    return out


_FIGURE_DATA: dict[tuple, tuple[dict, dict]] = {}


def figure_data(archs: list[dict], figure: str) -> tuple[dict, dict]:
    """(measured {model: {variant: figure}}, held-out predictions {model: {variant: (value, band)}}),
    memoised by the figure and the measurements it is computed from."""
    key = (figure, tuple((r["config_hash"], r["variant"], r.get(figure)) for r in archs))
    if key in _FIGURE_DATA:
        return _FIGURE_DATA[key]
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
    _FIGURE_DATA[key] = measured, predicted
    return measured, predicted


def budget_grid(truth: dict, measured: dict) -> dict[float, float]:
    """{quantile: budget}: log-spaced between the cheapest and the dearest catalog model's cheapest
    variant, ends left out (one model fits, or all do); a grid of measured values would put
    budgets exactly on figures shared by many models."""
    in_catalog = sorted({m for t in truth.values() for m in t} & set(measured))
    cheapest = [min(measured[m].values()) for m in in_catalog]
    grid = np.geomspace(min(cheapest), max(cheapest), len(QUANTILES) + 2)[1:-1]
    return {q: float(b) for q, b in zip(QUANTILES, grid, strict=True)}


def run(modality: str, figure: str, top_k: int, scores, truth, archs, learned: dict | None = None) -> dict:
    """Every method on every target x budget of `figure`; `learned`: {target: {"weights"}} (nested)."""
    measured, predicted = figure_data(archs, figure)
    in_catalog = sorted({m for t in truth.values() for m in t} & set(measured))
    budgets = budget_grid(truth, measured)
    rows = []
    for q, budget in budgets.items():
        for target in sorted(scores):
            case = make_case(scores[target], truth[target], measured, predicted, figure, budget)
            if case is None:
                continue
            weights = learned[target]["weights"] if learned and target in learned else None
            rows.append({"quantile": q, "budget": budget, "target": target, **evaluate(case, top_k, weights)})
    return {
        "modality": modality,
        "figure": figure,
        "top_k": top_k,
        "catalog_models": len(in_catalog),
        "architectures": len({r["config_hash"] for r in archs}),
        "budgets": {str(q): b for q, b in budgets.items()},
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
            if method in mine[0]:
                out.append({"quantile": q, "budget": mine[0]["budget"], **_stats(mine, method)})
    for method in METHODS:
        if rows and method in rows[0]:
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
        f"\n{result['modality']}, budget figure {result['figure']}, top-k {result['top_k']}: "
        f"{result['catalog_models']} catalog models on {result['architectures']} measured architectures"
    )
    print(
        "| budget | method | targets | misses | mean regret | max regret | within 2 | vs exhaustive | measurements |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")

    def fmt(value, pattern="{:.2f}"):
        return "-" if value is None else pattern.format(value)

    for s in result["summary"]:
        budget = "**all**" if s["quantile"] == "all" else f"{s['budget']:.3g} {UNIT[result['figure']]}"
        print(
            f"| {budget} | {s['method']} | {s['targets']} | {s['misses']} | {fmt(s['mean_regret'])} | "
            f"{fmt(s['max_regret'])} | {fmt(s['within_2'], '{:.0%}')} | {fmt(s['mean_vs_exhaustive'])} | "
            f"{s['measurements']} |"
        )


def plot(results: list[dict], path: Path) -> None:
    """Mean regret and misses per budget: two rows per budget figure, one column per modality."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

    modalities = list(dict.fromkeys(r["modality"] for r in results))
    figures = list(dict.fromkeys(r["figure"] for r in results))
    fig, axes = plt.subplots(
        2 * len(figures),
        len(modalities),
        figsize=(5.4 * len(modalities), 3.2 * 2 * len(figures)),
        squeeze=False,
    )
    styles = dict(zip(METHODS, ("o-", "s-", "^-", "d--", "k:"), strict=True))
    for result in results:
        row, col = 2 * figures.index(result["figure"]), modalities.index(result["modality"])
        top, bottom = axes[row][col], axes[row + 1][col]
        for method in METHODS:
            rows = [s for s in result["summary"] if s["method"] == method and s["quantile"] != "all"]
            if not rows:
                continue
            xs = [s["budget"] for s in rows]
            ys = [s["mean_regret"] if s["mean_regret"] is not None else np.nan for s in rows]
            top.plot(xs, ys, styles[method], label=method)
            bottom.plot(xs, [s["misses"] for s in rows], styles[method], label=method)
        top.axhline(2.0, color="grey", lw=0.8, ls="--")
        top.set_ylabel("mean regret (accuracy points)")
        top.set_title(
            f"{result['modality']}, {result['figure']}: {result['catalog_models']} models, top-{result['top_k']}"
        )
        top.legend(fontsize=8)
        bottom.set_ylabel("misses (targets with no pick)")
        bottom.set_xlabel(f"budget ({result['figure']}, {UNIT[result['figure']]})")
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
    fig.suptitle("Under a device budget: regret vs exhaustive measurement, and misses (lower is better)")
    fig.tight_layout(rect=(0, 0, 1, 0.985))
    fig.savefig(path, dpi=85)


def default_decision(results: list[dict]) -> dict:
    """The project's rule for the learned part: the default only if nested cross-validation says it
    is not worse than the fixed rule, here on the trained budgets (`TRAIN_FIGURES`), pooled over
    targets: no more misses and no larger mean loss to exhaustive measurement than `fused`."""
    pooled = {m: {"misses": 0, "losses": []} for m in ("fused", "learned")}
    per = []
    for result in results:
        if result["figure"] not in TRAIN_FIGURES:
            continue
        for method in pooled:
            rows = [r[method] for r in result["rows"] if method in r]
            pooled[method]["misses"] += sum(r["pick"] is None for r in rows)
            pooled[method]["losses"] += [r["vs_exhaustive"] for r in rows if r["vs_exhaustive"] is not None]
        per.append({"modality": result["modality"], "figure": result["figure"]})
    stats = {
        m: {"misses": v["misses"], "mean_vs_exhaustive": float(np.mean(v["losses"])) if v["losses"] else None}
        for m, v in pooled.items()
    }
    ok = stats["learned"]["misses"] <= stats["fused"]["misses"] and (
        stats["learned"]["mean_vs_exhaustive"] or 0.0
    ) <= (stats["fused"]["mean_vs_exhaustive"] or 0.0)
    verdict = (
        f"learned {stats['learned']['misses']} misses, {stats['learned']['mean_vs_exhaustive']:.3f} points to "
        f"exhaustive; fused {stats['fused']['misses']}, {stats['fused']['mean_vs_exhaustive']:.3f}: "
        + (
            "learned is not worse, it may be the default"
            if ok
            else "learned is worse, fused stays the default"
        )
    )
    return {"pooled": stats, "over": per, "learned_not_worse": ok, "verdict": verdict}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--modality", nargs="+", default=["image", "text"], choices=["image", "text"])
    parser.add_argument("--figure", nargs="+", default=list(BUDGET_OF), choices=list(BUDGET_OF))
    parser.add_argument(
        "--train-learned",
        action="store_true",
        help=f"fit the shipped weights of --joint learned and write {LEARNED_FILE.relative_to(REPO)}",
    )
    parser.add_argument("--no-learned", action="store_true", help="skip the nested fits of the learned score")
    args = parser.parse_args(argv)
    started = time.time()
    archs = measured_architectures()
    stage1 = {m: lodo_scores(m) for m in ("image", "text")}  # the learned score trains on both
    if args.train_learned:
        trained = train_learned(training_cases(archs, stage1), args.top_k)
        LEARNED_FILE.write_text(json.dumps(trained, indent=1) + "\n")
        print(f"weights {trained['weights']} (l2 {trained['l2']}) written: {LEARNED_FILE.relative_to(REPO)}")
        return 0
    learned, decision = None, None
    if not args.no_learned:
        cases = training_cases(archs, stage1)
        learned = nested_learned(cases, args.top_k, progress=lambda note: print(note, file=sys.stderr))
        shipped = train_learned(cases, args.top_k)
    results = []
    for modality in args.modality:
        scores, truth = stage1[modality]
        for figure in args.figure:
            result = run(modality, figure, args.top_k, scores, truth, archs, learned)
            print_table(result)
            results.append(result)
    if learned is not None:
        decision = default_decision(results)
        decision["nested_weights"] = learned
        saved = json.loads(LEARNED_FILE.read_text()) if LEARNED_FILE.exists() else {}
        decision["shipped_weights"] = shipped["weights"]
        decision["shipped_file_matches"] = saved.get("weights") == shipped["weights"]
        print(f"\nlearned vs fused (nested, {', '.join(TRAIN_FIGURES)}): {decision['verdict']}")
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        "load_average": os.getloadavg(),
        "seconds": round(time.time() - started, 1),
        "runs_file": str(RUNS.relative_to(REPO)),
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "constrained.json").write_text(
        json.dumps({"meta": meta, "learned": decision, "results": results}, indent=1)
    )
    plotted = [f for f in args.figure if f in TRAIN_FIGURES] or args.figure[:1]  # wall latency: tables only
    plot([r for r in results if r["figure"] in plotted], REPO / "benchmarks" / "constrained.png")
    print(
        f"\n{meta}\nwritten: benchmarks/results/constrained.json, benchmarks/constrained.png", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
