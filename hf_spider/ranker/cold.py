"""The prior of a model without fine-tuning history, from card facts that mean the same on any catalog.

A model nobody has fine-tuned on a known target is scored from its card. The ridge of
`training.CardPrior` reads the whole card token plus card words (author, architecture, datasets,
...); on the training population those carry a lot, but most of them do not exist on another
catalog (a new author, a new library, a family never seen), and its linear extrapolation there is
arbitrary. `FactsPrior` reads only facts whose meaning does not depend on the catalog:

- `log10_params`: the parameter count;
- `upstream`: the best accuracy the card reports on an upstream benchmark every catalog shares
  (ImageNet for image models); a narrow fine-tune's accuracy on its own small dataset is not one;
- `narrow`: whether the model is a fine-tune to a small label set (a classification head with
  fewer than `NARROW_LABELS` labels), which usually transfers worse than its base;
- `family`: the model family, as a shrunk offset (unknown families get none).

Relations are monotone: the coefficient of parameters and of upstream accuracy is never negative
and that of `narrow` never positive, so more upstream accuracy never lowers a score, all else
equal. The fitted model is shrunk towards a parameters-only prior by `mix` (1 = the full facts
model, 0 = parameters alone). Far from the training cards it does not extrapolate: facts outside
the training range count as the nearest value seen, and a card whose parameter count lies outside
it falls back towards the parameters-only prior (`weight = mix * exp(-distance)`, the distance in
training standard deviations). Recency is not used: the training records carry no dates.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import features as F

logger = logging.getLogger("hf_spider.ranker")

NARROW_LABELS = 100  # fewer labels than this on a classification head: a narrow fine-tune
UPSTREAM_DATASETS = ("imagenet", "ilsvrc")  # benchmarks whose accuracy means the same on any catalog
# other test sets of ImageNet (ReaL labels, V2, Sketch, -A/-R/-C/-O): another benchmark, whose
# accuracy is not comparable with the usual one (cards list them beside ImageNet-1k)
UPSTREAM_OTHER = re.compile(r"real|v2|sketch|adversarial|rendition|corrupt|[-_ ][arco](?![a-z0-9])")
FAMILY_SHRINK = 5.0  # pseudo-models pulling each family offset towards 0
MIN_FAMILY_MODELS = 3
MIXES = (0.0, 0.5, 1.0)  # shrinkage towards the parameters-only prior tried by nested CV
RIDGE = 1.0  # L2 penalty of the standardised coefficients (in units of training models)
CONTINUOUS = ("log10_params", "upstream")
# column -> allowed sign of its coefficient (+1: >= 0, -1: <= 0, 0: free)
SIGNS = {"log10_params": 1, "upstream": 1, "narrow": -1, "params_missing": 0, "upstream_missing": 0}
COLUMNS = tuple(SIGNS)
ARCHITECTURE_WORDS = ("type=", "arch=")  # card words that place a model's architecture


def upstream_accuracy(token: ModelToken) -> float | None:
    """Best accuracy (0..1) the card reports on an upstream benchmark (`UPSTREAM_DATASETS`)."""
    best = None
    for result in token.eval_results:
        name = str(result.get("dataset") or "").lower()
        if not any(u in name for u in UPSTREAM_DATASETS) or UPSTREAM_OTHER.search(name):
            continue
        one = ModelToken(model_id=token.model_id, eval_results=[result]).best_eval_accuracy()
        if one is not None and (best is None or one > best):
            best = one
    return best


def card_facts(token: ModelToken) -> dict[str, Any]:
    """The catalog-independent facts of one card (None where the card does not say)."""
    params = token.num_parameters
    labels = token.num_labels
    return {
        "log10_params": math.log10(params) if params and params > 0 else None,
        "upstream": upstream_accuracy(token),
        "narrow": None if not labels else float(labels < NARROW_LABELS),
        "family": (token.family or "").lower() or None,
    }


@dataclass
class FactsPrior:
    """Monotone linear prior on standardised card facts, shrunk towards parameters alone.

    Predicts a model's mean percentile (0..1) on the training targets. Serialised as plain
    numbers and strings (`to_dict` / `from_dict`).
    """

    center: dict[str, float]
    scale: dict[str, float]
    low: dict[str, float]
    high: dict[str, float]
    coef: dict[str, float]
    intercept: float
    params_coef: dict[str, float]
    params_intercept: float
    family: dict[str, float] = field(default_factory=dict)
    mix: float = 1.0
    narrow_default: float = 0.0

    kind = "facts"

    # --- design ---------------------------------------------------------------------------------
    def _rows(self, tokens: list[ModelToken]) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str | None]]:
        """(design with continuous facts clamped to the training range, the same unclamped,
        distance of the parameter count outside the training range, families)."""
        raw = np.zeros((len(tokens), len(COLUMNS)))
        clamped = np.zeros_like(raw)
        dist = np.zeros(len(tokens))
        fams: list[str | None] = []
        for i, token in enumerate(tokens):
            facts = card_facts(token)
            fams.append(facts["family"])
            for j, name in enumerate(COLUMNS):
                if name in CONTINUOUS:
                    value = facts[name]
                    if value is None:
                        raw[i, COLUMNS.index(f"{name.split('_')[-1]}_missing")] = 1.0
                        clamped[i, COLUMNS.index(f"{name.split('_')[-1]}_missing")] = 1.0
                        continue
                    inside = min(max(value, self.low[name]), self.high[name])
                    raw[i, j] = (value - self.center[name]) / self.scale[name]
                    clamped[i, j] = (inside - self.center[name]) / self.scale[name]
                    if name == "log10_params":
                        dist[i] = abs(value - inside) / self.scale[name]
                elif name == "narrow":
                    raw[i, j] = clamped[i, j] = (
                        self.narrow_default if facts["narrow"] is None else facts["narrow"]
                    )
        return clamped, raw, dist, fams

    def predict(self, tokens: Iterable[ModelToken], vectors: np.ndarray | None = None) -> np.ndarray:
        """Predicted mean percentile in (0, 1), NaN for a card that states none of the facts the
        prior reads (`_says_nothing`); `vectors` is accepted for `CardPrior`'s signature.

        The facts model reads facts clamped to the training range (it does not extrapolate: an
        upstream accuracy above or below anything seen counts as the highest or lowest seen);
        the parameters-only prior reads the parameter count as it is, and takes over as the count
        leaves the training range (`weight = mix * exp(-distance)`). Monotone: raising upstream
        accuracy, all else equal, never lowers the prediction.
        """
        del vectors
        tokens = list(tokens)
        if not tokens:
            return np.zeros(0)
        clamped, raw, dist, fams = self._rows(tokens)
        coef = np.array([self.coef.get(c, 0.0) for c in COLUMNS])
        full = (
            clamped @ coef + self.intercept + np.array([self.family.get(f, 0.0) if f else 0.0 for f in fams])
        )
        pcoef = np.array([self.params_coef.get(c, 0.0) for c in COLUMNS])
        base = raw @ pcoef + self.params_intercept
        weight = self.mix * np.exp(-dist)
        out = _squash(base + weight * (full - base))
        return np.where(self._says_nothing(clamped), np.nan, out)

    def _says_nothing(self, design: np.ndarray) -> np.ndarray:
        """Rows whose card states no fact this prior reads on its main axes: no parameter count,
        and no upstream accuracy or a prior that does not use it. Such a card gets no prediction
        (NaN), rather than the training population's centre: the ranker places it at the median
        of the models it can place (`priors.unknown_placement`)."""
        params_missing = design[:, COLUMNS.index("params_missing")] > 0
        upstream_missing = design[:, COLUMNS.index("upstream_missing")] > 0
        reads_upstream = abs(self.coef.get("upstream", 0.0)) > 0
        return params_missing & (upstream_missing | (not reads_upstream))

    def distance(self, tokens: Iterable[ModelToken]) -> np.ndarray:
        """How far each card's parameter count lies outside the training cards' range (in training
        standard deviations of log10 parameters); 0 inside."""
        return self._rows(list(tokens))[2]

    # --- serialisation --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        def r(d: Mapping[str, float]) -> dict[str, float]:
            return {k: round(float(v), 6) for k, v in d.items()}

        return {
            "kind": self.kind,
            "center": r(self.center),
            "scale": r(self.scale),
            "low": r(self.low),
            "high": r(self.high),
            "coef": r(self.coef),
            "intercept": round(float(self.intercept), 6),
            "params_coef": r(self.params_coef),
            "params_intercept": round(float(self.params_intercept), 6),
            "family": r(self.family),
            "mix": float(self.mix),
            "narrow_default": float(self.narrow_default),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FactsPrior:
        return cls(
            center=dict(data["center"]),
            scale=dict(data["scale"]),
            low=dict(data["low"]),
            high=dict(data["high"]),
            coef=dict(data["coef"]),
            intercept=float(data["intercept"]),
            params_coef=dict(data["params_coef"]),
            params_intercept=float(data["params_intercept"]),
            family=dict(data.get("family", {})),
            mix=float(data.get("mix", 1.0)),
            narrow_default=float(data.get("narrow_default", 0.0)),
        )


def _squash(p: np.ndarray) -> np.ndarray:
    """Into (0, 1) keeping the order (a linear fit may leave [0, 1] for cards far out)."""
    return 0.5 + 0.5 * np.tanh((np.asarray(p, dtype=np.float64) - 0.5) / 0.5)


def _signed_ridge(x: np.ndarray, y: np.ndarray, signs: list[int], alpha: float) -> tuple[np.ndarray, float]:
    """Least squares with an intercept, an L2 penalty `alpha` and sign-constrained coefficients."""
    from scipy.optimize import lsq_linear

    n, p = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.hstack([math.sqrt(alpha) * np.eye(p), np.zeros((p, 1))])
    a = np.vstack([design, penalty])
    b = np.concatenate([y, np.zeros(p)])
    lower = [0.0 if s > 0 else -np.inf for s in signs] + [-np.inf]
    upper = [0.0 if s < 0 else np.inf for s in signs] + [np.inf]
    sol = lsq_linear(a, b, bounds=(lower, upper), method="bvls")
    return sol.x[:p], float(sol.x[p])


def fit_facts_prior(
    pct: pd.DataFrame,
    tokens: Mapping[str, ModelToken],
    *,
    mix: float = 1.0,
    alpha: float = RIDGE,
    drop: Iterable[str] = (),
) -> FactsPrior | None:
    """The facts prior fitted on the models of `pct` (percentiles on TRAINING targets only).

    `drop`: facts left out (`upstream`, `narrow`, `family`), for ablations. Returns None with
    fewer than 5 models that have history and a card.
    """
    drop = set(drop)
    mean = pct.mean(axis=1).dropna()
    mean = mean[[m in tokens for m in mean.index]]
    if len(mean) < 5:
        return None
    train = [tokens[m] for m in mean.index]
    facts = [card_facts(t) for t in train]
    center, scale, low, high = {}, {}, {}, {}
    for name in CONTINUOUS:
        values = np.array([f[name] for f in facts if f[name] is not None], dtype=np.float64)
        if len(values) >= 2:
            center[name], scale[name] = float(values.mean()), float(values.std() or 1.0)
            low[name], high[name] = float(values.min()), float(values.max())
        else:  # no training card states it: it cannot enter the fit
            center[name], scale[name] = 0.0, 1.0
            low[name], high[name] = -np.inf, np.inf
    narrow = [f["narrow"] for f in facts if f["narrow"] is not None]
    prior = FactsPrior(center, scale, low, high, {}, 0.0, {}, 0.0, mix=mix)
    prior.narrow_default = float(np.mean(narrow)) if narrow else 0.0
    prior.low = {k: v for k, v in low.items()}
    x, _, _, fams = prior._rows(train)
    y = mean.to_numpy(dtype=np.float64)
    dropped = {
        c for c in COLUMNS if c.split("_")[0] in drop or (c == "upstream_missing" and "upstream" in drop)
    }
    usable = [j for j, c in enumerate(COLUMNS) if np.ptp(x[:, j]) > 0 and c not in dropped]
    signs = [SIGNS[COLUMNS[j]] for j in usable]
    coef, intercept = (
        _signed_ridge(x[:, usable], y, signs, alpha) if usable else (np.zeros(0), float(y.mean()))
    )
    prior.coef = {COLUMNS[j]: float(c) for j, c in zip(usable, coef, strict=True)}
    prior.intercept = intercept
    # families: a shrunk mean residual, for families with enough training models
    residual = y - (x[:, usable] @ coef + intercept if usable else intercept)
    by_family: dict[str, list[float]] = {}
    for f, r in zip(fams, residual, strict=True):
        if f:
            by_family.setdefault(f, []).append(float(r))
    prior.family = {
        f: float(np.sum(r) / (len(r) + FAMILY_SHRINK))
        for f, r in by_family.items()
        if len(r) >= MIN_FAMILY_MODELS and "family" not in drop
    }
    # the parameters-only prior every card falls back to
    pcols = [j for j in usable if COLUMNS[j] in ("log10_params", "params_missing")]
    if pcols:
        pc, pi = _signed_ridge(x[:, pcols], y, [SIGNS[COLUMNS[j]] for j in pcols], alpha)
        prior.params_coef = {COLUMNS[j]: float(c) for j, c in zip(pcols, pc, strict=True)}
        prior.params_intercept = pi
    else:
        prior.params_intercept = float(y.mean())
    return prior


# --- the prior of cold models: the card ridge where the card is in its population, facts elsewhere --
@dataclass
class ColdPrior:
    """The card prior of models without history.

    `facts` (a `FactsPrior`) scores every card; with `ridge` (a `training.CardPrior` on the card
    token and card words), a card is scored `s * ridge + (1 - s) * facts`, where `s`, its
    *support*, is the share of its card words (`features.card_words`) in `vocab`, the words at
    least two training models share (the ridge's vocabulary): a
    card from the training population gets the ridge, a card from another catalog (unknown
    author, type, architecture, datasets) the facts, whose own fallback leads to parameters alone.
    Which of the two (`ridge` or not) and the facts prior's `mix` are chosen by cross-validation
    over the training models (`select_cold_prior`).
    """

    facts: FactsPrior
    ridge: Any = None  # training.CardPrior
    vocab: list[str] = field(default_factory=list)  # card words of the training population
    # whether it may place models WITHOUT history: fitted on enough models to be cross-validated
    # (`can_place`); where not, such a model sits at the others' median (`priors.placeable`)
    places_cold: bool = True

    kind = "cold"

    def support(self, tokens: Iterable[ModelToken]) -> np.ndarray:
        """Share of each card's words (`features.card_words`) that at least two training models
        share; 0 for a card whose model type and architecture are both unknown to them.

        The ridge reads the numeric card token, whose meaning (width, depth, input size, ...)
        depends on the architecture: on an architecture it never saw it extrapolates, however many
        generic words (an author, `imagenet-1k`) the card shares with the training population.
        """
        tokens = list(tokens)
        vocab = set(self.vocab or (self.ridge.vocab if self.ridge is not None else ()))
        out = np.zeros(len(tokens))
        for i, token in enumerate(tokens):
            words = F.card_words(token)
            known = words & vocab
            if any(w.startswith(ARCHITECTURE_WORDS) for w in known):
                out[i] = len(known) / len(words)
        return out

    def predict(self, tokens: Iterable[ModelToken], vectors: np.ndarray | None = None) -> np.ndarray:
        """Predicted mean percentile in [0, 1]; `vectors`: the tokens' `vector()` rows if at hand.
        NaN where the facts prior has nothing to read (no parameter count, no upstream accuracy
        it uses): the ridge's words alone do not place a card."""
        tokens = list(tokens)
        facts = self.facts.predict(tokens)
        if self.ridge is None or not tokens:
            return facts
        s = self.support(tokens)
        return s * self.ridge.predict(tokens, vectors) + (1.0 - s) * facts

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "facts": self.facts.to_dict(), "vocab": list(self.vocab)}
        if self.ridge is not None:
            out["ridge"] = self.ridge.to_dict()
        if not self.places_cold:  # written only where it is false: a prior fitted on 10+ models
            out["places_cold"] = False  # reads as before
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColdPrior:
        ridge = CardPrior.from_dict(data["ridge"]) if data.get("ridge") else None
        return cls(
            FactsPrior.from_dict(data["facts"]),
            ridge,
            list(data.get("vocab", [])),
            bool(data.get("places_cold", True)),
        )


