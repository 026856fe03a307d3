"""Numeric inputs of the ranker: model tokens, task tokens, history tokens and pair features.

Training (shared records) and inference (a real `Task`, or a dataset card only) go through the
same functions, so a model or a task never seen in training is described the same way:
- a model by its catalog token (`hf_spider.catalog` `ModelToken.vector()`, card / config facts);
- a task by its metadata (`num_classes`, `num_examples`, `modality`, name, label names,
  task categories) as `hf_spider.tasks.Task.metadata` holds it;
- a (model, task) pair by how the model's own training data relates to the task (name overlap);
- a model with history by its percentile on each earlier target, next to how similar that
  target is to the task at hand (history tokens).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

from hf_spider.catalog._token import TOKEN_DIM, ModelToken

MODALITIES = ("image", "text", "audio")
TASK_FIELDS = (
    "log10_examples",
    "examples_missing",
    "log2_classes",
    "classes_missing",
    "log10_examples_per_class",
    *(f"modality={m}" for m in MODALITIES),
    "modality=other",
)
TASK_DIM = len(TASK_FIELDS)
PAIR_FIELDS = (
    "source_name_overlap",  # token overlap of the model's datasets with the task's name
    "source_same_dataset",  # the model was already trained on this very dataset
    "log2_labels_ratio",  # |log2(model labels) - log2(task classes)|
    "labels_ratio_missing",
)
PAIR_DIM = len(PAIR_FIELDS)
MODEL_DIM = TOKEN_DIM + PAIR_DIM
HISTORY_FIELDS = (
    "percentile_centered",  # the model's percentile on an earlier target, minus 0.5
    "same_name_group",  # the earlier target and the task share a name token (tweet_eval/x, smallnorb_x)
    "name_overlap",
    "delta_log10_examples",
    "delta_log2_classes",
    "abs_delta_log10_examples",
    "abs_delta_log2_classes",
)
HISTORY_DIM = len(HISTORY_FIELDS)
SUMMARY_FIELDS = ("prior_percentile_centered", "has_history", "log2_history")
SUMMARY_DIM = len(SUMMARY_FIELDS)
ESTIMATORS = ("logme", "reg_h_score", "leep", "nce", "h_score", "other")
FEATURE_DIM = 1 + len(ESTIMATORS)

_STOP = {
    "the",
    "and",
    "for",
    "data",
    "dataset",
    "datasets",
    "finetuned",
    "label",
    "classification",
    "v1",
    "v2",
}


def name_tokens(name: str | None) -> set[str]:
    """Lower-case word pieces of a dataset name (`tweet_eval/emotion` -> {tweet, eval, emotion})."""
    if not name:
        return set()
    parts = re.split(r"[^a-z0-9]+", str(name).lower())
    return {p for p in parts if len(p) >= 3 and p not in _STOP and not p.isdigit()}


def _overlap(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / min(len(a), len(b))


def name_key(name: str) -> str:
    """A dataset name reduced to compare spellings: last path part, lower case, letters and digits
    only (`cornell-movie-review-data/rotten_tomatoes` -> `rottentomatoes`)."""
    return re.sub(r"[^a-z0-9]+", "", str(name).lower().rsplit("/", 1)[-1])


def task_vector(meta: Mapping[str, Any]) -> np.ndarray:
    """Fixed-length vector of a task's metadata (the task token)."""
    v = np.zeros(TASK_DIM, dtype=np.float32)
    n = _positive(meta.get("num_examples"))
    k = _positive(meta.get("num_classes"))
    if n is None:
        v[1] = 1.0
    else:
        v[0] = math.log10(n) / 6.0
    if k is None:
        v[3] = 1.0
    else:
        v[2] = math.log2(max(k, 2)) / 8.0
    if n is not None and k is not None:
        v[4] = math.log10(max(n / k, 1.0)) / 5.0
    modality = str(meta.get("modality") or "").lower()
    v[5 + (MODALITIES.index(modality) if modality in MODALITIES else len(MODALITIES))] = 1.0
    return v


# The data part of the task token (`RankerConfig.task_data`): the scalar slots of the probe data
# token (`hf_spider.tasks.task`, slots 96:104: prototype similarity and distances, within-class
# spread, variance ratio, 1-NN and nearest-prototype accuracy, effective rank, classes), and
# whether the task has one. The 96 projected coordinates are left out: directions of one probe
# encoder's space, not something that means the same on another dataset.
DATA_SLOTS = slice(96, 104)
TASK_DATA_DIM = 8 + 1


