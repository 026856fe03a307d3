"""Models: find a model's files, decide whether they are safe to load, and run it.

Used alike by the task stage (its probe encoder), the probe stage (features of each candidate)
and the hardware stage (export). One lookup, `resolve_model` (a local folder, then the local Hub
caches — the offline zoo is one — then the Hub), and one weights policy (pickle-only checkpoints
refused unless allowed). `efficientnet_lite` holds the one architecture hf-spider builds itself
(timm-style EfficientNet-Lite repos, since timm is not a dependency). Heavy libraries are
imported only when a model is run.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "ResolvedModel": "hf_spider.models._resolve",
    "resolve_model": "hf_spider.models._resolve",
    "local_caches": "hf_spider.models._resolve",
    "hub_cache": "hf_spider.models._resolve",
    "hub_reachable": "hf_spider.models._resolve",
    "folder_sha": "hf_spider.models._resolve",
    "MODEL_FILE_PATTERNS": "hf_spider.models._resolve",
    "check_weights": "hf_spider.models._weights",
    "pickle_only": "hf_spider.models._weights",
    "read_safetensors_header": "hf_spider.models._weights",
    "PICKLE_SUFFIXES": "hf_spider.models._weights",
    "extract_features": "hf_spider.models.features",
    "source_probs": "hf_spider.models.features",
    "POOLING_VERSION": "hf_spider.models.features",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider.models' has no attribute {name!r}")
