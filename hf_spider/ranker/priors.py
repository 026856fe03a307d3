"""Closed-form priors: what a model's fine-tuning history says about a new dataset.

A model's *history* is its accuracy on earlier fine-tuning datasets, turned into a percentile per
dataset (rank among the models fine-tuned there). The priors below aggregate that history without
any training; the ranker's score is one of them plus, where nested cross-validation says so, a
learned residual (`selection`).

- `percentiles`, `zscores`: per-dataset scales of an accuracy matrix (models x datasets).
- `static_scores`: each model's mean z-scored accuracy on the other datasets — no task information
  at all; the floor every ranker must clear (`../shared/data/README.md`).
- `collaborative_scores`: each model's mean percentile on the other datasets.
- `PriorChoice` / `prior_choices` / `prior_values`: the family the ranker's prior is chosen from —
  aggregate (mean, median, or mean of normal scores, which damps single failed runs), earlier
  datasets weighted by class-count similarity or not, the card prior mixed in as pseudo-datasets,
  and a bonus for models whose own training data shares the dataset's name.
- `card_prior_for`: the one place the card prior of models without history (`cold`) is called from;
  where it cannot be checked (`cold.can_place`), such a model sits at the others' median
  (`unknown_placement`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr, ndtri

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import cold
from hf_spider.ranker import features as F
from hf_spider.ranker.cold import percentiles  # one implementation: cold must not import priors

__all__ = [
    "PriorChoice",
    "card_prior_for",
    "collaborative_scores",
    "history_from",
    "match_vector",
    "percentiles",
    "placeable",
    "prior_choices",
    "prior_values",
    "static_scores",
    "unknown_placement",
    "zscores",
]

History = dict[str, list[tuple[dict, float]]]  # model -> [(earlier dataset's metadata, percentile)]


def zscores(matrix: pd.DataFrame) -> pd.DataFrame:
    """Each column z-scored over the models that have a value there (sample standard deviation)."""
    std = matrix.std(axis=0).replace(0.0, np.nan)
    return (matrix - matrix.mean(axis=0)) / std


def static_scores(matrix: pd.DataFrame, models: Iterable[str]) -> np.ndarray:
    """The static baseline: each model's mean z-scored accuracy over the columns of `matrix`
    (the training datasets); NaN for a model without any record there."""
    z = zscores(matrix).mean(axis=1)
    return z.reindex(list(models)).to_numpy(dtype=np.float64)


def collaborative_scores(matrix: pd.DataFrame, models: Iterable[str]) -> np.ndarray:
    """Each model's mean percentile over the columns of `matrix`; NaN without any record there."""
    return percentiles(matrix).mean(axis=1).reindex(list(models)).to_numpy(dtype=np.float64)


def history_from(pct: pd.DataFrame, metas: Mapping[str, dict], *, exclude: str | None = None) -> History:
    """`{model: [(dataset metadata, percentile), ...]}` over the columns of `pct` but `exclude`."""
    hist: History = {}
    cols = [c for c in pct.columns if c != exclude]
    values = pct[cols].to_numpy(dtype=np.float64)
    for model, row in zip(pct.index, values, strict=True):
        items = [(metas[t], float(v)) for t, v in zip(cols, row, strict=True) if np.isfinite(v)]
        if items:
            hist[str(model)] = items
    return hist


@dataclass(frozen=True)
class PriorChoice:
    """One member of the prior family (see the module docstring).

    Attributes:
        aggregate: `F.PRIORS` entry: `mean`, `median`, `gmean` (mean of normal scores), each
            optionally `@classes` (earlier datasets weighted by class-count similarity).
        card_shrink: pseudo-datasets of the card prior mixed into a model's history (0 = none).
        match_bonus: added (on the percentile scale) to models whose own training data shares the
            dataset's name (`F.source_match`).
    """

    aggregate: str = "mean"
    card_shrink: float = 0.0
    match_bonus: float = 0.0

    @property
    def label(self) -> str:
        out = self.aggregate
        if self.card_shrink:
            out += f"+card{self.card_shrink:g}"
        if self.match_bonus:
            out += f"+match{self.match_bonus:g}"
        return out

    def to_config(self) -> dict[str, Any]:
        return {"prior": self.aggregate, "card_shrink": self.card_shrink, "match_bonus": self.match_bonus}

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | Any) -> PriorChoice:
        get = config.get if isinstance(config, Mapping) else lambda k, d=None: getattr(config, k, d)
        return cls(
            str(get("prior", "mean")),
            float(get("card_shrink", 0.0) or 0.0),
            float(get("match_bonus", 0.0) or 0.0),
        )


def prior_choices(*, with_card: bool) -> list[PriorChoice]:
    """The prior family, simplest first (ties in selection go to the earlier one)."""
    shrinks = F.CARD_SHRINKS if with_card else (0.0,)
    return [PriorChoice(p, k, b) for b in F.MATCH_BONUSES for k in shrinks for p in F.PRIORS]


