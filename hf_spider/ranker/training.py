"""Training: meta-training contexts, episodes, the Plackett-Luce loss, `fit` and `train_ranker`.

A context is one training dataset: its candidates' tokens, their history on the *other* training
datasets, the task token, optional estimator tokens and the fine-tuned accuracies. An episode
sub-samples a candidate set of one context (as Model Spider does), hides the history of some
candidates (so the card-only path that serves never-fine-tuned Hub models is trained too), drops
some history and estimator tokens, and scores the set with a listwise Plackett-Luce loss.

`train_ranker` is the whole of `hf-spider train`: the ranker's parts chosen by cross-validation
over the training datasets (`selection`), then trained on all of them. The card prior (a ridge
from a model's card to its mean percentile, the prior of models without history) lives here too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import features as F
from hf_spider.ranker import priors as P
from hf_spider.ranker.inference import Context, build_context, history_percentiles, scores_of
from hf_spider.ranker.model import RankerConfig, SpiderEnsemble
from hf_spider.ranker.records import Records

if TYPE_CHECKING:
    from hf_spider.ranker.ranker import Ranker

logger = logging.getLogger("hf_spider.ranker")

# re-exported for callers of the earlier single-module layout
percentiles = P.percentiles


@dataclass
class CardPrior:
    """Ridge regression from a model's card to its mean percentile on the training targets.

    Inputs: the card token (`ModelToken.vector()`) and binary card words (`F.card_words`: author,
    model type, architecture, training datasets, base models) of a vocabulary made of the words
    that at least `MIN_WORD_COUNT` training models share. Serialised as plain numbers and strings
    (`to_dict` / `from_dict`), so the shipped weights need no pickle.
    """

    coef: np.ndarray
    intercept: float
    vocab: list[str]
    alpha: float = 1.0

    MIN_WORD_COUNT = 2

    def design(self, tokens: Iterable[ModelToken], vectors: np.ndarray | None = None) -> np.ndarray:
        return _card_design(list(tokens), {w: i for i, w in enumerate(self.vocab)}, vectors)

    def predict(self, tokens: Iterable[ModelToken], vectors: np.ndarray | None = None) -> np.ndarray:
        """Predicted mean percentile in [0, 1]; `vectors`: the tokens' `vector()` rows if at hand."""
        tokens = list(tokens)
        if not tokens:
            return np.zeros(0)
        return np.clip(self.design(tokens, vectors) @ self.coef + self.intercept, 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": [round(float(c), 6) for c in self.coef],
            "intercept": round(float(self.intercept), 6),
            "vocab": list(self.vocab),
            "alpha": float(self.alpha),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CardPrior:
        return cls(
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
            list(data.get("vocab", [])),
            float(data.get("alpha", 1.0)),
        )


def _card_design(
    tokens: list[ModelToken], index: Mapping[str, int], vectors: np.ndarray | None = None
) -> np.ndarray:
    """[token vector | card-word indicators] rows of the card prior."""
    from hf_spider.catalog._token import TOKEN_DIM

    x = np.zeros((len(tokens), TOKEN_DIM + len(index)))
    x[:, :TOKEN_DIM] = F.token_matrix(tokens, vectors)
    rows, cols = [], []
    for i, t in enumerate(tokens):
        for w in F.card_words(t):
            j = index.get(w)
            if j is not None:
                rows.append(i)
                cols.append(TOKEN_DIM + j)
    x[rows, cols] = 1.0
    return x


def fit_card_prior(pct: pd.DataFrame, tokens: Mapping[str, ModelToken]) -> CardPrior | None:
    """The card prior fitted on the models of `pct` (percentiles on TRAINING targets only).

    The ridge penalty is chosen by leave-one-model-out (efficient LOO of `RidgeCV`) over those
    models. Returns None when there are fewer than 5 models with history. The prediction serves as
    the prior of models without history (cold start, never-fine-tuned Hub models) in place of the
    neutral 0.5.
    """
    from collections import Counter

    from sklearn.linear_model import RidgeCV

    mean = pct.mean(axis=1).dropna()
    mean = mean[[m in tokens for m in mean.index]]
    if len(mean) < 5:
        return None
    train = [tokens[m] for m in mean.index]
    counts = Counter(w for t in train for w in F.card_words(t))
    vocab = sorted(w for w, c in counts.items() if c >= CardPrior.MIN_WORD_COUNT)
    x = _card_design(train, {w: i for i, w in enumerate(vocab)})
    ridge = RidgeCV(alphas=np.logspace(-2, 3, 12)).fit(x, mean.to_numpy(dtype=np.float64))
    return CardPrior(ridge.coef_.astype(np.float64), float(ridge.intercept_), vocab, float(ridge.alpha_))


def card_prior_of(
    prior: CardPrior | None, models: Iterable[str], tokens: Mapping[str, ModelToken]
) -> dict[str, float]:
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


def train_ranker(
    records: Records,
    *,
    config: RankerConfig | None = None,
    seed: int = 0,
    tune: bool = True,
    catalog: Any = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Ranker, dict[str, Any]]:
    """Meta-train a ranker on every usable dataset of `records` (all modalities).

    Args:
        records: cleaned fine-tuning records (`load_records`).
        config: architecture and training settings (default `RankerConfig()`).
        seed: same seed, same weights (training runs on one CPU thread: multi-threaded reductions
            round differently with the core count).
        tune: choose the parts per modality by cross-validation over the training datasets
            (`selection.select_parts`: prior, stage-2 weight, learned residual's steps or none);
            False keeps `config` as given.
        catalog: catalog of model tokens (default: the embedded one; False: none).
        progress: called with a short line at each phase.

    Returns:
        (ranker, info): info holds the parts chosen per modality with their cross-validated
        figures, the datasets used and where the model tokens came from.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return _train_ranker(records, config or RankerConfig(), seed, tune, catalog, progress)
    finally:
        torch.set_num_threads(threads)


def _train_ranker(
    records: Records,
    config: RankerConfig,
    seed: int,
    tune: bool,
    catalog: Any,
    progress: Callable[[str], None] | None,
) -> tuple[Ranker, dict[str, Any]]:
    from hf_spider.ranker.ranker import Ranker, token_schema
    from hf_spider.ranker.selection import select_parts
    from hf_spider.ranker.tokens import tokens_for

    tokens, sources = tokens_for(records, catalog=catalog)
    usable = records.datasets[~records.datasets["failed"]]
    by_modality = {m: sorted(g["dataset"]) for m, g in usable.groupby("modality")}
    info: dict[str, Any] = {"seed": seed, "token_sources": sources, "datasets": by_modality, "chosen": {}}
    if tune:
        parts: dict[str, dict[str, Any]] = {}
        steps_cv: dict[str, dict[str, float]] = {}
        for modality, datasets in by_modality.items():
            if progress:
                progress(f"choosing the {modality} ranker's parts by cross-validation")
            chosen_config, chosen = select_parts(records, datasets, tokens, config, seed=seed)
            info["chosen"][modality] = chosen
            parts[modality] = {
                **P.PriorChoice.from_config(chosen_config).to_config(),
                "residual": chosen_config.steps > 0,
            }
            if chosen["stage2_weight"] is not None:
                parts[modality]["stage2_weight"] = chosen_config.stage2_weight
                parts[modality]["stage2_estimators"] = list(chosen_config.stage2_estimators)
            if chosen_config.steps > 0:
                steps_cv[modality] = chosen["cv"]["steps"]
        # one network serves every modality: its step count is the best mean over the modalities
        # that keep a learned residual (0 when none does)
        steps = 0
        if steps_cv:
            grid = set.intersection(*(set(cv) for cv in steps_cv.values())) - {"0"}
            if grid:
                mean = {s: float(np.mean([cv[s] for cv in steps_cv.values()])) for s in grid}
                steps = int(max(mean, key=lambda s: (round(mean[s], 4), -int(s))))
        config = RankerConfig.from_dict({**config.to_dict(), "steps": steps, "by_modality": parts})
    info["config"] = config.to_dict()
    contexts: list[Context] = []
    history: dict[str, dict[str, float]] = {}
    metas: dict[str, dict] = {}
    card_prior: dict[str, dict[str, Any]] = {}
    for modality, datasets in by_modality.items():
        part = config.for_modality(modality)
        if config.steps > 0 and config.residual_for(modality):
            contexts += training_contexts(
                records,
                modality,
                datasets,
                tokens,
                prior=part.prior,
                card_shrink=part.card_shrink,
                match_bonus=part.match_bonus,
            )
        pct = history_percentiles(records, modality, datasets)
        for model, row in pct.iterrows():
            history.setdefault(str(model), {}).update(
                {t: round(float(v), 4) for t, v in row.items() if v == v}
            )
        metas.update({t: records.dataset_meta(t) for t in pct.columns})
        fitted = fit_card_prior(pct, tokens)
        if fitted is not None:
            card_prior[modality] = fitted.to_dict()
    if progress:
        progress(f"training the learned residual on {len(contexts)} datasets ({config.steps} steps)")
    meta = {**token_schema(), "trained_on": {m: len(t) for m, t in by_modality.items()}, "seed": seed}
    model = fit(contexts, config, seed=seed, meta=meta) if contexts else _untrained(config, meta, seed)
    return Ranker(model, history=history, datasets=metas, card_prior=card_prior), info


def _untrained(config: RankerConfig, meta: dict, seed: int) -> SpiderEnsemble:
    """The network at 0 steps (zero-initialised residual: the prior alone), for a ranker whose
    learned residual cross-validation turned off in every modality."""
    import torch

    torch.manual_seed(seed)
    model = SpiderEnsemble(config=config.to_dict(), meta=meta)
    model.eval()
    return model
