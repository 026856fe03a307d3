"""Stage 2, the probe: candidate models run over the task's sample, scored by estimators, fused.

    >>> from hf_spider.probe import probe, fuse, rerank
    >>> result = probe(stage1, task, top_k=5)  # doctest: +SKIP
    >>> order = rerank(stage1, fuse(ranker, catalog, task, result))  # doctest: +SKIP

`probe` returns a `ProbeResult` (estimator scores per probed model, what could not be reached
and why); `fuse` is the one fusion of stage 1 and stage 2; `rerank` the final order. Features
come from `hf_spider.models`, scores from `hf_spider.estimators`.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ESTIMATORS": "hf_spider.probe._probe",
    "ProbeResult": "hf_spider.probe._probe",
    "probe": "hf_spider.probe._probe",
    "fuse": "hf_spider.probe._probe",
    "rerank": "hf_spider.probe._probe",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider.probe' has no attribute {name!r}")
