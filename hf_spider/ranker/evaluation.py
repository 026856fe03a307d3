"""`hf-spider eval ranking`: leave-one-dataset-out evaluation of the ranker beside its baselines.

For each test dataset the ranker is built from the records of the other datasets only — its parts
chosen by cross-validation over those datasets alone (nested cross-validation, `selection`) — and
ranks the dataset's models. Metrics follow `../shared/BENCHMARKS.md`: weighted Kendall tau in both
conventions (`rank=True`, `rank=None`), top-1 regret in accuracy points and hit@3; means over
datasets, plain and weighted by each dataset's accuracy gap (max - mean).

Protocols:
- `lodo`: ground truth = the records' accuracy (test accuracy where recorded, repeats averaged);
  every model with a record on the dataset is ranked.
- `transfergraph`: TransferGraph's way (`../shared/data/README.md`): ground truth = a model's best
  full fine-tune evaluation accuracy (LoRA runs out), the models are those of
  `transfergraph_predictions.csv` for the dataset, and every prior and the ranker learn from that
  ground truth too.
`cold_start` also hides every record of 20% of the models (5 folds) from training; those models
are ranked from their cards alone; figures are the mean over the folds. `cold_start="families"`
hides whole model families instead (every model of a family in the same fold, folds balanced by
model count): the models a catalog of architectures the records never saw would bring, whose
cards share no family or model type with any model that has history.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import weightedtau

from hf_spider.errors import UserInputError
from hf_spider.ranker import baselines as B
from hf_spider.ranker.model import RankerConfig
from hf_spider.ranker.records import Records

logger = logging.getLogger("hf_spider.ranker")

PROTOCOLS = ("lodo", "transfergraph")
SPIDER_METHODS = ("spider", "spider_fused", "spider_rerank")
# `spider_rerank`: the order `hf-spider recommend` shows — stage 1's first RERANK_K (its default
# --top-k) re-ranked by the fused score, then the rest in stage-1 order (`probe.rerank`)
RERANK_K = 5
METHODS = (
    *SPIDER_METHODS,
    "transfergraph",
    "static",
    "collaborative",
    "params",
    "upstream",
    "popularity",
    "logme",
    "reg_h_score",
    "random",
)
METRICS = ("tau_w_rank_true", "tau_w_rank_none", "top1_regret", "hit_at_3", "n_models")
COLD_FOLDS = 5
FEW_MODELS = 6  # a test dataset with fewer models to rank is scored, and said to be coarse
# why a method asked for may have no figure at all (`evaluate_ranking` notes it)
NO_FIGURE = {
    "logme": "the records' transferability_scores.csv has no LogME score for the test datasets",
    "reg_h_score": "the records' transferability_scores.csv has no regularised H-score for the test datasets",
    "transfergraph": "no transfergraph_predictions.csv for the test datasets",
    "params": "no parameter count in model_config.csv or the catalog",
    "upstream": "no card or model_config.csv reports an upstream accuracy",
    "static": "it needs other datasets with records of the same models",
    "collaborative": "it needs other datasets with records of the same models",
    "spider_fused": "stage 2 needs transferability scores for the test datasets",
    "spider_rerank": "stage 2 needs transferability scores for the test datasets",
    "popularity": "no download counts in model_config.csv or the catalog",
    "": "no scores for the test datasets",
}
COLD_BY = ("models", "families")  # what a cold-start fold hides: random models, or whole families
COLD_STEP_GRID = (0, 50)  # step counts the inner CV of each cold fold tries, to bound its cost
# where a baseline has no figure for a model: this score, else the median of the others
FILL = {"collaborative": 0.5}


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


@dataclass
class _Job:
    """One outer fold of the evaluation (picklable: it may run in a worker process)."""

    records: Records
    dataset: str
    models: list[str]
    gt: np.ndarray
    train_datasets: list[str]
    cold: list[str]
    config: RankerConfig
    seed: int
    tune: bool
    methods: tuple[str, ...]
    catalog: Any = None
    predictions: pd.DataFrame | None = None
    tokens: dict = field(default_factory=dict)


def evaluate_ranking(
    records: Records,
    test_datasets: Iterable[str] | None = None,
    *,
    protocol: str = "lodo",
    cold_start: bool | str = False,
    seed: int = 0,
    config: RankerConfig | None = None,
    tune: bool = True,
    holdout_all: bool = False,
    catalog: Any = None,
    methods: Iterable[str] | None = None,
    workers: int = 1,
    task_cards: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Evaluate the ranker and the baselines, one test dataset at a time.

    Args:
        records: cleaned records (`load_records`); their `predictions` feed the `transfergraph`
            row and, under `protocol="transfergraph"`, the model sets.
        test_datasets: fine-tuning datasets to hold out in turn (default: under `lodo` every
            usable dataset, under `transfergraph` those with TransferGraph predictions).
        protocol: `lodo` or `transfergraph` (module docstring).
        cold_start: also hide every record of 20% of the models (5 folds); `"families"`: of whole
            model families instead (`COLD_BY`; True is `"models"`).
        holdout_all: train without any test dataset (default: leave only the evaluated one out).
        methods: a subset of `METHODS` (default: all); the baselines alone are fast.
        workers: processes the test datasets are spread over (results do not depend on it).
        task_cards: a folder of dataset cards, `<dataset with "/" as "__">/README.md`
            (`task_cards`): every dataset's metadata, held out or not, carries its card's label
            names, task categories and description; `protocol.task_cards` lists those without one.

    Returns:
        `{"datasets": {D: {method: {metric: value}}}, "mean": ..., "mean_weighted": ...,
        "mean_common": ..., "predictions": [rows], "protocol": {...}, "report": [...]}`.
    """
    from hf_spider.ranker.tokens import tokens_for

    if protocol not in PROTOCOLS:
        raise UserInputError(f"unknown protocol {protocol!r}", hint=f"choose among: {', '.join(PROTOCOLS)}")
    asked = methods is not None  # methods named by the caller: each one without a figure is noted
    methods = tuple(METHODS if methods is None else methods)
    unknown_methods = [m for m in methods if m not in METHODS and m not in B.BASELINES]
    if unknown_methods:
        raise UserInputError(
            f"unknown method(s) {unknown_methods}", hint=f"choose among: {', '.join(METHODS)}"
        )
    cold_by = _cold_by(cold_start)
    config = config or RankerConfig()
    cards_info = None
    if task_cards is not None:
        from hf_spider.ranker.task_cards import read_task_cards

        cards, missing = read_task_cards(task_cards, records.dataset_names)
        records = records.with_task_cards(cards)
        cards_info = {"dir": str(task_cards), "with_card": sorted(cards), "without_card": missing}
    predictions = records.predictions if len(records.predictions) else None
    if protocol == "transfergraph":
        if predictions is None:
            raise UserInputError(
                "the transfergraph protocol needs transfergraph_predictions.csv in a --data folder",
                hint="point --data at ../shared/data/transfergraph/image (or text)",
            )
        records = records.with_ground_truth("best_eval")
    known = set(records.perf["dataset"])
    if not known:
        dropped = [line for line in records.report if line.startswith("dropped")]
        raise UserInputError(
            "no usable record rows in --data" + (f" ({'; '.join(dropped)})" if dropped else ""),
            hint="records.csv needs a model, a finetuned_dataset and an accuracy (fraction or percent) per row",
        )
    if test_datasets is None:
        if protocol == "transfergraph":
            test_datasets = sorted(set(predictions["dataset"]) & known)
        else:
            test_datasets = sorted(records.datasets[~records.datasets["failed"]]["dataset"])
    test_datasets = list(test_datasets)
    unknown = [t for t in test_datasets if t not in known]
    if unknown:
        raise UserInputError(
            f"no records for test dataset(s) {unknown}", hint=f"choose among: {', '.join(sorted(known))}"
        )
    if not test_datasets:
        raise UserInputError("no test dataset", hint="pass --test-datasets D1,D2,...")
    notes: list[str] = []
    truths = _rankable(records, test_datasets, protocol, predictions, notes)
    test_datasets = list(truths)
    tokens, sources = tokens_for(records, catalog=catalog)
    started = time.perf_counter()
    jobs: list[_Job] = []
    fold_counts: list[int] = []  # cold folds run per test dataset (families: fewer where it has few)
    for dataset, (models, gt) in truths.items():
        modality = records.modality_of(dataset)
        usable = records.datasets[(records.datasets["modality"] == modality) & ~records.datasets["failed"]]
        train = [t for t in usable["dataset"] if t != dataset and not (holdout_all and t in test_datasets)]
        folds = _cold_folds(models, seed, cold_by, tokens, set(records.perf["model"])) if cold_by else [[]]
        fold_counts.append(len(folds))
        if not train:
            notes.append(
                f"{dataset}: no other {modality} dataset to learn from; spider's scores are all equal"
            )
        if cold_by == "families":
            _check_family_known(dataset, models, tokens)
            _check_family_folds(records, dataset, train, folds, tokens)
            notes.append(f"{dataset}: families hidden per fold: {_fold_families(folds, models, tokens)}")
            if len(folds) < COLD_FOLDS:
                notes.append(
                    f"{dataset}: {len(folds)} cold fold(s): its models come from fewer families than {COLD_FOLDS}"
                )
        for i, cold in enumerate(folds):
            jobs.append(
                _Job(
                    records,
                    dataset,
                    models,
                    gt,
                    train,
                    cold,
                    config,
                    seed + i,
                    tune,
                    methods,
                    catalog,
                    predictions,
                    {m: tokens[m] for m in set(models) | set(records.perf["model"]) if m in tokens},
                )
            )
    outcomes = _run(jobs, workers, progress)
    results: dict[str, dict[str, dict[str, float]]] = {}
    chosen: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for dataset in test_datasets:
        mine = [(j, o) for j, o in zip(jobs, outcomes, strict=True) if j.dataset == dataset]
        per_fold = [o["metrics"] for _, o in mine]
        names = [m for m in per_fold[0] if all(m in f for f in per_fold)]
        results[dataset] = {
            m: {k: float(np.mean([f[m][k] for f in per_fold])) for k in METRICS} for m in names
        }
        parts = [o["chosen"] for _, o in mine if o["chosen"]]
        if parts:
            chosen[dataset] = parts[0] if not cold_by else {f"fold{i}": p for i, p in enumerate(parts)}
        for i, (job, o) in enumerate(mine):
            hidden = set(job.cold)
            for method, scores in o["scores"].items():
                for model, score in zip(job.models, scores, strict=True):
                    row = {"target": dataset, "model": model, "method": method, "score": float(score)}
                    if cold_by:
                        row["fold"] = i
                        row["cold"] = model in hidden
                    rows.append(row)
    failed = records.datasets.set_index("dataset")["failed"]
    flagged = [t for t in test_datasets if bool(failed.get(t, False))]
    counted = [t for t in test_datasets if t not in flagged] or test_datasets
    # a dataset's weight in the weighted mean: max - mean accuracy of its evaluated models
    gaps = {t: float(np.max(truths[t][1]) - np.mean(truths[t][1])) for t in counted}
    every = set.union(*(set(results[t]) for t in counted)) if counted else set()
    common = [t for t in counted if set(results[t]) == every]
    for method in methods if asked else ():  # asked for, scored nothing: said, not silently absent
        if method not in every:
            notes.append(f"{method}: no figure on any test dataset ({NO_FIGURE.get(method, NO_FIGURE[''])})")
    return {
        "datasets": results,
        "mean": _mean(results, counted),
        "mean_weighted": _mean(results, counted, gaps),
        # the same means over only the datasets where every method has a figure (LogME and
        # reg. H-score exist only where the score files have them): the like-for-like comparison
        "mean_common": {"datasets": common, "mean": _mean(results, common)},
        "parts": _parts_summary(chosen),
        "predictions": rows,
        "protocol": {
            "name": protocol,
            "ground_truth": "best full fine-tune eval_accuracy"
            if protocol == "transfergraph"
            else "records accuracy (test accuracy where recorded, repeats averaged)",
            "cold_start": bool(cold_by),
            "cold_by": cold_by,
            "holdout": "all test datasets" if holdout_all else "the test dataset (LODO)",
            "cold_folds": max(fold_counts, default=0) if cold_by else 0,
            "seed": seed,
            "config": config.to_dict(),
            "selection": (
                "nested: prior, stage-2 weight and learned residual (steps, 0 = prior alone) chosen "
                "by cross-validation over each fold's training datasets only"
                + (f"; cold folds try steps {list(COLD_STEP_GRID)}" if cold_by else "")
            )
            if tune
            else "fixed configuration",
            "chosen": chosen,
            "gap_weights": {t: round(g, 4) for t, g in gaps.items()},
            "token_sources": sources,
            "datasets_left_out_of_mean": flagged if counted != test_datasets else [],
            "notes": notes,
            "task_cards": cards_info,
            "workers": workers,
            "seconds": round(time.perf_counter() - started, 1),
        },
        "report": records.report,
    }


