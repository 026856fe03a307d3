"""Stage 5: `recommend` end to end, the `Recommendations` results object, and writing back to the Hub.

`recommend(dataset)` joins the stages — task, stage 1 ranker over the catalog, stage 2 forward-pass
estimators on the top-k, export and measurement on a device target, constraints — into one
`Recommendations`, which saves to parquet/JSON/markdown/plot and pushes to the Hub as a dataset.
`publish_space` ships the Gradio app of `space_app/` as a Space.
"""

from __future__ import annotations

import inspect
import sys
import types

from hf_spider.recommend._hub import publish_space
from hf_spider.recommend._pipeline import recommend
from hf_spider.recommend._results import Recommendations

__all__ = ["Recommendations", "publish_space", "recommend"]


class _CallableModule(types.ModuleType):
    """`hf_spider.recommend` names both this package and the function. Importing the package binds
    the name on `hf_spider` to the module, so the module calls through to the function."""

    def __call__(self, *args, **kwargs):
        return recommend(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
__signature__ = inspect.signature(recommend)
