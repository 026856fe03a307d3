"""The bench stage of a recommendation: `bench` of the first `top_k` candidates that can be reached."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from hf_spider.errors import AuthError, HfSpiderError, HubConnectionError, UserInputError
from hf_spider.hardware.record import DeviceRecord, records_of

logger = logging.getLogger("hf_spider.hardware")


def bench_candidates(
    models: Sequence[str],
    task: Any,
    *,
    top_k: int,
    target: Any,
    variants: Sequence[str],
    config: Any = None,
    token: str | None = None,
    endpoint: str | None = None,
    progress: Callable[..., None] | None = None,
) -> tuple[list[DeviceRecord], list[str]]:
    """`bench` each candidate of `models` (best first) until `top_k` were tried.

    A candidate whose weights cannot be reached (`hf_spider.models.resolve_model`: local caches,
    then the Hub) is passed over and named in the notes; one that is reached but cannot be
    exported or built (pickle-only weights included) gets a `skipped` record with the reason and
    counts as tried. Online only the head of `models` is tried (each miss costs a round trip).

    Args:
        task: a loaded `hf_spider.tasks.Task` (its sample calibrates and checks the variants), or
            one without data (a synthetic sample of its modality then).
        config: the measurement protocol (`MeasureConfig`; default its defaults).

    Returns:
        (records, notes): the records of every variant benchmarked or skipped, and notes in words.
    """
    from hf_spider.hardware._bench import bench
    from hf_spider.models import hub_reachable, resolve_model

    progress = progress or (lambda *a, **k: None)
    pool = list(models) if not hub_reachable(endpoint) else list(models)[: max(4 * top_k, top_k + 10)]
    progress("bench", 0, top_k, f"{', '.join(variants)} on {target.name}")
    records: list[DeviceRecord] = []
    tried, unreachable = 0, []
    dataset = task if task.has_data else None
    for model_id in pool:
        if tried >= top_k:
            break
        try:
            resolve_model(model_id, token=token, endpoint=endpoint)  # the one lookup: reachable?
        except (UserInputError, HubConnectionError, AuthError) as exc:
            unreachable.append(model_id)
            records.append(DeviceRecord.skipped(model_id, None, f"weights not reached: {exc.one_line()}"))
            continue
        except HfSpiderError:
            pass  # reached but refused (pickle-only weights): bench says so below, in a skipped record
        try:
            report = bench(
                model_id,
                target=target,
                variants=list(variants),
                dataset=dataset,
                token=token,
                endpoint=endpoint,
                config=config,
            )
        except (HfSpiderError, OSError, RuntimeError, ValueError) as exc:
            text = exc.one_line() if isinstance(exc, HfSpiderError) else f"{type(exc).__name__}: {exc}"
            records.append(DeviceRecord.skipped(model_id, None, f"export failed: {text}"))
        else:
            records += records_of(report)
        tried += 1
        progress("bench", tried, top_k, model_id.rsplit("/", 1)[-1])
    progress("bench", top_k, top_k, f"{tried} models")
    notes = []
    if unreachable:
        shown = ", ".join(unreachable[:8]) + (
            f" and {len(unreachable) - 8} more" if len(unreachable) > 8 else ""
        )
        if tried:
            notes.append(
                f"bench: {len(unreachable)} candidate(s) ranked above the benchmarked ones could not be "
                f"exported because their weights could not be reached: {shown}"
            )
        else:
            notes.append(
                f"bench: no candidate was benchmarked: the weights of all {len(unreachable)} tried could "
                f"not be reached ({shown}); fetch them once online (later runs read the Hub cache), "
                "or leave the device out with --stages rank,probe"
            )
    return records, notes