def _rankable(
    records: Records, datasets: list[str], protocol: str, predictions: pd.DataFrame | None, notes: list[str]
) -> dict[str, tuple[list[str], np.ndarray]]:
    """`{dataset: (models, ground truth)}` (`_ground_truth`) of `datasets`, less those whose models
    cannot be ordered (fewer than two, or all of one accuracy): no ranking can be scored there, and
    one NaN would make every mean NaN. Each left out is said in `notes`; UserInputError when none
    is left."""
    keep = {}
    for dataset in datasets:
        models, gt = _ground_truth(records, dataset, protocol, predictions, notes)
        known = gt[np.isfinite(gt)]
        if len(known) >= 2 and np.ptp(known) > 0:
            keep[dataset] = models, gt
            if len(known) < FEW_MODELS:
                notes.append(
                    f"{dataset}: only {len(known)} models to rank; its tau_w moves in steps this coarse "
                    f"and hit@3 is near certain (counted in the means all the same)"
                )
        else:
            why = (
                f"{len(known)} model(s)"
                if len(known) < 2
                else f"all {len(known)} models at accuracy {known[0]:.4g}"
            )
            notes.append(f"{dataset}: left out, nothing to rank ({why})")
    if not keep:
        raise UserInputError(
            "no test dataset has two models with different accuracies: nothing to rank",
            hint="check the records' accuracy columns, or pass other --test-datasets",
        )
    return keep


