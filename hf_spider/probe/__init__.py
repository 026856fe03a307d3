"""Stage 2, the probe: candidate models run over the task's sample, scored by estimators, fused.

    >>> from hf_spider.probe import probe, fuse, rerank
    >>> result = probe(stage1, task, top_k=5)  # doctest: +SKIP
    >>> order = rerank(stage1, fuse(ranker, catalog, task, result))  # doctest: +SKIP

`probe` returns a `ProbeResult` (estimator scores per probed model, what could not be reached
and why); `fuse` is the one fusion of stage 1 and stage 2; `rerank` the final order. Features
come from `hf_spider.models`, scores from `hf_spider.estimators`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_probe": ["ESTIMATORS", "ProbeResult", "probe", "fuse", "rerank"],
    },
)

if TYPE_CHECKING:
    from hf_spider.probe._probe import ESTIMATORS, ProbeResult, fuse, probe, rerank
