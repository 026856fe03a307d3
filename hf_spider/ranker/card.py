"""The model card written next to the ranker weights."""

from __future__ import annotations

import json
from typing import Any

_TEMPLATE = """---
library_name: hf-spider
license: apache-2.0
tags:
- hf-spider
- model-selection
- transferability
- pytorch_model_hub_mixin
---

# hf-spider ranker

A Model-Spider-style ranker. Its score is a closed-form **prior** plus, where cross-validation
keeps it, a **learned residual**:

- the prior: the candidate's mean, median or normal-score mean percentile on earlier fine-tuning
  datasets (optionally weighted by how close each dataset's class count is to the task's), mixed
  with a *card prior* (or with little), plus a bonus for models whose own training data shares the
  task's name. The card prior is the whole prior of a model without history: a ridge regression
  from the card (numeric token + author, type, architecture, datasets, base models) to the mean
  percentile for cards of the training population, and for cards from elsewhere a monotone prior
  on facts that mean the same on any catalog (log parameters, ImageNet accuracy reported on the
  card, narrow fine-tune or not, family) that falls back to the parameter count outside the
  training range; the network's residual on such a card fades with its familiarity
  (`hf_spider.ranker.cold`);
- the residual: for one (candidate model, task) pair a small transformer encoder lets the
  candidate's **model token** (card / config facts from `hf_spider.catalog`), the **task token**
  (size, classes, modality), **history tokens** (the candidate's percentile on earlier datasets,
  next to how those datasets relate to the task) and optional **estimator tokens** attend to each
  other; meta-trained with a listwise Plackett-Luce loss on episodes that sub-sample candidate sets
  and hide the history of some candidates.

Every part — the prior, the number of training steps of the residual (0 = the prior alone: the
ranker falls back to it where the residual does not beat it in cross-validation), the stage-2
fusion weight of forward-pass estimators — is chosen per modality by cross-validation over the
training datasets only.

Load it with `hf_spider.ranker.Ranker.from_pretrained(PATH_OR_REPO)`.

## Training data
{data}

Fine-tuning datasets used ({n_datasets}): {datasets}

Data defects handled by the loader:
{report}

## Training
- seed: {seed}; parts chosen per modality by cross-validation over the training datasets only:
{chosen}
- configuration: `{config}`
- card prior of models without history, chosen by cross-validation over the training models:
  {cold_prior}
- model tokens from: {token_sources}

## Evaluation
See `benchmarks/ranking.md` in the hf-spider repository (LODO, cold start and TransferGraph's
protocol on the shared image and text records, all baselines side by side, both weighted-tau
conventions).

## Limitations
Trained on a few dozen public fine-tuning datasets (image and text classification); rankings for
other task types or modalities are extrapolations. Fine-tuning records are noisy (single runs).
"""


def model_card(info: dict[str, Any]) -> str:
    datasets = info.get("datasets", {})
    flat = [f"{m}: {', '.join(ts)}" for m, ts in datasets.items()]
    chosen = info.get("chosen", {})
    lines = []
    for modality, parts in chosen.items():
        residual = (
            f"learned residual, {parts['steps']} steps"
            if parts.get("learned_residual")
            else "no learned residual (the prior alone)"
        )
        lines.append(
            f"  - {modality}: prior `{parts['prior']}`, {residual}, stage-2 weight {parts.get('stage2_weight')}"
        )
    return _TEMPLATE.format(
        data="\n".join(f"- `{d}`" for d in info.get("data", [])) or "- (not recorded)",
        n_datasets=sum(len(t) for t in datasets.values()),
        datasets="; ".join(flat),
        report="\n".join(f"- {line}" for line in info.get("report", [])) or "- none",
        seed=info.get("seed"),
        chosen="\n".join(lines) or "  - not run (fixed configuration)",
        config=json.dumps(info.get("config", {})),
        cold_prior=json.dumps(info.get("cold_prior", {})) or "not recorded",
        token_sources=json.dumps(info.get("token_sources", {})),
    )
