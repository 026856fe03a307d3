"""Model selection: which parts the ranker is made of, chosen on TRAINING datasets only.

The ranker's score is a closed-form prior (`priors.PriorChoice`) plus a learned residual (the
network, `training.fit`), and stage 2 fuses it with the estimators' consensus. Each part is
chosen by cross-validation over the training datasets of the call — inside an evaluation fold
that makes it *nested* cross-validation: the held-out dataset never takes part.

- `select_prior`: leave-one-dataset-out over every training dataset; no network is trained.
- `select_steps`: the network's number of training steps, 0 included (the prior alone). The
  learned residual is kept only when it beats the prior alone by `RankerConfig.residual_margin`
  mean tau_w over the inner folds and by one standard error of the per-fold differences;
  otherwise the ranker falls back to the prior.
- `select_stage2`: stage 2's order — the estimator's (LogME's) or stage 1's; the floor is the
  estimator alone, replaced by stage 1 only where that beats it clearly.
- `select_parts`: all three, as `hf-spider train` and `hf-spider eval ranking` run them; returns
  the configuration and a `chosen` record of which parts were used and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import weightedtau

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import cold
from hf_spider.ranker import features as F
from hf_spider.ranker import priors as P
from hf_spider.ranker.inference import (
    consensus_of,
    dataset_context,
    fuse,
    score_context,
    scores_of,
)
from hf_spider.ranker.model import RankerConfig
from hf_spider.ranker.records import FULL_FINETUNE, Records

logger = logging.getLogger("hf_spider.ranker")

STAGE2_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
# Stage 2 promises the order of fine-tuning accuracy. Where at least this many scored training
# datasets were fully fine-tuned, only they choose it: a linear probe's accuracy (the zoo's records)
# is what LogME estimates by construction, so those records favour the estimator.
MIN_FINETUNE_STAGE2 = 3


def _tau(gt: np.ndarray, scores: np.ndarray) -> float:
    return float(weightedtau(gt, scores).statistic)


@dataclass
class PriorFold:
    """One held-out training dataset with what every prior needs about its models."""

    dataset: str
    gt: pd.Series  # accuracy of its models
    pct: np.ndarray  # [n, d] their percentiles on the other datasets
    weights: np.ndarray  # [d] class-count similarity of those datasets to this one
    card: np.ndarray  # [n] card prior, NaN without one
    match: np.ndarray  # [n] name match of the models' own data with this dataset
    columns: tuple[str, ...] = ()  # the datasets of `pct`'s columns
    places_cold: bool = True  # whether the card prior may place a model without history (`cold.can_place`)

    def prior(
        self, choice: P.PriorChoice, drop: str | None = None, hide: np.ndarray | None = None
    ) -> np.ndarray:
        """The prior of this fold's models; `drop`: one more dataset left out of their history
        (nested cross-validation holds out a second dataset; percentiles are per dataset, so
        dropping its column is exact; the card prior is not refitted); `hide` [n] (bool): models
        placed as if they had no history at all, by their card prior where it may place them,
        else at the others' median, as stage 1 places such a model (`priors.prior_values`)."""
        pct, weights, card = self.pct, self.weights, self.card
        if drop is not None and drop in self.columns:
            keep = np.array([c != drop for c in self.columns])
            pct, weights = pct[:, keep], weights[keep]
        if hide is not None and hide.any():
            pct = np.where(hide[:, None], np.nan, pct)
            if not self.places_cold:
                card = np.where(hide, np.nan, card)
        return P.prior_values(pct, weights, card, self.match, choice)


def nested_choice(
    score: Callable[[int, int | None, Any], float],
    n_folds: int,
    options: list[Any],
    floor: Any,
    margin: float,
) -> tuple[Any, dict[str, Any]]:
    """Choose among `options` by cross-validation over `n_folds` folds, and check the choosing
    itself by nested cross-validation before trusting it over `floor`.

    `score(i, h, option)` is the figure of `option` on fold `i` with fold `h`'s dataset also left
    out of what it learns from (`h` None: nothing more). The choice is the option with the best mean
    over all folds (ties to the earlier option). It replaces `floor` only where the same way of
    choosing, repeated without each fold `h` and applied to `h`, beats the floor on those held-out
    folds (`beats`: by `margin` and one standard error): picking the best of many noisy options
    is optimistic, and this measures how much of its edge survives on a dataset it never saw.
    Returns (option, {"best": ..., "cv": best's mean, "nested": ..., "floor": ..., "kept": bool}).
    """
    full = {o: [score(i, None, o) for i in range(n_folds)] for o in options}
    means = {o: float(np.mean(v)) for o, v in full.items()}
    best = max(options, key=lambda o: (round(means[o], 4), -options.index(o)))
    info: dict[str, Any] = {"best": best, "cv": means[best], "floor_cv": means.get(floor)}
    if best == floor or n_folds < 3:
        info.update(kept=best == floor, nested=None)
        return (best if best == floor else floor), info
    nested, base = [], []
    for h in range(n_folds):
        inner = {o: float(np.mean([score(i, h, o) for i in range(n_folds) if i != h])) for o in options}
        pick = max(options, key=lambda o: (round(inner[o], 4), -options.index(o)))
        nested.append(full[pick][h])
        base.append(full[floor][h])
    kept = beats(nested, base, margin)
    info.update(nested=float(np.mean(nested)), floor=float(np.mean(base)), kept=kept)
    return (best if kept else floor), info


