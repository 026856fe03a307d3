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

A Model-Spider-style ranker: for one (candidate model, task) pair a small transformer encoder lets
the candidate's **model token** (card / config facts from `hf_spider.catalog`), the **task token**
(task metadata: size, classes, modality), **history tokens** (the candidate's percentile on earlier
fine-tuning targets, next to how those targets relate to the task) and optional **estimator tokens**
(LogME, regularised H-score of the candidate on the task; stage 2) attend to each other; the output
at the candidate position is its score, added to a prior. Meta-trained with a listwise Plackett-Luce
loss on episodes that sub-sample candidate sets and hide the history of some candidates, so that
models nobody has fine-tuned yet are ranked from their cards alone.

The prior: the candidate's mean or median percentile on earlier targets (optionally weighted by how
close each target's class count is to the task's), mixed with a *card prior*, which is the whole
prior of a model without history: a ridge regression from the card (numeric token + author, type,
architecture, datasets, base models) to the mean percentile for cards of the training population,
and for cards from elsewhere a monotone prior on facts that mean the same on any catalog (log
parameters, ImageNet accuracy reported on the card, narrow fine-tune or not, family) that falls
back to the parameter count outside the training range; the network's residual on such a card
fades with its familiarity (`hf_spider.ranker.cold`). Stage 2 fuses the stage-1 rank
with the rank of the forward-pass estimators' consensus (weight `stage2_weight`). Prior, card mix,
fusion weight and number of training steps (0 = prior alone) are chosen by cross-validation over
training targets only.

Load it with `hf_spider.ranker.Ranker.from_pretrained(PATH_OR_REPO)`.

## Training data
{data}

Targets used ({n_targets}): {targets}

Data defects handled by the loader:
{report}

## Training
- seed: {seed}; training steps chosen by leave-one-target-out cross-validation over the training
  targets only: {inner_cv}
- configuration: `{config}`
- card prior of models without history, chosen by cross-validation over the training models:
  {cold_prior}
- model tokens from: {token_sources}

## Evaluation
See `benchmarks/ranking.md` in the hf-spider repository (LODO and cold start on the shared image and
text records, all baselines side by side, both weighted-tau conventions).

## Limitations
Trained on a few dozen public fine-tuning targets (image and text classification); rankings for
other task types or modalities are extrapolations. Fine-tuning records are noisy (single runs).
"""


def model_card(info: dict[str, Any]) -> str:
    targets = info.get("targets", {})
    flat = [f"{m}: {', '.join(ts)}" for m, ts in targets.items()]
    return _TEMPLATE.format(
        data="\n".join(f"- `{d}`" for d in info.get("data", [])) or "- (not recorded)",
        n_targets=sum(len(t) for t in targets.values()),
        targets="; ".join(flat),
        report="\n".join(f"- {line}" for line in info.get("report", [])) or "- none",
        seed=info.get("seed"),
        inner_cv=json.dumps(
            {m: {str(k): round(v, 3) for k, v in cv.items()} for m, cv in info.get("inner_cv", {}).items()}
        )
        or "not run",
        config=json.dumps(info.get("config", {})),
        cold_prior=json.dumps(info.get("cold_prior", {})) or "not recorded",
        token_sources=json.dumps(info.get("token_sources", {})),
    )
