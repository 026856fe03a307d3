"""Variants of an exported model: fp32, int8 dynamic, int8 static, graph-optimised, fp16.

Quantization goes through optimum's `ORTQuantizer` with the `AutoQuantizationConfig` preset of the
*target's* instruction set (avx2, avx512, avx512_vnni, arm64), so a variant built for a Raspberry
Pi agent uses the arm64 preset even when the host is x86. Every variant is cached on disk under
`cache_dir("variants")`, keyed by the model's sha and the variant's configuration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.errors import UserInputError
from hf_spider.hardware._export import ExportedModel, quiet

logger = logging.getLogger("hf_spider.hardware")

VARIANTS = ("fp32", "int8-dynamic", "int8-static", "optimized", "fp16")
_VARIANT_FILE = "model.onnx"
_TRANSFORMER_STATIC_OPS = ("MatMul", "Gemm", "Gather")


@dataclass
class Variant:
    """One ONNX file of a model, or the reason it was skipped (`path` None)."""

    name: str
    exported: ExportedModel
    path: Path | None
    config: dict[str, Any] = field(default_factory=dict)
    method: str = ""
    skipped: str | None = None
    build_seconds: float = 0.0
    cached: bool = False

    @property
    def model_id(self) -> str:
        return self.exported.model_id

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model": self.model_id,
            "path": str(self.path) if self.path else None,
            "config": self.config,
            "method": self.method,
            "skipped": self.skipped,
            "build_seconds": self.build_seconds,
            "cached": self.cached,
        }


def parse_variants(text: str | list[str]) -> list[str]:
    names = [v.strip() for v in (text.split(",") if isinstance(text, str) else text) if v.strip()]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown or not names:
        raise UserInputError(
            f"unknown variant(s): {', '.join(unknown) or '(none given)'}",
            hint=f"choose from {', '.join(VARIANTS)}",
        )
    return list(dict.fromkeys(names))


def _versions() -> dict[str, str]:
    import onnxruntime
    import optimum.version

    return {"onnxruntime": onnxruntime.__version__, "optimum": optimum.version.__version__}


def _cache_key(exported: ExportedModel, config: dict[str, Any]) -> str:
    payload = json.dumps(
        {"sha": exported.sha, "export": exported.method, "task": exported.task_kind, **config, **_versions()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def make_variants(
    exported: ExportedModel,
    variants: list[str] | str = ("fp32", "int8-dynamic"),
    target=None,
    calibration: dict[str, np.ndarray] | None = None,
    *,
    calibration_source: str = "unknown",
) -> list[Variant]:
    """Build (or take from the cache) each requested variant for `target`.

    Args:
        exported: the fp32 export (`hf_spider.hardware._export`).
        variants: names from `VARIANTS`.
        target: a `DeviceTarget`; its ISA picks the quantization preset, its CUDA support fp16.
        calibration: ONNX inputs of the task sample (`sample.feeds_for`), needed by int8-static.
        calibration_source: where the calibration rows came from, recorded in the variant config.
    """
    names = parse_variants(variants)
    info = getattr(target, "info", None) or {}
    isa = info.get("isa") or _local_isa()
    built = []
    for name in names:
        started = time.perf_counter()
        variant = _build(name, exported, isa, bool(info.get("cuda")), calibration, calibration_source)
        if not variant.cached and variant.path is not None:
            variant.build_seconds = time.perf_counter() - started
        built.append(variant)
    return built


def _local_isa() -> str:
    from hf_spider.hardware.device import cpu_flags, isa_from_flags

    return isa_from_flags(cpu_flags())


def _build(name, exported, isa, cuda, calibration, calibration_source) -> Variant:
    if name == "fp32":
        return Variant(
            name, exported, exported.path, {"variant": "fp32"}, method=f"fp32 export: {exported.method}"
        )
    if name == "fp16" and not cuda:
        return Variant(
            name,
            exported,
            None,
            {"variant": "fp16"},
            skipped="fp16 needs a CUDA target; this target is CPU-only",
        )
    if name == "int8-static" and calibration is None:
        return Variant(
            name, exported, None, {"variant": name}, skipped="int8-static needs a calibration sample"
        )
    config: dict[str, Any] = {"variant": name}
    if name.startswith("int8"):
        # Per-channel weights: on MiniLM the feature cosine with fp32 goes from 0.95 to 0.99.
        config.update({"isa": isa, "per_channel": True})
    if name == "int8-static" and exported.method.startswith("optimum"):
        # Transformers: quantizing Add/Softmax/LayerNorm activations per tensor costs fidelity
        # (MiniLM cosine 0.84 -> 0.93 when only these are quantized); CNNs keep the full default set.
        config["operators"] = list(_TRANSFORMER_STATIC_OPS)
    if name == "int8-static":
        config["calibration"] = {
            "rows": int(min(len(v) for v in calibration.values())),
            "fingerprint": _feeds_fingerprint(calibration),
            "source": calibration_source,
            "method": "minmax",
        }
    if name == "optimized":
        config["optimization_level"] = 2
    folder = exported.dir.parent / f"{name}-{_cache_key(exported, config)}"
    if (folder / _VARIANT_FILE).exists() and (folder / "variant.json").exists():
        saved = json.loads((folder / "variant.json").read_text())
        os.utime(folder)  # recently used: kept by `_evict_calibrated`
        return Variant(name, exported, folder / _VARIANT_FILE, config, method=saved["method"], cached=True)
    builder = {
        "int8-dynamic": _int8_dynamic,
        "int8-static": _int8_static,
        "optimized": _optimized,
        "fp16": _fp16,
    }[name]
    work = Path(tempfile.mkdtemp(dir=exported.dir.parent, prefix=f".{name}-"))
    try:
        with quiet():
            method = builder(exported, work, config, calibration)
        (work / "variant.json").write_text(json.dumps({"config": config, "method": method}, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        work.rename(folder)
    except _Unsupported as exc:
        return Variant(name, exported, None, config, skipped=str(exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    logger.info("built %s of %s: %s", name, exported.model_id, method)
    if "calibration" in config:
        _evict_calibrated(exported.dir.parent, name, keep=folder)
    return Variant(name, exported, folder / _VARIANT_FILE, config, method=method)


# Calibrated variants of one export kept on disk: each dataset sample calibrates its own, so
# without a cap every new dataset adds a folder the size of the int8 model.
MAX_CALIBRATED = 3


def _evict_calibrated(root: Path, name: str, *, keep: Path) -> None:
    """Delete the least recently used `name-*` variant folders of `root` beyond MAX_CALIBRATED."""
    folders = sorted(
        (f for f in root.glob(f"{name}-*") if f.is_dir() and f != keep),
        key=lambda f: f.stat().st_mtime,
        reverse=True,
    )
    for old in folders[MAX_CALIBRATED - 1 :]:
        logger.info("evicting the calibrated variant %s", old)
        shutil.rmtree(old, ignore_errors=True)


class _Unsupported(Exception):
    pass


def _feeds_fingerprint(feeds: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for key in sorted(feeds):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(feeds[key]).tobytes())
    return digest.hexdigest()[:16]


def _quantization_config(isa: str, is_static: bool, per_channel: bool, operators=None):
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    preset = getattr(AutoQuantizationConfig, isa, None)
    if preset is None:
        raise _Unsupported(f"no optimum quantization preset for instruction set {isa}")
    return preset(is_static=is_static, per_channel=per_channel, operators_to_quantize=operators)


def _quantizer(exported: ExportedModel):
    from optimum.onnxruntime import ORTQuantizer

    return ORTQuantizer.from_pretrained(str(exported.dir), file_name=exported.path.name)


def _int8_dynamic(exported, out: Path, config, calibration) -> str:
    qconfig = _quantization_config(config["isa"], False, config["per_channel"])
    _quantizer(exported).quantize(save_dir=str(out), quantization_config=qconfig, file_suffix="")
    _rename_output(out)
    return (
        f"optimum ORTQuantizer, dynamic int8 ({qconfig.format.name}, weights "
        f"{qconfig.weights_dtype.name}, preset {config['isa']}, per-channel where ONNX Runtime supports it)"
    )


def _int8_static(exported, out: Path, config, calibration) -> str:
    from datasets import Dataset
    from optimum.onnxruntime.configuration import AutoCalibrationConfig

    from hf_spider.hardware._runtime import cast_feeds, make_session

    session = make_session(exported.path, 1)
    feeds = cast_feeds(session, calibration)
    del session
    dataset = Dataset.from_dict({k: list(v) for k, v in feeds.items()})
    qconfig = _quantization_config(config["isa"], True, config["per_channel"], config.get("operators"))
    quantizer = _quantizer(exported)
    ranges = quantizer.fit(
        dataset=dataset,
        calibration_config=AutoCalibrationConfig.minmax(dataset),
        operators_to_quantize=qconfig.operators_to_quantize,
        batch_size=min(8, len(dataset)),
        onnx_augmented_model_name=out / "augmented_model.onnx",  # ORT's default is the working directory
    )
    (out / "augmented_model.onnx").unlink(missing_ok=True)
    quantizer.quantize(
        save_dir=str(out), quantization_config=qconfig, calibration_tensors_range=ranges, file_suffix=""
    )
    _rename_output(out)
    calib = config["calibration"]
    return (
        f"optimum ORTQuantizer, static int8 ({qconfig.format.name}, preset {config['isa']}, per-channel, "
        f"operators {'/'.join(config['operators']) if config.get('operators') else 'all default'}), "
        f"minmax calibration on {calib['rows']} rows of the {calib['source']} sample"
    )


def _optimized(exported, out: Path, config, calibration) -> str:
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig
    from optimum.onnxruntime.utils import ORTConfigManager

    if not exported.method.startswith("optimum") or not exported.model_type:
        raise _Unsupported(
            f"graph optimisation needs an optimum export; {exported.model_id} is {exported.method}"
        )
    try:
        ORTConfigManager.check_optimization_supported_model(exported.model_type, None)
    except (KeyError, NotImplementedError):
        raise _Unsupported(f"optimum has no graph optimiser for model type {exported.model_type}") from None
    optimizer = ORTOptimizer.from_pretrained(str(exported.dir), file_names=[exported.path.name])
    level = config["optimization_level"]
    optimizer.optimize(OptimizationConfig(optimization_level=level), save_dir=str(out), file_suffix="")
    _rename_output(out)
    return f"optimum ORTOptimizer, level O{level} (fused attention / layer norm / GELU for {exported.model_type})"


def _fp16(exported, out: Path, config, calibration) -> str:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(exported.path))
    converted = convert_float_to_float16(model, keep_io_types=True)
    onnx.save(converted, str(out / _VARIANT_FILE))
    return "onnxruntime float16 conversion (inputs and outputs kept fp32), for the CUDA execution provider"


def _rename_output(out: Path) -> None:
    """optimum names its file after the input; every variant folder holds `model.onnx`."""
    produced = [p for p in out.glob("*.onnx")]
    if not produced:
        raise _Unsupported("optimum wrote no ONNX file")
    if produced[0].name != _VARIANT_FILE:
        produced[0].rename(out / _VARIANT_FILE)
