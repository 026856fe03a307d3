"""Meta-training on records: contexts (one target with its candidates), episodes, Plackett-Luce loss.

A context is one training target: its candidates' tokens, their history on the *other* training
targets, the task token, optional estimator tokens and the fine-tuned accuracies. An episode
sub-samples a candidate set of one context (as Model Spider does), hides the history of some
candidates (so the card-only path that serves never-fine-tuned Hub models is trained too), drops
some history and estimator tokens, and scores the set with a listwise Plackett-Luce loss.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import features as F

# the card prior's parts live in cold.py (imported here: cold must not import training)
from hf_spider.ranker.cold import CardPrior, _card_design, fit_ridge_card_prior, percentiles  # noqa: F401
from hf_spider.ranker.model import RankerConfig, SpiderEnsemble
from hf_spider.ranker.records import Records

logger = logging.getLogger("hf_spider.ranker")

History = dict[str, list[tuple[dict, float]]]  # model -> [(earlier target's metadata, percentile)]


@dataclass
class Context:
    """One task with its candidates, as arrays ready for the network."""

    task: dict
    models: list[str]
    model_x: np.ndarray  # [n, MODEL_DIM]
    summary: np.ndarray  # [n, SUMMARY_DIM]
    hist: np.ndarray  # [n, H, HISTORY_DIM]
    hist_pad: np.ndarray  # [n, H]
    feats: np.ndarray  # [n, Fn, FEATURE_DIM]
    feat_pad: np.ndarray  # [n, Fn]
    y: np.ndarray | None = None  # fine-tuned accuracy, training only
    card: np.ndarray | None = None  # [n] card-based prior percentile (centred), 0 where none
    cold_weight: np.ndarray | None = None  # [n] familiarity of each card (`cold.familiarity`)


def fit_card_prior(pct: pd.DataFrame, tokens: Mapping[str, ModelToken], choice: tuple | None = None):
    """The card prior of models without history, fitted on the models of `pct` (percentiles on
    TRAINING targets only): a `cold.ColdPrior` (the card ridge where a card is in the training
    population, monotone card facts elsewhere), its `choice` (`cold.COLD_CHOICES`) chosen by
    `cold.select_cold_prior` over those models when not given. None with fewer than 5 models.
    """
    from hf_spider.ranker import cold

    if choice is None:
        choice = cold.choice_for(pct, tokens)
    return cold.fit_for_choice(pct, tokens, choice)


def card_prior_of(prior: Any, models: Iterable[str], tokens: Mapping[str, ModelToken]) -> dict[str, float]:
    """`{model: predicted mean percentile}` from the card prior (empty without a fitted prior)."""
    models = list(models)
    if prior is None or not models:
        return {}
    pred = prior.predict(tokens[m] for m in models)
    return {m: float(p) for m, p in zip(models, pred, strict=True)}


def out_of_fold_card_prior(
    pct: pd.DataFrame, tokens: Mapping[str, ModelToken], folds: int = 5, seed: int = 0
) -> dict[str, float]:
    """Card prior of each training model predicted by a ridge fitted without it (k-fold over models),
    so that training episodes that hide a model's history see a prior as noisy as a cold model's."""
    from hf_spider.ranker import cold

    models = [m for m in pct.index if m in tokens and pct.loc[m].notna().any()]
    out: dict[str, float] = {}
    if len(models) < 2 * folds:
        return out
    choice = cold.choice_for(pct, tokens)  # once: every fold fits the same kind of prior
    order = np.random.default_rng(seed).permutation(len(models))
    for k in range(folds):
        held = [models[i] for i in order[k::folds]]
        prior = fit_card_prior(pct.drop(index=held), tokens, choice)
        out.update(card_prior_of(prior, held, tokens))
    return out


def history_from(
    pct: pd.DataFrame, metas: Mapping[str, dict], *, exclude_target: str | None = None
) -> History:
    hist: History = {}
    cols = [c for c in pct.columns if c != exclude_target]
    for model, row in pct[cols].iterrows():
        items = [(metas[t], float(v)) for t, v in row.items() if pd.notna(v)]
        if items:
            hist[str(model)] = items
    return hist


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
) -> Context:
    """Arrays for ranking `models` on `task`.

    Args:
        task: task metadata (`hf_spider.tasks.Task.metadata` shape, plus `name` and `modality`).
        models: candidate ids; each must be in `tokens`.
        history: the candidates' percentiles on earlier targets (models absent have none).
        estimator_scores: `{metric: {model: score}}` of this task (stage 2); z-scored over the
            candidates that have them.
        card_prior: `{model: percentile}` predicted from cards (`fit_card_prior`); the prior of
            candidates without history (else the neutral 0.5), and mixed into the prior of those
            with history by `card_shrink` pseudo-targets.
        vectors: the candidates' `ModelToken.vector()` rows, when already at hand (a catalog
            stores them), so that thousands of candidates are not re-tokenised.
    """
    card_prior = card_prior or {}
    history = history or {}
    n = len(models)
    model_x = F.model_matrix([tokens[m] for m in models], task, vectors)
    h_max = max((len(history.get(m, ())) for m in models), default=0)
    hist = np.zeros((n, h_max, F.HISTORY_DIM), dtype=np.float32)
    hist_pad = np.ones((n, h_max), dtype=bool)
    summary = np.zeros((n, F.SUMMARY_DIM), dtype=np.float32)
    memo: dict[int, np.ndarray] = {}  # history token of an earlier target, without the percentile
    for i, m in enumerate(models):
        items = history.get(m)
        if not items:
            if m in card_prior:
                summary[i, 0] = card_prior[m] - 0.5
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
    )


def training_contexts(
    records: Records,
    modality: str,
    targets: Iterable[str],
    tokens: Mapping[str, ModelToken],
    *,
    exclude_models: Iterable[str] = (),
    use_scores: bool = True,
    prior: str = "mean",
    card: bool = True,
    card_shrink: float = 0.0,
) -> list[Context]:
    """One context per training target: its candidates with history on the other training targets.

    With `card`, each candidate also carries its out-of-fold card prior, used in episodes where its
    history is hidden (as for a cold model).
    """
    targets = [t for t in targets if t in set(records.perf["target"])]
    excluded = set(exclude_models)
    ok = records.perf[(records.perf["modality"] == modality) & ~records.perf["failed"]]
    ok = ok[ok["target"].isin(targets) & ~ok["model"].isin(excluded) & ok["model"].isin(set(tokens))]
    matrix = ok.pivot_table(index="model", columns="target", values="accuracy")
    pct = percentiles(matrix)
    metas = {t: records.target_meta(t) for t in matrix.columns}
    oof = out_of_fold_card_prior(pct, tokens) if card else {}
    contexts = []
    for t in matrix.columns:
        col = matrix[t].dropna()
        if len(col) < 3:
            continue
        hist = history_from(pct, metas, exclude_target=t)
        scores = _scores_of(records, t) if use_scores else None
        ctx = build_context(
            metas[t],
            list(col.index),
            tokens,
            hist,
            scores,
            col.to_numpy(),
            prior,
            card_prior=oof,
            card_shrink=card_shrink,
        )
        ctx.card = np.array([oof.get(m, 0.5) - 0.5 for m in ctx.models], dtype=np.float32)
        contexts.append(ctx)
    return contexts


def _scores_of(records: Records, target: str) -> dict[str, dict[str, float]]:
    s = records.scores[records.scores["target"] == target]
    return {m: dict(zip(g["model"], g["score"], strict=True)) for m, g in s.groupby("metric")}


def _plackett_luce(scores, y):
    import torch

    order = torch.argsort(y, descending=True)
    s = scores[order]
    suffix = torch.logcumsumexp(s.flip(0), 0).flip(0)
    return (suffix - s).mean()


def _pairwise(scores, y):
    import torch

    diff_y = y[:, None] - y[None, :]
    diff_s = scores[:, None] - scores[None, :]
    mask = diff_y > 0
    if not mask.any():
        return scores.sum() * 0.0
    return torch.nn.functional.softplus(-diff_s[mask]).mean()


def _episode(ctx: Context, cfg: RankerConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Arrays of one episode: a candidate subset with hidden history and dropped tokens."""
    n = len(ctx.models)
    k = int(rng.integers(min(cfg.min_candidates, n), min(cfg.max_candidates, n) + 1))
    idx = rng.choice(n, size=k, replace=False)
    hist = ctx.hist[idx]
    hist_pad = ctx.hist_pad[idx] | (rng.random(ctx.hist_pad[idx].shape) < cfg.history_drop)
    hist_pad[rng.random(k) < cfg.cold_rate] = True
    # the summary is recomputed from the history that is left visible
    card = ctx.card[idx] + 0.5 if ctx.card is not None else [None] * k
    summary = np.stack(
        [
            F.summary_vector(
                hist[i, ~hist_pad[i], 0] + 0.5,
                cfg.prior,
                F.history_weights(hist[i, ~hist_pad[i]], cfg.prior),
                card[i],
                cfg.card_shrink,
            )
            for i in range(k)
        ]
    )
    if ctx.card is not None:  # no visible history: the card prior, as a cold model gets
        summary[:, 0] = np.where(summary[:, 1] > 0, summary[:, 0], ctx.card[idx])
    feat_pad = ctx.feat_pad[idx].copy()
    if rng.random() < cfg.feature_drop:
        feat_pad[:] = True
    return {
        "model_x": ctx.model_x[idx],
        "summary": summary,
        "task_x": np.repeat(F.task_vector(ctx.task)[None], k, axis=0),
        "hist": hist,
        "hist_pad": hist_pad,
        "feats": ctx.feats[idx],
        "feat_pad": feat_pad,
        "y": ctx.y[idx].astype(np.float32),
    }


