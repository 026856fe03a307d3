"""Stage 5: `recommend` end to end, the `Recommendations` results object, and writing back to the Hub.

`recommend(dataset)` joins the stages — task, stage 1 ranker over the catalog, stage 2 forward-pass
estimators on the top-k, export and measurement on a device target, constraints — into one
`Recommendations`, which saves to parquet/JSON/markdown/plot and pushes to the Hub as a dataset.
`publish_space` ships the Gradio app of `space_app/` as a Space.
"""

from __future__ import annotations

import sys
import types
from typing import TYPE_CHECKING

from hf_spider._lazy import attach

_getattr, __dir__, __all__ = attach(
    __name__,
    {"_pipeline": ["recommend"], "_results": ["Recommendations"], "_hub": ["publish_space"]},
)

if TYPE_CHECKING:
    from hf_spider.recommend._hub import publish_space
    from hf_spider.recommend._pipeline import recommend
    from hf_spider.recommend._results import Recommendations


def __getattr__(name: str):
    if name == "__signature__":  # `inspect.signature(hf_spider.recommend)`: the function's
        import inspect

        return inspect.signature(_getattr("recommend"))
    return _getattr(name)


class _CallableModule(types.ModuleType):
    """`hf_spider.recommend` names both this package and the function. Importing the package binds
    the name on `hf_spider` to the module, so the module calls through to the function."""

    def __call__(self, *args, **kwargs):
        return _getattr("recommend")(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
