"""Models: find a model's files, decide whether they are safe to load, and run it.

Used alike by the task stage (its probe encoder), the probe stage (features of each candidate)
and the hardware stage (export). One lookup, `resolve_model` (a local folder, then the local Hub
caches — the offline zoo is one — then the Hub), and one weights policy (pickle-only checkpoints
refused unless allowed). `efficientnet_lite` holds the one architecture hf-spider builds itself
(timm-style EfficientNet-Lite repos, since timm is not a dependency). Heavy libraries are
imported only when a model is run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_resolve": [
            "ResolvedModel",
            "resolve_model",
            "local_caches",
            "hub_cache",
            "hub_reachable",
            "folder_sha",
            "MODEL_FILE_PATTERNS",
        ],
        "_weights": ["check_weights", "pickle_only", "read_safetensors_header", "PICKLE_SUFFIXES"],
        "features": ["extract_features", "source_probs", "POOLING_VERSION"],
    },
)

if TYPE_CHECKING:
    from hf_spider.models._resolve import (
        MODEL_FILE_PATTERNS,
        ResolvedModel,
        folder_sha,
        hub_cache,
        hub_reachable,
        local_caches,
        resolve_model,
    )
    from hf_spider.models._weights import PICKLE_SUFFIXES, check_weights, pickle_only, read_safetensors_header
    from hf_spider.models.features import POOLING_VERSION, extract_features, source_probs