def _pad_to(a: np.ndarray, length: int, value) -> np.ndarray:
    if a.shape[1] == length:
        return a
    shape = (a.shape[0], length - a.shape[1], *a.shape[2:])
    return np.concatenate([a, np.full(shape, value, dtype=a.dtype)], axis=1)


def _collate(episodes: list[dict[str, np.ndarray]]):
    """One batch of all candidates of several episodes (candidates are scored independently)."""
    import torch

    h = max(e["hist"].shape[1] for e in episodes)
    f = max(e["feats"].shape[1] for e in episodes)
    cat = {
        "model_x": np.concatenate([e["model_x"] for e in episodes]),
        "summary": np.concatenate([e["summary"] for e in episodes]),
        "task_x": np.concatenate([e["task_x"] for e in episodes]),
        "hist": np.concatenate([_pad_to(e["hist"], h, 0.0) for e in episodes]),
        "hist_pad": np.concatenate([_pad_to(e["hist_pad"], h, True) for e in episodes]),
        "feats": np.concatenate([_pad_to(e["feats"], f, 0.0) for e in episodes]),
        "feat_pad": np.concatenate([_pad_to(e["feat_pad"], f, True) for e in episodes]),
    }
    inputs = tuple(torch.from_numpy(np.ascontiguousarray(cat[k])) for k in _INPUTS)
    sizes = [len(e["y"]) for e in episodes]
    ys = [torch.from_numpy(e["y"]) for e in episodes]
    return inputs, sizes, ys


