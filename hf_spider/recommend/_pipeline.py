"""`recommend`: the whole pipeline in one call, one call into each stage.

task (`hf_spider.tasks.load_task`) -> candidates (`hf_spider.catalog.candidates_for`) -> rank
(`Ranker.rank`, stage 1; under device budgets, ranked jointly with the predicted device cost and
the candidates that cannot fit dropped: `hf_spider.hardware.joint`) -> probe
(`hf_spider.probe.probe` and its one fusion, `fuse`; stage 2) -> bench
(`hf_spider.hardware.bench_candidates`: `bench` of the top-k) -> constraints
(`hf_spider.hardware.apply_constraints`) -> results (`build_rows`, `Recommendations`). Final
order (`rerank`): the models checked on the data first, by fused score, then the rest by stage 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hf_spider import __version__
from hf_spider.errors import ConstraintError, UserInputError
from hf_spider.estimators import check_names as check_estimator_names
from hf_spider.hardware.joint import has_device_budget
from hf_spider.probe._probe import ESTIMATORS, ProbeResult, check_sample, fuse, probe, rerank, shown
from hf_spider.recommend._results import (
    Recommendations,
    basis_note,
    build_rows,
    how_obtained,
    sort_rows,
    target_summary,
    task_summary,
)

STAGES = ("rank", "probe", "bench")
# Per modality: dynamic int8 is the fast one for transformers, static int8 for CNNs (ConvInteger
# kernels make dynamic int8 slower than fp32 on x86; see benchmarks/device.md).
DEFAULT_VARIANTS = {"text": ("fp32", "int8-dynamic"), "image": ("fp32", "int8-static")}
DEFAULT_SAMPLE = 256
# how the dataset is read, passed to `hf_spider.tasks.load_task` (`recommend(dataset_options=)`)
DATASET_OPTIONS = frozenset({"config", "split", "input_column", "label_column", "modality"})


@dataclass
class _Run:
    """What a run learns along the way; becomes `Recommendations.meta`."""

    notes: list[str] = field(default_factory=list)
    # the notes the command line shows as well as writing them: what a user must not miss
    shown: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    forward_passes: int = 0

    @contextlib.contextmanager
    def timed(self, stage: str):
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - wall, 3)
            self.cpu[stage] = round(self.cpu.get(stage, 0.0) + time.process_time() - cpu, 3)


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
    joint: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    progress: Callable[..., None] | None = None,
    dataset_options: Mapping[str, Any] | None = None,
) -> Recommendations:
    """Recommend pre-trained models for `dataset` on a device `target`.

    Args:
        dataset: a Hub dataset id, a local dataset folder or file, a dataset-card repo, or in
            memory a `datasets.Dataset` / `DatasetDict` or a pandas DataFrame (whatever
            `hf_spider.tasks.load_task` accepts).
        catalog: a `Catalog`, a catalog folder, a folder of Hub-layout model repos (crawled into
            a cached catalog), or None for the user catalog / embedded catalog plus the offline zoo.
        task: a pipeline tag the candidates must serve (default: the task's modality).
        dataset_options: how to read `dataset`, as `load_task` takes it: `config`, `split`,
            `input_column`, `label_column`, `modality` (default: detected).
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
        joint: how stage 1 is ranked under budgets on latency, memory or size: `learned`
            (default), `fused`, `copeland` or `off` (`hf_spider.hardware.joint`). Every candidate gets a predicted
            cost on the target first; those that cannot fit are dropped before stage 2 and bench.
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
    from hf_spider.catalog._candidates import candidates_for, check_tag
    from hf_spider.catalog._tokenizer import PARTLY_READ
    from hf_spider.hardware import Constraints, DeviceTarget, apply_constraints, bench_candidates
    from hf_spider.hardware.joint import check_joint
    from hf_spider.tasks import load_task
    from hf_spider.tasks._load import describe

    progress = progress or (lambda *_a, **_k: None)
    stages = _check_stages(stages)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise UserInputError(f"top_k must be a whole number, at least 1, got {top_k!r}", hint="e.g. top_k=5")
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, int) or sample < 0):
        raise UserInputError(
            f"sample must be a whole number, 0 or more, got {sample!r}", hint="e.g. sample=256"
        )
    sample = DEFAULT_SAMPLE if sample is None else int(sample)
    if ("probe" in stages or "bench" in stages) and sample < 2:
        raise UserInputError(
            f"--sample {sample} is too small for the probe and bench stages (2 at the least)",
            hint=f"use --sample {DEFAULT_SAMPLE} (the default), or --stages rank to rank from cards only",
        )
    _check_types(target=target, constraints=constraints, progress=progress)
    cons = constraints if isinstance(constraints, Constraints) else Constraints.parse(constraints)
    joint = check_joint(joint)
    run = _Run()
    estimators = check_estimator_names(estimators)
    if variants is not None:
        from hf_spider.hardware.variants import parse_variants

        variants = tuple(parse_variants(variants))  # "fp32,int8-dynamic" or a list; unknown names refused
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
            run.shown.append(run.notes[-1])

    with run.timed("task"):
        progress("task", 0, 1, describe(dataset))
        n = sample if "probe" in stages or "bench" in stages else 0
        options = {k: v for k, v in (dataset_options or {}).items() if v is not None}
        unknown = sorted(set(options) - DATASET_OPTIONS)
        if unknown:
            raise UserInputError(
                f"unknown dataset option(s) {unknown}",
                hint=f"choose among: {', '.join(sorted(DATASET_OPTIONS))}",
            )
        task_obj = load_task(dataset, sample=n, token=token, endpoint=endpoint, **options)
        if task_obj.has_data and task_obj.data_token is not None:
            run.forward_passes += 1  # the probe encoder's pass that made the task token
        progress("task", 1, 1, f"{task_obj.modality}, {task_obj.num_classes} classes")
        check_tag(task, task_obj.modality, task_obj.name)
        if "probe" in stages:
            check_sample(task_obj)

    with run.timed("catalog"):
        progress("catalog", 0, 1, str(catalog or "embedded + offline zoo"))
        found = candidates_for(catalog, modality=task_obj.modality, tag=task)
        progress("catalog", 1, 1, f"{len(found)} {task_obj.modality} candidates")
        partial = {t.model_id: w for t in found.tokens for w in t.warnings if w.startswith(PARTLY_READ)}
        if partial:  # ranked on what could be read: said, not silent
            named = sorted(partial.items())
            run.notes.append(
                f"{len(partial)} candidate card(s) only partly read, ranked on what was read: "
                + "; ".join(f"{m}: {why}" for m, why in named[:3])
                + (f"; and {len(named) - 3} more" if len(named) > 3 else "")
            )
            run.shown.append(run.notes[-1])
        unknown = found.info.get("unknown_modality") or []
        if unknown:
            run.notes.append(
                f"{len(unknown)} card(s) of the catalog left out: they say nothing of their task "
                f"(no pipeline_tag, library_name, tags nor config.json): {', '.join(unknown[:3])}"
                + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
                + "; add a pipeline_tag to their cards to rank them"
            )
            run.shown.append(run.notes[-1])
    variants = tuple(variants or DEFAULT_VARIANTS.get(task_obj.modality, ("fp32", "int8-dynamic")))

    with run.timed("rank"):
        progress("rank", 0, len(found), "ranker over model tokens")
        ranker_obj, ranker_name = _ranker(ranker, token=token, endpoint=endpoint)
        ranked = ranker_obj.rank(list(found.tokens), task_obj)
        stage1, basis = ranked.stage1, dict(getattr(ranked, "basis", None) or {})
        progress("rank", len(found), len(found), f"{len(found)} models")
        if basis:
            run.notes.append(basis_note(basis))
            if any(b != "history" for b in basis.values()):  # estimates a user should weigh as such
                run.shown.append(run.notes[-1])
    joint_ranking = None
    if joint != "off" and has_device_budget(cons):
        with run.timed("joint"):
            joint_ranking = _joint_ranking(
                stage1, found, device or target, cons, joint, variants, measure_config, progress, run
            )
    # what stage 2 and bench take, best first: the joint order without the dropped candidates
    score = dict(stage1)
    head = stage1 if joint_ranking is None else [(m, score[m]) for m in joint_ranking.order]

    probed, fused = ProbeResult(estimators=estimators), {}
    stage2_weight = _stage2_weight(ranker_obj, task_obj.modality) if "probe" in stages else None
    if "probe" in stages:
        with run.timed("probe"):
            if not task_obj.has_data:
                run.notes.append("stage 2 skipped: the dataset gave no examples (card-only dataset)")
            else:
                probed = probe(
                    head,
                    task_obj,
                    top_k=top_k,
                    estimators=estimators,
                    token=token,
                    endpoint=endpoint,
                    progress=progress,
                )
                run.forward_passes += probed.forward_passes
                run.notes += probed.notes
                fused = fuse(ranker_obj, found.tokens, task_obj, probed)
                if fused:
                    run.notes.append(stage2_note(stage2_weight, task_obj.modality))
    order = rerank(head, fused)
    if joint_ranking is not None:
        order += joint_ranking.dropped  # last, each row saying why

    records = []
    if "bench" in stages:
        with run.timed("bench"):
            pool = [m for m in order if m in probed.scores] if probed else [m for m, _ in head]
            records, notes = bench_candidates(
                pool,
                task_obj,
                top_k=top_k,
                target=device,
                variants=variants,
                config=measure_config,
                token=token,
                endpoint=endpoint,
                progress=progress,
            )
            run.notes += notes
            run.shown += notes  # candidates whose weights could not be reached: not only in the report

    target_name = device.name if device is not None else None
    rows = build_rows(
        order,
        stage1,
        probed,
        fused,
        records,
        top_k=top_k,
        benched=device is not None,
        target=target_name,
        basis=basis,
    )
    if joint_ranking is not None:
        _add_predictions(rows, joint_ranking, cons, run)
    pick, nothing_fits = None, None
    if "bench" in stages:
        with run.timed("constraints"):
            try:
                pick = apply_constraints(rows, cons, order)
            except ConstraintError as exc:  # raised below, with the measurements attached
                nothing_fits = exc
                pick = {"model_id": None, "variant": None, "reason": None, "nothing_fits": exc.one_line()}

    meta = {
        "dataset": describe(dataset),
        "task": task_summary(task_obj),
        "catalog": found.info,
        "protocol": {
            "stages": list(stages),
            "top_k": top_k,
            "sample": len(task_obj.labels) if task_obj.has_data else 0,
            "estimators": list(estimators) if "probe" in stages else [],
            "ranker": ranker_name,
            "variants": list(variants) if "bench" in stages else [],
            "order": "stage-2 re-ranked models first (fused score), then the rest by stage-1 score",
            "stage2_weight": stage2_weight,
        },
        "target": target_summary(
            device,
            predicted_for=(getattr(target, "name", None) or target or "local") if joint_ranking else None,
        ),
        "constraints": cons.to_dict(),
        "joint": joint_ranking.to_dict(cons) if joint_ranking is not None else {"method": "off"},
        "pick": pick,
        "timings": run.timings,
        "cpu_seconds": run.cpu,
        "forward_passes": run.forward_passes,
        "notes": run.notes,
        "notes_shown": run.shown,
        "hf_spider_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    recs = Recommendations(sort_rows(rows), meta)
    if nothing_fits is not None:
        nothing_fits.recommendations = recs  # the rows, marked as not meeting the constraints
        raise nothing_fits
    return recs


def _joint_ranking(stage1, found, target, cons, method, variants, measure_config, progress, run):
    """Predicted cost of every candidate on the target, then the joint order (None: no cost model)."""
    from hf_spider.hardware import DeviceTarget
    from hf_spider.hardware.joint import predict_candidates, rank_jointly

    device = target if isinstance(target, DeviceTarget) else DeviceTarget.resolve(target or "local")
    progress("joint", 0, len(stage1), f"predicted cost on {device.name}")
    threads = getattr(measure_config, "threads", None) or device.threads
    cards = [token.to_dict() for token in found.tokens]
    predictions, cost_model, notes = predict_candidates(
        cards,
        device,
        variants,
        threads=threads,
        progress=lambda done, total, note: progress("joint", done, total, note),
    )
    run.notes += notes
    if cost_model is None:
        return None
    joint = rank_jointly(stage1, predictions, cons, method)
    joint.cost_model = cost_model
    if joint.none_predicted_to_fit:
        run.notes.append(
            f"no candidate is predicted to meet {cons.describe()}: the ones predicted nearest to it are "
            "measured to confirm"
        )
    progress("joint", len(stage1), len(stage1), f"{len(joint.dropped)} dropped for predicted cost")
    run.notes.append(
        f"joint ranking ({method}) on {device.name}: {len(predictions)} of {len(stage1)} candidates got a "
        f"predicted cost (cost model fitted on {cost_model}); {len(joint.dropped)} dropped for predicted "
        f"cost{': ' + shown(joint.dropped) if joint.dropped else ''}"
    )
    return joint


def _add_predictions(rows, joint, cons, run) -> None:
    """Predicted figures, and predicted vs measured, on every row; dropped candidates say why."""
    from hf_spider.hardware.joint import compare

    dropped = set(joint.dropped)
    for row in rows:
        if row["model_id"] in dropped:
            row["device_reason"] = joint.dropped_reason(row["model_id"], cons)
        row.update(compare(row, joint.prediction(row["model_id"], row.get("variant"))))
        error = row.get("latency_prediction_error_pct")
        if error is not None:
            run.notes.append(
                f"{row['model_id']} [{row['variant']}]: p50 predicted {row['predicted_latency_ms']:.3g} ms, "
                f"{how_obtained(row)} {row['latency_p50_ms']:.3g} ms ({error:+.0f}% error)"
            )


def _check_types(*, target: Any, constraints: Any, progress: Any) -> None:
    """Arguments of the wrong kind, refused by name before any work (they failed deep inside)."""
    from hf_spider.hardware import Constraints
    from hf_spider.hardware.targets import DeviceTarget

    if target is not None and not isinstance(target, str | DeviceTarget):
        raise UserInputError(
            f"target must be a name, a URL or a DeviceTarget, not {type(target).__name__}",
            hint="e.g. target='local', 'rpi4' or 'http://HOST:PORT'",
        )
    if constraints is not None and not isinstance(constraints, str | Mapping | Constraints):
        raise UserInputError(
            f"constraints must be a mapping or 'key=value,...', not {type(constraints).__name__}",
            hint="e.g. constraints={'max_latency_ms': 20}",
        )
    if progress is not None and not callable(progress):
        raise UserInputError(
            f"progress must be a function, not {type(progress).__name__}",
            hint="progress(stage, done, total, note)",
        )


def _check_stages(stages: Iterable[str] | str) -> tuple[str, ...]:
    if stages is None or not isinstance(stages, str | Iterable):
        raise UserInputError("stages must be names", hint="e.g. stages=('rank', 'probe') or 'rank,probe'")
    if isinstance(stages, str):  # "rank,probe", as the command line spells it
        stages = [s.strip() for s in stages.split(",") if s.strip()]
    stages = tuple(stages)
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise UserInputError(f"unknown stage(s) {unknown}", hint="use rank, probe, bench")
    return tuple(s for s in STAGES if s in stages or s == "rank")


def _ranker(ranker: Any, *, token, endpoint) -> tuple[Any, str]:
    """The ranker to use and how the report names it."""
    from hf_spider.ranker import Ranker

    if ranker is None:
        return Ranker.default(), "spider (weights shipped with hf-spider)"
    if isinstance(ranker, Ranker):
        return ranker, "spider (weights given by the caller)"
    return Ranker.from_pretrained(ranker, token=token, endpoint=endpoint), f"spider ({ranker})"


def _stage2_weight(ranker: Any, modality: str) -> float | None:
    """The ranker's stage-2 weight for `modality` (None for a ranker without one)."""
    config = getattr(ranker, "config", None)
    if config is None or not hasattr(config, "for_modality"):
        return None
    return float(config.for_modality(modality).stage2_weight)


def stage2_note(weight: float | None, modality: str) -> str:
    """One line on what the fusion of the probed models did, from the ranker's stage-2 weight for
    `modality` (`_stage2_weight`; None: a ranker without one)."""
    if weight is None:
        return "stage 2: the probed models are ordered by the ranker's fused score"
    if weight <= 0:
        return (
            f"stage 2: the probed models keep their stage-1 order (the ranker's {modality} stage-2 "
            "weight is 0: on its fine-tuning records the estimators ordered models worse than stage 1); "
            "their estimator scores are in the output"
        )
    if weight >= 1:
        return (
            f"stage 2: the probed models are ordered by their estimator scores ({modality} stage-2 weight 1)"
        )
    return (
        f"stage 2: the probed models are ordered by stage 1 and the estimators fused with weight {weight:g}"
    )
