"""`hf-spider eval ranking`: LODO (and cold-start) evaluation of the ranker against baselines.

For each test target the ranker is trained on the records of the other targets only and ranks
every model that has a record on the test target. Metrics follow `../shared/BENCHMARKS.md`:
weighted Kendall tau in both conventions (`rank=True`, `rank=None`), top-1 regret in accuracy
points and hit@3. Cold start also removes every record of 20% of the models (5 folds) from
training; those models are ranked from their cards alone; figures are the mean over the folds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import weightedtau

from hf_spider.errors import UserInputError
from hf_spider.ranker import cold as cold_prior
from hf_spider.ranker import training as T
from hf_spider.ranker.model import RankerConfig
from hf_spider.ranker.records import Records
from hf_spider.ranker.tokens import record_tokens

logger = logging.getLogger("hf_spider.ranker")

METHODS = (
    "spider",
    "spider_fused",
    "random",
    "params",
    "popularity",
    "collaborative",
    "logme",
    "reg_h_score",
)
METRICS = ("tau_w_rank_true", "tau_w_rank_none", "top1_regret", "hit_at_3", "n_models")
COLD_FOLDS = 5
COLD_MAX_STEPS = 50  # largest step count the per-fold inner CV of cold start tries


def ranking_metrics(gt: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """tau_w (both conventions), top-1 regret (accuracy points), hit@3, number of models."""
    gt = np.asarray(gt, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    best = gt.max()
    return {
        "tau_w_rank_true": float(weightedtau(gt, scores).statistic),
        "tau_w_rank_none": float(weightedtau(gt, scores, rank=None).statistic),
        "top1_regret": float(100.0 * (best - gt[order[0]])),
        "hit_at_3": float(best in set(gt[order[:3]])),
        "n_models": len(gt),
    }


def _mean(per_target: dict[str, dict[str, dict[str, float]]], targets: Iterable[str]) -> dict:
    out: dict[str, dict[str, float]] = {}
    rows = [per_target[t] for t in targets if t in per_target]
    methods = sorted({m for r in rows for m in r}, key=lambda m: METHODS.index(m) if m in METHODS else 99)
    for method in methods:
        vals = [r[method] for r in rows if method in r]
        out[method] = {k: float(np.nanmean([v[k] for v in vals])) for k in METRICS}
        out[method]["n_targets"] = len(vals)
    return out


def evaluate_ranking(
    records: Records,
    test_targets: list[str],
    *,
    cold_start: bool = False,
    seed: int = 0,
    config: RankerConfig | None = None,
    tune: bool = True,
    holdout_all: bool = False,
    catalog: Any = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """LODO evaluation; returns `{"targets": {T: {method: {metric: value}}}, "mean": {...}, ...}`.

    Each test target is left out of its own training (leave one dataset out); the other targets,
    test targets included, are training data. `holdout_all` also keeps every other test target out.
    """
    config = config or RankerConfig()
    known = set(records.perf["target"])
    unknown = [t for t in test_targets if t not in known]
    if unknown:
        raise UserInputError(
            f"no records for test target(s) {unknown}", hint=f"choose among: {', '.join(sorted(known))}"
        )
    tokens, sources = record_tokens(records.models, catalog=catalog)
    missing = sorted(set(records.perf["model"]) - set(tokens))
    tokens.update(fallback_tokens(records, missing))
    results: dict[str, dict[str, dict[str, float]]] = {}
    chosen: dict[str, dict] = {}
    started = time.perf_counter()
    for target in test_targets:
        modality = records.modality_of(target)
        gt_rows = records.perf[records.perf["target"] == target]
        models = list(gt_rows["model"])
        gt = gt_rows["accuracy"].to_numpy()
        train_targets = [
            t
            for t in records.targets[(records.targets["modality"] == modality) & ~records.targets["failed"]][
                "target"
            ]
            if t != target and not (holdout_all and t in test_targets)
        ]
        folds = _cold_folds(models, seed) if cold_start else [[]]
        per_fold: list[dict[str, dict[str, float]]] = []
        for fold_index, cold in enumerate(folds):
            if progress:
                progress(f"{target}" + (f" fold {fold_index + 1}/{len(folds)}" if cold_start else ""))
            slot = chosen.setdefault(target, {}).setdefault(f"fold{fold_index}" if cold_start else "lodo", {})
            # the cold prior's kind is chosen once on this fold's training set (cold.chosen_for)
            with cold_prior.chosen_for(
                records, {modality: train_targets}, tokens, exclude_models=cold
            ) as picked:
                if modality in picked:
                    slot["cold_prior"] = picked[modality]["choice"]
                per_fold.append(
                    _evaluate_one(
                        records,
                        target,
                        models,
                        gt,
                        train_targets,
                        tokens,
                        set(cold),
                        config,
                        seed + fold_index,
                        tune,
                        slot,
                    )
                )
        results[target] = {
            m: {k: float(np.mean([f[m][k] for f in per_fold])) for k in METRICS} for m in per_fold[0]
        }
    flagged = [t for t in test_targets if bool(records.targets.set_index("target")["failed"].get(t, False))]
    usable = [t for t in test_targets if t not in flagged]
    counted = usable or test_targets
    every = set.union(*(set(results[t]) for t in counted)) if counted else set()
    common = [t for t in counted if set(results[t]) == every]
    return {
        "targets": results,
        "mean": _mean(results, counted),
        # the same means over only the targets where every method has a figure (LogME and
        # reg. H-score exist only where the score files have them): the like-for-like comparison
        "mean_common": {"targets": common, "mean": _mean(results, common)},
        "protocol": {
            "cold_start": cold_start,
            "holdout": "all test targets" if holdout_all else "the test target (LODO)",
            "cold_folds": COLD_FOLDS if cold_start else 0,
            "seed": seed,
            "config": config.to_dict(),
            "hyperparameters": (
                "prior (mean/median percentile) by leave-one-target-out over training targets; "
                + "training steps by inner CV over training targets"
                + (f" (cold start: per fold, up to {COLD_MAX_STEPS} steps)" if cold_start else "")
            )
            if tune
            else "fixed",
            "chosen": chosen,
            "token_sources": sources,
            "targets_left_out_of_mean": flagged if usable else [],
            "seconds": round(time.perf_counter() - started, 1),
        },
        "report": records.report,
    }


def fallback_tokens(records: Records, models: list[str]):
    """Bare tokens (id and modality only) for record models that neither catalog nor config know."""
    from hf_spider.catalog._token import ModelToken

    out = {}
    for m in models:
        modality = records.perf.loc[records.perf["model"] == m, "modality"].iloc[0]
        out[m] = ModelToken(model_id=m, modality=modality)
    return out


def _cold_folds(models: list[str], seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    shuffled = list(rng.permutation(sorted(models)))
    return [shuffled[i::COLD_FOLDS] for i in range(COLD_FOLDS)]


def _evaluate_one(
    records: Records,
    target: str,
    models: list[str],
    gt: np.ndarray,
    train_targets: list[str],
    tokens: dict,
    cold: set[str],
    config: RankerConfig,
    seed: int,
    tune: bool,
    chosen: dict,
) -> dict[str, dict[str, float]]:
    modality = records.modality_of(target)
    if tune:
        choice, _ = T.select_prior(records, train_targets, exclude_models=cold, tokens=tokens)
        weight, _ = T.select_stage2_weight(records, train_targets, choice, exclude_models=cold, tokens=tokens)
        if weight is not None:
            choice["stage2_weight"] = weight
        config = RankerConfig.from_dict({**config.to_dict(), **choice})
        # cold start: one inner CV per fold (the fold's models hidden there too), over the step
        # counts up to COLD_MAX_STEPS only, to bound its cost
        grid = [s for s in config.step_grid if not cold or s <= COLD_MAX_STEPS]
        if grid:
            inner = RankerConfig.from_dict({**config.to_dict(), "step_grid": grid})
            steps, _ = T.select_steps(records, train_targets, tokens, inner, seed=seed, exclude_models=cold)
            config = RankerConfig.from_dict({**config.to_dict(), "steps": steps})
    chosen.update(
        prior=config.prior,
        card_shrink=config.card_shrink,
        stage2_weight=config.stage2_weight,
        steps=config.steps,
    )
    contexts = T.training_contexts(
        records,
        modality,
        train_targets,
        tokens,
        exclude_models=cold,
        prior=config.prior,
        card_shrink=config.card_shrink,
    )
    ensemble = T.fit(contexts, config, seed=seed)
    ctx = T.target_context(
        records,
        target,
        models,
        train_targets,
        tokens,
        exclude_models=cold,
        prior=config.prior,
        card_shrink=config.card_shrink,
    )
    pct = _train_percentiles(records, modality, train_targets, cold)
    scores = T._scores_of(records, target)
    out: dict[str, dict[str, float]] = {}
    out["spider"] = ranking_metrics(gt, T.score_context(ensemble, ctx, use_features=False))
    if scores:
        out["spider_fused"] = ranking_metrics(gt, T.fused_scores(ensemble, ctx, config.stage2_weight))
    rng = np.random.default_rng(seed)
    out["random"] = ranking_metrics(gt, rng.random(len(models)))
    params = np.array([tokens[m].num_parameters or np.nan for m in models], dtype=np.float64)
    out["params"] = ranking_metrics(gt, _fill(np.log(params)))
    downloads = np.array(
        [tokens[m].downloads if tokens[m].downloads is not None else np.nan for m in models], dtype=float
    )
    if np.isfinite(downloads).any():
        out["popularity"] = ranking_metrics(gt, _fill(np.log1p(downloads)))
    collab = pct.mean(axis=1).reindex(models).to_numpy(dtype=np.float64)
    out["collaborative"] = ranking_metrics(gt, _fill(collab, 0.5))
    for metric in ("logme", "reg_h_score"):
        if metric in scores:
            s = np.array([scores[metric].get(m, np.nan) for m in models], dtype=np.float64)
            out[metric] = ranking_metrics(gt, _fill(s))
    return out


def _train_percentiles(
    records: Records, modality: str, train_targets: list[str], cold: set[str]
) -> pd.DataFrame:
    ok = records.perf[(records.perf["modality"] == modality) & ~records.perf["failed"]]
    ok = ok[ok["target"].isin(set(train_targets)) & ~ok["model"].isin(cold)]
    return T.percentiles(ok.pivot_table(index="model", columns="target", values="accuracy"))


def _fill(values: np.ndarray, default: float | None = None) -> np.ndarray:
    """Missing values get a neutral score: `default`, else the median of the known ones."""
    values = np.asarray(values, dtype=np.float64).copy()
    known = np.isfinite(values)
    fill = default if default is not None else (float(np.median(values[known])) if known.any() else 0.0)
    values[~known] = fill
    return values


def results_table(result: dict) -> pd.DataFrame:
    """Flat table (target, method, metrics...) of an evaluation result, means last."""
    rows = []
    for target, methods in result["targets"].items():
        for method, metrics in methods.items():
            rows.append({"target": target, "method": method, **metrics})
    for method, metrics in result["mean"].items():
        rows.append({"target": "MEAN", "method": method, **metrics})
    return pd.DataFrame(rows)