_INPUTS = ("model_x", "summary", "task_x", "hist", "hist_pad", "feats", "feat_pad")


WARMUP_STEPS = 20


def fit(
    contexts: list[Context],
    config: RankerConfig,
    *,
    seed: int = 0,
    meta: dict | None = None,
    checkpoints: dict[int, Callable[[SpiderEnsemble], None]] | None = None,
) -> SpiderEnsemble:
    """Train an ensemble on training contexts; deterministic for a seed.

    The learning rate warms up for `WARMUP_STEPS` and then stays constant, so the model after
    `s` steps is the same whether training stops there or goes on: `checkpoints` maps a step to a
    callback that sees the (first member only) model at that step; cross-validation of the number
    of steps uses one run.
    """
    import torch

    if not contexts:
        from hf_spider.errors import DatasetError

        raise DatasetError("no training target with at least 3 usable records", hint="add records folders")
    torch.manual_seed(seed)
    model = SpiderEnsemble(config=config.to_dict(), meta=meta or {})
    loss_fn = _pairwise if config.loss == "pairwise" else _plackett_luce
    for member_index, member in enumerate(model.members):
        rng = np.random.default_rng([seed, member_index])
        torch.manual_seed(seed * 1000 + member_index)
        opt = torch.optim.AdamW(member.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / WARMUP_STEPS))
        if checkpoints and member_index == 0 and 0 in checkpoints:
            member.eval()  # step 0: the zero-initialised residual, i.e. the prior alone
            checkpoints[0](model)
        member.train()
        for step in range(1, config.steps + 1):
            episodes = [
                _episode(contexts[int(rng.integers(len(contexts)))], config, rng)
                for _ in range(config.episodes_per_step)
            ]
            inputs, sizes, ys = _collate(episodes)
            scores = member(*inputs).split(sizes)
            loss = sum(loss_fn(s, y) for s, y in zip(scores, ys, strict=True)) / len(sizes)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(member.parameters(), 1.0)
            opt.step()
            sched.step()
            if checkpoints and member_index == 0 and step in checkpoints:
                member.eval()
                checkpoints[step](model)
                member.train()
        member.eval()
    model.eval()
    return model