def _ground_truth(
    records: Records, dataset: str, protocol: str, predictions: pd.DataFrame | None, notes: list[str]
) -> tuple[list[str], np.ndarray]:
    rows = records.perf[records.perf["dataset"] == dataset]
    if protocol == "transfergraph":
        wanted = predictions[predictions["dataset"] == dataset]["model"].drop_duplicates()
        if wanted.empty:
            raise UserInputError(
                f"no TransferGraph predictions for {dataset!r}",
                hint=f"choose among: {', '.join(sorted(set(predictions['dataset'])))}",
            )
        acc = rows.set_index("model")["accuracy"]
        missing = sorted(set(wanted) - set(acc.index))
        if missing:
            notes.append(
                f"{dataset}: {len(missing)} predicted models have no full fine-tune record, left out"
            )
        models = [m for m in wanted if m in acc.index]
        return models, acc.reindex(models).to_numpy(dtype=np.float64)
    return list(rows["model"]), rows["accuracy"].to_numpy(dtype=np.float64)


def _run(jobs: list[_Job], workers: int, progress: Callable[[str], None] | None) -> list[dict]:
    if workers <= 1 or len(jobs) <= 1:
        out = []
        for i, job in enumerate(jobs):
            if progress:
                progress(f"{job.dataset} ({i + 1}/{len(jobs)})")
            out.append(_evaluate_job(job))
        return out
    import multiprocessing

    ctx = multiprocessing.get_context("fork" if os.name == "posix" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(_evaluate_job, job) for job in jobs]
        out = []
        for i, future in enumerate(futures):
            out.append(future.result())
            if progress:
                progress(f"{jobs[i].dataset} ({i + 1}/{len(jobs)})")
        return out


