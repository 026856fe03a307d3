"""`train_ranker`: the whole of `hf-spider train` — the ranker's parts chosen per modality by
cross-validation over the training datasets (`selection`), then trained on all of them (`training`).

    >>> from hf_spider.ranker import load_records, train_ranker
    >>> ranker, info = train_ranker(load_records(["records/image", "records/text"]), seed=0)  # doctest: +SKIP
    >>> ranker.save_pretrained("weights/")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from hf_spider.ranker import cold
from hf_spider.ranker import priors as P
from hf_spider.ranker.inference import Context, history_percentiles
from hf_spider.ranker.model import RankerConfig, SpiderEnsemble
from hf_spider.ranker.ranker import Ranker, token_schema
from hf_spider.ranker.records import Records
from hf_spider.ranker.selection import select_parts
from hf_spider.ranker.tokens import tokens_for
from hf_spider.ranker.training import fit, fit_card_prior, training_contexts


def train_ranker(
    records: Records,
    *,
    config: RankerConfig | None = None,
    seed: int = 0,
    tune: bool = True,
    catalog: Any = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Ranker, dict[str, Any]]:
    """Meta-train a ranker on every usable dataset of `records` (all modalities).

    Args:
        records: cleaned fine-tuning records (`load_records`).
        config: architecture and training settings (default `RankerConfig()`).
        seed: same seed, same weights (training runs on one CPU thread: multi-threaded reductions
            round differently with the core count).
        tune: choose the parts per modality by cross-validation over the training datasets
            (`selection.select_parts`: prior, stage-2 weight, learned residual's steps or none);
            False keeps `config` as given.
        catalog: catalog of model tokens (default: the embedded one; False: none).
        progress: called with a short line at each phase.

    Returns:
        (ranker, info): info holds the parts chosen per modality with their cross-validated
        figures, the datasets used and where the model tokens came from.
    """
    import torch
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            return _train_ranker(records, config or RankerConfig(), seed, tune, catalog, progress)
    finally:
        torch.set_num_threads(threads)


def _train_ranker(
    records: Records,
    config: RankerConfig,
    seed: int,
    tune: bool,
    catalog: Any,
    progress: Callable[[str], None] | None,
) -> tuple[Ranker, dict[str, Any]]:
    tokens, sources = tokens_for(records, catalog=catalog)
    usable = records.datasets[~records.datasets["failed"]]
    by_modality = {m: sorted(g["dataset"]) for m, g in usable.groupby("modality")}
    info: dict[str, Any] = {"seed": seed, "token_sources": sources, "datasets": by_modality, "chosen": {}}
    # the cold prior's kind, chosen once per modality on all training datasets (cold.chosen_for)
    with cold.chosen_for(records, by_modality, tokens) as picked:
        info["cold_prior"] = picked
        return _fit_parts(records, config, seed, tune, progress, tokens, by_modality, info)


def _fit_parts(
    records: Records,
    config: RankerConfig,
    seed: int,
    tune: bool,
    progress: Callable[[str], None] | None,
    tokens: dict,
    by_modality: dict[str, list[str]],
    info: dict[str, Any],
) -> tuple[Ranker, dict[str, Any]]:
    if tune:
        parts: dict[str, dict[str, Any]] = {}
        steps_cv: dict[str, dict[str, float]] = {}
        for modality, datasets in by_modality.items():
            if progress:
                progress(f"choosing the {modality} ranker's parts by cross-validation")
            chosen_config, chosen = select_parts(records, datasets, tokens, config, seed=seed)
            info["chosen"][modality] = chosen
            parts[modality] = {
                **P.PriorChoice.from_config(chosen_config).to_config(),
                "residual": chosen_config.steps > 0,
            }
            if chosen["stage2_weight"] is not None:
                parts[modality]["stage2_weight"] = chosen_config.stage2_weight
                parts[modality]["stage2_estimators"] = list(chosen_config.stage2_estimators)
            if chosen_config.steps > 0:
                steps_cv[modality] = chosen["cv"]["steps"]
        # one network serves every modality: its step count is the best mean over the modalities
        # that keep a learned residual (0 when none does)
        steps = 0
        if steps_cv:
            grid = set.intersection(*(set(cv) for cv in steps_cv.values())) - {"0"}
            if grid:
                mean = {s: float(np.mean([cv[s] for cv in steps_cv.values()])) for s in grid}
                steps = int(max(mean, key=lambda s: (round(mean[s], 4), -int(s))))
        config = RankerConfig.from_dict({**config.to_dict(), "steps": steps, "by_modality": parts})
    info["config"] = config.to_dict()
    contexts: list[Context] = []
    history: dict[str, dict[str, float]] = {}
    metas: dict[str, dict] = {}
    card_prior: dict[str, dict[str, Any]] = {}
    for modality, datasets in by_modality.items():
        part = config.for_modality(modality)
        if config.steps > 0 and config.residual_for(modality):
            contexts += training_contexts(
                records,
                modality,
                datasets,
                tokens,
                prior=part.prior,
                card_shrink=part.card_shrink,
                match_bonus=part.match_bonus,
            )
        pct = history_percentiles(records, modality, datasets)
        for model, row in pct.iterrows():
            history.setdefault(str(model), {}).update(
                {t: round(float(v), 4) for t, v in row.items() if v == v}
            )
        metas.update({t: records.dataset_meta(t) for t in pct.columns})
        fitted = fit_card_prior(pct, tokens)
        if fitted is not None:
            card_prior[modality] = fitted.to_dict()
    if progress:
        progress(f"training the learned residual on {len(contexts)} datasets ({config.steps} steps)")
    meta = {**token_schema(), "trained_on": {m: len(t) for m, t in by_modality.items()}, "seed": seed}
    model = fit(contexts, config, seed=seed, meta=meta) if contexts else _untrained(config, meta, seed)
    return Ranker(model, history=history, datasets=metas, card_prior=card_prior), info


def _untrained(config: RankerConfig, meta: dict, seed: int) -> SpiderEnsemble:
    """The network at 0 steps (zero-initialised residual: the prior alone), for a ranker whose
    learned residual cross-validation turned off in every modality."""
    import torch

    torch.manual_seed(seed)
    model = SpiderEnsemble(config=config.to_dict(), meta=meta)
    model.eval()
    return model