def score_context(model: SpiderEnsemble, ctx: Context, *, use_features: bool = True) -> np.ndarray:
    """Scores of a context's candidates (higher is better).

    Candidates are scored in groups of similar history length, each with its history tokens cut to
    the group's longest: padded tokens are masked, so the scores are those of one padded batch, but
    thousands of never-fine-tuned Hub models (no history) do not pay for the longest history.
    """
    import torch

    if not ctx.models:
        return np.zeros(0)
    t = torch.from_numpy
    feat_pad = ctx.feat_pad if use_features else np.ones_like(ctx.feat_pad)
    task_x = t(F.task_vector(ctx.task))
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
    from hf_spider.ranker.cold import damp_cold_residual

    return damp_cold_residual(model, ctx, out)


STAGE2_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def consensus_of(z: np.ndarray, have: np.ndarray) -> np.ndarray:
    """Per candidate (row), the mean of the z-scores it has (`have`), 0 where it has none."""
    z = np.where(have, np.asarray(z, dtype=np.float64), 0.0).reshape(len(have), -1)
    count = np.asarray(have).reshape(len(have), -1).sum(axis=1)
    return np.where(count > 0, z.sum(axis=1) / np.maximum(count, 1), 0.0)


def estimator_consensus(ctx: Context) -> np.ndarray:
    """Per candidate, the mean robust z-score of its estimator tokens (0 where it has none)."""
    return consensus_of(ctx.feats[:, :, 0], ~ctx.feat_pad)


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


def fused_scores(model: SpiderEnsemble, ctx: Context, weight: float, *, tokens: bool = False) -> np.ndarray:
    """Stage 2: the stage-1 score fused with the estimators' consensus by `weight`
    (`select_stage2_weight`); candidates without any estimator score count as the median.

    `tokens=True` lets the network read the estimator tokens too (Model Spider's way). Off by
    default: on the shared records the learned use of those tokens did not carry over to held-out
    targets (benchmarks/ranking.md), while the cross-validated explicit fusion does.
    """
    return fuse(score_context(model, ctx, use_features=tokens), estimator_consensus(ctx), weight)


def target_context(
    records: Records,
    target: str,
    models: list[str],
    train_targets: Iterable[str],
    tokens: Mapping[str, ModelToken],
    *,
    exclude_models: Iterable[str] = (),
    prior: str = "mean",
    card: bool = True,
    card_shrink: float = 0.0,
) -> Context:
    """Context of a held-out target: its candidates with their history on the training targets.

    With `card`, candidates without history get the card prior fitted on the training models.
    """
    modality = records.modality_of(target)
    excluded = set(exclude_models)
    ok = records.perf[(records.perf["modality"] == modality) & ~records.perf["failed"]]
    ok = ok[ok["target"].isin(set(train_targets)) & ~ok["model"].isin(excluded)]
    matrix = ok.pivot_table(index="model", columns="target", values="accuracy")
    pct = percentiles(matrix)
    metas = {t: records.target_meta(t) for t in matrix.columns}
    history = history_from(pct, metas)
    fitted = fit_card_prior(pct, tokens) if card else None
    ctx = build_context(
        records.target_meta(target),
        models,
        tokens,
        history,
        _scores_of(records, target),
        prior=prior,
        card_prior=card_prior_of(fitted, models, tokens) if card else None,
        card_shrink=card_shrink,
    )
    from hf_spider.ranker.cold import familiarity

    ctx.cold_weight = familiarity(fitted, (tokens[m] for m in models))
    return ctx