def _evaluate_job(job: _Job) -> dict[str, Any]:
    """Scores and metrics of every method on one outer fold, on one thread (torch and BLAS: on a
    shared machine more threads per fold make it slower, and parallelism is over folds)."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    with threadpool_limits(1):
        return _evaluate_fold(job)


def _evaluate_fold(job: _Job) -> dict[str, Any]:
    fold = B.Fold(
        job.records,
        job.dataset,
        job.models,
        job.train_datasets,
        job.tokens,
        set(job.cold),
        job.seed,
        job.predictions,
    )
    scores: dict[str, np.ndarray] = {}
    chosen: dict[str, Any] = {}
    if any(m in job.methods for m in SPIDER_METHODS):
        from hf_spider.ranker import cold

        modality = job.records.modality_of(job.dataset)
        # the cold prior's kind is chosen once on this fold's training set (cold.chosen_for)
        with cold.chosen_for(
            job.records, {modality: job.train_datasets}, job.tokens, exclude_models=set(job.cold)
        ) as picked:
            if modality in picked:
                chosen["cold_prior"] = picked[modality]["choice"]
                # where a model without history sits: by its card, or at the others' median
                placed = picked[modality].get("places_cold", True)
                chosen["cold_placement"] = "card prior" if placed else "median"
            scores.update(_spider(job, chosen))
    for name in job.methods:
        if name in SPIDER_METHODS:
            continue
        values = B.BASELINES[name](fold)
        if values is not None and np.isfinite(values).any():
            scores[name] = B.fill_missing(values, FILL.get(name))
    metrics = {m: ranking_metrics(job.gt, s) for m, s in scores.items()}
    return {"metrics": metrics, "scores": scores, "chosen": chosen}


def _spider(job: _Job, chosen: dict[str, Any]) -> dict[str, np.ndarray]:
    """The ranker built from the fold's training datasets only, its parts chosen by nested CV."""
    from hf_spider.ranker.inference import dataset_context, estimator_consensus, fuse, score_context
    from hf_spider.ranker.selection import describe, select_parts
    from hf_spider.ranker.training import fit, training_contexts

    records, cold, config = job.records, set(job.cold), job.config
    if job.tune:
        grid = COLD_STEP_GRID if cold else None
        config, parts = select_parts(
            records,
            job.train_datasets,
            job.tokens,
            config,
            seed=job.seed,
            exclude_models=cold,
            step_grid=grid,
            # stage 2 is chosen for this fold's candidates, the hidden share of them without history
            cold_share=len(cold & set(job.models)) / max(len(job.models), 1),
        )
        chosen.update(parts)
    else:
        chosen.update(describe(config))
    model = None
    if config.steps > 0:
        contexts = training_contexts(
            records,
            records.modality_of(job.dataset),
            job.train_datasets,
            job.tokens,
            exclude_models=cold,
            prior=config.prior,
            card_shrink=config.card_shrink,
            match_bonus=config.match_bonus,
        )
        model = fit(contexts, config, seed=job.seed)
    ctx = dataset_context(
        records,
        job.dataset,
        job.models,
        job.train_datasets,
        job.tokens,
        exclude_models=cold,
        prior=config.prior,
        card_shrink=config.card_shrink,
        match_bonus=config.match_bonus,
    )
    out = {}
    stage1 = score_context(model, ctx, use_features=False)
    if "spider" in job.methods:
        out["spider"] = stage1
    if ctx.feats.shape[1] and chosen.get("stage2_weight") is not None:
        # stage 2 as `inference.fused_scores` computes it, from the stage-1 scores above
        consensus = estimator_consensus(ctx, config.stage2_estimators)
        if "spider_fused" in job.methods:
            out["spider_fused"] = fuse(stage1, consensus, config.stage2_weight)
        if "spider_rerank" in job.methods:
            out["spider_rerank"] = rerank_scores(stage1, consensus, config.stage2_weight, RERANK_K)
    return out


