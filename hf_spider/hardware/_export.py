"""Export a Hub model (repo id or local folder) to ONNX.

Three routes, each labelled in the result's `method`:
- `optimum`: `optimum.exporters.onnx.main_export` for image classification, text classification
  and feature extraction (sentence-transformers included);
- `torch.onnx`: backbones optimum has no ONNX config for (the zoo's EfficientNet-Lite), through
  `torch.onnx.export` of the module `hf_spider.models.efficientnet_lite` builds;
- `onnx-as-is`: repos that already ship an ONNX graph (open_nsfw) are used unchanged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hf_spider import _paths
from hf_spider.errors import ExportError, UserInputError, first_line
from hf_spider.models import resolve_model

logger = logging.getLogger("hf_spider.hardware")

TASK_KINDS = ("auto", "image-classification", "text-classification", "feature-extraction")
METADATA_FILE = "hf_spider_export.json"


@dataclass
class ExportedModel:
    """An ONNX graph of one model, with what is needed to feed it and read it."""

    path: Path
    model_id: str
    sha: str
    task_kind: str
    method: str
    modality: str  # text | image
    output_name: str | None = None
    output_kind: str = "features"  # logits | features
    model_type: str | None = None
    export_seconds: float = 0.0
    preprocess: dict[str, Any] = field(default_factory=dict)
    source_dir: str | None = None

    @property
    def dir(self) -> Path:
        return self.path.parent

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data

    def save(self) -> None:
        _write_json(self.dir / METADATA_FILE, self.to_dict())

    @classmethod
    def load(cls, folder: Path) -> ExportedModel:
        data = json.loads((Path(folder) / METADATA_FILE).read_text())
        data["path"] = Path(folder) / Path(data["path"]).name
        return cls(**data)


@contextlib.contextmanager
def quiet():
    """Silence the root-logger chatter and tracer warnings of the exporters and quantizers.

    onnxruntime's quantization tools log through the root logger; those lines say nothing a user
    can act on. Our own `hf_spider.*` loggers are not affected.
    """
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_level = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
    except ImportError:
        hf_logging = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        if hf_logging is not None:
            hf_logging.set_verbosity(hf_level)


def _write_json(path: Path, data: Any) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(handle.name, path)


def _onnx_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.onnx"))


def _has_weights(folder: Path) -> bool:
    return any(
        (folder / name).exists()
        for name in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "modules.json")
    )


def _config(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}


def _modality(folder: Path, config: dict[str, Any]) -> str:
    if (folder / "preprocessor_config.json").exists() or "image_size" in config or "num_channels" in config:
        return "image"
    return "text"


def export(
    model: str | os.PathLike,
    task_kind: str = "auto",
    out_dir: str | os.PathLike | None = None,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    opset: int | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
) -> ExportedModel:
    """Export `model` (repo id or folder) to `out_dir/model.onnx`.

    Args:
        model: a Hub repo id or a local model folder.
        task_kind: `image-classification`, `text-classification`, `feature-extraction` or `auto`.
        out_dir: where the ONNX graph goes; default: the variant cache, keyed by the model's sha.
        allow_pickle: accept pickle-only weights (`.bin`, `.pt`, ...); refused by default.

    Example:
        >>> exported = export("sentence-transformers/all-MiniLM-L6-v2", "feature-extraction")
        >>> exported.method, exported.path.name
        ('optimum', 'model.onnx')
    """
    if task_kind not in TASK_KINDS:
        raise UserInputError(f"unknown task kind {task_kind!r}", hint=f"use one of: {', '.join(TASK_KINDS)}")
    resolved = resolve_model(
        model, revision=revision, token=token, endpoint=endpoint, allow_pickle=allow_pickle
    )  # the one weights policy: pickle-only weights refused unless allowed
    folder, model_id, sha = resolved.path, resolved.short_name, resolved.sha
    if out_dir is None:
        out_dir = (
            _paths.cache_dir("variants")
            / _slug(model_id, sha)
            / f"export-{task_kind}-opset{opset or 'default'}"
        )
    out = Path(out_dir)
    if (out / METADATA_FILE).exists() and (out / "model.onnx").exists():
        cached = ExportedModel.load(out)
        if cached.sha == sha:
            logger.info("using cached export of %s at %s", model_id, out)
            return cached
    out.mkdir(parents=True, exist_ok=True)
    config = _config(folder)
    onnx_files = _onnx_files(folder)
    started = time.perf_counter()
    if onnx_files and not _has_weights(folder):
        result = _use_onnx_as_is(onnx_files, out, model_id, sha, task_kind, folder)
    elif _torch_backbone_loader(folder) is not None:
        result = _export_torch(folder, out, model_id, sha, task_kind, opset)
    else:
        result = _export_optimum(folder, out, model_id, sha, task_kind, config, opset, trust_remote_code)
    result.export_seconds = time.perf_counter() - started
    result.source_dir = str(folder)
    result.save()
    return result


def _slug(model_id: str, sha: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_id)[-60:]
    return f"{safe}-{sha[:12]}"


def _export_optimum(folder, out, model_id, sha, task_kind, config, opset, trust_remote_code) -> ExportedModel:
    from optimum.exporters.onnx import main_export

    library = "sentence_transformers" if (folder / "modules.json").exists() else "transformers"
    task = _infer_task(config) if task_kind == "auto" else task_kind
    if library == "sentence_transformers":
        task = "feature-extraction"
    try:
        with quiet():
            main_export(
                str(folder),
                str(out),
                task=task,
                opset=opset,
                do_validation=False,
                trust_remote_code=trust_remote_code,
                library_name=library,
                local_files_only=True,
            )
    except (KeyError, ValueError, NotImplementedError, RuntimeError) as exc:
        remote = "trust_remote_code" in str(exc) or "custom code" in str(exc)
        raise ExportError(
            f"optimum cannot export {model_id} for {task_kind}: {first_line(exc)[:200]}",
            hint="the model needs its own code: pass --trust-remote-code only if you trust its author"
            if remote
            else "pick another --task-kind, or a model architecture optimum supports",
        ) from exc
    # weights that cannot be loaded: a corrupt safetensors, a pickle of a framework not installed
    except Exception as exc:
        raise ExportError(
            f"cannot load the weights of {model_id} ({type(exc).__name__}: {first_line(exc)[:200]})",
            hint="check the model's weight files: corrupt, truncated, or of a framework not installed",
        ) from exc
    onnx_path = out / "model.onnx"
    if not onnx_path.exists():
        raise ExportError(f"optimum wrote no model.onnx for {model_id}", hint="check the model folder")
    import onnx

    outputs = [o.name for o in onnx.load(str(onnx_path), load_external_data=False).graph.output]
    if "logits" in outputs:
        output_name, output_kind = "logits", "logits"
    elif "sentence_embedding" in outputs:
        output_name, output_kind = "sentence_embedding", "features"
    elif "pooler_output" in outputs and _modality(folder, config) == "image":
        output_name, output_kind = "pooler_output", "features"
    else:
        output_name, output_kind = outputs[0], "features"
    resolved_kind = (
        task_kind
        if task_kind != "auto"
        else ("text-classification" if output_kind == "logits" else "feature-extraction")
    )
    return ExportedModel(
        path=onnx_path,
        model_id=model_id,
        sha=sha,
        task_kind=resolved_kind,
        method=f"optimum ({library}, task {task})",
        modality=_modality(folder, config),
        output_name=output_name,
        output_kind=output_kind,
        model_type=config.get("model_type"),
    )


def _infer_task(config: dict[str, Any]) -> str:
    """The export task from the config's architecture name (optimum cannot infer it for folders)."""
    architectures = " ".join(config.get("architectures") or [])
    if "ForSequenceClassification" in architectures:
        return "text-classification"
    if "ForImageClassification" in architectures:
        return "image-classification"
    return "feature-extraction"