def task_data_vector(meta: Mapping[str, Any]) -> np.ndarray:
    """The data part of a task's token; zeros (and the flag 0) for a task without a data token."""
    v = np.zeros(TASK_DATA_DIM, dtype=np.float32)
    token = meta.get("data_token")
    if token is not None and len(token) >= DATA_SLOTS.stop:
        v[:-1] = np.asarray(token, dtype=np.float32)[DATA_SLOTS]
        v[-1] = 1.0
    return v


def task_input(meta: Mapping[str, Any], with_data: bool = False) -> np.ndarray:
    """What the network reads as the task token: `task_vector`, then `task_data_vector` if asked."""
    if not with_data:
        return task_vector(meta)
    return np.concatenate([task_vector(meta), task_data_vector(meta)])


def task_name_tokens(meta: Mapping[str, Any]) -> set[str]:
    names = [meta.get("name"), meta.get("pretty_name"), meta.get("dataset_id")]
    out: set[str] = set()
    for n in names:
        out |= name_tokens(n)
    return out


def pair_vector(token: ModelToken, meta: Mapping[str, Any]) -> np.ndarray:
    """How the model's own training data and label count relate to the task."""
    v = np.zeros(PAIR_DIM, dtype=np.float32)
    task_tokens = task_name_tokens(meta)
    task_last = {name_key(meta.get(k)) for k in ("name", "dataset_id") if meta.get(k)}
    for ds in token.datasets:
        v[0] = max(v[0], _overlap(name_tokens(ds), task_tokens))
        if name_key(ds) and name_key(ds) in task_last:
            v[1] = 1.0
    k = _positive(meta.get("num_classes"))
    if k is None or not token.num_labels:
        v[3] = 1.0
    else:
        v[2] = abs(math.log2(max(token.num_labels, 1)) - math.log2(max(k, 2))) / 8.0
    return v


def token_matrix(tokens: list[ModelToken], vectors: np.ndarray | None = None) -> np.ndarray:
    """`[n, TOKEN_DIM]` card-token rows; `vectors` (e.g. from `Catalog.vectors()`) is used as is."""
    if vectors is not None:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(tokens), TOKEN_DIM):
            raise ValueError(f"vectors of shape {vectors.shape}, expected {(len(tokens), TOKEN_DIM)}")
        return vectors
    if not tokens:
        return np.zeros((0, TOKEN_DIM), dtype=np.float32)
    return np.stack([t.vector() for t in tokens]).astype(np.float32)


def model_matrix(
    tokens: list[ModelToken], meta: Mapping[str, Any], vectors: np.ndarray | None = None
) -> np.ndarray:
    """`[n, MODEL_DIM]`: each candidate's card token followed by its pair features for this task;
    pair features are computed once per distinct (training datasets, label count), which thousands
    of Hub models share."""
    out = np.zeros((len(tokens), MODEL_DIM), dtype=np.float32)
    out[:, :TOKEN_DIM] = token_matrix(tokens, vectors)
    memo: dict[tuple, np.ndarray] = {}
    for i, t in enumerate(tokens):
        key = (tuple(t.datasets), t.num_labels)
        pair = memo.get(key)
        if pair is None:
            pair = memo[key] = pair_vector(t, meta)
        out[i, TOKEN_DIM:] = pair
    return out


def history_vector(percentile: float, earlier: Mapping[str, Any], task: Mapping[str, Any]) -> np.ndarray:
    """One history token: the model's percentile on an earlier target and how that target relates."""
    a, b = task_vector(earlier), task_vector(task)
    earlier_tokens, task_tokens = task_name_tokens(earlier), task_name_tokens(task)
    dn = float(a[0] - b[0]) if not (a[1] or b[1]) else 0.0
    dk = float(a[2] - b[2]) if not (a[3] or b[3]) else 0.0
    return np.array(
        [
            percentile - 0.5,
            float(bool(earlier_tokens & task_tokens)),
            _overlap(earlier_tokens, task_tokens),
            dn,
            dk,
            abs(dn),
            abs(dk),
        ],
        dtype=np.float32,
    )