def card_prior_from_dict(data: Mapping[str, Any]):
    """A serialised card prior: `ColdPrior` (`kind: cold`), `FactsPrior` or the plain ridge."""
    kind = data.get("kind")
    if kind == ColdPrior.kind:
        return ColdPrior.from_dict(data)
    if kind == FactsPrior.kind:
        return FactsPrior.from_dict(data)
    return CardPrior.from_dict(data)


# (ridge or not, facts mix, upstream accuracy used or not); earlier choices win ties
Choice = tuple[bool, float, bool]
COLD_CHOICES: tuple[Choice, ...] = tuple(
    (r, m, u) for r in (True, False) for u in (True, False) for m in MIXES
)


def choice_label(choice: Choice) -> str:
    """`ridge+facts0.5` / `facts1-upstream` / `facts0` (= parameters alone)."""
    ridge, mix, upstream = choice
    return ("ridge+" if ridge else "") + f"facts{mix:g}" + ("" if upstream else "-upstream")


def fit_cold_prior(
    pct: pd.DataFrame,
    tokens: Mapping[str, ModelToken],
    *,
    ridge: bool = True,
    mix: float = 1.0,
    upstream: bool = True,
) -> ColdPrior | None:
    """The cold prior fitted on the models of `pct` (percentiles on TRAINING targets only)."""
    facts = fit_facts_prior(pct, tokens, mix=mix, drop=() if upstream else ("upstream",))
    if facts is None:
        return None
    return ColdPrior(
        facts,
        fit_ridge_card_prior(pct, tokens) if ridge else None,
        population_words(pct, tokens),
        can_place(pct, tokens),
    )