def _use_onnx_as_is(onnx_files, out, model_id, sha, task_kind, folder) -> ExportedModel:
    source = onnx_files[0]
    target = out / "model.onnx"
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    meta = _onnx_repo_meta(folder)
    return ExportedModel(
        path=target,
        model_id=model_id,
        sha=sha,
        task_kind=task_kind if task_kind != "auto" else meta.get("task_kind", "feature-extraction"),
        method=f"onnx-as-is ({source.name} from the repo, not re-exported)",
        modality=meta.get("modality", "image"),
        output_name=meta.get("output_name"),
        output_kind=meta.get("output_kind", "features"),
        model_type=meta.get("model_type"),
        preprocess=meta.get("preprocess", {}),
    )


def _onnx_repo_meta(folder: Path) -> dict[str, Any]:
    """How to feed and read an ONNX repo, from its `config.json` (the zoo's open_nsfw layout).

    Pixel statistics given on a 0..255 range are converted to units of [0, 1] pixels.
    """
    config = _config(folder)
    meta: dict[str, Any] = {"model_type": config.get("architecture") or config.get("model_type")}
    if "feature_output" in config:
        meta.update(output_name=config["feature_output"], output_kind="features")
    prep = config.get("preprocessing") or {}
    if prep or "input_size" in config:
        scale = float((prep.get("pixel_range") or [0, 1])[1])
        size = prep.get("center_crop") or config.get("input_size", [224, 224])[:2]
        meta["modality"] = "image"
        meta["preprocess"] = {
            "size": list(size[:2]),
            "layout": config.get("input_layout", "NCHW"),
            "channel_order": prep.get("channel_order", "RGB"),
            "mean": [m / scale for m in prep.get("mean", [0.0, 0.0, 0.0])],
            "std": [d / scale for d in prep.get("std", [scale, scale, scale])],
            "note": "resized straight to the crop size (no JPEG round trip)",
        }
    return meta


