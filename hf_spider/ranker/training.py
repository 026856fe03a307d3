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


def fit_card_prior(pct: pd.DataFrame, tokens: Mapping[str, ModelToken]):
    """Ridge regression from a model's card token to its mean percentile on the given targets.

    `pct` holds percentiles on TRAINING targets only; the ridge penalty is chosen by
    leave-one-model-out (efficient LOO of `RidgeCV`) over those models. Returns None when there
    are fewer than 5 models with history. The prediction serves as the prior of models without
    history (cold start, never-fine-tuned Hub models) in place of the neutral 0.5.
    """
    from sklearn.linear_model import RidgeCV

    mean = pct.mean(axis=1).dropna()
    mean = mean[[m in tokens for m in mean.index]]
    if len(mean) < 5:
        return None
    x = np.stack([tokens[m].vector() for m in mean.index]).astype(np.float64)
    return RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(x, mean.to_numpy(dtype=np.float64))


def card_prior_of(ridge, models: Iterable[str], tokens: Mapping[str, ModelToken]) -> dict[str, float]:
    """`{model: predicted mean percentile}` from the card prior (empty without a fitted prior)."""
    models = list(models)
    if ridge is None or not models:
        return {}
    pred = ridge.predict(np.stack([tokens[m].vector() for m in models]).astype(np.float64))
    return {m: float(np.clip(p, 0.0, 1.0)) for m, p in zip(models, pred, strict=True)}


def out_of_fold_card_prior(
    pct: pd.DataFrame, tokens: Mapping[str, ModelToken], folds: int = 5, seed: int = 0
) -> dict[str, float]:
    """Card prior of each training model predicted by a ridge fitted without it (k-fold over models),
    so that training episodes that hide a model's history see a prior as noisy as a cold model's."""
    models = [m for m in pct.index if m in tokens and pct.loc[m].notna().any()]
    out: dict[str, float] = {}
    if len(models) < 2 * folds:
        return out
    order = np.random.default_rng(seed).permutation(len(models))
    for k in range(folds):
        held = [models[i] for i in order[k::folds]]
        ridge = fit_card_prior(pct.drop(index=held), tokens)
        out.update(card_prior_of(ridge, held, tokens))
    return out


def percentiles(matrix: pd.DataFrame) -> pd.DataFrame:
    """Each column's values as percentiles in [0, 1] among the models that have a value there."""
    out = pd.DataFrame(index=matrix.index, columns=matrix.columns, dtype=float)
    for col in matrix.columns:
        c = matrix[col].dropna()
        if len(c) >= 2:
            out.loc[c.index, col] = (rankdata(c.to_numpy()) - 1) / (len(c) - 1)
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
) -> Context:
    """Arrays for ranking `models` on `task`.

    Args:
        task: task metadata (`hf_spider.tasks.Task.metadata` shape, plus `name` and `modality`).
        models: candidate ids; each must be in `tokens`.
        history: the candidates' percentiles on earlier targets (models absent have none).
        estimator_scores: `{metric: {model: score}}` of this task (stage 2); z-scored over the
            candidates that have them.
        card_prior: `{model: percentile}` predicted from cards (`fit_card_prior`); the prior of
            candidates without history (else the neutral 0.5).
    """
    card_prior = card_prior or {}
    history = history or {}
    n = len(models)
    model_x = np.stack([F.model_vector(tokens[m], task) for m in models]) if n else np.zeros((0, F.MODEL_DIM))
    h_max = max((len(history.get(m, ())) for m in models), default=0)
    hist = np.zeros((n, h_max, F.HISTORY_DIM), dtype=np.float32)
    hist_pad = np.ones((n, h_max), dtype=bool)
    summary = np.zeros((n, F.SUMMARY_DIM), dtype=np.float32)
    for i, m in enumerate(models):
        items = history.get(m, [])
        for j, (meta, p) in enumerate(items):
            hist[i, j] = F.history_vector(p, meta, task)
            hist_pad[i, j] = False
        summary[i] = F.summary_vector([p for _, p in items], prior)
        if not items and m in card_prior:
            summary[i, 0] = card_prior[m] - 0.5
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
        ctx = build_context(metas[t], list(col.index), tokens, hist, scores, col.to_numpy(), prior)
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
    summary = np.stack([F.summary_vector(hist[i, ~hist_pad[i], 0] + 0.5, cfg.prior) for i in range(k)])
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
    """Scores of a context's candidates (higher is better)."""
    import torch

    if not ctx.models:
        return np.zeros(0)
    t = torch.from_numpy
    feat_pad = ctx.feat_pad if use_features else np.ones_like(ctx.feat_pad)
    with torch.no_grad():
        out = model(
            t(ctx.model_x),
            t(ctx.summary),
            t(F.task_vector(ctx.task)),
            t(ctx.hist),
            t(ctx.hist_pad),
            t(ctx.feats),
            t(feat_pad),
        )
    return out.numpy().astype(np.float64)


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
    card_prior = card_prior_of(fit_card_prior(pct, tokens), models, tokens) if card else None
    return build_context(
        records.target_meta(target),
        models,
        tokens,
        history,
        _scores_of(records, target),
        prior=prior,
        card_prior=card_prior,
    )


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
            records, modality, rest, tokens, exclude_models=excluded, prior=config.prior
        )
        rows = records.perf[(records.perf["target"] == target) & ~records.perf["failed"]]
        rows = rows[rows["model"].isin(set(tokens)) & ~rows["model"].isin(excluded)]
        ctx = target_context(
            records, target, list(rows["model"]), rest, tokens, exclude_models=excluded, prior=config.prior
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


def select_prior(
    records: Records, train_targets: list[str], *, exclude_models: Iterable[str] = ()
) -> tuple[str, dict[str, float]]:
    """Collaborative prior (mean or median percentile) chosen on the TRAINING targets only.

    Each training target in turn is held out and ranked by the prior computed on the others;
    no network is trained, so every training target serves as a fold.
    """
    from scipy.stats import weightedtau

    excluded = set(exclude_models)
    ok = records.perf[~records.perf["failed"] & records.perf["target"].isin(set(train_targets))]
    ok = ok[~ok["model"].isin(excluded)]
    matrix = ok.pivot_table(index="model", columns="target", values="accuracy")
    taus: dict[str, list[float]] = {p: [] for p in F.PRIORS}
    for held in matrix.columns:
        gt = matrix[held].dropna()
        pct = percentiles(matrix.drop(columns=held)).reindex(gt.index)
        if len(gt) < 3 or pct.shape[1] == 0:
            continue
        for prior in F.PRIORS:
            agg = pct.median(axis=1) if prior == "median" else pct.mean(axis=1)
            taus[prior].append(float(weightedtau(gt.to_numpy(), agg.fillna(0.5).to_numpy()).statistic))
    means = {p: float(np.mean(v)) for p, v in taus.items() if v}
    if not means:
        return "mean", {}
    best = max(means, key=lambda p: (round(means[p], 4), p == "mean"))
    return best, means