def rerank_scores(stage1: np.ndarray, consensus: np.ndarray, weight: float, k: int) -> np.ndarray:
    """Scores that order the candidates as `recommend` does (`probe.rerank`): stage 1's first `k`,
    fused among themselves with the estimators' `consensus` by `weight` (`inference.fuse`), above
    the rest in stage-1 order. (`recommend` also takes the consensus's z-scores among those `k`;
    here they are the dataset's, over all its models: the same order for a single estimator.)"""
    from scipy.stats import rankdata

    from hf_spider.ranker.inference import fuse

    stage1 = np.asarray(stage1, dtype=np.float64)
    out = rankdata(stage1) / max(len(stage1), 1)
    top = np.argsort(-stage1, kind="stable")[:k]
    fused = fuse(stage1[top], np.asarray(consensus, dtype=np.float64)[top], weight)
    out[top] = 2.0 + rankdata(fused) / len(top)
    return out


def _cold_by(cold_start: bool | str) -> str | None:
    """`COLD_BY` entry of a `cold_start` argument (None: no cold start)."""
    if cold_start is False or cold_start is None:
        return None
    by = "models" if cold_start is True else str(cold_start).strip().lower()
    if by not in COLD_BY:
        raise UserInputError(f"unknown cold start {by!r}", hint=f"choose among: {', '.join(COLD_BY)}")
    return by