def _torch_backbone_loader(folder: Path):
    """hf-spider's own module for architectures optimum cannot export (EfficientNet-Lite), or None."""
    config = _config(folder)
    if "efficientnet_lite" not in str(config.get("architecture", "")):
        return None
    try:
        from hf_spider.models import efficientnet_lite
    except ImportError:
        return None
    return efficientnet_lite


def _features_module(net):
    """Wraps a backbone so its forward returns the pooled features (what transfer ranking reads)."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, pixel_values):
            return self.inner.forward_features(pixel_values)

    return Features(net)


def _export_torch(folder, out, model_id, sha, task_kind, opset) -> ExportedModel:
    import torch

    module = _torch_backbone_loader(folder)
    net, config = module.load_from_folder(folder)
    net.eval()
    cfg = config.get("pretrained_cfg", {})
    height, width = cfg.get("input_size", [3, 224, 224])[1:]
    classify = task_kind == "image-classification"
    wrapped = net if classify else _features_module(net)
    output = "logits" if classify else "features"
    target = out / "model.onnx"
    with torch.no_grad(), quiet():
        torch.onnx.export(
            wrapped,
            (torch.zeros(1, 3, height, width),),
            str(target),
            input_names=["pixel_values"],
            output_names=[output],
            dynamic_axes={"pixel_values": {0: "batch_size"}, output: {0: "batch_size"}},
            opset_version=opset or 17,
            dynamo=False,
        )
    return ExportedModel(
        path=target,
        model_id=model_id,
        sha=sha,
        task_kind="image-classification" if classify else "feature-extraction",
        method="torch.onnx (optimum has no ONNX config for this architecture)",
        modality="image",
        output_name=output,
        output_kind=output,
        model_type=config.get("architecture"),
        preprocess={
            "size": [height, width],
            "layout": "NCHW",
            "mean": list(cfg.get("mean", [0.5, 0.5, 0.5])),
            "std": list(cfg.get("std", [0.5, 0.5, 0.5])),
        },
    )