PRIORS = ("mean", "median", "gmean", "mean@classes", "median@classes", "gmean@classes")
# "gmean": the mean of normal scores (inverse normal CDF of the percentiles, clipped to
# [GMEAN_CLIP, 1 - GMEAN_CLIP]) mapped back to a percentile: between the mean and the median, one
# failed run on an earlier dataset weighs less than in the mean.
GMEAN_CLIP = 0.02
# "@classes" priors weight an earlier target by how close its number of classes is to the task's:
# exp(-CLASS_KERNEL * |ln k_earlier - ln k_task|) (a 2x difference in classes weighs 0.71, 10x 0.32).
CLASS_KERNEL = 0.5
_ABS_DK = HISTORY_FIELDS.index("abs_delta_log2_classes")


def history_weights(hist_tokens: np.ndarray, prior: str) -> np.ndarray:
    """Weights of a candidate's history tokens (`[h, HISTORY_DIM]`) in its collaborative prior."""
    hist_tokens = np.asarray(hist_tokens, dtype=np.float64).reshape(-1, HISTORY_DIM)
    if not prior.endswith("@classes"):
        return np.ones(len(hist_tokens))
    # the token holds |delta log2(classes)| / 8 (see task_vector); back to natural-log units
    return np.exp(-CLASS_KERNEL * 8.0 * math.log(2.0) * hist_tokens[:, _ABS_DK])


def class_weight(earlier: Mapping[str, Any], task: Mapping[str, Any]) -> float:
    """Weight of an earlier target in an "@classes" prior (1.0 when either class count is unknown)."""
    return float(history_weights(history_vector(0.5, earlier, task)[None], "mean@classes")[0])


def aggregate(percentiles: np.ndarray, prior: str = "mean", weights: np.ndarray | None = None) -> float:
    """The collaborative prior of one candidate: (weighted) mean, median or normal-score mean
    (`gmean`) of its percentiles."""
    values = np.asarray(percentiles, dtype=np.float64)
    w = np.ones(len(values)) if weights is None else np.asarray(weights, dtype=np.float64)
    if prior.startswith("gmean"):
        from scipy.special import ndtr, ndtri

        g = ndtri(np.clip(values, GMEAN_CLIP, 1.0 - GMEAN_CLIP))
        return float(ndtr(np.dot(g, w) / w.sum()))
    if prior.startswith("median"):
        if weights is None or np.allclose(w, w[0]):
            return float(np.median(values))
        order = np.argsort(values, kind="stable")
        cum = np.cumsum(w[order])
        return float(values[order][np.searchsorted(cum, cum[-1] / 2.0)])
    return float(np.dot(values, w) / w.sum())


# A candidate with n earlier targets gets (n * aggregate + k * card prior) / (n + k): its card
# prior counts as k pseudo-targets, which damps the noise of single fine-tuning runs.
CARD_SHRINKS = (0.0, 3.0)
# Bonus (percentile scale) of a model whose own training data shares the task's name, tried by the
# prior selection: 0 (none) or 0.1.
MATCH_BONUSES = (0.0, 0.1)


def shrink(centre: float, n: int, card: float | None, k: float) -> float:
    """The collaborative prior pulled towards the card prior by `k` pseudo-targets."""
    if card is None or k <= 0 or n <= 0:
        return centre
    return (n * centre + k * card) / (n + k)


def summary_vector(
    percentiles,
    prior: str = "mean",
    weights: np.ndarray | None = None,
    card: float | None = None,
    card_shrink: float = 0.0,
) -> np.ndarray:
    """The collaborative prior of a candidate (centred), and its support.

    `weights` (one per percentile, see `history_weights`) apply to the "@classes" priors; `card`
    (the candidate's card prior) pulls the prior towards it by `card_shrink` pseudo-targets.
    """
    if not len(percentiles):
        return np.zeros(SUMMARY_DIM, dtype=np.float32)
    centre = shrink(aggregate(percentiles, prior, weights), len(percentiles), card, card_shrink)
    return np.array([centre - 0.5, 1.0, math.log2(1 + len(percentiles)) / 4.0], dtype=np.float32)