def prior_folds(
    records: Records,
    train_datasets: Iterable[str],
    *,
    exclude_models: Iterable[str] = (),
    tokens: Mapping[str, ModelToken] | None = None,
    with_card: bool = False,
) -> Iterator[PriorFold]:
    """Leave-one-dataset-out over the training datasets (`Records.usable`), one `PriorFold` each."""
    excluded = set(exclude_models)
    ok = records.usable()
    ok = ok[ok["dataset"].isin(set(train_datasets))]
    ok = ok[~ok["model"].isin(excluded)]
    if tokens is not None:
        ok = ok[ok["model"].isin(set(tokens))]
    matrix = ok.pivot_table(index="model", columns="dataset", values="accuracy")
    metas = {t: records.dataset_meta(t) for t in matrix.columns}
    for held in matrix.columns:
        gt = matrix[held].dropna()
        pct_all = P.percentiles(matrix.drop(columns=held))
        if len(gt) < 3 or pct_all.shape[1] == 0:
            continue
        pct = pct_all.reindex(gt.index)
        card = np.full(len(gt), np.nan)
        if with_card and tokens is not None:
            prior = P.card_prior_for(pct_all, tokens, gt.index)
            card = np.array([prior.get(m, np.nan) for m in gt.index])
        match = P.match_vector(gt.index, tokens, metas[held]) if tokens is not None else np.zeros(len(gt))
        weights = np.array([F.class_weight(metas[t], metas[held]) for t in pct.columns])
        yield PriorFold(
            held,
            gt,
            pct.to_numpy(dtype=np.float64),
            weights,
            card,
            match,
            tuple(pct.columns),
            places_cold=bool(with_card and tokens is not None and cold.can_place(pct_all, tokens)),
        )


def select_prior(
    records: Records,
    train_datasets: list[str],
    *,
    exclude_models: Iterable[str] = (),
    tokens: Mapping[str, ModelToken] | None = None,
    choices: list[P.PriorChoice] | None = None,
    folds: list[PriorFold] | None = None,
    margin: float = 0.005,
) -> tuple[P.PriorChoice, dict[str, Any]]:
    """The prior, chosen by leave-one-dataset-out over the training datasets: each is held out and
    its models ranked by each prior computed on the others (the card prior refitted without it).
    The best mean wins (ties, to 4 decimals, to the simpler choice) where nested cross-validation
    says the choosing beats the floor, the plain mean percentile (`collaborative`); else the floor
    (`nested_choice`). Returns (choice, {"cv": {label: mean tau_w}, "nested": ...})."""
    choices = choices or P.prior_choices(with_card=tokens is not None)
    if folds is None:
        folds = list(
            prior_folds(
                records,
                train_datasets,
                exclude_models=exclude_models,
                tokens=tokens,
                with_card=any(c.card_shrink for c in choices),
            )
        )
    if not folds:
        return P.PriorChoice(), {"cv": {}}
    gts = [f.gt.to_numpy() for f in folds]
    memo: dict[tuple[int, int | None, P.PriorChoice], float] = {}

    def score(i: int, h: int | None, c: P.PriorChoice) -> float:
        key = (i, h, c)
        if key not in memo:
            memo[key] = _tau(gts[i], folds[i].prior(c, None if h is None else folds[h].dataset))
        return memo[key]

    floor = P.PriorChoice()
    if floor not in choices:
        choices = [floor, *choices]
    best, info = nested_choice(score, len(folds), choices, floor, margin)
    cv = {c.label: float(np.mean([score(i, None, c) for i in range(len(folds))])) for c in choices}
    return best, {"cv": cv, "nested": _plain(info)}


