"""`recommend`: the whole pipeline in one call.

task (`hf_spider.tasks.load_task`) -> stage 1 (`hf_spider.ranker` over every catalog candidate,
from cards and the task token) -> stage 2 (`hf_spider.tasks.extract_features` + estimators on the
top-k whose weights can be reached, fused by the ranker) -> bench (`hf_spider.hardware` export,
variants, measurement on the target) -> constraints (pick, Pareto front, Copeland merge).

Final order: the models re-ranked in stage 2 first (by fused score), then the rest by their
stage 1 score — a model whose weights could not be reached is listed, but below the ones that
were checked on the data, with the reason in the notes.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hf_spider import __version__
from hf_spider.errors import (
    ConstraintError,
    DatasetError,
    HfSpiderError,
    UserInputError,
)
from hf_spider.probe._probe import ESTIMATORS, ProbeResult, fuse, probe, rerank, shown
from hf_spider.recommend._results import Recommendations, sort_rows

logger = logging.getLogger("hf_spider.recommend")

STAGES = ("rank", "probe", "bench")
# Per modality: dynamic int8 is the fast one for transformers, static int8 for CNNs (ConvInteger
# kernels make dynamic int8 slower than fp32 on x86; see benchmarks/device.md).
DEFAULT_VARIANTS = {"text": ("fp32", "int8-dynamic"), "image": ("fp32", "int8-static")}
DEFAULT_SAMPLE = 256
Progress = Callable[..., None]


@dataclass
class _Run:
    """What a run learns along the way; becomes `Recommendations.meta`."""

    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    forward_passes: int = 0

    def timed(self, stage: str):
        run = self

        class _Timer:
            def __enter__(self):
                self.t, self.c = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                run.timings[stage] = round(run.timings.get(stage, 0.0) + time.perf_counter() - self.t, 3)
                run.cpu[stage] = round(run.cpu.get(stage, 0.0) + time.process_time() - self.c, 3)

        return _Timer()


def _noop(*_args, **_kwargs) -> None:
    return None


def recommend(
    dataset: str | os.PathLike,
    *,
    catalog: Any = None,
    task: str | None = None,
    target: Any = "local",
    constraints: Any = None,
    top_k: int = 5,
    stages: Iterable[str] = STAGES,
    sample: int | None = None,
    variants: Iterable[str] | None = None,
    estimators: Iterable[str] = ESTIMATORS,
    measure_config: Any = None,
    ranker: Any = None,
    token: str | None = None,
    endpoint: str | None = None,
    progress: Progress | None = None,
) -> Recommendations:
    """Recommend pre-trained models for `dataset` on a device `target`.

    Args:
        dataset: a Hub dataset id, a local dataset folder or file, or a dataset-card repo
            (whatever `hf_spider.tasks.load_task` accepts).
        catalog: a `Catalog`, a catalog folder, a folder of Hub-layout model repos (crawled into
            a cached catalog), or None for the user catalog / embedded catalog plus the offline zoo.
        task: a pipeline tag the candidates must serve (default: the task's modality).
        target: `local`, a device profile name, an agent URL (its token from
            `HF_SPIDER_AGENT_TOKEN`), or a `DeviceTarget` (e.g. `AgentTarget(url, token=...)`).
        constraints: a `Constraints`, a mapping (`{"max_latency_ms": 20}`) or `key=value,...`.
        top_k: candidates re-ranked by forward passes (stage 2) and benchmarked.
        stages: any of `rank`, `probe`, `bench`; `rank` is always run.
        sample: examples drawn for stage 2 and bench (default 256).
        variants: device variants to build and measure (`hf_spider.hardware.VARIANTS`); default
            fp32 and the int8 variant that is fast for the modality.
        estimators: forward-pass estimators of stage 2 (`hf_spider.estimators.available()`).
        measure_config: the measurement protocol, a `hf_spider.hardware.MeasureConfig` (threads, runs, ...).
        ranker: a `hf_spider.Ranker`, a folder or Hub repo of ranker weights, or None for the
            weights shipped with hf-spider.
        token, endpoint: for Hub datasets and models; the token is never logged or stored.
        progress: `progress(stage, done, total, note="")`, called as each stage advances.

    Returns:
        A `Recommendations`, best first.

    Raises:
        DatasetError: the dataset cannot be used. CatalogError: no catalog. TargetError: unknown
        target. ConstraintError: no benchmarked variant meets the constraints; its
        `recommendations` holds every row, marked as not meeting them.

    Example:
        >>> recs = recommend("rotten_tomatoes", top_k=3, constraints={"max_latency_ms": 20})  # doctest: +SKIP
        >>> recs.best["model_id"], recs.best["variant"]
    """
    from hf_spider.catalog._candidates import candidates_for
    from hf_spider.hardware import Constraints, DeviceTarget, MeasureConfig

    progress = progress or _noop
    stages = _check_stages(stages)
    if top_k < 1:
        raise UserInputError(f"top_k must be at least 1, got {top_k}", hint="e.g. --top-k 5")
    sample = DEFAULT_SAMPLE if sample is None else int(sample)
    if "probe" in stages and sample < 2:
        raise UserInputError(f"--sample {sample} is too small for stage 2", hint="use --sample 64 or more")
    if isinstance(constraints, Constraints):
        cons = constraints
    else:
        cons = Constraints.parse(constraints)
    run = _Run()
    variants = tuple(variants) if variants is not None else None
    estimators = tuple(estimators)
    # Cheap checks that can fail on user input come first: the target, then the dataset.
    device = None
    if "bench" in stages:
        device = DeviceTarget.resolve(target or "local")
    else:
        if isinstance(target, str) and not target.startswith(("http://", "https://")):
            DeviceTarget.resolve(target)  # an unknown target is refused even when bench does not run
        if cons:
            run.notes.append(
                "constraints were given without the bench stage: no device figure to check them on"
            )

    with run.timed("task"):
        progress("task", 0, 1, str(dataset))
        task_obj = _load_task(
            dataset, sample if "probe" in stages or "bench" in stages else 0, token, endpoint
        )
        if task_obj.has_data and task_obj.data_token is not None:
            run.forward_passes += 1  # the probe encoder's pass that made the task token
        progress("task", 1, 1, f"{task_obj.modality}, {task_obj.num_classes} classes")
        _check_task_tag(task, task_obj)
        if "probe" in stages:
            _check_sample_per_class(task_obj)

    with run.timed("catalog"):
        progress("catalog", 0, 1, str(catalog or "embedded + offline zoo"))
        found = candidates_for(catalog, modality=task_obj.modality, tag=task)
        candidates, cat_info = found.tokens, found.info
        progress("catalog", 1, 1, f"{len(candidates)} {task_obj.modality} candidates")

    if variants is None:
        variants = DEFAULT_VARIANTS.get(task_obj.modality, ("fp32", "int8-dynamic"))

    with run.timed("rank"):
        progress("rank", 0, len(candidates), "ranker over model tokens")
        ranker_obj, ranker_name = _ranker(ranker, token=token, endpoint=endpoint)
        stage1 = ranker_obj.rank(list(candidates), task_obj).stage1
        progress("rank", len(candidates), len(candidates), f"{len(candidates)} models")

    probed = ProbeResult(estimators=estimators)
    fused: dict[str, float] = {}
    if "probe" in stages:
        with run.timed("probe"):
            if not task_obj.has_data:
                run.notes.append("stage 2 skipped: the dataset gave no examples (card-only dataset)")
            else:
                probed = probe(
                    stage1,
                    task_obj,
                    top_k=top_k,
                    estimators=estimators,
                    token=token,
                    endpoint=endpoint,
                    progress=progress,
                )
                run.forward_passes += probed.forward_passes
                run.notes.extend(probed.notes)
                fused = fuse(ranker_obj, candidates, task_obj, probed)

    order = rerank(stage1, fused)
    rank_of = {m: i + 1 for i, m in enumerate(order)}
    stage1_score = dict(stage1)

    rows: list[dict[str, Any]] = []
    benched: set[str] = set()
    if "bench" in stages:
        with run.timed("bench"):
            pool = [m for m in order if m in probed.scores] if probed else order
            bench_rows = _bench(
                pool,
                top_k,
                task_obj,
                device,
                tuple(variants),
                measure_config or MeasureConfig(),
                run,
                token,
                endpoint,
                progress,
            )
            for row in bench_rows:
                benched.add(row["model_id"])
                rows.append(row)

    for model_id in order:
        if model_id in benched:
            continue
        reason = "bench stage not run" if "bench" not in stages else f"not among the top-{top_k} benchmarked"
        rows.append(
            {"model_id": model_id, "variant": None, "device_status": "skipped", "device_reason": reason}
        )
    for row in rows:
        m = row["model_id"]
        scores = probed.scores.get(m, {})
        row.update(
            rank=rank_of[m],
            stage=("bench" if m in benched else "probe" if m in probed.scores else "rank"),
            transfer_score=fused.get(m, stage1_score[m]),
            transfer_source="probe" if m in fused else "rank",
            rank_score=stage1_score[m],
            probe_score=fused.get(m),
            **{f"score_{k}": v for k, v in scores.items()},
        )
        if device is not None:
            row["target"] = device.name

    pick = None
    nothing_fits = None
    if "bench" in stages:
        with run.timed("constraints"):
            try:
                pick = _apply_constraints(rows, cons, order)
            except ConstraintError as exc:  # raised below, with the measurements attached
                nothing_fits = exc
                pick = {"model_id": None, "variant": None, "reason": None, "nothing_fits": exc.one_line()}

    meta = {
        "dataset": str(dataset),
        "task": _task_meta(task_obj),
        "catalog": cat_info,
        "protocol": {
            "stages": list(stages),
            "top_k": top_k,
            "sample": len(task_obj.labels) if task_obj.has_data else 0,
            "estimators": list(estimators) if "probe" in stages else [],
            "ranker": ranker_name,
            "variants": list(variants) if "bench" in stages else [],
            "order": "stage-2 re-ranked models first (fused score), then the rest by stage-1 score",
        },
        "target": _target_meta(device),
        "constraints": cons.to_dict(),
        "pick": pick,
        "timings": run.timings,
        "cpu_seconds": run.cpu,
        "forward_passes": run.forward_passes,
        "notes": run.notes,
        "hf_spider_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    recs = Recommendations(sort_rows(rows), meta)
    if nothing_fits is not None:
        nothing_fits.recommendations = recs  # the rows, marked as not meeting the constraints
        raise nothing_fits
    return recs


# ---------------------------------------------------------------------------------- inputs
def _check_stages(stages: Iterable[str]) -> tuple[str, ...]:
    stages = tuple(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise UserInputError(f"unknown stage(s) {unknown}", hint="use rank, probe, bench")
    return tuple(s for s in STAGES if s in stages or s == "rank")


def _check_task_tag(tag: str | None, task_obj) -> None:
    """Refuse a pipeline tag made for another modality than the dataset's (image models for text)."""
    from hf_spider.catalog._candidates import MODALITY_TAGS

    if not tag or tag in MODALITY_TAGS.get(task_obj.modality, {tag}):
        return
    other = next((m for m, tags in MODALITY_TAGS.items() if tag in tags), None)
    if other is not None:
        raise UserInputError(
            f"--task {tag} serves {other} models, but {task_obj.name} is a {task_obj.modality} dataset",
            hint=f"drop --task, or use one of: {', '.join(sorted(MODALITY_TAGS[task_obj.modality]))}",
        )


def _check_sample_per_class(task_obj) -> None:
    """Refuse stage 2 on a sample holding one example per class: its estimators mean nothing there."""
    import numpy as np

    if not task_obj.has_data or len(task_obj.labels) <= 2:
        return
    counts = np.bincount(task_obj.labels)
    if counts.max() < 2:
        raise DatasetError(
            f"the sample of {len(task_obj.labels)} examples of {task_obj.name} holds one example per class "
            f"({task_obj.num_classes} classes): stage-2 estimators need several per class",
            hint=f"raise --sample above {2 * task_obj.num_classes}, or rank from cards only with --stages rank",
        )


def _load_task(dataset, sample: int, token, endpoint):
    from hf_spider.tasks import load_task

    return load_task(dataset, sample=sample, token=token, endpoint=endpoint)


def _task_meta(task) -> dict[str, Any]:
    md = task.metadata
    return {
        "name": task.name,
        "modality": task.modality,
        "num_classes": task.num_classes,
        "num_examples": md.get("num_examples"),
        "label_names": task.label_names[:50],
        "fingerprint": task.fingerprint,
        "has_data": task.has_data,
        "probe": task.probe,
        "skipped_unreadable": task.skipped,
    }


def _target_meta(device) -> dict[str, Any]:
    if device is None:
        return {"name": "none", "description": "no device (bench stage not run)"}
    return {**device.to_dict(), "description": device.describe()}


# ---------------------------------------------------------------------------------- stage 1
def _ranker(ranker: Any, *, token, endpoint) -> tuple[Any, str]:
    """The ranker to use and how the report names it."""
    from hf_spider.ranker import Ranker

    if ranker is None:
        return Ranker.default(), "spider (weights shipped with hf-spider)"
    if isinstance(ranker, Ranker):
        return ranker, "spider (weights given by the caller)"
    return Ranker.from_pretrained(ranker, token=token, endpoint=endpoint), f"spider ({ranker})"


# ---------------------------------------------------------------------------------- bench
def _bench(
    order, top_k, task_obj, device, variants, config, run, token, endpoint, progress
) -> list[dict[str, Any]]:
    """Export, build and measure the variants of the first `top_k` candidates that can be exported.

    A candidate whose weights cannot be reached is passed over (and named in the notes); one that
    is reached but fails to export gets a `skipped` row with the reason and counts as tried.
    """
    from hf_spider.errors import HubConnectionError
    from hf_spider.hardware import TaskSample, export, feeds_for, make_variants, measure_variants
    from hf_spider.models import hub_reachable

    rows: list[dict[str, Any]] = []
    offline = not hub_reachable(endpoint)
    pool = order if offline else order[: max(4 * top_k, top_k + 10)]
    progress("bench", 0, top_k, f"{', '.join(variants)} on {device.name}")
    sample = None
    sample_size = config.sample_size
    names = list(dict.fromkeys(["fp32", *variants]))  # fidelity is measured against fp32
    tried, unreachable = 0, []
    for model_id in pool:
        if tried >= top_k:
            break
        try:
            exported = export(model_id, "auto", token=token, endpoint=endpoint)
        except (UserInputError, HubConnectionError):
            unreachable.append(model_id)
            continue
        except (HfSpiderError, OSError, RuntimeError, ValueError) as exc:
            exported = exc
        tried += 1
        try:
            if isinstance(exported, Exception):
                raise exported
            if sample is None or sample.modality != exported.modality:
                sample = (
                    TaskSample.from_task(task_obj, sample_size)
                    if task_obj.has_data
                    else TaskSample.synthetic(exported.modality)
                )
            feeds = feeds_for(exported, sample)
            built = make_variants(
                exported, names, device, calibration=feeds, calibration_source=sample.source
            )
        except (HfSpiderError, OSError, RuntimeError, ValueError) as exc:
            text = exc.one_line() if isinstance(exc, HfSpiderError) else f"{type(exc).__name__}: {exc}"
            rows.append(
                {
                    "model_id": model_id,
                    "variant": None,
                    "device_status": "skipped",
                    "device_reason": f"export failed: {text}",
                }
            )
            progress("bench", tried, top_k, model_id.rsplit("/", 1)[-1])
            continue
        # a variant the target cannot take (e.g. over an agent's upload limit) is a skipped row
        for result in measure_variants(
            built, device, feeds, config=config, labels=sample.labels, reported=set(variants)
        ):
            if "skipped" in result:
                rows.append(
                    {
                        "model_id": model_id,
                        "variant": result["variant"],
                        "device_status": "skipped",
                        "device_reason": result["skipped"],
                    }
                )
            else:
                rows.append(_device_row(model_id, result["variant"], result))
        progress("bench", tried, top_k, model_id.rsplit("/", 1)[-1])
    progress("bench", top_k, top_k, f"{tried} models")
    if unreachable:
        run.notes.append(
            f"bench: {len(unreachable)} candidate(s) ranked above the benchmarked ones could not be "
            f"exported because their weights could not be reached: {shown(unreachable)}"
        )
    return rows


def _device_row(model_id: str, variant: str, result: dict[str, Any]) -> dict[str, Any]:
    fig = result["figures"]

    def value(key):
        return (fig.get(key) or {}).get("value")

    label = (fig.get("latency_p50_ms") or {}).get("label", "measured")
    methods = sorted({(f or {}).get("method", "") for f in fig.values() if f and f.get("value") is not None})
    # why a figure is missing, in the words of the measurement (e.g. "not applicable: classifier")
    missing = [
        f"{k}: {f.get('method')}" for k, f in fig.items() if f and f.get("value") is None and f.get("method")
    ]
    return {
        "model_id": model_id,
        "variant": variant,
        "device_status": label,
        "device_method": (fig.get("latency_p50_ms") or {}).get("method") or "; ".join(methods)[:300],
        "device_reason": "; ".join(missing) or None,
        "latency_ms_p50": value("latency_p50_ms"),
        "latency_ms_p90": value("latency_p90_ms"),
        "latency_ms_p99": value("latency_p99_ms"),
        "throughput_bs1": value("throughput_b1_per_s"),
        "memory_mb": value("peak_memory_mb"),
        "size_mb": value("file_size_mb"),
        "load_ms": value("load_ms"),
        "fidelity": value("fidelity"),
        "fidelity_metric": (fig.get("fidelity") or {}).get("method"),
        "logme_delta": value("logme_delta"),
    }


# ---------------------------------------------------------------------------------- constraints
def _apply_constraints(rows: list[dict[str, Any]], cons, order: list[str]) -> dict[str, Any] | None:
    """Mark `meets_constraints`, `violations`, `pareto`, `copeland_rank`, `recommended` on bench rows."""
    from hf_spider.hardware import copeland, pareto_front, pick

    measured = [r for r in rows if r["variant"] is not None and r["device_status"] != "skipped"]
    if not measured:
        if cons:
            raise ConstraintError(
                "no variant could be measured, so no candidate can be shown to meet the constraints",
                hint="see the notes of `--stages rank,probe`, or drop the constraints",
            )
        return None
    flat = {(r["model_id"], r["variant"]): _flat(r) for r in measured}
    for r in measured:
        v = cons.violations(flat[(r["model_id"], r["variant"])])
        r["meets_constraints"] = not v
        r["violations"] = "; ".join(_violation_text(x) for x in v) or None
    front = {(p["model"], p["variant"]) for p in pareto_front(flat.values())}
    for r in measured:
        r["pareto"] = (r["model_id"], r["variant"]) in front
    position = {m: i for i, m in enumerate(order)}
    transfer = sorted(flat, key=lambda k: (position[k[0]], flat[k]["latency_ms"] or 0.0))
    device = sorted(flat, key=lambda k: (flat[k]["latency_ms"] is None, flat[k]["latency_ms"] or 0.0))
    for rank, (key, _score) in enumerate(copeland(transfer, device), start=1):
        for r in measured:
            if (r["model_id"], r["variant"]) == key:
                r["copeland_rank"] = rank
    choice, reason = pick(flat.values(), cons)
    for r in measured:
        r["recommended"] = (r["model_id"], r["variant"]) == (choice["model"], choice["variant"])
    return {"model_id": choice["model"], "variant": choice["variant"], "reason": reason}


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": row["model_id"],
        "variant": row["variant"],
        "score": row.get("transfer_score"),
        "latency_ms": row.get("latency_ms_p50"),
        "memory_mb": row.get("memory_mb"),
        "size_mb": row.get("size_mb"),
        "fidelity": row.get("fidelity"),
    }


def _violation_text(v: dict[str, Any]) -> str:
    if v.get("value") is None:
        return f"{v['flag']} {v['limit']:g}: figure missing"
    return f"{v['flag']} {v['limit']:g}: {v['value']:.3g}"
