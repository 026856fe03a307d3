"""hf-spider: which pre-trained Hub model should I start from, for my dataset, on my hardware?

The pipeline, one sub-package a stage:
`catalog` (Hub cards -> model tokens) -> `tasks` (dataset -> task token, backbone features)
-> `estimators` (LogME, LEEP, ...) -> `ranker` (learned Model-Spider-style ranker)
-> `hardware` (export, quantize, measure on device targets) -> `recommend` (join, report, push).
Public names are imported lazily so `import hf_spider` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "catalog": ["Catalog", "ModelToken"],
        "tasks": ["Task"],
        "ranker": ["Ranker"],
        "hardware": ["DeviceTarget", "Constraints"],
        "recommend": ["recommend", "Recommendations"],
    },
    eager=["__version__"],
)

if TYPE_CHECKING:
    from hf_spider.catalog import Catalog, ModelToken
    from hf_spider.hardware import Constraints, DeviceTarget
    from hf_spider.ranker import Ranker
    from hf_spider.recommend import Recommendations, recommend
    from hf_spider.tasks import Task