def _plain(info: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in info.items():
        if isinstance(v, P.PriorChoice):
            v = v.label
        elif isinstance(v, tuple):
            v = f"{v[0]}@{v[1]:g}"
        elif isinstance(v, float):
            v = round(v, 4)
        out[k] = v
    return out


ALL_ESTIMATORS = "all"


def select_stage2_weight(
    records: Records,
    train_datasets: list[str],
    choice: P.PriorChoice,
    *,
    exclude_models: Iterable[str] = (),
    tokens: Mapping[str, ModelToken] | None = None,
    folds: list[PriorFold] | None = None,
) -> tuple[float | None, dict[float, float]]:
    """Weight of the estimators' consensus (all of them) in stage 2; see `select_stage2`.
    Returns (None, {}) when no training dataset has scores."""
    weight, _, means = select_stage2(
        records,
        train_datasets,
        choice,
        exclude_models=exclude_models,
        tokens=tokens,
        folds=folds,
        estimator_sets=False,
    )
    return weight, {w: v for (name, w), v in means.items() if name == ALL_ESTIMATORS}


def select_stage2(
    records: Records,
    train_datasets: list[str],
    choice: P.PriorChoice,
    *,
    exclude_models: Iterable[str] = (),
    tokens: Mapping[str, ModelToken] | None = None,
    folds: list[PriorFold] | None = None,
    estimator_sets: bool = True,
    margin: float = 0.005,
    cold_share: float = 0.0,
) -> tuple[float | None, list[str], dict[tuple[str, float], float]]:
    """Stage 2, chosen on the training datasets that have transferability scores: whether its
    order is the estimator's (weight 1: LogME where every scored dataset has it, else the
    consensus of all estimators) or stage 1's (weight 0). Each scored dataset is held out, its
    models ranked by the chosen prior (computed on the other datasets) fused with its scores
    (`fuse`). Stage 1 replaces the floor, the estimator alone, only where nested cross-validation
    says the choosing beats it (`nested_choice`). Where `MIN_FINETUNE_STAGE2` or more scored
    datasets were fully fine-tuned, the linearly probed ones take no part.

    Only the two ends are offered. Intermediate weights and the other estimators alone (25 options
    in all) were offered until 2026-11-30: with the 5-6 scored training datasets the records have,
    the best of so many looked better in cross-validation than it was, and the nested check let
    some through (zoo text, held out: 0.356 against LogME's 0.473; benchmarks/ranking.md).

    `cold_share`: the share of the candidates to rank that have no history (an evaluation's cold
    start hides them; a catalog of new cards has them). Stage 1 places such a model by its card, or
    at the others' median, so its order is worse there than on models with history; each scored
    dataset is then scored as that many of its models would be ranked: `COLD_DRAWS` random sets of
    that share of them placed without history (`PriorFold.prior`'s `hide`), tau_w averaged. The
    card prior is not refitted without them (as for the nested check's second dataset), so where it
    places them this is optimistic about stage 1; where it cannot (`cold.can_place`), exact.

    `estimator_sets=False`: the consensus of all over `STAGE2_WEIGHTS`, the best weight without a
    floor. Returns (weight, estimators ([] = all), {(estimators, weight): mean tau_w});
    (None, [], {}) when no training dataset has scores."""
    scored = set(records.scores["dataset"]) if len(records.scores) else set()
    if not scored & set(train_datasets):
        return None, [], {}
    if folds is None:
        folds = list(
            prior_folds(
                records,
                train_datasets,
                exclude_models=exclude_models,
                tokens=tokens,
                with_card=bool(choice.card_shrink),
            )
        )
    folds = [f for f in folds if f.dataset in scored]
    fine = [f for f in folds if records.protocol_of(f.dataset) == FULL_FINETUNE]
    if len(fine) >= MIN_FINETUNE_STAGE2:
        folds = fine
    if not folds:
        return None, [], {}
    by_fold = [scores_of(records, fold.dataset) for fold in folds]
    # the estimator alone counts only where every scored dataset has it
    end = "logme" if estimator_sets and all("logme" in b for b in by_fold) else ALL_ESTIMATORS
    consensus: list[np.ndarray] = []  # of `end`, per fold: every option reads that one
    for fold, by_metric in zip(folds, by_fold, strict=True):
        names = sorted(by_metric)
        # the consensus as stage 2 computes it (`estimator_consensus`): clipped robust z-scores,
        # averaged over the metrics each model has
        raw = np.array(
            [[by_metric[n].get(m, np.nan) for n in names] for m in fold.gt.index], dtype=np.float64
        )
        raw = raw.reshape(len(fold.gt), len(names))
        z = np.column_stack([np.clip(F.robust_z(col), -4.0, 4.0) for col in raw.T]) if names else raw
        have = np.isfinite(raw)
        if end != ALL_ESTIMATORS:
            have = have & np.array([k == end for k in names])[None, :]
        consensus.append(consensus_of(z, have))
    if estimator_sets:
        options = [(end, 0.0), (end, 1.0)]  # stage 1 alone first: ties go to it, then the check
    else:
        options = [(ALL_ESTIMATORS, w) for w in STAGE2_WEIGHTS]
    gts = [f.gt.to_numpy() for f in folds]
    hidden = [_cold_draws(len(g), cold_share, seed=i) for i, g in enumerate(gts)]
    priors: dict[tuple[int, int | None], list[np.ndarray]] = {}
    memo: dict[tuple[int, int | None, tuple[str, float]], float] = {}

    def score(i: int, h: int | None, option: tuple[str, float]) -> float:
        key = (i, h, option)
        if key not in memo:
            if (i, h) not in priors:
                drop = None if h is None else folds[h].dataset
                priors[(i, h)] = [folds[i].prior(choice, drop, hide) for hide in hidden[i]]
            taus = [_tau(gts[i], fuse(p, consensus[i], option[1])) for p in priors[(i, h)]]
            memo[key] = float(np.mean(taus))
        return memo[key]

    means = {o: float(np.mean([score(i, None, o) for i in range(len(folds))])) for o in options}
    if estimator_sets:
        best, _ = nested_choice(score, len(folds), options, options[1], margin)
    else:
        best = max(options, key=lambda o: (round(means[o], 4), -options.index(o)))
    return best[1], ([] if best[0] == ALL_ESTIMATORS else [best[0]]), means


COLD_DRAWS = 8  # random sets of models placed without history per scored dataset (`select_stage2`)


def _cold_draws(n: int, share: float, *, seed: int) -> list[np.ndarray | None]:
    """Which of `n` models `select_stage2` places without history: `COLD_DRAWS` masks of
    round(share * n) models each (seeded), or [None] (none hidden) where that rounds to 0."""
    k = min(round(max(share, 0.0) * n), n)
    if k == 0:
        return [None]
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(COLD_DRAWS):
        mask = np.zeros(n, dtype=bool)
        mask[rng.choice(n, size=k, replace=False)] = True
        masks.append(mask)
    return masks


def beats(candidate: list[float], floor: list[float], margin: float) -> bool:
    """Whether per-fold figures `candidate` beat `floor` (same folds) clearly: by `margin` on
    average and by at least one standard error of the paired differences."""
    diff = np.asarray(candidate, dtype=np.float64) - np.asarray(floor, dtype=np.float64)
    if not len(diff):
        return False
    se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else np.inf
    return float(diff.mean()) >= max(margin, se)


def select_steps(
    records: Records,
    train_datasets: list[str],
    tokens: Mapping[str, ModelToken],
    config: RankerConfig,
    *,
    seed: int = 0,
    exclude_models: Iterable[str] = (),
) -> tuple[int, dict[int, float]]:
    """Training steps of the learned residual, 0 (the prior alone) included, chosen on the
    TRAINING datasets only.

    `config.inner_folds` training datasets are held out in turn; one member is trained on the
    others and scores the held-out dataset at every step count of `config.step_grid` (one run,
    see `training.fit`). The step count with the best mean tau_w wins, but a learned residual is
    kept only when it beats 0 steps by `config.residual_margin` and one standard error of the
    per-fold differences (`beats`): otherwise the ranker falls back to its prior. With fewer than
    `config.min_residual_datasets` usable training datasets it is not tried at all. Returns (steps, {steps: mean tau_w}).
    """
    from hf_spider.ranker.training import fit, training_contexts

    grid = tuple(sorted(set(config.step_grid) | {0}))
    if max(grid) == 0:
        return 0, {}
    excluded = set(exclude_models)
    perf = records.usable()
    perf = perf[~perf["model"].isin(excluded)]
    counts = perf.groupby("dataset").size()
    usable = [t for t in train_datasets if counts.get(t, 0) >= 3]
    if len(usable) < max(3, config.min_residual_datasets):
        return 0, {}  # too few datasets to learn a residual from and to check it on: the prior alone
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(usable, size=min(config.inner_folds, len(usable)), replace=False).tolist())
    inner_cfg = RankerConfig.from_dict({**config.to_dict(), "ensemble": 1, "steps": max(grid)})
    taus: dict[int, list[float]] = {s: [] for s in grid}
    choice = P.PriorChoice.from_config(config)
    for i, dataset in enumerate(held):
        rest = [t for t in usable if t != dataset]
        contexts = training_contexts(
            records,
            records.modality_of(dataset),
            rest,
            tokens,
            exclude_models=excluded,
            prior=choice.aggregate,
            card_shrink=choice.card_shrink,
            match_bonus=choice.match_bonus,
        )
        rows = perf[(perf["dataset"] == dataset) & perf["model"].isin(set(tokens))]
        ctx = dataset_context(
            records,
            dataset,
            list(rows["model"]),
            rest,
            tokens,
            exclude_models=excluded,
            prior=choice.aggregate,
            card_shrink=choice.card_shrink,
            match_bonus=choice.match_bonus,
        )
        gt = rows["accuracy"].to_numpy()

        def record(model, step_count, ctx=ctx, gt=gt):
            taus[step_count].append(_tau(gt, score_context(model, ctx, use_features=False)))

        fit(
            contexts,
            inner_cfg,
            seed=seed + 101 * (i + 1),
            checkpoints={s: (lambda m, s=s: record(m, s)) for s in grid},
        )
    means = {s: float(np.mean(v)) for s, v in taus.items() if v}
    best = max(means, key=lambda s: (round(means[s], 4), -s))
    if best and not beats(taus[best], taus[0], config.residual_margin):
        best = 0  # the learned residual does not earn its place: the prior alone
    logger.info(
        "inner CV over %s: mean tau_w by steps %s -> %d",
        held,
        {k: round(v, 3) for k, v in means.items()},
        best,
    )
    return best, means