def population_words(pct: pd.DataFrame, tokens: Mapping[str, ModelToken]) -> list[str]:
    """Card words at least two of `pct`'s models with history share (the ridge's vocabulary)."""
    from collections import Counter

    mean = pct.mean(axis=1).dropna()
    counts = Counter(w for m in mean.index if m in tokens for w in F.card_words(tokens[m]))
    return sorted(w for w, c in counts.items() if c >= CardPrior.MIN_WORD_COUNT)


def fit_for_choice(pct: pd.DataFrame, tokens: Mapping[str, ModelToken], choice: Choice) -> ColdPrior | None:
    ridge, mix, upstream = choice
    return fit_cold_prior(pct, tokens, ridge=ridge, mix=mix, upstream=upstream)


def select_cold_prior(
    pct: pd.DataFrame, tokens: Mapping[str, ModelToken], *, folds: int = 5, seed: int = 0
) -> tuple[Choice, dict[str, float]]:
    """The cold prior's choice (ridge or not, facts `mix`, upstream accuracy used or not) by
    cross-validation over the models of `pct`, the cold-start way: each fold's models are hidden
    (their records dropped), the prior is fitted on the other models and ranks the hidden ones on
    every training target (tau_w, rank=True); the choice with the best mean wins, ties to the
    earlier of `COLD_CHOICES`. Upstream accuracy (the card's `model-index`) thus enters only where
    this cross-validation supports it.

    Returns (choice, {label: mean tau_w}); the first choice and {} when there are too few models.
    """
    from scipy.stats import weightedtau

    models = _cv_models(pct, tokens)
    if len(models) < 2 * folds:
        return COLD_CHOICES[0], {}
    order = np.random.default_rng(seed).permutation(len(models))
    taus: dict[Choice, list[float]] = {c: [] for c in COLD_CHOICES}
    for k in range(folds):
        held = [models[i] for i in order[k::folds]]
        rest = pct.drop(index=held)
        facts = {
            (m, u): fit_facts_prior(rest, tokens, mix=m, drop=() if u else ("upstream",))
            for m in MIXES
            for u in (True, False)
        }
        ridge = fit_ridge_card_prior(rest, tokens)
        vocab = population_words(rest, tokens)
        held_tokens = [tokens[m] for m in held]
        for choice in COLD_CHOICES:
            use_ridge, mix, upstream = choice
            if facts[(mix, upstream)] is None:
                continue
            pred = ColdPrior(facts[(mix, upstream)], ridge if use_ridge else None, vocab).predict(held_tokens)
            for target in pct.columns:
                truth = pct.loc[held, target].to_numpy(dtype=np.float64)
                ok = np.isfinite(truth) & np.isfinite(pred)
                if ok.sum() >= 3 and np.ptp(truth[ok]) > 0:
                    taus[choice].append(float(weightedtau(truth[ok], pred[ok]).statistic))
    means = {c: float(np.mean(v)) for c, v in taus.items() if v}
    if not means:
        return COLD_CHOICES[0], {}
    best = max(means, key=lambda c: (round(means[c], 4), -COLD_CHOICES.index(c)))
    return best, {choice_label(c): v for c, v in means.items()}