def select_steps(
    records: Records,
    train_targets: list[str],
    tokens: Mapping[str, ModelToken],
    config: RankerConfig,
    *,
    seed: int = 0,
    exclude_models: Iterable[str] = (),
) -> tuple[int, dict[int, float]]:
    """Number of training steps chosen by leave-one-target-out over the TRAINING targets only.

    Each inner fold holds out one training target, trains one member on the others and scores
    the held-out target at every step count of `config.step_grid` (one run, see `fit`); the step count with
    the best mean tau_w (rank=True) wins. Returns (steps, {steps: mean tau_w}).
    """
    from scipy.stats import weightedtau

    grid, inner_folds = tuple(config.step_grid), config.inner_folds
    excluded = set(exclude_models)
    usable = [
        t
        for t in train_targets
        if len(
            records.perf[
                (records.perf["target"] == t)
                & ~records.perf["failed"]
                & ~records.perf["model"].isin(excluded)
            ]
        )
        >= 3
    ]
    if len(usable) < 3:
        return config.steps, {}
    rng = np.random.default_rng(seed)
    held = sorted(rng.choice(usable, size=min(inner_folds, len(usable)), replace=False).tolist())
    inner_cfg = RankerConfig.from_dict({**config.to_dict(), "ensemble": 1, "steps": max(grid)})
    taus: dict[int, list[float]] = {s: [] for s in grid}
    for i, target in enumerate(held):
        rest = [t for t in usable if t != target]
        modality = records.modality_of(target)
        contexts = training_contexts(
            records,
            modality,
            rest,
            tokens,
            exclude_models=excluded,
            prior=config.prior,
            card_shrink=config.card_shrink,
        )
        rows = records.perf[(records.perf["target"] == target) & ~records.perf["failed"]]
        rows = rows[rows["model"].isin(set(tokens)) & ~rows["model"].isin(excluded)]
        ctx = target_context(
            records,
            target,
            list(rows["model"]),
            rest,
            tokens,
            exclude_models=excluded,
            prior=config.prior,
            card_shrink=config.card_shrink,
        )
        gt = rows["accuracy"].to_numpy()

        def record(model, step_count, ctx=ctx, gt=gt):
            taus[step_count].append(
                float(weightedtau(gt, score_context(model, ctx, use_features=False)).statistic)
            )

        fit(
            contexts,
            inner_cfg,
            seed=seed + 101 * (i + 1),
            checkpoints={s: (lambda m, s=s: record(m, s)) for s in grid},
        )
    means = {s: float(np.mean(v)) for s, v in taus.items() if v}
    best = max(means, key=lambda s: (round(means[s], 4), -s))
    logger.info(
        "inner CV over %s: mean tau_w by steps %s -> %d",
        held,
        {k: round(v, 3) for k, v in means.items()},
        best,
    )
    return best, means


def _loto_priors(
    records: Records,
    train_targets: list[str],
    excluded: set[str],
    tokens: Mapping[str, ModelToken] | None,
    choices: list[tuple[str, float]],
):
    """Leave-one-target-out over the training targets: yields (held-out target, its accuracies,
    {choice: prior of each of its models computed from the other targets})."""
    ok = records.perf[~records.perf["failed"] & records.perf["target"].isin(set(train_targets))]
    ok = ok[~ok["model"].isin(excluded)]
    if tokens is not None:
        ok = ok[ok["model"].isin(set(tokens))]
    matrix = ok.pivot_table(index="model", columns="target", values="accuracy")
    metas = {t: records.target_meta(t) for t in matrix.columns}
    for held in matrix.columns:
        gt = matrix[held].dropna()
        pct_all = percentiles(matrix.drop(columns=held))
        pct = pct_all.reindex(gt.index)
        if len(gt) < 3 or pct.shape[1] == 0:
            continue
        card = {}
        if tokens is not None and any(k > 0 for _, k in choices):
            card = card_prior_of(fit_card_prior(pct_all, tokens), list(gt.index), tokens)
        weights = np.array([F.class_weight(metas[t], metas[held]) for t in pct.columns])
        values = pct.to_numpy(dtype=np.float64)
        priors = {}
        for prior, k in choices:
            w = weights if prior.endswith("@classes") else np.ones_like(weights)
            priors[(prior, k)] = np.array(
                [
                    F.shrink(
                        F.aggregate(row[np.isfinite(row)], prior, w[np.isfinite(row)]),
                        int(np.isfinite(row).sum()),
                        card.get(m),
                        k,
                    )
                    if np.isfinite(row).any()
                    else card.get(m, 0.5)
                    for m, row in zip(gt.index, values, strict=True)
                ]
            )
        yield held, gt, priors


