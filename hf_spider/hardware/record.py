"""One record of a variant's device figures, under one vocabulary everywhere.

`measure` names each figure (`FIGURES`); `DeviceRecord` carries them flat, under the same names,
for `bench`'s rows, the constraints and the Pareto front, `recommend`'s results table, its parquet
file and the Space. A figure's name says its unit (`_ms`, `_mb` = MiB, `_per_s`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

# name: (unit, what it is). The order is the order of the columns.
FIGURES: dict[str, tuple[str, str]] = {
    "latency_p50_ms": ("ms", "latency p50 at batch 1"),
    "latency_p90_ms": ("ms", "latency p90 at batch 1"),
    "latency_p99_ms": ("ms", "latency p99 at batch 1"),
    "throughput_b1_per_s": ("items/s", "throughput at batch 1"),
    "peak_memory_mb": ("MiB", "peak resident memory"),
    "file_size_mb": ("MiB", "ONNX file size"),
    "load_ms": ("ms", "time to load the ONNX session"),
    "fidelity": ("0..1", "agreement with fp32 (top-1 agreement or feature cosine)"),
    "logme_delta": ("LogME", "change of LogME vs fp32 on the labelled sample"),
}
DEVICE_STATUSES = ("measured", "estimated", "skipped")


@dataclass
class DeviceRecord:
    """One (model, variant) on one target: how its figures were obtained, and the figures.

    `device_status` is `measured` (on the target), `estimated` (from a device profile) or
    `skipped` (`device_reason` says why); `device_method` says how the figures were taken.
    `transfer_score` is the model's transfer score when the caller knows it (higher is better).
    """

    model_id: str
    variant: str | None
    target: str | None = None
    device_status: str = "skipped"
    device_method: str | None = None
    device_reason: str | None = None
    transfer_score: float | None = None
    latency_p50_ms: float | None = None
    latency_p90_ms: float | None = None
    latency_p99_ms: float | None = None
    throughput_b1_per_s: float | None = None
    peak_memory_mb: float | None = None
    file_size_mb: float | None = None
    load_ms: float | None = None
    fidelity: float | None = None
    fidelity_metric: str | None = None
    logme_delta: float | None = None

    @classmethod
    def from_result(cls, result: dict[str, Any], *, transfer_score: float | None = None) -> DeviceRecord:
        """From one `measure` result (its labelled `figures`)."""
        fig = result["figures"]

        def value(key: str):
            return (fig.get(key) or {}).get("value")

        latency = fig.get("latency_p50_ms") or {}
        methods = sorted(
            {(f or {}).get("method", "") for f in fig.values() if f and f.get("value") is not None}
        )
        # why a figure is missing, in the words of the measurement (e.g. "not applicable: classifier")
        missing = [
            f"{k}: {f.get('method')}"
            for k, f in fig.items()
            if f and f.get("value") is None and f.get("method")
        ]
        target = result.get("target")
        return cls(
            model_id=result["model_id"],
            variant=result["variant"],
            target=target.get("name") if isinstance(target, dict) else target,
            device_status=latency.get("label", "measured"),
            device_method=latency.get("method") or "; ".join(methods)[:300],
            device_reason="; ".join(missing) or None,
            transfer_score=transfer_score,
            **{name: value(name) for name in FIGURES},
            fidelity_metric=(fig.get("fidelity") or {}).get("method"),
        )

    @classmethod
    def skipped(
        cls, model_id: str, variant: str | None, reason: str, *, target: str | None = None
    ) -> DeviceRecord:
        return cls(
            model_id=model_id, variant=variant, target=target, device_status="skipped", device_reason=reason
        )

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


def records_of(report: dict[str, Any]) -> list[DeviceRecord]:
    """The `DeviceRecord` of each variant `bench` reported: measured ones and skipped ones."""
    target = (report.get("target") or {}).get("name")
    out = []
    for result in report["results"]:
        if "skipped" in result:
            out.append(
                DeviceRecord.skipped(result["model_id"], result["variant"], result["skipped"], target=target)
            )
        else:
            out.append(DeviceRecord.from_result(result))
    return out


ROW_FIELDS = tuple(f.name for f in fields(DeviceRecord))
