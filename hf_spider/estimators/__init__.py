"""Transferability estimators behind one registry and one call.

    >>> from hf_spider import estimators
    >>> estimators.available()[:3]
    ['gbc', 'hscore', 'knn']
    >>> estimators.score("logme", features, labels)  # doctest: +SKIP

Each estimator is a small class in its own module, registered by name with `@register`; adding
one means writing that module and importing it below. See `docs/estimators.md` for each
estimator's input contract, cost and score scale. Every score is "higher = better transfer".
"""

from __future__ import annotations

from typing import Any

# The registry: importing a module registers its estimators.
from hf_spider.estimators import gbc, hscore, leep, logme, probes, sfda, transrate
from hf_spider.estimators._base import Estimator, available, check_inputs, get_estimator, register

__all__ = ["Estimator", "available", "check_inputs", "get_estimator", "register", "score"]


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