def _cv_models(pct: pd.DataFrame, tokens: Mapping[str, ModelToken]) -> list[str]:
    """`pct`'s models with history and a card, in `pct`'s order."""
    return [m for m in pct.index[pct.notna().any(axis=1)] if m in tokens]


def can_place(pct: pd.DataFrame, tokens: Mapping[str, ModelToken], *, folds: int = 5) -> bool:
    """Whether the card prior fitted on `pct` may place models WITHOUT history: only where
    `select_cold_prior` can cross-validate it (at least `2 * folds` models with history and a
    card). With fewer, a cold model is placed at the median of the others (`priors.unknown_placement`),
    as every baseline places a model it cannot score; the card prior still enters the history of
    models that have one where the prior selection keeps it (`PriorChoice.card_shrink`), which is
    checked there."""
    return len(_cv_models(pct, tokens)) >= 2 * folds


# --- one choice per training set ------------------------------------------------------------------
# `select_cold_prior` runs once per training set (a test target and cold fold of `eval ranking`, a
# modality of `train`); every card prior fitted inside (leave-one-target-out priors, out-of-fold
# priors of training episodes, the test context) then uses that choice instead of selecting again.
_CHOICES: ContextVar[dict[str, dict[str, Any]] | None] = ContextVar("hf_spider_cold_choices", default=None)