def prior_values(
    pct: np.ndarray,
    weights: np.ndarray,
    card: np.ndarray,
    match: np.ndarray,
    choice: PriorChoice,
) -> np.ndarray:
    """The prior of `n` models from their percentiles `pct` [n, d] on `d` earlier datasets (NaN where
    none), the class-similarity weights of those datasets [d], their card prior [n] (NaN where
    none) and their name match [n] (0/1). Percentile scale: 0.5 is neutral; models without history
    get their card prior, else `unknown_placement` of the others."""
    pct = np.asarray(pct, dtype=np.float64)
    have = np.isfinite(pct)
    n = have.sum(axis=1)
    w = (
        np.asarray(weights, dtype=np.float64)
        if choice.aggregate.endswith("@classes")
        else np.ones(pct.shape[1])
    )
    if choice.aggregate.startswith("median"):
        centre = _row_medians(pct, have, w)
    else:
        x = np.where(have, pct, 0.5)
        if choice.aggregate.startswith("gmean"):
            x = ndtri(np.clip(x, F.GMEAN_CLIP, 1.0 - F.GMEAN_CLIP))
        ww = have * w[None, :]
        total = ww.sum(axis=1)
        centre = np.where(total > 0, (x * ww).sum(axis=1) / np.maximum(total, 1e-12), 0.0)
        if choice.aggregate.startswith("gmean"):
            centre = ndtr(centre)
    card = np.asarray(card, dtype=np.float64)
    has_card = np.isfinite(card)
    if choice.card_shrink > 0:
        mix = has_card & (n > 0)
        centre = np.where(
            mix,
            (n * centre + choice.card_shrink * np.nan_to_num(card))
            / np.maximum(n + choice.card_shrink, 1e-12),
            centre,
        )
    out = np.where(n > 0, centre, np.where(has_card, card, unknown_placement(centre[n > 0], card[has_card])))
    return np.clip(out + choice.match_bonus * np.asarray(match, dtype=np.float64), 0.0, 1.0)


def unknown_placement(known: np.ndarray, by_card: np.ndarray = ()) -> float:
    """Where a model with neither history nor card prior is placed: at the median prior of the
    models placed, by their history `known` or their card `by_card` (as every baseline fills a
    model it cannot score), 0.5 without any. (It was the median of the models with history alone:
    in a catalog of one model with history and many cards, that one model's score.)"""
    values = np.concatenate([np.asarray(known, dtype=np.float64), np.asarray(by_card, dtype=np.float64)])
    values = values[np.isfinite(values)]
    return float(np.median(values)) if len(values) else 0.5


def _row_medians(pct: np.ndarray, have: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`F.aggregate(row, "median...", weights)` of every row at once (0.5 where a row has no
    value): the plain median where a row's weights are all equal, else the weighted median (the
    first sorted value whose cumulative weight reaches half the total)."""
    out = np.full(len(pct), 0.5)
    rows = have.any(axis=1)
    if not rows.any():
        return out
    with np.errstate(all="ignore"):
        plain = np.nanmedian(np.where(have, pct, np.nan)[rows], axis=1)
    ww = np.where(have, w[None, :], np.nan)[rows]
    equal = np.isclose(np.nanmax(ww, axis=1), np.nanmin(ww, axis=1), rtol=1e-5, atol=1e-8)
    order = np.argsort(np.where(have, pct, np.inf), axis=1, kind="stable")[rows]
    values = np.take_along_axis(pct[rows], order, axis=1)
    cum = np.cumsum(np.take_along_axis(np.where(have, w[None, :], 0.0)[rows], order, axis=1), axis=1)
    pick = np.argmax(cum >= cum[:, -1:] / 2.0, axis=1)
    weighted = values[np.arange(len(values)), pick]
    out[rows] = np.where(equal, plain, weighted)
    return out


def match_vector(
    models: Iterable[str], tokens: Mapping[str, ModelToken], meta: Mapping[str, Any]
) -> np.ndarray:
    """1.0 for each model whose own training data shares the dataset's name (`F.source_match`)."""
    memo: dict[tuple, float] = {}
    out = []
    for m in models:
        t = tokens.get(m)
        if t is None:
            out.append(0.0)
            continue
        key = tuple(t.datasets)
        if key not in memo:
            memo[key] = F.source_match(t, meta)
        out.append(memo[key])
    return np.asarray(out, dtype=np.float64)


def card_prior_for(
    pct: pd.DataFrame, tokens: Mapping[str, ModelToken], models: Iterable[str]
) -> dict[str, float]:
    """`{model: card prior}` fitted on the models with history in `pct` (training datasets only),
    predicted for `models`: the prior of a model without history. The card prior itself is
    `cold`'s (its kind chosen once per training set, `cold.choice_for`); this is the one place the
    ranker's priors call it from. A model without history gets one only where `cold.can_place`."""
    prior = cold.fit_for_choice(pct, tokens, cold.choice_for(pct, tokens))
    return placeable(prior, card_prior_values(prior, models, tokens), pct.index[pct.notna().any(axis=1)])


def placeable(prior: Any, values: dict[str, float], with_history: Iterable[str]) -> dict[str, float]:
    """`values` (`prior`'s card priors) less those of models not in `with_history`, unless the
    prior may place models without history (`cold.ColdPrior.places_cold`)."""
    if getattr(prior, "places_cold", True):
        return values
    keep = set(with_history)
    return {m: v for m, v in values.items() if m in keep}


def card_prior_values(
    prior: Any, models: Iterable[str], tokens: Mapping[str, ModelToken], vectors: np.ndarray | None = None
) -> dict[str, float]:
    """`{model: predicted mean percentile}` from a fitted card prior (empty without one); none for
    a card the prior cannot place (NaN: it states no fact the prior reads). `vectors`: the
    models' `ModelToken.vector()` rows, when at hand."""
    models = list(models)
    if prior is None or not models:
        return {}
    pred = prior.predict([tokens[m] for m in models], vectors)
    return {m: float(p) for m, p in zip(models, pred, strict=True) if np.isfinite(p)}