def prior_choices(*, with_card: bool) -> list[tuple[str, float]]:
    """(aggregate, card shrink) pairs the prior is chosen among, simplest first; without card
    tokens only the aggregates."""
    shrinks = F.CARD_SHRINKS if with_card else (0.0,)
    return [(p, k) for k in shrinks for p in F.PRIORS]


def prior_label(choice: tuple[str, float]) -> str:
    """`median@classes+card3` for ("median@classes", 3.0); the aggregate alone without card shrink."""
    prior, k = choice
    return f"{prior}+card{k:g}" if k else prior


def select_prior(
    records: Records,
    train_targets: list[str],
    *,
    exclude_models: Iterable[str] = (),
    tokens: Mapping[str, ModelToken] | None = None,
) -> tuple[dict[str, Any], dict[str, float]]:
    """Collaborative prior chosen on the TRAINING targets only: the aggregate (`F.PRIORS`: mean or
    median percentile, plain or weighted by how close each earlier target's class count is to the
    task's) and, with `tokens`, how many pseudo-targets of the card prior it is mixed with
    (`F.CARD_SHRINKS`).

    Each training target in turn is held out and ranked by the prior computed on the others (the
    card prior refitted without it); no network is trained, so every training target serves as a
    fold. Ties go to the simpler choice. Returns ({"prior": ..., "card_shrink": ...}, {label: mean tau_w}).
    """
    from scipy.stats import weightedtau

    choices = prior_choices(with_card=tokens is not None)
    taus: dict[tuple[str, float], list[float]] = {c: [] for c in choices}
    for _, gt, priors in _loto_priors(records, train_targets, set(exclude_models), tokens, choices):
        for c in choices:
            taus[c].append(float(weightedtau(gt.to_numpy(), priors[c]).statistic))
    means = {c: float(np.mean(v)) for c, v in taus.items() if v}
    if not means:
        return {"prior": "mean", "card_shrink": 0.0}, {}
    best = max(means, key=lambda c: (round(means[c], 4), -choices.index(c)))
    return {"prior": best[0], "card_shrink": best[1]}, {prior_label(c): v for c, v in means.items()}


def select_stage2_weight(
    records: Records,
    train_targets: list[str],
    choice: Mapping[str, Any],
    *,
    exclude_models: Iterable[str] = (),
    tokens: Mapping[str, ModelToken] | None = None,
) -> tuple[float | None, dict[float, float]]:
    """Weight of the estimators' consensus in stage 2, chosen on the TRAINING targets that have
    transferability scores: each is held out, its models ranked by the chosen prior (computed on the
    other targets) fused with its scores (`fuse`), for each weight of `STAGE2_WEIGHTS`.
    Returns (None, {}) when no training target has scores."""
    from scipy.stats import weightedtau

    scored = set(records.scores["target"]) if len(records.scores) else set()
    if not scored & set(train_targets):
        return None, {}
    c = (choice.get("prior", "mean"), float(choice.get("card_shrink", 0.0)))
    taus: dict[float, list[float]] = {w: [] for w in STAGE2_WEIGHTS}
    for held, gt, priors in _loto_priors(records, train_targets, set(exclude_models), tokens, [c]):
        if held not in scored:
            continue
        # the consensus as stage 2 computes it (`estimator_consensus`): clipped robust z-scores,
        # averaged over the metrics each model has
        raw = np.array(
            [[s.get(m, np.nan) for s in _scores_of(records, held).values()] for m in gt.index],
            dtype=np.float64,
        ).reshape(len(gt), -1)
        z = np.column_stack([np.clip(F.robust_z(col), -4.0, 4.0) for col in raw.T]) if raw.shape[1] else raw
        consensus = consensus_of(z, np.isfinite(raw))
        for w in STAGE2_WEIGHTS:
            taus[w].append(float(weightedtau(gt.to_numpy(), fuse(priors[c], consensus, w)).statistic))
    means = {w: float(np.mean(v)) for w, v in taus.items() if v}
    if not means:
        return None, {}
    return max(means, key=lambda w: (round(means[w], 4), -w)), means
