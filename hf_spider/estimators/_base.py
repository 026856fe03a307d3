"""The estimator base class, the registry, and the checks every estimator's input goes through."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from hf_spider.errors import DatasetError, UserInputError

logger = logging.getLogger("hf_spider.estimators")

_REGISTRY: dict[str, type[Estimator]] = {}
# The modules of the built-in estimators; importing one registers its classes. They load on the
# first `available()` / `get_estimator()` call, so `import hf_spider.estimators` stays light (no scipy).
_BUILTIN_MODULES = ("gbc", "hscore", "leep", "logme", "probes", "sfda", "transrate")


def _load_builtins() -> None:
    import importlib

    for module in _BUILTIN_MODULES:
        importlib.import_module(f"hf_spider.estimators.{module}")


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make an estimator reachable by its `name`."""
    if cls.name != cls.name.lower() or cls.name in _REGISTRY:
        raise ValueError(f"estimator name {cls.name!r} must be lowercase and unique")
    _REGISTRY[cls.name] = cls
    return cls


def available() -> list[str]:
    """Names of the registered estimators, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def _normalise_name(name: str) -> str:
    return str(name).strip().lower().replace("-", "_")


def check_names(names: Iterable[str] | str) -> tuple[str, ...]:
    """Estimator names, normalised as `get_estimator` reads them: a comma-separated string is
    split (not read letter by letter); an unknown name, or none at all, is a UserInputError."""
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    if names is None or not isinstance(names, Iterable):
        raise UserInputError("estimators must be names", hint=f"choose from {', '.join(available())}")
    keys = tuple(_normalise_name(n) for n in names)
    unknown = [k for k in keys if k not in available()]
    if unknown or not keys:
        raise UserInputError(
            f"unknown estimator(s): {', '.join(unknown) or '(none given)'}",
            hint=f"choose from {', '.join(available())}",
        )
    return keys


def get_estimator(name: str, **options: Any) -> Estimator:
    """An estimator instance by name (case-insensitive, `-` and `_` alike), with its options."""
    key = _normalise_name(name)
    _load_builtins()
    if key not in _REGISTRY:
        raise UserInputError(
            f"unknown transferability estimator {name!r}",
            hint=f"choose one of: {', '.join(available())}",
        )
    cls = _REGISTRY[key]
    accepted = [
        p.name for p in inspect.signature(cls.__init__).parameters.values() if p.kind is p.KEYWORD_ONLY
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise UserInputError(
            f"estimator {key!r} takes no option(s) {', '.join(unknown)}",
            hint=f"its options are: {', '.join(accepted) or 'none'}",
        )
    return cls(**options)


def score(name: str, features: Any, labels: Any, *, probs: Any = None, **options: Any) -> float:
    """Score frozen `features` (N, D) of a candidate model for target `labels` (N,).

    Args:
        name: an estimator from `available()` (case-insensitive).
        features: array-like (N, D), one row per example.
        labels: array-like (N,), class ids or names; at least 2 classes.
        probs: source-model class probabilities (N, C_source), needed by `leep` and `nce`.
        **options: estimator options (e.g. `k=` for `knn`), see `docs/estimators.md`.

    Returns:
        The score as a float; higher means the model is expected to transfer better.

    Raises:
        UserInputError: unknown estimator or option, mismatched lengths, missing `probs`.
        DatasetError: a single class, NaN/inf or constant features, too few examples per class.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> y = np.repeat([0, 1], 50)
        >>> X = rng.normal(size=(100, 8)) + y[:, None]
        >>> score("hscore", X, y) > score("hscore", rng.normal(size=(100, 8)), y)
        True
    """
    return get_estimator(name, **options).score(features, labels, probs=probs)


class Estimator:
    """A transferability estimator: frozen features (and labels) of a target task -> one number.

    Subclasses set `name`, `needs_probs`, `min_per_class`, store their options in `__init__`
    (sklearn style: constructors only store parameters) and implement `_score(X, y, probs)`,
    which receives validated input: `X` float64 (N, D), `y` int codes 0..K-1 with every class
    present, `probs` float64 (N, C) rows summing to 1 or None. Higher scores mean better transfer.
    """

    name: ClassVar[str] = ""
    needs_probs: ClassVar[bool] = False
    min_per_class: ClassVar[int] = 1

    def __init__(self, **options: Any):
        if options:
            raise UserInputError(
                f"estimator {self.name!r} takes no option(s) {sorted(options)}",
                hint="see docs/estimators.md for each estimator's options",
            )

    def fit(self, features: Any, labels: Any, *, probs: Any = None) -> Estimator:
        """Validate the input, compute the score; it is kept in `score_`. Returns self."""
        X, y, P = check_inputs(
            features,
            labels,
            probs=probs,
            needs_probs=self.needs_probs,
            min_per_class=self.min_per_class,
            estimator=self.name,
        )
        value = float(self._score(X, y, P))
        if not np.isfinite(value):
            raise DatasetError(
                f"{self.name} produced a non-finite score ({value}) on this input",
                hint="the features are numerically degenerate for this estimator; try another one",
            )
        self.score_ = value
        logger.debug(
            "%s = %.6g (N=%d, D=%d, K=%d)", self.name, value, X.shape[0], X.shape[1], int(y.max()) + 1
        )
        return self

    def score(self, features: Any, labels: Any, *, probs: Any = None) -> float:
        """The transferability score (higher = better) of `features` for `labels`."""
        return self.fit(features, labels, probs=probs).score_

    def _score(self, X: np.ndarray, y: np.ndarray, probs: np.ndarray | None) -> float:
        raise NotImplementedError

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({opts})"


def check_inputs(
    features: Any,
    labels: Any,
    *,
    probs: Any = None,
    needs_probs: bool = False,
    min_per_class: int = 1,
    estimator: str = "estimator",
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert `(features, labels, probs)`; raise a clear error for degenerate input.

    Returns float64 features (N, D), int64 label codes 0..K-1 (classes sorted, so any relabelling
    of the same partition gives the same codes up to a permutation), and float64 probs or None.
    """
    X = np.asarray(features)
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise UserInputError(
            f"{estimator}: features must be numeric, got dtype {X.dtype}",
            hint="pass a float array of shape (n_samples, n_features)",
        )
    X = X.astype(np.float64, copy=False)
    if X.ndim != 2:
        raise UserInputError(
            f"{estimator}: features must be 2-D (n_samples, n_features), got shape {X.shape}",
            hint="reshape to (n_samples, n_features); one row per example",
        )
    n, d = X.shape
    if n == 0 or d == 0:
        raise DatasetError(
            f"{estimator}: empty features of shape {X.shape}",
            hint="the sample holds no example (or the backbone returned no feature)",
        )
    y_raw = np.asarray(labels)
    if y_raw.ndim != 1:
        y_raw = y_raw.reshape(-1) if y_raw.ndim == 2 and 1 in y_raw.shape else y_raw
    if y_raw.ndim != 1:
        raise UserInputError(
            f"{estimator}: labels must be 1-D class ids, got shape {y_raw.shape}",
            hint="pass one integer or string class label per example (not one-hot)",
        )
    if len(y_raw) != n:
        raise UserInputError(
            f"{estimator}: {n} feature rows but {len(y_raw)} labels",
            hint="features and labels must describe the same examples, in the same order",
        )
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise DatasetError(
            f"{estimator}: features contain NaN or infinite values ({bad} of {n} rows)",
            hint="drop those examples or check the backbone's preprocessing (fp16 overflow?)",
        )
    if y_raw.dtype.kind == "f":
        if not np.isfinite(y_raw).all():
            raise DatasetError(f"{estimator}: labels contain NaN", hint="drop unlabelled examples first")
        if not np.all(y_raw == np.round(y_raw)):
            raise UserInputError(
                f"{estimator}: labels are continuous values",
                hint="transferability estimators here are for classification; pass class ids",
            )
    try:
        classes, y = np.unique(y_raw, return_inverse=True)
    except TypeError:
        raise UserInputError(
            f"{estimator}: labels mix types that cannot be compared",
            hint="pass labels of one type (all integers or all strings)",
        ) from None
    y = y.astype(np.int64).reshape(-1)
    if len(classes) < 2:
        raise DatasetError(
            f"{estimator}: the labels hold a single class ({classes[0]!r})",
            hint="transferability needs at least 2 classes; sample more of the dataset or check the label column",
        )
    counts = np.bincount(y)
    if counts.min() < min_per_class:
        small = [repr(classes[i]) for i in np.flatnonzero(counts < min_per_class)[:5]]
        raise DatasetError(
            f"{estimator}: needs at least {min_per_class} examples per class; "
            f"class(es) {', '.join(small)} have fewer",
            hint="draw a larger (stratified) sample, or drop the rarest classes",
        )
    if np.ptp(X, axis=0).max() == 0.0:
        raise DatasetError(
            f"{estimator}: every example has the same feature vector",
            hint="the backbone output carries no information; check its pooling and preprocessing",
        )
    P = None
    if probs is not None:
        P = _check_probs(probs, n, estimator)
    elif needs_probs:
        raise UserInputError(
            f"{estimator} needs the source model's class probabilities (probs=, shape N x C_source)",
            hint="pass probs= from a model with a classification head, or use 'nleep', which builds "
            "them from the features with a Gaussian mixture",
        )
    return X, y, P


