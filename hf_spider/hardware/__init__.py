"""Stage 4: export the best candidates to ONNX, build quantized variants, measure them on device
targets (this machine, a device agent over HTTP, documented device profiles) and rank them under
constraints (Pareto front, pick with a reason, Copeland merge).

Public names load lazily, so `import hf_spider.hardware` stays fast (no torch / onnxruntime).

Example:
    >>> from hf_spider.hardware import DeviceTarget, MeasureConfig, export, make_variants
    >>> target = DeviceTarget.resolve("local")
    >>> exported = export("sentence-transformers/all-MiniLM-L6-v2", "feature-extraction")
    >>> fp32, int8 = make_variants(exported, ["fp32", "int8-dynamic"], target)
    >>> target.measure(int8, config=MeasureConfig(iterations=20))["figures"]["latency_p50_ms"]["label"]
    'measured'
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "targets": ["DeviceTarget", "LocalTarget", "AgentTarget", "ProfileTarget", "measure"],
        "config": ["MeasureConfig"],
        "device": ["local_info"],
        "constraints": ["Constraints", "pareto_front", "pick", "copeland", "apply_constraints"],
        "record": ["DeviceRecord", "FIGURES", "records_of"],
        "_candidates": ["bench_candidates"],
        "_export": ["export", "ExportedModel"],
        "variants": ["make_variants", "Variant", "VARIANTS"],
        "_measure": ["flat_row"],
        "sample": ["TaskSample", "feeds_for"],
        "_bench": ["bench", "measure_variants"],
        "agent": ["AgentServer", "AgentClient"],
        "profiles": ["PROFILES"],
    },
)

if TYPE_CHECKING:
    from hf_spider.hardware._bench import bench, measure_variants
    from hf_spider.hardware._candidates import bench_candidates
    from hf_spider.hardware._export import ExportedModel, export
    from hf_spider.hardware._measure import flat_row
    from hf_spider.hardware.agent import AgentClient, AgentServer
    from hf_spider.hardware.config import MeasureConfig
    from hf_spider.hardware.constraints import Constraints, apply_constraints, copeland, pareto_front, pick
    from hf_spider.hardware.device import local_info
    from hf_spider.hardware.profiles import PROFILES
    from hf_spider.hardware.record import FIGURES, DeviceRecord, records_of
    from hf_spider.hardware.sample import TaskSample, feeds_for
    from hf_spider.hardware.targets import AgentTarget, DeviceTarget, LocalTarget, ProfileTarget, measure
    from hf_spider.hardware.variants import VARIANTS, Variant, make_variants
