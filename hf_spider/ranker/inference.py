"""Inference: network inputs of one task (`Context`), scoring, and the stage-2 fusion.

A context holds one task with its candidates as arrays: their model tokens and pair features,
their history on earlier fine-tuning datasets, their prior (`priors`), and optional estimator
tokens (stage 2). `score_context` runs the network; `fused_scores` fuses its stage-1 score with
the estimators' consensus. Training (`training`) builds contexts the same way, so a model or task
never seen in training is described exactly like a training one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import cold
from hf_spider.ranker import features as F
from hf_spider.ranker import priors as P
from hf_spider.ranker.model import SpiderEnsemble
from hf_spider.ranker.records import Records

History = P.History


@dataclass
class Context:
    """One task with its candidates, as arrays ready for the network."""

    task: dict
    models: list[str]
    model_x: np.ndarray  # [n, MODEL_DIM]
    summary: np.ndarray  # [n, SUMMARY_DIM]; summary[:, 0] is the prior, centred
    hist: np.ndarray  # [n, H, HISTORY_DIM]
    hist_pad: np.ndarray  # [n, H]
    feats: np.ndarray  # [n, Fn, FEATURE_DIM]
    feat_pad: np.ndarray  # [n, Fn]
    y: np.ndarray | None = None  # fine-tuned accuracy, training only
    card: np.ndarray | None = None  # [n] card-based prior percentile (centred), 0 where none
    match: np.ndarray | None = None  # [n] 1.0 where the model's own data shares the task's name
    metrics: list[str] | None = None  # estimator of each feats column
    cold_weight: np.ndarray | None = None  # [n] familiarity of each card (`cold.familiarity`)
    basis: list[str] | None = None  # [n] what placed each prior: BASES


# What a candidate's prior was computed from: its fine-tuning history on earlier datasets, its
# card alone (`cold`), or neither (placed at the median of the others, `priors.unknown_placement`).
# `card_facts` (set by `Ranker.rank`, not here): its card alone, of an architecture the card prior
# knows nothing of (`cold.knows_architecture`): its parameter count and upstream accuracy only.
BASES = ("history", "card", "card_facts", "none")


def build_context(
    task: Mapping[str, Any],
    models: list[str],
    tokens: Mapping[str, ModelToken],
    history: History | None = None,
    estimator_scores: Mapping[str, Mapping[str, float]] | None = None,
    y: np.ndarray | None = None,
    prior: str = "mean",
    card_prior: Mapping[str, float] | None = None,
    vectors: np.ndarray | None = None,
    card_shrink: float = 0.0,
    match_bonus: float = 0.0,
) -> Context:
    """Arrays for ranking `models` on `task`.

    Args:
        task: task metadata (`hf_spider.tasks.Task.metadata` shape, plus `name` and `modality`).
        models: candidate ids; each must be in `tokens`.
        history: the candidates' percentiles on earlier datasets (models absent have none).
        estimator_scores: `{metric: {model: score}}` of this task (stage 2); z-scored over the
            candidates that have them.
        prior, card_shrink, match_bonus: the prior (`priors.PriorChoice`).
        card_prior: `{model: percentile}` predicted from cards; the prior of candidates without
            history (else the median prior of those with history), and mixed into the prior of
            those with history by `card_shrink` pseudo-datasets.
        vectors: the candidates' `ModelToken.vector()` rows, when already at hand (a catalog
            stores them), so that thousands of candidates are not re-tokenised.
    """
    card_prior = card_prior or {}
    history = history or {}
    n = len(models)
    model_x = F.model_matrix([tokens[m] for m in models], task, vectors)
    match = P.match_vector(models, tokens, task) if match_bonus else np.zeros(n)
    h_max = max((len(history.get(m, ())) for m in models), default=0)
    hist = np.zeros((n, h_max, F.HISTORY_DIM), dtype=np.float32)
    hist_pad = np.ones((n, h_max), dtype=bool)
    summary = np.zeros((n, F.SUMMARY_DIM), dtype=np.float32)
    memo: dict[int, np.ndarray] = {}  # history token of an earlier dataset, without the percentile
    unknown = []  # neither history nor card prior: placed at the others' median below
    for i, m in enumerate(models):
        items = history.get(m)
        if not items:
            if m in card_prior:
                summary[i, 0] = card_prior[m] - 0.5
            else:
                unknown.append(i)
            continue
        for j, (meta, p) in enumerate(items):
            base = memo.get(id(meta))
            if base is None:
                base = memo[id(meta)] = F.history_vector(0.5, meta, task)
            hist[i, j] = base
            hist[i, j, 0] = p - 0.5
            hist_pad[i, j] = False
        summary[i] = F.summary_vector(
            [p for _, p in items],
            prior,
            F.history_weights(hist[i, : len(items)], prior),
            card_prior.get(m),
            card_shrink,
        )
    if unknown:
        known = np.array([bool(history.get(m)) for m in models])
        by_card = np.array([not known[i] and m in card_prior for i, m in enumerate(models)])
        summary[unknown, 0] = P.unknown_placement(summary[known, 0] + 0.5, summary[by_card, 0] + 0.5) - 0.5
    if match_bonus:
        summary[:, 0] = np.clip(summary[:, 0] + match_bonus * match, -0.5, 0.5)
    card = np.array([card_prior.get(m, 0.5) - 0.5 for m in models], dtype=np.float32)
    metrics = sorted(estimator_scores or {})
    feats = np.zeros((n, len(metrics), F.FEATURE_DIM), dtype=np.float32)
    feat_pad = np.ones((n, len(metrics)), dtype=bool)
    for j, metric in enumerate(metrics):
        raw = np.array([estimator_scores[metric].get(m, np.nan) for m in models], dtype=np.float64)
        z = F.robust_z(raw)
        for i in np.flatnonzero(np.isfinite(raw)):
            feats[i, j] = F.estimator_vector(metric, z[i])
            feat_pad[i, j] = False
    return Context(
        dict(task),
        list(models),
        model_x.astype(np.float32),
        summary,
        hist,
        hist_pad,
        feats,
        feat_pad,
        y,
        card,
        match.astype(np.float32),
        metrics,
        basis=["history" if history.get(m) else "card" if m in card_prior else "none" for m in models],
    )


def scores_of(records: Records, dataset: str) -> dict[str, dict[str, float]]:
    """`{metric: {model: score}}` of the transferability scores recorded for `dataset`."""
    s = records.scores[records.scores["dataset"] == dataset]
    return {m: dict(zip(g["model"], g["score"], strict=True)) for m, g in s.groupby("metric")}


def dataset_context(
    records: Records,
    dataset: str,
    models: list[str],
    train_datasets: Iterable[str],
    tokens: Mapping[str, ModelToken],
    *,
    exclude_models: Iterable[str] = (),
    prior: str = "mean",
    card: bool = True,
    card_shrink: float = 0.0,
    match_bonus: float = 0.0,
) -> Context:
    """Context of a held-out fine-tuning dataset: its candidates with their history on the
    training datasets. With `card`, candidates without history get the card prior fitted on the
    training models."""
    pct = history_percentiles(records, records.modality_of(dataset), train_datasets, exclude_models)
    metas = {t: records.dataset_meta(t) for t in pct.columns}
    fitted = cold.fit_for_choice(pct, tokens, cold.choice_for(pct, tokens)) if card else None
    history = P.history_from(pct, metas)
    ctx = build_context(
        records.dataset_meta(dataset),
        models,
        tokens,
        history,
        scores_of(records, dataset),
        prior=prior,
        card_prior=P.placeable(fitted, P.card_prior_values(fitted, models, tokens), history)
        if card
        else None,
        card_shrink=card_shrink,
        match_bonus=match_bonus,
    )
    ctx.cold_weight = cold.familiarity(fitted, (tokens[m] for m in models))
    return ctx


def history_percentiles(
    records: Records, modality: str, datasets: Iterable[str], exclude_models: Iterable[str] = ()
):
    """Percentiles (models x datasets) of the usable runs of `datasets` (`Records.usable`)."""
    ok = records.usable()
    ok = ok[ok["modality"] == modality]
    ok = ok[ok["dataset"].isin(set(datasets)) & ~ok["model"].isin(set(exclude_models))]
    return P.percentiles(ok.pivot_table(index="model", columns="dataset", values="accuracy"))


def score_context(model: SpiderEnsemble | None, ctx: Context, *, use_features: bool = True) -> np.ndarray:
    """Scores of a context's candidates (higher is better); `model` None: the prior alone.

    Candidates are scored in groups of similar history length, each with its history tokens cut to
    the group's longest: padded tokens are masked, so the scores are those of one padded batch, but
    thousands of never-fine-tuned Hub models (no history) do not pay for the longest history.
    """
    import torch

    if not ctx.models:
        return np.zeros(0)
    if model is None:
        return ctx.summary[:, 0].astype(np.float64)
    t = torch.from_numpy
    feat_pad = ctx.feat_pad if use_features else np.ones_like(ctx.feat_pad)
    task_x = t(F.task_input(ctx.task, bool(model.config.get("task_data"))))
    lengths = (~ctx.hist_pad).sum(axis=1) if ctx.hist_pad.size else np.zeros(len(ctx.models), dtype=int)
    out = np.zeros(len(ctx.models), dtype=np.float64)
    with torch.no_grad():
        for group in (np.flatnonzero(lengths == 0), np.flatnonzero(lengths > 0)):
            if not len(group):
                continue
            h = int(lengths[group].max())
            # history tokens are packed at the front (see build_context), so [:h] keeps them all
            scores = model(
                t(ctx.model_x[group]),
                t(ctx.summary[group]),
                task_x,
                t(np.ascontiguousarray(ctx.hist[group, :h])),
                t(np.ascontiguousarray(ctx.hist_pad[group, :h])),
                t(ctx.feats[group]),
                t(np.ascontiguousarray(feat_pad[group])),
            )
            out[group] = scores.numpy().astype(np.float64)
    # a card far from the training population keeps less of the network's residual
    return cold.damp_cold_residual(model, ctx, out)


def consensus_of(z: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Per candidate (row), the mean of the z-scores it has (`have`), 0 where it has none."""
    z = np.where(have, np.asarray(z, dtype=np.float64), 0.0).reshape(len(have), -1)
    count = np.asarray(have).reshape(len(have), -1).sum(axis=1)
    return np.where(count > 0, z.sum(axis=1) / np.maximum(count, 1), 0.0)


