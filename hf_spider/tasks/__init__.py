"""A dataset becomes a `Task` with a task token.

`load_task(dataset, ...)` accepts a Hub dataset id, a `save_to_disk` folder, an imagefolder, a
Hub-layout repo folder, a single parquet/csv/jsonl file, or a card-only repo (metadata-only task).
Running candidate models over the task's sample is `hf_spider.models.extract_features` (the
probe stage, `hf_spider.probe`, does it for the top candidates). Heavy libraries are imported
only when these are called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "task": ["Task", "METADATA_VECTOR_LENGTH", "DATA_TOKEN_LENGTH", "TASK_CATEGORIES"],
        "_load": ["load_task", "PROBE_MODELS"],
        "_card": ["read_card", "CardInfo"],
    },
)

if TYPE_CHECKING:
    from hf_spider.tasks._card import CardInfo, read_card
    from hf_spider.tasks._load import PROBE_MODELS, load_task
    from hf_spider.tasks.task import DATA_TOKEN_LENGTH, METADATA_VECTOR_LENGTH, TASK_CATEGORIES, Task
