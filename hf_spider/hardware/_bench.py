"""`bench`: export one model, build its variants, measure each on one target, and rank them."""

from __future__ import annotations

import logging
import time
from typing import Any

from hf_spider.hardware._export import export
from hf_spider.hardware._measure import flat_row, measure
from hf_spider.hardware.constraints import Constraints, pareto_front, pick
from hf_spider.hardware.device import DeviceTarget
from hf_spider.hardware.sample import TaskSample, feeds_for
from hf_spider.hardware.variants import make_variants, parse_variants

logger = logging.getLogger("hf_spider.hardware")


def load_sample(
    dataset: str | None, modality: str, n: int = 32, *, token: str | None = None, endpoint: str | None = None
) -> TaskSample:
    """Rows of the user's dataset through `hf_spider.tasks.load_task`, else a synthetic sample."""
    if not dataset:
        return TaskSample.synthetic(modality, n)
    try:
        from hf_spider.tasks import load_task
    except ImportError:
        logger.warning("hf_spider.tasks is not available: using a synthetic sample instead of %s", dataset)
        sample = TaskSample.synthetic(modality, n)
        sample.source = f"synthetic (hf_spider.tasks not available to load {dataset})"
        return sample
    task = load_task(dataset, sample=n, probe=False, token=token, endpoint=endpoint)
    return TaskSample.from_task(task, n)


def bench(
    model: str,
    *,
    target: str | DeviceTarget = "local",
    variants: str | list[str] = ("fp32", "int8-dynamic", "int8-static"),
    dataset: str | None = None,
    task_kind: str = "auto",
    constraints: Constraints | None = None,
    agent_token: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    threads: int | None = None,
    batch: int = 8,
    warmup: int = 5,
    min_iterations: int = 50,
    min_seconds: float = 5.0,
    sample_size: int = 32,
    memory: bool = True,
    score: float | None = None,
    calibrate: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Benchmark one model's variants on one target.

    Args:
        model: a Hub repo id or a local model folder.
        target: `local`, `http://HOST:PORT` (with `agent_token`) or a profile name.
        variants: names from `hf_spider.hardware.variants.VARIANTS`.
        dataset: a dataset for the calibration / fidelity sample; default a synthetic sample.
        constraints: when given, the report also carries the pick (or raises `ConstraintError`).
        score: the model's transfer score, carried into the rows for the Pareto front.
        calibrate: with an agent target, also measure locally and save the ratios as this
            profile's calibration.

    Returns:
        A JSON-ready report: `model`, `export`, `target`, `sample`, `results` (one per variant,
        each with labelled `figures` or `skipped`), `rows`, `pareto` and, with constraints, `pick`.

    Example:
        >>> report = bench("sentence-transformers/all-MiniLM-L6-v2", variants="fp32,int8-dynamic")
        >>> report["results"][1]["figures"]["latency_p50_ms"]["label"]
        'measured'
    """
    names = parse_variants(variants)
    constraints = constraints or Constraints()
    started = time.perf_counter()
    device = (
        target
        if isinstance(target, DeviceTarget)
        else DeviceTarget.resolve(target, token=agent_token, threads=threads)
    )
    if calibrate:
        from hf_spider.errors import UserInputError
        from hf_spider.hardware.profiles import profile_names

        if calibrate not in profile_names():
            raise UserInputError(
                f"unknown profile {calibrate!r}", hint=f"choose one of: {', '.join(profile_names())}"
            )
        if device.kind != "agent":
            raise UserInputError("--calibrate needs an agent target", hint="use --target http://HOST:PORT")
    exported = export(
        model,
        task_kind,
        token=token,
        endpoint=endpoint,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
    )
    sample = load_sample(dataset, exported.modality, sample_size, token=token, endpoint=endpoint)
    feeds = feeds_for(exported, sample)
    if "fp32" not in names:
        names = ["fp32", *names]  # fidelity is measured against fp32
        reported = set(names) - {"fp32"}
    else:
        reported = set(names)
    built = make_variants(exported, names, device, calibration=feeds, calibration_source=sample.source)
    protocol = {
        "threads": threads,
        "batch": batch,
        "warmup": warmup,
        "min_iterations": min_iterations,
        "min_seconds": min_seconds,
        "memory": memory,
    }
    results, rows, reference, pairs = [], [], None, []
    for variant in built:
        if variant.skipped:
            logger.info("skipping %s: %s", variant.name, variant.skipped)
            if variant.name in reported:
                results.append(
                    {"model": exported.model_id, "variant": variant.name, "skipped": variant.skipped}
                )
            continue
        result = measure(variant, device, feeds, reference=reference, labels=sample.labels, **protocol)
        outputs = result.pop("outputs")
        if variant.name == "fp32":
            reference = outputs
        if calibrate:
            local = measure(variant, DeviceTarget.resolve("local"), feeds, **{**protocol, "memory": False})
            from hf_spider.hardware.profiles import precision_of

            pairs.append(
                {
                    "model": exported.model_id,
                    "variant": variant.name,
                    "precision": precision_of(variant.name),
                    "local_ms": local["figures"]["latency_p50_ms"]["value"],
                    "agent_ms": result["figures"]["latency_p50_ms"]["value"],
                }
            )
        if variant.name in reported:
            results.append(result)
            rows.append(flat_row(result, score))
    report: dict[str, Any] = {
        "model": exported.model_id,
        "export": exported.to_dict(),
        "target": device.to_dict(),
        "sample": {
            "source": sample.source,
            "rows": len(sample),
            "labelled": sample.labels is not None,
            "modality": sample.modality,
        },
        "results": results,
        "rows": rows,
        "pareto": pareto_front(rows),
        "seconds": time.perf_counter() - started,
    }
    if calibrate:
        from hf_spider.hardware.profiles import save_calibration

        report["calibration"] = save_calibration(calibrate, pairs, agent_info=device.info)
    if constraints:
        choice, reason = pick(rows, constraints)
        report["pick"] = {"choice": choice, "reason": reason, "constraints": constraints.to_dict()}
    return report
