"""Facts about this machine: CPU model, instruction set, int8 dot-product, cores, memory, runtime.

Read from `/proc/cpuinfo` and `os`, on numpy-free standard library code, so the device agent
(`hf_spider.hardware.agent`) reports the same facts about its board. The device targets themselves
(this machine, an agent, a profile) are in `hf_spider.hardware.targets`.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from pathlib import Path
from typing import Any

logger = logging.getLogger("hf_spider.hardware")

# Flags worth reporting: they decide which int8 kernels ONNX Runtime can use.
_REPORTED_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_int8",
    "asimd",
    "asimddp",
    "fphp",
    "asimdhp",
    "i8mm",
    "sve",
)


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The instruction-set flags of the first CPU (`flags` on x86, `Features` on arm)."""
    text = _read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return set(value.split())
    return set()


def isa_from_flags(flags: set[str], machine: str | None = None) -> str:
    """The optimum quantization preset matching a CPU: `avx512_vnni`, `avx512`, `avx2` or `arm64`."""
    machine = (machine or platform.machine()).lower()
    if machine in ("aarch64", "arm64") or "asimd" in flags:
        return "arm64"
    if "avx512_vnni" in flags:
        return "avx512_vnni"
    if "avx512f" in flags:
        return "avx512"
    if "avx2" in flags:
        return "avx2"
    # Older x86: the avx2 preset is the most conservative optimum offers (u8/s8, no VNNI).
    return "avx2"


def int8_dot_product(flags: set[str], isa: str) -> bool:
    """Whether the CPU has an int8 dot-product instruction (VNNI on x86, SDOT/UDOT on arm)."""
    if isa == "arm64":
        return "asimddp" in flags
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key.strip().lower() in ("model name", "hardware", "processor") and value and not value.isdigit():
            return value
    return platform.processor() or platform.machine()


def _cpu_mhz(cpuinfo: str) -> float | None:
    values = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([0-9.]+)", cpuinfo, re.M)]
    if values:
        return max(values)
    # arm boards expose the maximum frequency through cpufreq instead.
    try:
        khz = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text().strip()
        return int(khz) / 1000.0
    except (OSError, ValueError):
        return None


def _memory_mb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**20)
    except Exception:  # psutil missing on a bare device: fall back to /proc/meminfo
        match = re.search(r"^MemTotal:\s+(\d+) kB", _read_cpuinfo("/proc/meminfo"), re.M)
        return round(int(match.group(1)) / 1024) if match else None


def local_info(threads: int | None = None) -> dict[str, Any]:
    """Facts about this machine that decide what runs fast on it; JSON-serialisable."""
    cpuinfo = _read_cpuinfo()
    flags = cpu_flags(cpuinfo)
    isa = isa_from_flags(flags)
    info: dict[str, Any] = {
        "cpu_model": _cpu_model(cpuinfo),
        "machine": platform.machine(),
        "system": platform.system(),
        "cores": os.cpu_count() or 1,
        "threads": threads or os.cpu_count() or 1,
        "cpu_mhz": _cpu_mhz(cpuinfo),
        "memory_mb": _memory_mb(),
        "isa": isa,
        "int8_dot_product": int8_dot_product(flags, isa),
        "flags": sorted(flags & set(_REPORTED_FLAGS)),
        "python": platform.python_version(),
    }
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
        info["providers"] = ort.get_available_providers()
    except ImportError:
        info["onnxruntime"] = None
        info["providers"] = []
    info["cuda"] = "CUDAExecutionProvider" in info["providers"]
    return info