def choice_for(pct: pd.DataFrame, tokens: Mapping[str, ModelToken]) -> Choice:
    """The choice fixed for the modality of `pct`'s models, else one selected on `pct`."""
    fixed = _CHOICES.get()
    if fixed:
        modalities = [tokens[m].modality for m in pct.index if m in tokens]
        if modalities:
            modality = max(set(modalities), key=modalities.count)
            if modality in fixed:
                return fixed[modality]["choice"]
    return select_cold_prior(pct, tokens)[0]


@contextmanager
def chosen_for(records, by_modality: Mapping[str, list[str]], tokens, *, exclude_models=()):
    """Select the cold prior once per modality on its training targets (the models of
    `exclude_models` hidden) and use that choice for every card prior fitted inside.

    Yields `{modality: {"choice": label, "cv": {label: mean tau_w}}}`, with `"places_cold": False`
    where the card prior is fitted on too few models to place models without history (`can_place`).
    """
    excluded = set(exclude_models)
    chosen: dict[str, dict[str, Any]] = {}
    for modality, targets in by_modality.items():
        ok = records.perf[(records.perf["modality"] == modality) & ~records.perf["failed"]]
        ok = ok[
            ok["dataset"].isin(set(targets)) & ~ok["model"].isin(excluded) & ok["model"].isin(set(tokens))
        ]
        pct = percentiles(ok.pivot_table(index="model", columns="dataset", values="accuracy"))
        choice, means = select_cold_prior(pct, tokens)
        chosen[modality] = {"choice": choice, "cv": {k: round(v, 4) for k, v in means.items()}}
        if not can_place(pct, tokens):
            chosen[modality]["places_cold"] = False
        logger.info("cold prior for %s: %s (CV %s)", modality, choice_label(choice), chosen[modality]["cv"])
    handle = _CHOICES.set(chosen)
    try:
        yield {m: {**c, "choice": choice_label(c["choice"])} for m, c in chosen.items()}
    finally:
        _CHOICES.reset(handle)


