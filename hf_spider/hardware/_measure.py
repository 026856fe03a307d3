"""The device figures of one measured variant, every one labelled (used by each target's `measure`).

Each figure is `{"value", "unit", "label", "method"}` where `label` is `measured` (timed on this
machine or on a device agent) or `estimated` (a device profile; the method says how).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger("hf_spider.hardware")

MEASURED = "measured"
ESTIMATED = "estimated"

# The figures every result carries, in table order.
FIGURES = (
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "throughput_b1_per_s",
    "throughput_batch_per_s",
    "peak_memory_mb",
    "file_size_mb",
    "load_ms",
    "build_s",
    "fidelity",
    "logme_delta",
)


def figure(value, unit: str, label: str, method: str, **extra) -> dict[str, Any]:
    return {
        "value": None if value is None else float(value),
        "unit": unit,
        "label": label,
        "method": method,
        **extra,
    }


def build_result(variant, target, raw, where: str, label: str = MEASURED) -> dict[str, Any]:
    lat = raw["latency_ms"]
    ort = f"ONNX Runtime {target.info.get('onnxruntime') or ''}".strip()
    timing = (
        f"{ort} on {where}, {raw['threads']} threads, {raw['warmup']} warm-up runs, "
        f"{raw['iterations']} timed runs at batch 1 over {raw['timed_seconds']:.1f} s"
    )
    mem = raw.get("memory")
    figures = {
        "latency_p50_ms": figure(lat["p50"], "ms", label, timing),
        "latency_p90_ms": figure(lat["p90"], "ms", label, timing),
        "latency_p99_ms": figure(lat["p99"], "ms", label, timing),
        "cpu_time_p50_ms": figure(
            raw.get("cpu_ms_p50"),
            "ms",
            label,
            f"median CPU time of this process per batch-1 run (all {raw['threads']} threads) over the same runs; "
            "hardly affected by other processes, it is the latency on an idle core at 1 thread",
        ),
        "throughput_b1_per_s": figure(raw["throughput_b1"], "items/s", label, timing),
        "throughput_batch_per_s": figure(
            raw["throughput_batch"],
            "items/s",
            label,
            (
                f"{raw['iterations_batch']} timed runs at batch {raw['batch']}"
                + (" (batch frozen in the graph)" if raw.get("batch_frozen") else "")
            )
            if raw["throughput_batch"] is not None
            else "not measured (batch-1 timing only)",
            batch=raw["batch"],
        ),
        "peak_memory_mb": figure(
            mem["peak_mb"] if mem else None,
            "MiB",
            label,
            (
                "peak RSS (VmHWM) of a separate process that loads the model with the memory arena off and "
                f"runs batch 1 and {raw['batch']}; the process holds {mem['baseline_mb']:.0f} MiB before loading"
            )
            if mem
            else "not measured (memory=False)",
            baseline_mb=mem["baseline_mb"] if mem else None,
        ),
        "file_size_mb": figure(raw["file_size_bytes"] / 2**20, "MiB", MEASURED, "size of the ONNX file"),
        "load_ms": figure(raw["load_ms"], "ms", label, f"InferenceSession creation on {where}"),
        "build_s": figure(
            variant.build_seconds or variant.exported.export_seconds,
            "s",
            MEASURED,
            ("cached; " if variant.cached else "")
            + ("export time" if variant.name == "fp32" else "variant build time")
            + " on this machine",
        ),
    }
    return {
        "model_id": variant.model_id,
        "variant": variant.name,
        "variant_method": variant.method,
        "variant_config": variant.config,
        "export_method": variant.exported.method,
        "target": target.to_dict(),
        "protocol": {
            k: raw[k]
            for k in ("threads", "warmup", "iterations", "timed_seconds", "batch", "iterations_batch")
        }
        | {"providers": raw.get("providers")},
        "figures": figures,
        # CPU utilisation, temperature, throttling, energy per inference (`hf_spider.hardware.sensors`)
        "sensors": raw.get("sensors"),
        "sensors_where": where if target.kind != "profile" else f"{where} (not the profiled device)",
    }


def add_fidelity(result, variant, outputs, reference, labels, label: str = MEASURED) -> None:
    figures = result["figures"]
    kind = variant.exported.output_kind
    if variant.name == "fp32" and reference is None:
        reference = outputs
    if reference is None:
        figures["fidelity"] = figure(None, "", label, "no fp32 reference outputs given")
    elif kind == "logits":
        agree = float(np.mean(outputs.argmax(1) == reference.argmax(1)))
        figures["fidelity"] = figure(
            agree, "top-1 agreement", label, f"top-1 agreement with fp32 on {len(outputs)} sample rows"
        )
    else:
        a = outputs / np.clip(np.linalg.norm(outputs, axis=1, keepdims=True), 1e-12, None)
        b = reference / np.clip(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12, None)
        cosine = float(np.mean((a * b).sum(1)))
        figures["fidelity"] = figure(
            cosine, "cosine", label, f"mean cosine of pooled features with fp32 on {len(outputs)} sample rows"
        )
    figures["logme_delta"] = _logme_delta(outputs, reference, labels, kind, label)


def _logme_delta(outputs, reference, labels, kind, label) -> dict[str, Any]:
    if kind == "logits":
        return figure(None, "", label, "not applicable: classifier (fidelity is top-1 agreement)")
    if labels is None or reference is None:
        return figure(None, "", label, "needs a labelled sample (--dataset); the sample has no labels")
    if len(np.unique(labels)) < 2:
        return figure(None, "", label, "needs at least two classes in the sample")
    try:
        from hf_spider.estimators import score
    except ImportError:
        return figure(None, "", label, "hf_spider.estimators is not available")
    try:
        delta = float(score("logme", outputs, labels)) - float(score("logme", reference, labels))
    except Exception as exc:  # an estimator failing on a tiny sample must not lose the device figures
        return figure(None, "", label, f"LogME failed: {type(exc).__name__}: {exc}")
    return figure(
        delta, "LogME", label, f"LogME(variant) - LogME(fp32) on {len(labels)} labelled sample rows"
    )


def estimate_for_profile(result, variant, profile) -> None:
    """Turn figures measured on this machine into `profile`'s estimates (`profiles.estimate_factor`)."""
    from hf_spider.hardware.device import local_info
    from hf_spider.hardware.profiles import estimate_factor

    local = local_info(result["protocol"]["threads"])
    estimate = estimate_factor(profile, local, variant.name)
    factor, method, band = estimate["factor"], estimate["method"], estimate["band"]
    figures = result["figures"]
    for key in ("latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "load_ms", "cpu_time_p50_ms"):
        if figures.get(key, {}).get("value") is None:
            continue
        value = figures[key]["value"] * factor
        interval = (
            {"low": value * band[0], "high": value * band[1], "method": estimate["band_method"]}
            if band
            else {"low": None, "high": None, "method": estimate["band_method"]}
        )
        figures[key].update(value=value, label=ESTIMATED, method=method, interval=interval)
    for key in ("throughput_b1_per_s", "throughput_batch_per_s"):
        figures[key].update(value=figures[key]["value"] / factor, label=ESTIMATED, method=method)
    mem = figures["peak_memory_mb"]
    if mem["value"] is not None:
        fits = "fits in" if mem["value"] < profile.memory_mb else "EXCEEDS"
        mem.update(
            label=ESTIMATED,
            method=f"carried over from the local measurement (same graph, same runtime); {fits} the "
            f"{profile.memory_mb} MiB of {profile.name}",
        )
    for key in ("fidelity", "logme_delta"):
        figures[key].update(
            label=ESTIMATED, method=figures[key]["method"] + " (computed on this machine; same ONNX graph)"
        )
    result["estimated_from"] = {"local_cpu": local["cpu_model"], "factor": factor}


def flat_row(result: dict[str, Any], score: float | None = None) -> dict[str, Any]:
    """One `measure` result as a row of the one vocabulary (`DeviceRecord`), for `pareto_front` / `pick`."""
    from hf_spider.hardware.record import DeviceRecord

    return DeviceRecord.from_result(result, transfer_score=score).to_row()
