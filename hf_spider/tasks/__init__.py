"""A dataset becomes a `Task` with a task token.

`load_task(dataset, ...)` accepts a Hub dataset id, a `save_to_disk` folder, an imagefolder, a
Hub-layout repo folder, a single parquet/csv/jsonl file, or a card-only repo (metadata-only task).
Running candidate models over the task's sample is `hf_spider.models.extract_features` (the
probe stage, `hf_spider.probe`, does it for the top candidates). Heavy libraries are imported
only when these are called.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Task": "hf_spider.tasks.task",
    "METADATA_VECTOR_LENGTH": "hf_spider.tasks.task",
    "DATA_TOKEN_LENGTH": "hf_spider.tasks.task",
    "TASK_CATEGORIES": "hf_spider.tasks.task",
    "load_task": "hf_spider.tasks._load",
    "PROBE_MODELS": "hf_spider.tasks._load",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider.tasks' has no attribute {name!r}")