# --- far cards: the network's residual fades with the card's familiarity ---------------------------
def knows_architecture(prior: Any, tokens: Iterable[ModelToken]) -> np.ndarray | None:
    """Whether the card prior knows each card's architecture: the card ridge has support for it
    (`ColdPrior.support` > 0: a model type or architecture of the training population) or the facts
    prior has an offset for its family. A card it does not know is placed by its parameter count
    and upstream accuracy alone. None for priors without that notion (the plain ridge)."""
    if not isinstance(prior, ColdPrior):
        return None
    tokens = list(tokens)
    offsets = prior.facts.family
    family = np.array([card_facts(t)["family"] in offsets for t in tokens], dtype=bool)
    return (prior.support(tokens) > 0) | family


def familiarity(prior: Any, tokens: Iterable[ModelToken]) -> np.ndarray | None:
    """How much of the training population a card resembles, in [0, 1]: the share of its card
    words the ridge knows times `exp(-distance)` of its facts outside the training range. None
    for priors without that notion (the plain ridge)."""
    if not isinstance(prior, ColdPrior):
        return None
    tokens = list(tokens)
    return prior.support(tokens) * np.exp(-prior.facts.distance(tokens))


def damp_cold_residual(model, ctx, scores: np.ndarray) -> np.ndarray:
    """Scores of candidates without history pulled towards their prior as their card is less
    familiar (`ctx.cold_weight`): `prior + weight * (score - prior)`. The network's residual was
    learned on the training population's tokens; on a card from elsewhere it is an extrapolation,
    so such a card is ranked by its prior, whose own fallback leads to parameters alone."""
    weight = getattr(ctx, "cold_weight", None)
    if weight is None or not len(scores):
        return scores
    cold = ctx.summary[:, 1] == 0  # no visible history
    if not cold.any():
        return scores
    members = getattr(model, "members", None) or [model]
    gain = float(np.mean([float(m.prior_gain.detach()) for m in members]))
    prior = gain * ctx.summary[:, 0].astype(np.float64)
    out = np.asarray(scores, dtype=np.float64).copy()
    w = np.clip(np.asarray(weight, dtype=np.float64), 0.0, 1.0)
    out[cold] = prior[cold] + w[cold] * (out[cold] - prior[cold])
    return out


# --- the card ridge and percentiles (used by training.py too) -----------------------------------
def percentiles(matrix: pd.DataFrame) -> pd.DataFrame:
    """Each column's values as percentiles in [0, 1] among the models that have a value there."""
    out = pd.DataFrame(index=matrix.index, columns=matrix.columns, dtype=float)
    for col in matrix.columns:
        c = matrix[col].dropna()
        if len(c) >= 2:
            out.loc[c.index, col] = (rankdata(c.to_numpy()) - 1) / (len(c) - 1)
    return out


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


def fit_ridge_card_prior(pct: pd.DataFrame, tokens: Mapping[str, ModelToken]) -> CardPrior | None:
    """The card ridge fitted on the models of `pct` (percentiles on TRAINING targets only).

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
