"""Stage 2: forward passes of the top stage-1 candidates over the task's sample, and their fusion.

`probe(ranking, task, top_k=...)` walks the stage-1 ranking from the top, runs each model whose
weights can be reached (`hf_spider.models.extract_features`, local caches first) over the task's
sample, scores the features with the transferability estimators, and stops after `top_k` models.
`fuse(ranker, candidates, task, result)` is the one place stage 1 and stage 2 meet: the ranker's
stage-1 score of each probed model fused with its estimators' consensus (`Ranker.score` with
estimator scores, the weight cross-validated at training). `rerank` gives the final order: probed
models first by fused score, then the rest in stage-1 order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hf_spider.errors import HfSpiderError, UnsafeWeightsError

logger = logging.getLogger("hf_spider.probe")

ESTIMATORS = ("logme", "reg_hscore")
# Estimator names of `hf_spider.estimators` -> metric names of the records the ranker was trained on.
RANKER_METRIC = {"reg_hscore": "reg_h_score", "hscore": "h_score"}

Progress = Callable[..., None]


@dataclass
class ProbeResult:
    """What stage 2 measured.

    `scores` maps each probed model (in the order probed) to its estimator scores; `unreachable`
    names higher-ranked candidates whose weights could not be reached; `notes` says, in words,
    what was skipped and why; `forward_passes` counts the models run over the sample.
    """

    scores: dict[str, dict[str, float]] = field(default_factory=dict)
    feature_dims: dict[str, int] = field(default_factory=dict)
    unreachable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    offline: bool = False
    estimators: tuple[str, ...] = ESTIMATORS

    @property
    def models(self) -> list[str]:
        return list(self.scores)

    @property
    def forward_passes(self) -> int:
        return len(self.scores)

    def __bool__(self) -> bool:
        return bool(self.scores)

    def by_metric(self) -> dict[str, dict[str, float]]:
        """`{metric: {model_id: score}}` under the metric names the ranker was trained with."""
        out: dict[str, dict[str, float]] = {}
        for model_id, scores in self.scores.items():
            for name, value in scores.items():
                out.setdefault(RANKER_METRIC.get(name, name), {})[model_id] = value
        return out


def probe(
    ranking: Sequence[tuple[str, float]] | Sequence[str],
    task: Any,
    *,
    top_k: int,
    estimators: Iterable[str] = ESTIMATORS,
    token: str | None = None,
    endpoint: str | None = None,
    progress: Progress | None = None,
) -> ProbeResult:
    """Run the first `top_k` reachable candidates of `ranking` over `task`'s sample.

    Args:
        ranking: stage-1 order, best first (`[(model_id, score)]` or `[model_id]`).
        task: a `hf_spider.tasks.Task` with data (`inputs`, `labels`, `modality`, `fingerprint`).
        top_k: how many models to run.
        estimators: names from `hf_spider.estimators.available()`.
        token, endpoint: for models not in a local cache (the token is never logged).
        progress: `progress("probe", done, total, note)`.

    Returns:
        A `ProbeResult`; empty (falsy) when no candidate could be run, with the reason in `notes`.
    """
    from hf_spider import estimators as est
    from hf_spider.models import extract_features, hub_reachable

    progress = progress or (lambda *a, **k: None)
    ids = [m if isinstance(m, str) else m[0] for m in ranking]
    result = ProbeResult(estimators=tuple(estimators), offline=not hub_reachable(endpoint))
    if result.offline:
        result.notes.append(
            "the Hub could not be reached: stage 2 used only models available locally (offline zoo, caches)"
        )
    # Offline, a candidate that is not local fails at once, so every one may be tried; online each
    # miss costs a round trip, so only the head of the stage-1 ranking is.
    max_tries = len(ids) if result.offline else max(4 * top_k, top_k + 10)
    progress("probe", 0, top_k, "forward passes")
    for model_id in ids[:max_tries]:
        if len(result.scores) >= top_k:
            break
        try:
            feats = extract_features(
                model_id,
                task.inputs,
                modality=task.modality,
                cache_key=task.fingerprint,
                token=token,
                endpoint=endpoint,
                offline=result.offline,
            )
        except UnsafeWeightsError as exc:
            result.notes.append(f"stage 2 skipped {model_id}: {exc.one_line()}")
            continue
        except (HfSpiderError, OSError) as exc:
            text = exc.one_line() if isinstance(exc, HfSpiderError) else f"{type(exc).__name__}: {exc}"
            logger.info("stage 2: %s not reachable: %s", model_id, text)
            result.unreachable.append(model_id)
            continue
        scores = {}
        for name in result.estimators:
            try:
                scores[name] = float(est.score(name, feats, task.labels))
            except HfSpiderError as exc:
                result.notes.append(f"{name} of {model_id} not computed: {exc.one_line()}")
        result.scores[model_id] = scores
        result.feature_dims[model_id] = int(feats.shape[1])
        progress("probe", len(result.scores), top_k, model_id.rsplit("/", 1)[-1])
    progress("probe", top_k, top_k, f"{len(result.scores)} models")
    if result.unreachable:
        result.notes.append(
            f"stage 2: the weights of {len(result.unreachable)} higher-ranked candidate(s) could not be "
            f"reached (offline, or not on the endpoint), so they keep their stage-1 score and rank below "
            f"the re-ranked ones: {shown(result.unreachable)}"
        )
    if not result.scores:
        result.notes.append(
            "stage 2 found no candidate whose weights could be reached: ranking from stage 1 only"
        )
    return result


def check_sample(task: Any) -> None:
    """Refuse stage 2 on a sample holding one example per class: its estimators mean nothing there."""
    import numpy as np

    from hf_spider.errors import DatasetError

    if not task.has_data or len(task.labels) <= 2:
        return
    counts = np.bincount(task.labels)
    if counts.max() < 2:
        raise DatasetError(
            f"the sample of {len(task.labels)} examples of {task.name} holds one example per class "
            f"({task.num_classes} classes): stage-2 estimators need several per class",
            hint=f"raise --sample above {2 * task.num_classes}, or rank from cards only with --stages rank",
        )


def fuse(ranker: Any, candidates: Mapping[str, Any], task: Any, result: ProbeResult) -> dict[str, float]:
    """The fused stage-2 score of each probed model: its stage-1 score and its estimators' consensus.

    Args:
        ranker: a `hf_spider.ranker.Ranker` (its cross-validated stage-2 weight does the fusion).
        candidates: `{model_id: ModelToken}` (a `Catalog` works), holding every probed model.
        task: the task as the ranker reads it.
        result: what `probe` measured.

    Returns:
        `{model_id: fused}` for the probed models; empty when nothing was probed.
    """
    if not result:
        return {}
    tokens = [candidates[m] for m in result.models]
    return ranker.score(tokens, task, estimator_scores=result.by_metric())


def rerank(stage1: Sequence[tuple[str, float]], fused: Mapping[str, float]) -> list[str]:
    """Final order: the probed models by fused score, then the rest in stage-1 order."""
    return sorted(fused, key=lambda m: -fused[m]) + [m for m, _ in stage1 if m not in fused]


def shown(ids: list[str], n: int = 8) -> str:
    """The first `n` ids for a note, and how many more."""
    return ", ".join(ids[:n]) + (f" and {len(ids) - n} more" if len(ids) > n else "")