MIN_WARM_MODELS = 3  # models that must keep history in a cold-start fold by families


def _check_family_folds(records: Records, dataset: str, train: list[str], folds, tokens: dict) -> None:
    """Refuse a cold start by families whose fold would leave fewer than `MIN_WARM_MODELS` models
    with history on the training datasets (records of one family, say): nothing to rank from."""
    trained = set(records.perf.loc[records.perf["dataset"].isin(train), "model"])
    for fold in folds:
        left = trained - set(fold)
        if len(left) < MIN_WARM_MODELS:
            hidden = sorted({model_family(m, tokens) for m in fold})
            raise UserInputError(
                f"cold start by families on {dataset}: hiding the {', '.join(hidden)} famil"
                f"{'y' if len(hidden) == 1 else 'ies'} leaves {len(left)} model(s) with history",
                hint="these records hold too few families; use --cold-start (random models)",
            )


def _fold_families(folds: list[list[str]], models: list[str], tokens: dict) -> str:
    """`vit (113) | swin (23) | beit, resnet (10)`: each fold's families (the first 6, then a
    count) and evaluated models."""
    evaluated = set(models)

    def named(fold: list[str]) -> str:
        families = sorted({model_family(m, tokens) for m in fold})
        return ", ".join(families[:6]) + (f" and {len(families) - 6} more" if len(families) > 6 else "")

    return " | ".join(f"{named(fold)} ({len(evaluated.intersection(fold))})" for fold in folds)


def _check_family_known(dataset: str, models: list[str], tokens: dict) -> None:
    """Refuse a cold start by families where most evaluated models name no family nor model type:
    each would be a family of its own, and the run a random cold start under another name."""
    unnamed = [m for m in models if model_family(m, tokens).startswith("id:")]
    if len(unnamed) > len(models) / 2:
        raise UserInputError(
            f"cold start by families on {dataset}: {len(unnamed)} of {len(models)} models name no family "
            "nor model type (card or model_config.csv)",
            hint="add model_type to model_config.csv, use the default catalog, or use --cold-start (random models)",
        )


def model_family(model: str, tokens: dict) -> str:
    """A model's family for cold-start folds: its card's family, else its model type, else its
    own id (a card that names neither is a family of its own)."""
    token = tokens.get(model)
    return ((token.family or token.model_type) if token is not None else None) or f"id:{model}"


