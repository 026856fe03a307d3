"""Transferability estimators behind one registry and one call.

    >>> from hf_spider import estimators
    >>> estimators.available()[:3]
    ['gbc', 'hscore', 'knn']
    >>> estimators.score("logme", features, labels)  # doctest: +SKIP

Each estimator is a small class in its own module, registered by name with `@register`; adding
one means writing that module and naming it in `_base._BUILTIN_MODULES`. See `docs/estimators.md` for each
estimator's input contract, cost and score scale. Every score is "higher = better transfer".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_base": [
            "Estimator",
            "available",
            "check_inputs",
            "check_names",
            "get_estimator",
            "register",
            "score",
        ]
    },
)

if TYPE_CHECKING:
    from hf_spider.estimators._base import (
        Estimator,
        available,
        check_inputs,
        check_names,
        get_estimator,
        register,
        score,
    )
