"""Stage 3: the learned Model-Spider-style ranker.

- `load_records(dirs)`: fine-tuning records of the shared schema, cleaned, defects reported.
- `Ranker`: `Ranker.default()` (shipped weights, offline), `.rank(candidates, task)` (stage 1;
  stage 2 and its one fusion with stage 1 are `hf_spider.probe`).
- `rank_catalog(catalog, task)`: every catalog model ranked from cards alone.
- `train_ranker(records)`, `evaluate_ranking(records, test_targets)`: `hf-spider train` / `eval ranking`.
Heavy modules (torch) load on first use.
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
    "train_ranker": "hf_spider.ranker.ranker",
    "task_meta": "hf_spider.ranker.ranker",
    "evaluate_ranking": "hf_spider.ranker.evaluation",
    "ranking_metrics": "hf_spider.ranker.evaluation",
    "RankerConfig": "hf_spider.ranker.model",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider.ranker' has no attribute {name!r}")
