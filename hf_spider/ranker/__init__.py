"""Stage 3: the ranker — a closed-form prior plus a learned residual, each part cross-validated.

- `load_records(dirs)`: fine-tuning records of the shared schema, cleaned, defects reported.
- `Ranker`: inference; `Ranker.default()` (shipped weights, offline), `.rank(candidates, task)`
  (stage 1; stage 2 runs in `hf_spider.probe`, through `Ranker.score(..., estimator_scores=)`).
- `rank_catalog(catalog, task)`: every catalog model ranked from cards alone.
- `train_ranker(records, ...)`: `hf-spider train` (`trainer`); parts chosen in `selection`.
- `evaluate_ranking(records, datasets)`: `hf-spider eval ranking`, beside the baselines of
  `BASELINES` (registered by name in `baselines`).
Modules: `inference` (contexts, scoring, stage-2 fusion), `training` (episodes, loss, `fit`),
`trainer`, `selection` (model selection), `priors` (closed-form priors), `cold` (the card prior of
models without history), `baselines`, `evaluation`, `records`, `features`,
`model` (network and `RankerConfig`). Heavy modules (torch) load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "records": ["Records", "load_records"],
        "ranker": ["Ranker", "RankResult", "rank_catalog", "task_meta"],
        "trainer": ["train_ranker"],
        "evaluation": ["evaluate_ranking", "ranking_metrics"],
        "baselines": ["BASELINES"],
        "model": ["RankerConfig"],
    },
)

if TYPE_CHECKING:
    from hf_spider.ranker.baselines import BASELINES
    from hf_spider.ranker.evaluation import evaluate_ranking, ranking_metrics
    from hf_spider.ranker.model import RankerConfig
    from hf_spider.ranker.ranker import Ranker, RankResult, rank_catalog, task_meta
    from hf_spider.ranker.records import Records, load_records
    from hf_spider.ranker.trainer import train_ranker
