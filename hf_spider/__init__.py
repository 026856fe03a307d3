"""hf-spider: which pre-trained Hub model should I start from, for my dataset, on my hardware?

The pipeline, one sub-package a stage:
`catalog` (Hub cards -> model tokens) -> `tasks` (dataset -> task token, backbone features)
-> `estimators` (LogME, LEEP, ...) -> `ranker` (learned Model-Spider-style ranker)
-> `hardware` (export, quantize, measure on device targets) -> `recommend` (join, report, push).
Public names are imported lazily so `import hf_spider` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Catalog": "hf_spider.catalog",
    "ModelToken": "hf_spider.catalog",
    "Task": "hf_spider.tasks",
    "Ranker": "hf_spider.ranker",
    "DeviceTarget": "hf_spider.hardware",
    "Constraints": "hf_spider.hardware",
    "recommend": "hf_spider.recommend",
    "Recommendations": "hf_spider.recommend",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider' has no attribute {name!r}")