def _check_probs(probs: Any, n: int, estimator: str) -> np.ndarray:
    P = np.asarray(probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] != n or P.shape[1] < 1:
        raise UserInputError(
            f"{estimator}: probs must have shape ({n}, n_source_classes), got {P.shape}",
            hint="one row of source-class probabilities per example, in the order of the features",
        )
    if not np.isfinite(P).all():
        raise DatasetError(f"{estimator}: probs contain NaN or infinite values", hint="check the source head")
    if (P < 0).any() or not np.allclose(P.sum(axis=1), 1.0, atol=1e-3):
        raise UserInputError(
            f"{estimator}: probs rows must be non-negative and sum to 1",
            hint="these look like logits: apply a softmax over the source classes first",
        )
    return P / P.sum(axis=1, keepdims=True)


def canonical_order(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A permutation that sorts examples by their content, so estimators that split or initialise
    at random (cross-validation folds, mixture initialisation) do not depend on the input order."""
    rng = np.random.default_rng(0)
    std = X.std(axis=0)
    # standardised first, so the order also survives per-feature scaling of the features
    key = ((X - X.mean(axis=0)) / np.where(std > 0, std, 1.0)) @ rng.standard_normal(X.shape[1])
    return np.argsort(key, kind="stable")


def class_folds(X: np.ndarray, y: np.ndarray, n_folds: int) -> np.ndarray:
    """Stratified fold ids that depend on the examples' content only, not on their order or on
    which code each class got (so the score is invariant to sample order and label permutation)."""
    order = canonical_order(X, y)
    rank = np.empty(len(y), dtype=np.int64)
    rank[order] = np.arange(len(y))
    folds = np.empty(len(y), dtype=np.int64)
    # Offset each class by the canonical rank of its first member so fold sizes stay balanced.
    for c in range(int(y.max()) + 1):
        members = np.flatnonzero(y == c)
        members = members[np.argsort(rank[members])]
        offset = int(rank[members[0]])
        folds[members] = (np.arange(len(members)) + offset) % n_folds
    return folds
