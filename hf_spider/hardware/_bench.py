"""`bench`: export one model, build its variants, measure each on one target, and rank them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hf_spider.errors import UserInputError, VariantRejectedError
from hf_spider.hardware._export import export
from hf_spider.hardware._measure import flat_row
from hf_spider.hardware.config import MeasureConfig
from hf_spider.hardware.constraints import Constraints, pareto_front, pick
from hf_spider.hardware.sample import TaskSample, feeds_for
from hf_spider.hardware.targets import AgentTarget, DeviceTarget, LocalTarget
from hf_spider.hardware.variants import make_variants, parse_variants

logger = logging.getLogger("hf_spider.hardware")


def load_sample(
    dataset: Any, modality: str, n: int = 32, *, token: str | None = None, endpoint: str | None = None
) -> TaskSample:
    """Rows of the user's dataset through `hf_spider.tasks.load_task` (or of a `Task` already
    loaded), else a synthetic sample."""
    if not dataset:
        return TaskSample.synthetic(modality, n)
    if hasattr(dataset, "inputs") and hasattr(dataset, "labels"):  # a loaded hf_spider.tasks.Task
        return TaskSample.from_task(dataset, n)
    try:
        from hf_spider.tasks import load_task
    except ImportError:
        logger.warning("hf_spider.tasks is not available: using a synthetic sample instead of %s", dataset)
        sample = TaskSample.synthetic(modality, n)
        sample.source = f"synthetic (hf_spider.tasks not available to load {dataset})"
        return sample
    task = load_task(dataset, sample=n, probe=False, token=token, endpoint=endpoint)
    return TaskSample.from_task(task, n)


def measure_variants(
    built: list,
    target: DeviceTarget,
    feeds: dict,
    *,
    config: MeasureConfig,
    labels=None,
    reported: set[str] | None = None,
    on_result: Callable[[Any, dict[str, Any]], None] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[dict[str, Any]]:
    """Measure each built variant on `target`, fp32 first so the others' fidelity is against it.

    A variant that was not built, or that the target cannot take (an agent's upload limit, a job
    the agent failed), becomes `{"model_id", "variant", "skipped": reason}` and the others go on.
    Only the names in `reported` (default: all) are returned; `on_result(variant, result)` sees
    every measured one, outputs included; `progress(done, total, name)` is called before each
    variant and once at the end.
    """
    results: list[dict[str, Any]] = []
    reference = None
    for done, variant in enumerate(built):
        if progress is not None:
            progress(done, len(built), variant.name)
        shown = reported is None or variant.name in reported
        reason = variant.skipped or target.refusal(variant)
        result = None
        if not reason:
            try:
                result = target.measure(variant, feeds, config=config, reference=reference, labels=labels)
            except VariantRejectedError as exc:  # the target is fine, this variant is not
                reason = exc.one_line()
        if reason:
            logger.info("skipping %s of %s: %s", variant.name, variant.model_id, reason)
            if shown:
                results.append({"model_id": variant.model_id, "variant": variant.name, "skipped": reason})
            continue
        if variant.name == "fp32":
            reference = result["outputs"]
        if on_result is not None:
            on_result(variant, result)
        _remember(variant, result, target, feeds)
        result.pop("outputs")
        if shown:
            results.append(result)
    if progress is not None:
        progress(len(built), len(built), "done")
    return results


def _remember(variant, result: dict[str, Any], target: DeviceTarget, feeds: dict) -> None:
    """Append a measurement to the local store the cost model learns from (profiles estimate: skipped)."""
    if target.kind == "profile":
        return
    from hf_spider.hardware.measurements import input_of_feeds, record_measurement

    config = None
    source_dir = variant.exported.source_dir
    if source_dir:
        try:
            config = json.loads((Path(source_dir) / "config.json").read_text())
        except (OSError, ValueError):
            config = None
    try:
        record_measurement(result, config=config, source="bench", input_spec=input_of_feeds(feeds))
    except OSError as exc:  # a full disk must not lose the measurement itself
        logger.warning("could not record the measurement in the local store: %s", exc)


def bench(
    model: str,
    *,
    target: str | DeviceTarget = "local",
    variants: str | list[str] = ("fp32", "int8-dynamic", "int8-static"),
    dataset: Any = None,
    task_kind: str = "auto",
    constraints: Constraints | None = None,
    config: MeasureConfig | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    score: float | None = None,
    calibrate: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Benchmark one model's variants on one target.

    Args:
        model: a Hub repo id or a local model folder.
        target: a `DeviceTarget`, or `local`, `http://HOST:PORT` (token from `HF_SPIDER_AGENT_TOKEN`)
            or a profile name.
        variants: names from `hf_spider.hardware.variants.VARIANTS`.
        dataset: a dataset (or a loaded `Task`) for the calibration / fidelity sample; default a
            synthetic sample.
        constraints: when given, the report also carries the pick (or raises `ConstraintError`).
        config: the measurement protocol (`MeasureConfig`: threads, batch, runs, sample size, ...).
        score: the model's transfer score, carried into the rows for the Pareto front.
        calibrate: with an agent target, also measure locally and save the ratios as this
            profile's calibration.
        progress: `progress(stage, done, total, note="")` as the run advances (stages `export`,
            `sample`, `variants`, `measure`), as `recommend` calls its own.

    Returns:
        A JSON-ready report: `model_id`, `export`, `target`, `sample`, `results` (one per variant,
        each with labelled `figures` or `skipped`), `rows`, `pareto` and, with constraints, `pick`.

    Example:
        >>> report = bench("sentence-transformers/all-MiniLM-L6-v2", variants="fp32,int8-dynamic")
        >>> report["results"][1]["figures"]["latency_p50_ms"]["label"]
        'measured'
    """
    names = parse_variants(variants)
    constraints = constraints or Constraints()
    config = config or MeasureConfig()
    started = time.perf_counter()
    device = DeviceTarget.resolve(target)
    if calibrate:
        from hf_spider.hardware.profiles import profile_names

        if calibrate not in profile_names():
            raise UserInputError(
                f"unknown profile {calibrate!r}", hint=f"choose one of: {', '.join(profile_names())}"
            )
        if not isinstance(device, AgentTarget):
            raise UserInputError("--calibrate needs an agent target", hint="use --target http://HOST:PORT")
    progress = progress or (lambda *_a, **_k: None)
    progress("export", 0, 1, f"{model} to ONNX")
    exported = export(
        model,
        task_kind,
        token=token,
        endpoint=endpoint,
        allow_pickle=allow_pickle,
        trust_remote_code=trust_remote_code,
    )
    progress("export", 1, 1, exported.method)
    progress("sample", 0, 1, str(dataset) if dataset else "synthetic")
    sample = load_sample(dataset, exported.modality, config.sample_size, token=token, endpoint=endpoint)
    feeds = feeds_for(exported, sample)
    progress("sample", 1, 1, f"{len(sample)} rows")
    reported = set(names)
    names = list(dict.fromkeys(["fp32", *names]))  # fidelity is measured against fp32
    built = []
    for done, name in enumerate(names):  # one at a time, so that each shows
        progress("variants", done, len(names), name)
        built += make_variants(exported, [name], device, calibration=feeds, calibration_source=sample.source)
    progress("variants", len(names), len(names), "built")
    pairs: list[dict[str, Any]] = []

    def calibrate_pair(variant, result):
        from hf_spider.hardware.profiles import precision_of

        local = LocalTarget().measure(variant, feeds, config=config.replace(memory=False))
        pairs.append(
            {
                "model": exported.model_id,
                "variant": variant.name,
                "precision": precision_of(variant.name),
                "local_ms": local["figures"]["latency_p50_ms"]["value"],
                "agent_ms": result["figures"]["latency_p50_ms"]["value"],
                "threads": local["protocol"]["threads"],
            }
        )

    results = measure_variants(
        built,
        device,
        feeds,
        config=config,
        labels=sample.labels,
        reported=reported,
        on_result=calibrate_pair if calibrate else None,
        progress=lambda done, total, name: progress("measure", done, total, f"{name} on {device.name}"),
    )
    rows = [flat_row(r, score) for r in results if "figures" in r]
    report: dict[str, Any] = {
        "model_id": exported.model_id,
        "export": exported.to_dict(),
        "target": device.to_dict(),
        "protocol": config.to_dict(),
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
