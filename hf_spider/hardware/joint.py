"""Stage 1 under constraints: every catalog candidate gets a predicted cost on the target (the cost
model, `hf_spider.hardware.cost`, from card facts; nothing downloaded), and the catalog is ranked
jointly on transfer and device before any model is probed or measured.

Joint rankings, after the IoT paper's two proposals (a rank merge, and a fused score learned with the
device cost as an input):
- `copeland`: Copeland's merge (`constraints.copeland`) of the stage-1 order and the predicted
  device order (lowest predicted load first: predicted figure / budget, the tightest budget).
- `fused`: transfer and the chance of fitting in one score: the order that most raises, step by
  step, the expected stage-1 percentile (1 = first, 0 = last) of the best measured model that
  meets the budgets (`expected_best_order`); its first model is the one of highest percentile x
  P(best variant fits). A fixed rule, not learned: P reads the cost model's held-out 90% interval
  as a log-normal band (figures independent; models predicted alike fit or fail together).
- `learned`: the same inputs in a score learned from the constrained benchmark's cases
  (`benchmarks/constrained.py --train-learned`, weights in `joint_learned.json`): a conditional
  logit over the kept candidates of a case that predicts which one measuring the whole catalog
  would recommend (the best feasible by stage-1 score); its inputs are the stage-1 percentile and
  the device cost (log P(fit), log P(no candidate ranked higher fits), log predicted figure /
  budget, log width of the 90% band). The top-k by that score hold the most probability of
  containing it. The default: in nested cross-validation over the benchmark's targets (the target
  held out, the L2 strength chosen without it) it is not worse than `fused` on the trained budgets
  (CPU time, memory, size): 5 misses in 447 cases vs 7, 0.000 vs 0.230 points lost to exhaustive
  measurement (`benchmarks/constrained.md`, on the reference runs; on the quiet second pass the
  same rule had preferred `fused`: the two are close).
`off`: the stage-1 order (the behaviour before the joint ranking).

Either way, a candidate is dropped for predicted cost when, for every variant, even the optimistic
(low) end of the 90% interval breaks a budget; it is named in the report with its predicted figures.
With no budget on latency, memory or size the order is the stage-1 order.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.errors import UserInputError

logger = logging.getLogger("hf_spider.hardware")

JOINT_METHODS = ("fused", "learned", "copeland", "off")
# benchmarks/constrained.md: `learned` is the default only where nested CV over targets finds it not
# worse than the fixed `fused` (fewer or equal misses and points lost); on the reference runs it is
DEFAULT_JOINT = "learned"
COVERAGE = 0.9
_Z = 1.6448536269514722  # the 95% quantile of the standard normal: a 90% band spans +-_Z sigma
# (cost-model figure, constraint field, results-row figure, unit)
BUDGETS = (
    ("latency_ms", "max_latency_ms", "latency_p50_ms", "ms"),
    ("memory_mb", "max_memory_mb", "peak_memory_mb", "MiB"),
    ("size_mb", "max_size_mb", "file_size_mb", "MiB"),
)


def check_joint(method: str | None) -> str:
    """The joint-ranking method, validated (None: the default)."""
    method = DEFAULT_JOINT if method is None else str(method).strip().lower()
    if method not in JOINT_METHODS:
        raise UserInputError(f"unknown --joint {method!r}", hint=f"use one of: {', '.join(JOINT_METHODS)}")
    return method


def has_device_budget(constraints: Any) -> bool:
    return any(getattr(constraints, name, None) is not None for _, name, _, _ in BUDGETS)


@dataclass
class Prediction:
    """The predicted figures of one (model, variant) on the target, their 90% bands (multipliers
    of the value; None where the cost model has too few held-out residuals) and the chance of
    meeting the budgets."""

    model_id: str
    variant: str
    figures: dict[str, float | None]
    bands: dict[str, tuple[float, float] | None]
    fit_probability: float = 1.0
    optimistic_fits: bool = True

    def tightest(self, constraints: Any) -> tuple[float, str] | None:
        """(predicted figure / budget, figure) of the tightest budget (1 = on the budget); None
        when no budget applies to a predicted figure. The first such figure wins a tie."""
        loads = [
            (self.figures[fig] / limit, fig)
            for fig, name, _, _ in BUDGETS
            if (limit := getattr(constraints, name, None)) and self.figures.get(fig) is not None
        ]
        return max(loads, key=lambda t: t[0], default=None)

    def load(self, constraints: Any) -> float:
        """Predicted figure / budget of the tightest budget (1 = on the budget; 0 without one)."""
        tightest = self.tightest(constraints)
        return 0.0 if tightest is None else tightest[0]

    def describe(self) -> str:
        parts = []
        for fig, _, _, unit in BUDGETS:
            value = self.figures.get(fig)
            if value is None:
                continue
            band = self.bands.get(fig)
            low_high = f" (90%: {value * band[0]:.3g}-{value * band[1]:.3g})" if band else ""
            parts.append(f"{fig.split('_')[0]} {value:.3g}{low_high} {unit}")
        return f"{self.variant}: " + ", ".join(parts)


@dataclass
class JointRanking:
    """The order handed to stage 2 and bench, and what was predicted and dropped on the way."""

    method: str
    order: list[str]  # kept candidates, best first
    dropped: list[str] = field(default_factory=list)
    predictions: dict[str, list[Prediction]] = field(default_factory=dict)
    unpredicted: list[str] = field(default_factory=list)
    cost_model: str | None = None
    notes: list[str] = field(default_factory=list)
    # no candidate is predicted to fit: the nearest ones are measured anyway (`rank_jointly`)
    none_predicted_to_fit: bool = False

    def best(self, model_id: str) -> Prediction | None:
        """The variant most likely to fit (then the lowest predicted latency)."""
        preds = self.predictions.get(model_id) or []
        return max(
            preds, key=lambda p: (p.fit_probability, -(p.figures.get("latency_ms") or 0.0)), default=None
        )

    def prediction(self, model_id: str, variant: str | None) -> Prediction | None:
        if variant is None:
            return self.best(model_id)
        return next((p for p in self.predictions.get(model_id) or [] if p.variant == variant), None)

    def dropped_reason(self, model_id: str, constraints: Any) -> str:
        best = self.best(model_id)
        budgets = constraints.describe()
        return f"dropped for predicted cost (optimistic end of the 90% interval breaks {budgets}): {best.describe()}"

    def to_dict(self, constraints: Any) -> dict[str, Any]:
        return {
            "method": self.method,
            "cost_model": self.cost_model,
            "kept": len(self.order),
            "dropped": [
                {
                    "model_id": m,
                    **_prediction_dict(self.best(m)),
                    "reason": self.dropped_reason(m, constraints),
                }
                for m in self.dropped
            ],
            "unpredicted": self.unpredicted,
            "none_predicted_to_fit": self.none_predicted_to_fit,
            "rule": DROP_RULE,
            "fused_rule": FUSED_RULE if self.method == "fused" else None,
            "learned_rule": LEARNED_RULE if self.method == "learned" else None,
        }


DROP_RULE = (
    "a candidate is dropped when, for every variant, the optimistic (low) end of the cost model's "
    "held-out 90% interval breaks a budget"
)
FUSED_RULE = (
    "each next candidate is the one that most raises the expected stage-1 percentile of the best "
    "measured candidate meeting the budgets (the first: highest percentile x P(fit)); P(fit) from the "
    "cost model's 90% interval read as a log-normal band; a fixed rule, nothing learned"
)


LEARNED_RULE = (
    "candidates by a score learned on the constrained benchmark's cases (joint_learned.json): "
    "weights on the stage-1 percentile, log P(fit), log P(no candidate ranked higher fits), log "
    "predicted figure / budget and log width of the 90% band, fitted to predict which candidate "
    "measuring the whole catalog would recommend"
)


def _prediction_dict(p: Prediction | None) -> dict[str, Any]:
    if p is None:
        return {}
    out: dict[str, Any] = {"variant": p.variant, "fit_probability": round(p.fit_probability, 4)}
    for fig, _, _, _ in BUDGETS:
        value, band = p.figures.get(fig), p.bands.get(fig)
        out[f"predicted_{fig}"] = value
        if band and value is not None:
            out[f"predicted_{fig}_interval"] = [value * band[0], value * band[1]]
    return out


def _normal_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def fit_probability(prediction: Prediction, constraints: Any) -> tuple[float, bool]:
    """(P(every budget met), whether the optimistic end of every band meets its budget).

    A figure without a band counts as exact; a figure the cost model cannot predict counts as
    fitting (the measurement decides)."""
    p, optimistic = 1.0, True
    for fig, name, _, _ in BUDGETS:
        limit = getattr(constraints, name, None)
        value = prediction.figures.get(fig)
        if limit is None or value is None:
            continue
        band = prediction.bands.get(fig)
        low, high = (value * band[0], value * band[1]) if band else (value, value)
        optimistic &= low <= limit
        if band is None or high <= low:
            p *= 1.0 if value <= limit else 0.0
            continue
        mu = (math.log(low) + math.log(high)) / 2.0
        sigma = (math.log(high) - math.log(low)) / (2.0 * _Z)
        p *= _normal_cdf((math.log(max(limit, 1e-12)) - mu) / sigma)
    return p, optimistic


def rank_jointly(
    stage1: Sequence[tuple[str, float]],
    predictions: dict[str, list[Prediction]],
    constraints: Any,
    method: str,
    *,
    weights: Sequence[float] | None = None,
) -> JointRanking:
    """The joint order of the stage-1 ranking under the device budgets (module docstring).

    Models without a prediction are kept at their stage-1 place (P(fit) 1 for `fused` and
    `learned`, last in the device order for `copeland`): the measurement decides for them.
    `weights`: the learned score's weights (`LEARNED_FEATURES` order) instead of the shipped ones.
    """
    method = check_joint(method)
    models = [m for m, _ in stage1]
    joint = JointRanking(method=method, order=list(models), predictions=predictions)
    joint.unpredicted = [m for m in models if not predictions.get(m)]
    if method == "off" or not has_device_budget(constraints):
        return joint
    for preds in predictions.values():
        for p in preds:
            p.fit_probability, p.optimistic_fits = fit_probability(p, constraints)
    joint.dropped = [
        m for m in models if predictions.get(m) and not any(p.optimistic_fits for p in predictions[m])
    ]
    kept = [m for m in models if m not in set(joint.dropped)]
    if joint.dropped and not [m for m in kept if predictions.get(m)]:
        # Nothing with a prediction is predicted to fit. None is dropped out of sight: the ones
        # predicted nearest to the budgets are measured anyway (a prediction can be wrong, and
        # "nothing fits" then rests on measured figures), after any model without a prediction
        # (which may fit; it keeps its stage-1 order), and the run says none was predicted to fit.
        nearest = sorted(joint.dropped, key=lambda m: min(p.load(constraints) for p in predictions[m]))
        joint.order = [*kept, *nearest]
        joint.dropped, joint.none_predicted_to_fit = [], True
        return joint
    if method == "fused":
        percentile, fit, same = _fused_inputs(joint, models, kept)
        joint.order = expected_best_order(kept, percentile, fit, same)
    elif method == "learned":
        features = learned_features(joint, models, kept, constraints)
        w = np.asarray(learned_weights()["weights"] if weights is None else weights, dtype=float)
        joint.order = learned_order(kept, features, w)
    else:
        from hf_spider.hardware.constraints import copeland

        predicted = [m for m in kept if predictions.get(m)]
        device = sorted(
            predicted, key=lambda m: (-joint.best(m).fit_probability, joint.best(m).load(constraints))
        )
        joint.order = [m for m, _ in copeland(kept, device)]
    return joint


def _fused_inputs(joint: JointRanking, models: list[str], kept: list[str]) -> tuple[dict, dict, dict]:
    """(stage-1 percentile: 1 = first, 0 = last; P(the best variant fits); device key) per model;
    models predicted alike share a key: they share an architecture, so fit or fail together."""
    n = len(models)
    percentile = {m: 1.0 if n <= 1 else (n - 1 - i) / (n - 1) for i, m in enumerate(models)}
    predictions = joint.predictions
    fit = {m: joint.best(m).fit_probability if predictions.get(m) else 1.0 for m in kept}
    same = {m: _device_key(predictions[m]) if predictions.get(m) else m for m in kept}
    return percentile, fit, same


LEARNED_FEATURES = ("percentile", "log_fit", "log_none_above", "log_load", "log_band")
# signs the weights are held to: a higher stage-1 rank or chance of fitting never lowers the score,
# a wider band (a less certain prediction) never raises it; log_load is free (its sign is recorded)
LEARNED_NONNEGATIVE = ("percentile", "log_fit", "log_none_above")
LEARNED_NONPOSITIVE = ("log_band",)
LEARNED_FILE = Path(__file__).with_name("joint_learned.json")
_LOG_FLOOR = math.log(1e-6)
_LOAD_CLIP = 5.0


def learned_features(joint: JointRanking, models: list[str], kept: list[str], constraints: Any) -> np.ndarray:
    """One row per kept model (stage-1 order), columns `LEARNED_FEATURES`:
    - percentile: the stage-1 percentile (1 = first, 0 = last of the catalog);
    - log_fit: log P(the best variant meets every budget);
    - log_none_above: log P(no kept model ranked higher in stage 1 fits) (models predicted alike
      one chance; the floor when one ranked higher shares the model's device key: it fits or fails
      with it, and then it would be picked). With log_fit: log P(the model is what measuring the
      whole catalog picks), were the chances independent;
    - log_load: log(predicted figure / budget) of the tightest budget (0 with no figure; clipped
      to +-5);
    - log_band: log(high / low) of that figure's 90% band (0 with no band).
    """
    percentile, fit, same = _fused_inputs(joint, models, kept)
    rows, seen, log_none = [], set(), 0.0
    for m in kept:
        above = _LOG_FLOOR if same[m] in seen else max(log_none, _LOG_FLOOR)
        load, band = _tightest(joint.best(m), constraints)
        rows.append([percentile[m], max(math.log(max(fit[m], 1e-300)), _LOG_FLOOR), above, load, band])
        if same[m] not in seen:
            seen.add(same[m])
            log_none += math.log(max(1.0 - fit[m], 1e-300))
    return np.asarray(rows, dtype=float).reshape(len(kept), len(LEARNED_FEATURES))


def learned_order(kept: list[str], features: np.ndarray, weights: np.ndarray) -> list[str]:
    """Kept models by learned score, then those that cannot be the pick, in stage-1 order.

    A model whose `log_none_above` sits at the floor is behind one predicted to fit almost surely
    (or one it fits or fails with): measuring the whole catalog would pick it only if that
    prediction failed. The label the score is trained on never ranks such models among
    themselves, so their score differences (the load term) carry no transfer meaning; they follow
    every model that can be the pick, in stage-1 order. With budgets every model meets, the order
    is stage 1's.
    """
    score = features @ weights
    blocked = features[:, LEARNED_FEATURES.index("log_none_above")] <= _LOG_FLOOR + 1e-9
    open_ = [i for i in np.argsort(-score, kind="stable") if not blocked[i]]  # stage 1 breaks ties
    return [kept[i] for i in open_] + [kept[i] for i in range(len(kept)) if blocked[i]]


def _tightest(prediction: Prediction | None, constraints: Any) -> tuple[float, float]:
    """(log predicted figure / budget, log width of its band) of the tightest budget."""
    tightest = None if prediction is None else prediction.tightest(constraints)
    if tightest is None or tightest[0] <= 0:
        return 0.0, 0.0
    load, fig = tightest
    band = prediction.bands.get(fig)
    width = math.log(band[1] / band[0]) if band and band[0] > 0 and band[1] > band[0] else 0.0
    return float(np.clip(math.log(load), -_LOAD_CLIP, _LOAD_CLIP)), width


@cache
def learned_weights() -> dict[str, Any]:
    """The shipped weights of `--joint learned` (`benchmarks/constrained.py --train-learned`)."""
    data = json.loads(LEARNED_FILE.read_text())
    if list(data["features"]) != list(LEARNED_FEATURES):
        raise ValueError(f"{LEARNED_FILE.name}: features {data['features']} are not {list(LEARNED_FEATURES)}")
    return data


def fit_learned(cases: Sequence[tuple[np.ndarray, int]], l2: float, iterations: int = 100) -> np.ndarray:
    """Weights of the conditional logit P(candidate i of a case) = softmax(X @ w)_i that maximise
    the mean log-likelihood of each case's label row minus l2/2 |w|^2, with the weights of
    `LEARNED_NONNEGATIVE` kept >= 0 and those of `LEARNED_NONPOSITIVE` <= 0: projected Newton steps with backtracking (a concave problem;
    numpy only, the same on any CPU up to rounding). `cases`: (features of its candidates, the
    index of the label)."""
    xs = np.concatenate([x for x, _ in cases])
    starts = np.cumsum([0] + [len(x) for x, _ in cases])[:-1]
    labels = np.asarray([x[y] for x, y in cases])
    counts = np.asarray([len(x) for x, _ in cases])
    seg = np.repeat(np.arange(len(cases)), counts)
    sign = np.asarray([(f in LEARNED_NONNEGATIVE) - (f in LEARNED_NONPOSITIVE) for f in LEARNED_FEATURES])
    bounded = sign != 0
    n = float(len(cases))

    def loss_grad_hess(w):
        s = xs @ w
        top = np.maximum.reduceat(s, starts)
        e = np.exp(s - top[seg])
        z = np.add.reduceat(e, starts)
        p = e / z[seg]
        loss = float(np.sum(top + np.log(z)) - np.sum(labels @ w)) / n + 0.5 * l2 * float(w @ w)
        mean_x = np.add.reduceat(p[:, None] * xs, starts)  # per case: E_p[x]
        grad = (mean_x.sum(0) - labels.sum(0)) / n + l2 * w
        hess = (xs.T @ (p[:, None] * xs) - mean_x.T @ mean_x) / n + l2 * np.eye(len(w))
        return loss, grad, hess

    w = np.zeros(len(LEARNED_FEATURES))
    for _ in range(iterations):
        loss, grad, hess = loss_grad_hess(w)
        active = bounded & (sign * w <= 0.0) & (sign * grad > 0.0)  # at the bound, pushed past it
        free = ~active
        step = np.zeros_like(w)
        step[free] = -np.linalg.solve(hess[np.ix_(free, free)], grad[free])
        if float(np.max(np.abs(step))) < 1e-10:
            break
        t = 1.0
        while t > 1e-8:
            trial = w + t * step
            trial = np.where(bounded & (sign * trial < 0.0), 0.0, trial)
            if loss_grad_hess(trial)[0] <= loss + 1e-4 * float(grad @ (trial - w)):
                break
            t *= 0.5
        if np.allclose(trial, w, rtol=0.0, atol=1e-12):
            break
        w = trial
    return w


def _device_key(predictions: list[Prediction]) -> tuple:
    return tuple(sorted((p.variant, *(round(v or 0.0, 9) for v in p.figures.values())) for p in predictions))


def expected_best_order(
    models: Sequence[str], percentile: dict[str, float], fit: dict[str, float], same: dict[str, Any]
) -> list[str]:
    """Models in the order that most raises, at each step, the expected stage-1 percentile of the
    best model measured so far that meets the budgets (what the pick takes among the measured).
    Chances of fitting (`fit`) are independent across device keys (`same`) and shared within one:
    a model whose key was taken already adds nothing. The first is the model of highest
    percentile x P(fit); a model that may not fit is followed by one that backs it up. Once no
    model adds more than `_MIN_GAIN`, the rest follow by percentile x P(fit).
    """
    rest = sorted(models, key=lambda m: -percentile[m] * fit[m])  # stable: stage-1 order on ties
    order: list[str] = []
    outcomes: list[tuple[float, float]] = []  # (percentile, P(it is the best that fits so far))
    none = 1.0  # P(nothing taken so far fits)

    taken: set[Any] = set()

    def gain(m: str) -> float:
        if same[m] in taken:  # taken earlier, so with a higher percentile: fits or fails with it
            return 0.0
        x = percentile[m]
        return fit[m] * (none * x + sum(p * (x - y) for y, p in outcomes if y < x))

    while rest:
        best = max(rest, key=gain)  # the first of equal gains: the percentile x P(fit) order
        if gain(best) < _MIN_GAIN:
            break
        rest.remove(best)
        order.append(best)
        taken.add(same[best])
        x, q = percentile[best], fit[best]
        below = sum(p for y, p in outcomes if y < x)
        outcomes = [(y, p if y >= x else p * (1.0 - q)) for y, p in outcomes] + [(x, q * (none + below))]
        none *= 1.0 - q
    return order + rest


_MIN_GAIN = 1e-4  # of a percentile: below it, the greedy order and the fused-score order agree in effect


MIN_ARCHITECTURES = 3  # distinct configs a cost model is fitted on, at the least


def predict_candidates(
    cards: Sequence[dict[str, Any]],
    device: Any,
    variants: Sequence[str],
    *,
    threads: int | None = None,
    seq_len: int = 64,
    progress=None,
) -> tuple[dict[str, list[Prediction]], str | None, list[str]]:
    """Predicted figures of each card's variants on `device` (`predict_catalog`), with bands.

    The cost model is `cost.local_cost_model`: this machine's measurements at `threads` (else at
    the thread count measured most), or, where this machine measured too little, the project's
    reference runs scaled by a few measurements taken here (`progress(done, total, note)` follows
    them); for an agent, the store's measurements of that agent. A card whose facts give no config
    (a family the card reader does not know) is predicted from its real config.json when the model
    is in a local cache.
    Returns (predictions by model, the cost model's target key, notes).
    """
    from hf_spider.hardware import cost

    notes: list[str] = []
    model = None
    if device.kind == "agent":
        from hf_spider.hardware.measurements import load_records

        mine = [r for r in load_records() if str(r.get("target_key", "")).startswith(f"agent|{device.name}|")]
        records = cost.with_facts(mine)
        if cost.architecture_count(records) < MIN_ARCHITECTURES:
            return (
                {},
                None,
                [
                    f"no joint ranking: fewer than {MIN_ARCHITECTURES} architectures measured on {device.name} "
                    f"to fit a cost model on (measure some with `hf-spider bench --from-config MODEL --target "
                    f"{device.name}`)"
                ],
            )
        model = cost.fit_with_intervals(records)
        where = "local"  # the model is the agent's own: no profile scaling
    else:
        # a profile's estimate scales this machine's 1-thread figures itself (`profiles.estimate_factor`)
        fit = cost.local_cost_model(threads if device.kind == "local" else 1, progress=progress)
        if fit is None:
            return (
                {},
                None,
                [
                    "no joint ranking: no measurements of this machine or of the project's reference runs "
                    "to fit a cost model on (run `python -m benchmarks.device_cost` or `hf-spider bench` first)"
                ],
            )
        notes.append(f"cost model {fit.method}")
        if threads and fit.threads != threads and not fit.scale:
            notes.append(
                f"cost model fitted on measurements at {fit.threads} thread(s); this run measures with {threads}"
            )
        model = fit
        where = device.name
    cards = [_with_local_config(card) for card in cards]
    rows = cost.predict_catalog(
        cards, where, tuple(variants), seq_len=seq_len, model=model, progress=progress
    )
    model = model.model if isinstance(model, cost.LocalFit) else model
    out: dict[str, list[Prediction]] = {}
    for row in rows:
        if "latency_ms" not in row:
            continue
        bands: dict[str, tuple[float, float] | None] = {}
        interval = row.get("latency_interval")
        bands["latency_ms"] = (
            (interval["low"] / row["latency_ms"], interval["high"] / row["latency_ms"]) if interval else None
        )
        for fig in ("memory_mb", "size_mb"):
            bands[fig] = model.interval(fig, row["variant"], COVERAGE)
        figures = {fig: row.get(fig) for fig, _, _, _ in BUDGETS}
        out.setdefault(row["model"], []).append(Prediction(row["model"], row["variant"], figures, bands))
    return out, model.target, notes


def _with_local_config(card: dict[str, Any]) -> dict[str, Any]:
    """The card with its real config.json where its facts give no config and the model is in a
    local cache (the offline zoo, a Hub cache): nothing is downloaded."""
    from hf_spider.errors import HfSpiderError
    from hf_spider.hardware import cost
    from hf_spider.models import resolve_model

    if card.get("config") or cost.card_config(card)[0] is not None or not card.get("model_id"):
        return card
    try:
        config = resolve_model(card["model_id"], offline=True).config
    except (HfSpiderError, OSError, ValueError):
        return card
    return {**card, "config": config} if config else card


def compare(row: dict[str, Any], prediction: Prediction | None) -> dict[str, Any]:
    """The predicted figures of a results row and, where measured, the error of each prediction
    in % of the measured figure: (predicted - measured) / measured."""
    out: dict[str, Any] = {}
    if prediction is None:
        return out
    out["fit_probability"] = prediction.fit_probability
    for fig, _, row_key, _ in BUDGETS:
        value = prediction.figures.get(fig)
        out[f"predicted_{fig}"] = value
        measured = row.get(row_key) if row.get("variant") == prediction.variant else None
        if value is not None and measured:
            out[f"{fig.split('_')[0]}_prediction_error_pct"] = 100.0 * (value - measured) / measured
    return out
