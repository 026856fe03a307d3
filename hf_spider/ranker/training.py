"""Training: meta-training contexts, episodes, the Plackett-Luce loss and `fit`.

A context is one training dataset: its candidates' tokens, their history on the *other* training
datasets, the task token, optional estimator tokens and the fine-tuned accuracies. An episode
sub-samples a candidate set of one context (as Model Spider does), hides the history of some
candidates (so the card-only path that serves never-fine-tuned Hub models is trained too), drops
some history and estimator tokens, and scores the set with a listwise Plackett-Luce loss.

`trainer.train_ranker` (`hf-spider train`) chooses the ranker's parts (`selection`) and calls
`fit`. The card prior of models without history is `cold`'s; `fit_card_prior` / `card_prior_of`
are its entry points here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import cold
from hf_spider.ranker import features as F
from hf_spider.ranker import priors as P

# the card prior's parts live in cold.py (re-exported: cold must not import training)
from hf_spider.ranker.cold import CardPrior, fit_ridge_card_prior  # noqa: F401
from hf_spider.ranker.inference import Context, build_context, scores_of
from hf_spider.ranker.model import RankerConfig, SpiderEnsemble
from hf_spider.ranker.records import Records

logger = logging.getLogger("hf_spider.ranker")

# re-exported for callers of the earlier single-module layout
percentiles = P.percentiles


def fit_card_prior(pct: pd.DataFrame, tokens: Mapping[str, ModelToken], choice: tuple | None = None):
    """The card prior of models without history, fitted on the models of `pct` (percentiles on
    TRAINING datasets only): a `cold.ColdPrior` (the card ridge where a card is in the training
    population, monotone card facts elsewhere), its `choice` (`cold.COLD_CHOICES`) chosen by
    `cold.select_cold_prior` over those models when not given. None with fewer than 5 models.
    """
    if choice is None:
        choice = cold.choice_for(pct, tokens)
    return cold.fit_for_choice(pct, tokens, choice)


def card_prior_of(prior: Any, models: Iterable[str], tokens: Mapping[str, ModelToken]) -> dict[str, float]:
    """`{model: predicted mean percentile}` from the card prior (empty without a fitted prior)."""
    return P.card_prior_values(prior, models, tokens)


def out_of_fold_card_prior(
    pct: pd.DataFrame, tokens: Mapping[str, ModelToken], folds: int = 5, seed: int = 0
) -> dict[str, float]:
    """Card prior of each training model predicted by a prior fitted without it (k-fold over
    models), so that training episodes that hide a model's history see a prior as noisy as a cold
    model's."""
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


def training_contexts(
    records: Records,
    modality: str,
    datasets: Iterable[str],
    tokens: Mapping[str, ModelToken],
    *,
    exclude_models: Iterable[str] = (),
    use_scores: bool = True,
    prior: str = "mean",
    card: bool = True,
    card_shrink: float = 0.0,
    match_bonus: float = 0.0,
) -> list[Context]:
    """One context per training dataset: its candidates with history on the other training datasets.

    With `card`, each candidate also carries its out-of-fold card prior, used in episodes where its
    history is hidden (as for a cold model).
    """
    datasets = [t for t in datasets if t in set(records.perf["dataset"])]
    excluded = set(exclude_models)
    ok = records.usable()
    ok = ok[ok["modality"] == modality]
    ok = ok[ok["dataset"].isin(datasets) & ~ok["model"].isin(excluded) & ok["model"].isin(set(tokens))]
    matrix = ok.pivot_table(index="model", columns="dataset", values="accuracy")
    pct = P.percentiles(matrix)
    metas = {t: records.dataset_meta(t) for t in matrix.columns}
    oof = out_of_fold_card_prior(pct, tokens) if card else {}
    contexts = []
    for t in matrix.columns:
        col = matrix[t].dropna()
        if len(col) < 3:
            continue
        ctx = build_context(
            metas[t],
            list(col.index),
            tokens,
            P.history_from(pct, metas, exclude=t),
            scores_of(records, t) if use_scores else None,
            col.to_numpy(),
            prior,
            card_prior=oof,
            card_shrink=card_shrink,
            match_bonus=match_bonus,
        )
        ctx.card = np.array([oof.get(m, 0.5) - 0.5 for m in ctx.models], dtype=np.float32)
        contexts.append(ctx)
    return contexts


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
    card = ctx.card[idx] + 0.5 if ctx.card is not None else None
    summary = F.summary_matrix(hist, ~hist_pad, cfg.prior, card, cfg.card_shrink)
    if ctx.card is not None:  # no visible history: the card prior, as a cold model gets
        summary[:, 0] = np.where(summary[:, 1] > 0, summary[:, 0], ctx.card[idx])
    if cfg.match_bonus and ctx.match is not None:
        summary[:, 0] = np.clip(summary[:, 0] + cfg.match_bonus * ctx.match[idx], -0.5, 0.5)
    feat_pad = ctx.feat_pad[idx].copy()
    if rng.random() < cfg.feature_drop:
        feat_pad[:] = True
    return {
        "model_x": ctx.model_x[idx],
        "summary": summary,
        "task_x": np.repeat(F.task_input(ctx.task, cfg.task_data)[None], k, axis=0),
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

        raise DatasetError("no training dataset with at least 3 usable records", hint="add records folders")
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
