"""Stage 4: export the best candidates to ONNX, build quantized variants, measure them on device
targets (this machine, a device agent over HTTP, documented device profiles) and rank them under
constraints (Pareto front, pick with a reason, Copeland merge).

Public names load lazily, so `import hf_spider.hardware` stays fast (no torch / onnxruntime).

Example:
    >>> from hf_spider.hardware import DeviceTarget, export, make_variants, measure
    >>> target = DeviceTarget.resolve("local")
    >>> exported = export("sentence-transformers/all-MiniLM-L6-v2", "feature-extraction")
    >>> fp32, int8 = make_variants(exported, ["fp32", "int8-dynamic"], target)
    >>> measure(int8, target)["figures"]["latency_p50_ms"]["label"]
    'measured'
"""

from __future__ import annotations

import importlib
from typing import Any

from hf_spider.errors import ConstraintError, TargetError

_LAZY = {
    "DeviceTarget": "hf_spider.hardware.device",
    "local_info": "hf_spider.hardware.device",
    "Constraints": "hf_spider.hardware.constraints",
    "pareto_front": "hf_spider.hardware.constraints",
    "pick": "hf_spider.hardware.constraints",
    "copeland": "hf_spider.hardware.constraints",
    "export": "hf_spider.hardware._export",
    "ExportedModel": "hf_spider.hardware._export",
    "make_variants": "hf_spider.hardware.variants",
    "Variant": "hf_spider.hardware.variants",
    "VARIANTS": "hf_spider.hardware.variants",
    "measure": "hf_spider.hardware._measure",
    "flat_row": "hf_spider.hardware._measure",
    "TaskSample": "hf_spider.hardware.sample",
    "feeds_for": "hf_spider.hardware.sample",
    "bench": "hf_spider.hardware._bench",
    "AgentServer": "hf_spider.hardware.agent",
    "AgentClient": "hf_spider.hardware.agent",
    "PROFILES": "hf_spider.hardware.profiles",
}

__all__ = [*_LAZY, "ConstraintError", "TargetError"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hf_spider.hardware' has no attribute {name!r}")