def summary_matrix(
    hist_tokens: np.ndarray,
    visible: np.ndarray,
    prior: str = "mean",
    card: np.ndarray | None = None,
    card_shrink: float = 0.0,
) -> np.ndarray:
    """`summary_vector` of many candidates at once: `hist_tokens` [k, h, HISTORY_DIM] (the
    percentile, centred, at position 0), `visible` [k, h] the tokens that count, `card` [k] their
    card prior (NaN or None: none). Mean and normal-score priors are computed in one pass; medians
    row by row."""
    hist_tokens = np.asarray(hist_tokens, dtype=np.float64)
    visible = np.asarray(visible, dtype=bool)
    k = len(visible)
    out = np.zeros((k, SUMMARY_DIM), dtype=np.float32)
    if k == 0:
        return out
    values = hist_tokens[..., 0] + 0.5 if hist_tokens.size else np.zeros(visible.shape)
    n = visible.sum(axis=1)
    w = visible * (
        history_weights(hist_tokens.reshape(-1, HISTORY_DIM), prior).reshape(visible.shape)
        if hist_tokens.size
        else 1.0
    )
    if prior.startswith("median"):
        centre = np.array(
            [aggregate(values[i, visible[i]], prior, w[i, visible[i]]) if n[i] else 0.5 for i in range(k)]
        )
    else:
        x = values
        if prior.startswith("gmean"):
            from scipy.special import ndtri

            x = ndtri(np.clip(values, GMEAN_CLIP, 1.0 - GMEAN_CLIP))
        total = w.sum(axis=1)
        centre = np.where(total > 0, (x * w).sum(axis=1) / np.maximum(total, 1e-12), 0.0)
        if prior.startswith("gmean"):
            from scipy.special import ndtr

            centre = ndtr(centre)
    if card is not None and card_shrink > 0:
        card = np.asarray(card, dtype=np.float64)
        has = np.isfinite(card) & (n > 0)
        centre = np.where(has, (n * centre + card_shrink * np.nan_to_num(card)) / (n + card_shrink), centre)
    has_history = n > 0
    out[:, 0] = np.where(has_history, centre - 0.5, 0.0)
    out[:, 1] = has_history
    out[:, 2] = np.where(has_history, np.log2(1 + n) / 4.0, 0.0)
    return out


def card_words(token: ModelToken) -> set[str]:
    """Categorical card facts of a model as words: author, model type, architecture, the datasets
    it was trained on and its base models (inputs of the card prior, next to the numeric token)."""
    words = {f"org={token.model_id.split('/')[0].lower()}"} if "/" in token.model_id else set()
    if token.model_type:
        words.add(f"type={token.model_type.lower()}")
    if token.architecture:
        words.add(f"arch={token.architecture.lower()}")
    words |= {f"data={name_key(d)}" for d in token.datasets if name_key(d)}
    words |= {f"base={str(b).lower()}" for b in token.base_models if b}
    return words


def _last_part_tokens(name: Any) -> set[str]:
    return name_tokens(str(name).rsplit("/", 1)[-1]) if name else set()


def source_match(token: ModelToken, meta: Mapping[str, Any]) -> float:
    """1.0 when the last path part of one of the model's training datasets shares a name token with
    the last part of the task's name or dataset id (`dair-ai/emotion` ~ `tweet_eval/emotion`,
    `glue/qqp` !~ `glue/cola`), else 0.0: the model was fine-tuned on this task or a close copy."""
    task = set()
    for key in ("name", "dataset_id", "pretty_name"):
        task |= _last_part_tokens(meta.get(key))
    if not task:
        return 0.0
    return float(any(_last_part_tokens(d) & task for d in token.datasets))


def estimator_vector(name: str, zscore: float) -> np.ndarray:
    v = np.zeros(FEATURE_DIM, dtype=np.float32)
    v[0] = float(np.clip(zscore, -4.0, 4.0))
    key = name.lower().replace("-", "_")
    v[1 + (ESTIMATORS.index(key) if key in ESTIMATORS else len(ESTIMATORS) - 1)] = 1.0
    return v


def robust_z(values: np.ndarray) -> np.ndarray:
    """Scores of one target made comparable across targets: centred on the median, IQR-scaled."""
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    out = np.zeros_like(values)
    if finite.sum() < 2:
        return out
    med = np.median(values[finite])
    q75, q25 = np.percentile(values[finite], [75, 25])
    scale = (q75 - q25) or np.std(values[finite]) or 1.0
    out[finite] = (values[finite] - med) / scale
    return out


def _positive(x: Any) -> float | None:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None