def estimator_consensus(ctx: Context, estimators: Iterable[str] | None = None) -> np.ndarray:
    """Per candidate, the mean robust z-score of its estimator tokens (0 where it has none), over
    `estimators` only when given and the context has any of them (else over all)."""
    have = ~ctx.feat_pad
    wanted = set(estimators or ())
    if wanted and ctx.metrics and wanted & set(ctx.metrics):
        keep = np.array([m in wanted for m in ctx.metrics])
        have = have & keep[None, :]
    return consensus_of(ctx.feats[:, :, 0], have)


def fuse(base: np.ndarray, consensus: np.ndarray, weight: float) -> np.ndarray:
    """Stage-2 score: `(1 - weight) * rank(base) + weight * rank(consensus)`, ranks as fractions of
    the candidate count, so neither scale matters; a tie goes to the better consensus."""
    base = np.asarray(base, dtype=np.float64)
    if weight <= 0:
        return base
    if len(base) < 2:
        return np.asarray(consensus, dtype=np.float64)
    n = len(base)
    measured = rankdata(consensus) / n
    # equal fused ranks (stage 1 and the estimators disagree by as much) go to the measured evidence
    return (1.0 - weight) * rankdata(base) / n + weight * measured + 1e-6 * measured


def fused_scores(
    model: SpiderEnsemble | None,
    ctx: Context,
    weight: float,
    *,
    tokens: bool = False,
    estimators: Iterable[str] | None = None,
) -> np.ndarray:
    """Stage 2: the stage-1 score fused with the estimators' consensus by `weight`, the consensus
    over `estimators` (None: all given; both chosen by `selection.select_stage2_weight`);
    candidates without any estimator score count as the median.

    `tokens=True` lets the network read the estimator tokens too (Model Spider's way). Off by
    default: on the shared records the learned use of those tokens did not carry over to held-out
    datasets (benchmarks/ranking.md), while the cross-validated explicit fusion does.
    """
    return fuse(score_context(model, ctx, use_features=tokens), estimator_consensus(ctx, estimators), weight)