def select_parts(
    records: Records,
    train_datasets: list[str],
    tokens: Mapping[str, ModelToken],
    config: RankerConfig,
    *,
    seed: int = 0,
    exclude_models: Iterable[str] = (),
    step_grid: Iterable[int] | None = None,
    cold_share: float = 0.0,
) -> tuple[RankerConfig, dict[str, Any]]:
    """The prior, the stage-2 weight and the learned residual's steps, each chosen by
    cross-validation over `train_datasets` (one modality) only; stage 2 for candidates of which
    `cold_share` have no history (`select_stage2`). Returns the configuration and a record of the
    choices with their cross-validated figures."""
    choices = P.prior_choices(with_card=True)
    folds = list(
        prior_folds(records, train_datasets, exclude_models=exclude_models, tokens=tokens, with_card=True)
    )
    choice, prior_cv = select_prior(
        records, train_datasets, tokens=tokens, choices=choices, folds=folds, margin=config.residual_margin
    )
    weight, estimators, stage2_cv = select_stage2(
        records, train_datasets, choice, folds=folds, margin=config.residual_margin, cold_share=cold_share
    )
    config = RankerConfig.from_dict({**config.to_dict(), **choice.to_config()})
    if weight is not None:
        config = RankerConfig.from_dict(
            {**config.to_dict(), "stage2_weight": weight, "stage2_estimators": estimators}
        )
    grid = tuple(config.step_grid if step_grid is None else step_grid)
    inner = RankerConfig.from_dict({**config.to_dict(), "step_grid": grid})
    steps, steps_cv = select_steps(
        records, train_datasets, tokens, inner, seed=seed, exclude_models=exclude_models
    )
    config = RankerConfig.from_dict({**config.to_dict(), "steps": steps})
    chosen = describe(config, weight is not None)
    chosen["cv"] = {
        "prior": {k: round(v, 4) for k, v in prior_cv["cv"].items()},
        "prior_nested": prior_cv.get("nested"),
        "stage2": {f"{k[0]}@{k[1]:g}": round(v, 4) for k, v in stage2_cv.items()},
        "steps": {str(k): round(v, 4) for k, v in steps_cv.items()},
    }
    return config, chosen


def describe(config: RankerConfig, stage2: bool = True) -> dict[str, Any]:
    """Which parts a configuration uses, in words a report can print."""
    choice = P.PriorChoice.from_config(config)
    return {
        "prior": choice.label,
        "learned_residual": config.steps > 0,
        "steps": config.steps,
        "stage2_weight": config.stage2_weight if stage2 else None,
        "stage2_estimators": (list(config.stage2_estimators) or ALL_ESTIMATORS) if stage2 else None,
    }
