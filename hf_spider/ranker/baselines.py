"""Baseline rankers, registered by name: what `hf-spider eval ranking` sets beside the ranker.

Each baseline is a function of one evaluation fold (`Fold`: the held-out fine-tuning dataset, its
models, the training datasets, the models whose records are hidden in cold start) that returns a
score per model (higher is better, NaN where it has none: filled with the median of the others) or
None where it does not apply. Register another with `@register("name")`.

| name | score |
| --- | --- |
| `random` | uniform noise (seeded) |
| `params` | log number of parameters |
| `upstream` | best accuracy the card reports (`model-index`, else `model_config.csv`'s `accuracy`) |
| `popularity` | log downloads, where tokens have them |
| `static` | mean z-scored accuracy on the training datasets (no task information at all) |
| `collaborative` | mean percentile on the training datasets |
| `logme`, `reg_h_score` | the recorded transferability scores of the held-out dataset |
| `transfergraph` | TransferGraph's published predictions, where given |
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hf_spider.catalog._token import ModelToken
from hf_spider.ranker import priors as P
from hf_spider.ranker.records import Records


@dataclass
class Fold:
    """One evaluation fold: rank `models` of `dataset`, knowing only `train_datasets`' records
    (minus every record of the `cold` models)."""

    records: Records
    dataset: str
    models: list[str]
    train_datasets: list[str]
    tokens: Mapping[str, ModelToken]
    cold: set[str] = field(default_factory=set)
    seed: int = 0
    predictions: pd.DataFrame | None = None  # TransferGraph's: dataset, model, score

    def training_matrix(self, *, include_failed_runs: bool) -> pd.DataFrame:
        """Accuracies (models x training datasets) visible in this fold."""
        perf = self.records.perf
        ok = perf[perf["dataset"].isin(set(self.train_datasets)) & ~perf["model"].isin(self.cold)]
        if not include_failed_runs:
            ok = ok[~ok["failed"]]
        return ok.pivot_table(index="model", columns="dataset", values="accuracy")


Baseline = Callable[[Fold], "np.ndarray | None"]
BASELINES: dict[str, Baseline] = {}


def register(name: str) -> Callable[[Baseline], Baseline]:
    """Register a baseline under `name` (its method name in evaluation tables)."""

    def wrap(fn: Baseline) -> Baseline:
        BASELINES[name] = fn
        return fn

    return wrap


@register("random")
def random_scores(fold: Fold) -> np.ndarray:
    return np.random.default_rng(fold.seed).random(len(fold.models))


@register("params")
def params_scores(fold: Fold) -> np.ndarray:
    params = [fold.tokens[m].num_parameters if m in fold.tokens else None for m in fold.models]
    return np.log(np.array([p if p else np.nan for p in params], dtype=np.float64))


def upstream_accuracy(token: ModelToken | None, config_row: Mapping | None = None) -> float | None:
    """The best accuracy a model's card reports (model-index), else `model_config.csv`'s
    `accuracy` column; None where neither says."""
    best = token.best_eval_accuracy() if token is not None else None
    if best is None and config_row is not None:
        value = pd.to_numeric(pd.Series([config_row.get("accuracy")]), errors="coerce").iloc[0]
        if np.isfinite(value):
            best = float(value) / 100.0 if 1.0 < value <= 100.0 else float(value)
    return best


@register("upstream")
def upstream_scores(fold: Fold) -> np.ndarray | None:
    models = fold.records.models
    rows = (
        models.drop_duplicates("model").set_index("model").to_dict("index")
        if len(models) and "model" in models
        else {}
    )
    values = [upstream_accuracy(fold.tokens.get(m), rows.get(m)) for m in fold.models]
    out = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return out if np.isfinite(out).any() else None


@register("popularity")
def popularity_scores(fold: Fold) -> np.ndarray | None:
    downloads = [fold.tokens[m].downloads if m in fold.tokens else None for m in fold.models]
    out = np.log1p(np.array([np.nan if d is None else d for d in downloads], dtype=np.float64))
    return out if np.isfinite(out).any() else None


@register("static")
def static_baseline(fold: Fold) -> np.ndarray:
    # every run of the training datasets counts, failed ones too: the README's definition
    return P.static_scores(fold.training_matrix(include_failed_runs=True), fold.models)


@register("collaborative")
def collaborative_baseline(fold: Fold) -> np.ndarray:
    return P.collaborative_scores(fold.training_matrix(include_failed_runs=False), fold.models)


def _recorded(metric: str) -> Baseline:
    def scores(fold: Fold) -> np.ndarray | None:
        s = fold.records.score_matrix(metric, fold.dataset)
        if s.empty:
            return None
        return s.reindex(fold.models).to_numpy(dtype=np.float64)

    return scores


register("logme")(_recorded("logme"))
register("reg_h_score")(_recorded("reg_h_score"))


@register("transfergraph")
def transfergraph_scores(fold: Fold) -> np.ndarray | None:
    if fold.predictions is None:
        return None
    p = fold.predictions[fold.predictions["dataset"] == fold.dataset]
    if p.empty:
        return None
    # repeated (dataset, model) rows: the first, as the published file lists them
    s = p.drop_duplicates("model").set_index("model")["score"]
    return s.reindex(fold.models).to_numpy(dtype=np.float64)


def fill_missing(values: np.ndarray, default: float | None = None) -> np.ndarray:
    """Missing values get a neutral score: `default`, else the median of the known ones."""
    values = np.asarray(values, dtype=np.float64).copy()
    known = np.isfinite(values)
    fill = default if default is not None else (float(np.median(values[known])) if known.any() else 0.0)
    values[~known] = fill
    return values
