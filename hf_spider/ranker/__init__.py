"""Stage 3: the ranker — a closed-form prior plus a learned residual, each part cross-validated.

- `load_records(dirs)`: fine-tuning records of the shared schema, cleaned, defects reported.
- `Ranker`: inference; `Ranker.default()` (shipped weights, offline), `.rank(candidates, task)`
  (stage 1; stage 2 runs in `hf_spider.probe`, through `Ranker.score(..., estimator_scores=)`).
- `rank_catalog(catalog, task)`: every catalog model ranked from cards alone.
- `train_ranker(records, ...)`: training (`hf-spider train`); parts chosen in `selection`.
- `evaluate_ranking(records, datasets)`: `hf-spider eval ranking`, beside the baselines of
  `BASELINES` (registered by name in `baselines`).
Modules: `inference` (contexts, scoring, stage-2 fusion), `training`, `selection` (model
selection), `priors` (closed-form priors), `baselines`, `evaluation`, `records`, `features`,
`model` (network and `RankerConfig`). Heavy modules (torch) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Records": "hf_spider.ranker.records",
    "load_records": "hf_spider.ranker.records",
    "Ranker": "hf_spider.ranker.ranker",
    "RankResult": "hf_spider.ranker.ranker",
    "rank_catalog": "hf_spider.ranker.ranker",
    "task_meta": "hf_spider.ranker.ranker",
    "train_ranker": "hf_spider.ranker.trainer",
    "evaluate_ranking": "hf_spider.ranker.evaluation",
    "ranking_metrics": "hf_spider.ranker.evaluation",
    "BASELINES": "hf_spider.ranker.baselines",
    "RankerConfig": "hf_spider.ranker.model",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider.ranker' has no attribute {name!r}")
