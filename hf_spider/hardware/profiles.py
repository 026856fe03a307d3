"""Device profiles: documented boards that are not attached, used only to *estimate*.

Method (nominal, stated with every figure): a CPU's compute rate for a precision is
`cores x GHz x fp32 FLOPs per cycle per core`, times 4 for int8 with a dot-product instruction
(VNNI, SDOT) or 2 without one. A profile's latency is the local measured latency times
`local rate / profile rate` for the variant's precision (throughput divided by the same factor);
peak memory and fidelity are carried over from the local run (same ONNX graph, same runtime).

A profile can be *calibrated*: measure reference variants both locally and on a real device
agent, take the median ratio agent/local per precision, and save it. Calibrated factors replace
the nominal ones; figures stay labelled `estimated`, with the calibration named in the method.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hf_spider import _paths
from hf_spider.errors import TargetError

logger = logging.getLogger("hf_spider.hardware")

# fp32 FLOPs per cycle per core from the SIMD width and FMA units of each ISA class.
_FLOPS_PER_CYCLE = {"arm64": 8.0, "arm64-a7x": 16.0, "avx2": 32.0, "avx512": 64.0, "avx512_vnni": 64.0}


@dataclass(frozen=True)
class DeviceProfile:
    """A documented device. Figures are nominal vendor specifications."""

    name: str
    description: str
    cores: int
    ghz: float
    memory_mb: int
    isa: str
    int8_dot_product: bool
    fp32_flops_per_cycle: float
    cuda: bool = False
    notes: str = ""

    def info(self) -> dict[str, Any]:
        info = asdict(self)
        info["threads"] = self.cores
        info["providers"] = ["CPUExecutionProvider"]
        calibration = load_calibration(self.name)
        if calibration:
            info["calibration"] = calibration
        return info

    def rate(self, precision: str) -> float:
        return compute_rate(self.cores, self.ghz, self.fp32_flops_per_cycle, self.int8_dot_product, precision)


PROFILES: dict[str, DeviceProfile] = {
    p.name: p
    for p in (
        DeviceProfile(
            "rpi4",
            "Raspberry Pi 4 Model B (BCM2711, 4x Cortex-A72 @ 1.8 GHz)",
            cores=4,
            ghz=1.8,
            memory_mb=4096,
            isa="arm64",
            int8_dot_product=False,
            fp32_flops_per_cycle=_FLOPS_PER_CYCLE["arm64"],
            notes="ARMv8.0-A NEON, no SDOT/UDOT; sold with 1, 2, 4 or 8 GB",
        ),
        DeviceProfile(
            "rpi5",
            "Raspberry Pi 5 (BCM2712, 4x Cortex-A76 @ 2.4 GHz)",
            cores=4,
            ghz=2.4,
            memory_mb=8192,
            isa="arm64",
            int8_dot_product=True,
            fp32_flops_per_cycle=_FLOPS_PER_CYCLE["arm64-a7x"],
            notes="ARMv8.2-A NEON with SDOT/UDOT; sold with 2, 4, 8 or 16 GB",
        ),
        DeviceProfile(
            "jetson-orin-nano",
            "NVIDIA Jetson Orin Nano 8GB (6x Cortex-A78AE @ 1.5 GHz, 1024-core Ampere GPU)",
            cores=6,
            ghz=1.5,
            memory_mb=8192,
            isa="arm64",
            int8_dot_product=True,
            fp32_flops_per_cycle=_FLOPS_PER_CYCLE["arm64-a7x"],
            cuda=True,
            notes="estimates cover the CPU only; memory is shared between CPU and GPU",
        ),
        DeviceProfile(
            "x86-laptop",
            "x86 laptop, 4 cores @ 2.8 GHz with AVX2 + FMA (e.g. Intel Core i5 8th-10th gen)",
            cores=4,
            ghz=2.8,
            memory_mb=16384,
            isa="avx2",
            int8_dot_product=False,
            fp32_flops_per_cycle=_FLOPS_PER_CYCLE["avx2"],
        ),
        DeviceProfile(
            "x86-laptop-vnni",
            "x86 laptop, 4 cores @ 2.8 GHz with AVX-512 VNNI (e.g. Intel Core 11th gen)",
            cores=4,
            ghz=2.8,
            memory_mb=16384,
            isa="avx512_vnni",
            int8_dot_product=True,
            fp32_flops_per_cycle=_FLOPS_PER_CYCLE["avx512_vnni"],
        ),
        DeviceProfile(
            "x86-server-2vcpu",
            "cloud VM, 2 vCPU @ 2.5 GHz with AVX-512 VNNI",
            cores=2,
            ghz=2.5,
            memory_mb=8192,
            isa="avx512_vnni",
            int8_dot_product=True,
            fp32_flops_per_cycle=_FLOPS_PER_CYCLE["avx512_vnni"],
        ),
    )
}


def profile_names() -> list[str]:
    return sorted(PROFILES)


def get_profile(name: str) -> DeviceProfile | None:
    return PROFILES.get(name)


def compute_rate(
    cores: float, ghz: float, flops_per_cycle: float, dot_product: bool, precision: str
) -> float:
    """Nominal GFLOP/s (fp32, fp16) or GOP/s (int8) of a CPU."""
    rate = cores * ghz * flops_per_cycle
    if precision == "int8":
        rate *= 4.0 if dot_product else 2.0
    return rate


def local_rate(info: dict[str, Any], precision: str) -> float:
    """The same nominal rate for the local machine, from its measured facts."""
    ghz = (info.get("cpu_mhz") or 2500.0) / 1000.0
    isa = info.get("isa", "avx2")
    per_cycle = _FLOPS_PER_CYCLE.get(isa, 16.0)
    if isa == "arm64" and info.get("int8_dot_product"):
        per_cycle = _FLOPS_PER_CYCLE["arm64-a7x"]
    threads = min(int(info.get("threads") or 1), int(info.get("cores") or 1))
    return compute_rate(threads, ghz, per_cycle, bool(info.get("int8_dot_product")), precision)


def precision_of(variant_name: str) -> str:
    if variant_name.startswith("int8"):
        return "int8"
    if variant_name.startswith("fp16"):
        return "fp16"
    return "fp32"


def slowdown(
    profile: DeviceProfile, local: dict[str, Any], precision: str, *, calibrated: bool = True
) -> tuple[float, str]:
    """The factor profile_latency / local_latency for a precision, and the method that gave it."""
    calibration = load_calibration(profile.name) if calibrated else None
    if calibration and precision in calibration.get("factors", {}):
        factor = float(calibration["factors"][precision])
        method = (
            f"local measurement x {factor:.3g}, the median agent/local latency ratio of "
            f"{calibration.get('n', '?')} reference {precision} measurements calibrated "
            f"{calibration.get('date', '?')} on {calibration.get('agent_cpu', 'the agent')}"
        )
        return factor, method
    factor = local_rate(local, precision) / profile.rate(precision)
    method = (
        f"local measurement x {factor:.3g} = nominal {precision} compute rate of this machine "
        f"({local_rate(local, precision):.0f} G/s: {min(local.get('threads') or 1, local.get('cores') or 1)} threads, "
        f"{local.get('isa')}) / {profile.name} ({profile.rate(precision):.0f} G/s: {profile.cores} cores x "
        f"{profile.ghz} GHz, {profile.isa}, dot-product {'yes' if profile.int8_dot_product else 'no'}); uncalibrated"
    )
    return factor, method


def _calibration_path(name: str) -> Path:
    return _paths.cache_dir("profiles") / f"{name}.json"


def load_calibration(name: str) -> dict[str, Any] | None:
    path = _calibration_path(name)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        logger.warning("ignoring unreadable calibration %s", path)
        return None


def save_calibration(name: str, pairs: list[dict[str, Any]], *, agent_info: dict[str, Any]) -> dict[str, Any]:
    """Save factors from (precision, local_ms, agent_ms) pairs of the same reference variants."""
    if name not in PROFILES:
        raise TargetError(f"unknown profile {name!r}", hint=f"choose one of: {', '.join(profile_names())}")
    if not pairs:
        raise TargetError("no reference measurements to calibrate from", hint="measure at least one variant")
    factors: dict[str, float] = {}
    for precision in sorted({p["precision"] for p in pairs}):
        ratios = [
            p["agent_ms"] / p["local_ms"] for p in pairs if p["precision"] == precision and p["local_ms"] > 0
        ]
        if ratios:
            factors[precision] = statistics.median(ratios)
    calibration = {
        "profile": name,
        "factors": factors,
        "n": len(pairs),
        "error": calibration_error(PROFILES[name], pairs),
        "pairs": pairs,
        "agent_cpu": agent_info.get("cpu_model"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    path = _calibration_path(name)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(calibration, handle, indent=2)
    os.replace(handle.name, path)
    logger.info("saved calibration of %s to %s", name, path)
    return calibration


def estimate_factor(
    profile: DeviceProfile, local: dict[str, Any], variant_name: str, *, calibrated: bool = True
) -> dict[str, Any]:
    """The latency factor profile / local for one variant, its method and an uncertainty band.

    Returns `factor`, `method`, `band` (low, high multipliers of the estimate, or None when no
    band can be given) and `band_method`.

    Variant order follows measurement: when the profile gains less from int8 than this machine
    (e.g. a Raspberry Pi 4 without SDOT against an x86 with VNNI), nominal rates would multiply the
    int8 latency by a larger factor than the fp32 one and can reverse the order measured here (a
    1.8x faster int8 estimated slower). The int8/fp32 ratio measured here is then carried over
    (the fp32 factor), and the nominal int8 factor bounds the band instead. Calibrated factors
    (agent measurements, which include int8 vs fp32 on the device) are used as they are.
    """
    precision = precision_of(variant_name)
    calibration = load_calibration(profile.name) if calibrated else None
    if calibration and precision in calibration.get("factors", {}):
        factor, method = slowdown(profile, local, precision)
        ratios = [
            p["agent_ms"] / p["local_ms"]
            for p in calibration.get("pairs", [])
            if p.get("precision") == precision and p.get("local_ms")
        ]
        if len(ratios) >= 2:
            band = (min(ratios) / factor, max(ratios) / factor)
            band_method = f"range of the {len(ratios)} calibration ratios agent/local for {precision}"
        else:
            band, band_method = None, "one calibration pair: no spread to give an interval from"
        return {"factor": factor, "method": method, "band": band, "band_method": band_method}
    unknown = "uncalibrated nominal rates: their own error is unknown until calibrated (--calibrate)"
    if precision != "int8":
        factor, method = slowdown(profile, local, precision, calibrated=False)
        return {"factor": factor, "method": method, "band": None, "band_method": unknown}
    fp32, _ = slowdown(profile, local, "fp32", calibrated=False)
    int8, int8_method = slowdown(profile, local, "int8", calibrated=False)
    if int8 > fp32:
        method = (
            f"local measurement x {fp32:.3g} (the fp32 factor): {profile.name} gains less from int8 than this "
            f"machine (dot-product {'yes' if profile.int8_dot_product else 'no'} there, "
            f"{'yes' if local.get('int8_dot_product') else 'no'} here), so the int8/fp32 latency ratio measured "
            f"here is carried over rather than reversed; nominal int8 rates give x {int8:.3g}, the top of the "
            "interval; uncalibrated"
        )
        return {
            "factor": fp32,
            "method": method,
            "band": (1.0, int8 / fp32),
            "band_method": f"from the measured int8 gain carried over (low) to the nominal int8 rates (high); {unknown}",
        }
    return {
        "factor": int8,
        "method": int8_method,
        "band": (1.0, fp32 / int8),
        "band_method": f"from the nominal int8 gain (low) to no more gain than measured here (high); {unknown}",
    }


def calibration_error(profile: DeviceProfile, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median relative error of the agent latencies estimated before and after calibrating.

    Before: the uncalibrated estimate (nominal rates, `estimate_factor(calibrated=False)`) from
    each pair's local latency. After: leave-one-out — each pair estimated with the median ratio
    of the *other* pairs of its precision (pairs alone in their precision are left out).
    """
    from hf_spider.hardware.device import local_info

    before, after = [], []
    for i, pair in enumerate(pairs):
        if not pair.get("local_ms") or not pair.get("agent_ms"):
            continue
        local = local_info(pair.get("threads"))
        nominal = estimate_factor(profile, local, pair.get("variant") or pair["precision"], calibrated=False)
        before.append(abs(pair["local_ms"] * nominal["factor"] - pair["agent_ms"]) / pair["agent_ms"])
        others = [
            p["agent_ms"] / p["local_ms"]
            for j, p in enumerate(pairs)
            if j != i and p["precision"] == pair["precision"] and p.get("local_ms")
        ]
        if others:
            estimate = pair["local_ms"] * statistics.median(others)
            after.append(abs(estimate - pair["agent_ms"]) / pair["agent_ms"])
    return {
        "before_median_rel_error": statistics.median(before) if before else None,
        "after_median_rel_error": statistics.median(after) if after else None,
        "n_before": len(before),
        "n_after": len(after),
        "method": "before: nominal-rate estimate of each pair's agent latency from its local one; "
        "after: leave-one-out median agent/local ratio of the other pairs of the same precision",
    }