def _cold_folds(
    models: list[str],
    seed: int,
    by: str = "models",
    tokens: dict | None = None,
    others: Iterable[str] = (),
) -> list[list[str]]:
    """The models each cold-start fold hides. `models` (the evaluated ones): 20% of them at random
    in each of `COLD_FOLDS` folds. `families`: whole families (`model_family`), the largest first
    into the fold with the fewest evaluated models (equal sizes in a seeded order), each fold
    also hiding the `others` (models of the records not evaluated here) of its families, so that
    no model of a hidden family keeps history; a fold left empty (fewer families than folds) is
    dropped."""
    rng = np.random.default_rng(seed)
    if by == "models":
        shuffled = list(rng.permutation(sorted(models)))
        return [shuffled[i::COLD_FOLDS] for i in range(COLD_FOLDS)]
    tokens = tokens or {}
    groups: dict[str, list[str]] = {}
    for model in sorted(models):
        groups.setdefault(model_family(model, tokens), []).append(model)
    names = [str(n) for n in rng.permutation(sorted(groups))]
    names.sort(key=lambda n: -len(groups[n]))  # stable: the seeded order breaks ties
    folds: list[list[str]] = [[] for _ in range(COLD_FOLDS)]
    for name in names:
        min(folds, key=len).extend(groups[name])
    rest = sorted(set(others) - set(models))
    for fold in folds:
        here = {model_family(m, tokens) for m in fold}
        fold.extend(m for m in rest if model_family(m, tokens) in here)
    return [fold for fold in folds if fold]


def _mean(
    per_dataset: dict[str, dict[str, dict[str, float]]],
    datasets: Iterable[str],
    weights: dict[str, float] | None = None,
) -> dict:
    out: dict[str, dict[str, float]] = {}
    datasets = [t for t in datasets if t in per_dataset]
    order = {m: i for i, m in enumerate(METHODS)}
    methods = sorted({m for t in datasets for m in per_dataset[t]}, key=lambda m: order.get(m, 99))
    for method in methods:
        have = [t for t in datasets if method in per_dataset[t]]
        w = np.array([1.0 if weights is None else weights[t] for t in have])
        if not have or w.sum() <= 0:
            continue
        out[method] = {
            k: float(np.average([per_dataset[t][method][k] for t in have], weights=w)) for k in METRICS
        }
        out[method]["n_datasets"] = len(have)
        out[method]["max_top1_regret"] = float(max(per_dataset[t][method]["top1_regret"] for t in have))
    return out


def _parts_summary(chosen: dict[str, Any]) -> dict[str, Any]:
    """How often each prior was chosen, the learned residual kept and models without history
    placed by their card prior (else at the others' median), over the outer folds."""
    folds = []
    for value in chosen.values():
        folds += list(value.values()) if "prior" not in value else [value]
    return {
        "folds": len(folds),
        "prior": _counts(f["prior"] for f in folds),
        "learned_residual_used": sum(bool(f.get("learned_residual")) for f in folds),
        "cold_placement": _counts(f["cold_placement"] for f in folds if f.get("cold_placement")),
        "stage2_weights": sorted({f["stage2_weight"] for f in folds if f.get("stage2_weight") is not None}),
        "stage2_estimators": _counts(
            str(f.get("stage2_estimators")) for f in folds if f.get("stage2_weight") is not None
        ),
    }


def placement_note(parts: dict[str, Any]) -> str:
    """A sentence on where models without history were placed (`_parts_summary`), where some fold
    put them at the others' median; empty otherwise."""
    counts = parts.get("cold_placement") or {}
    if not counts.get("median"):
        return ""
    return (
        f"Models without history placed by their card prior in {counts.get('card prior', 0)} folds, "
        f"at the median of the others in {counts['median']} (fewer than 10 models with history: "
        "the card prior cannot be cross-validated)."
    )


def _counts(values: Iterable[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def write_predictions(result: dict, path: str) -> None:
    """The per-model scores of every method as CSV: `target, model, method, score` (cold start
    adds `fold` and `cold`)."""
    frame = pd.DataFrame(result["predictions"])
    if frame.empty:
        frame = pd.DataFrame(columns=["target", "model", "method", "score"])
    frame.to_csv(path, index=False)
