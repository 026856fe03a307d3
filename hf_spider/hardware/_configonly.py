"""Device cost from a model's `config.json` alone: random weights, real export, real measurement.

Latency, memory and file size depend on a model's architecture, not on its weights. So the cost
of any Hub model on a target can be measured without downloading its weights (optimum-benchmark's
`no_weights` idea): fetch `config.json` (and `preprocessor_config.json`) only, build the model
with randomly initialised weights, export and quantize it as usual, and measure each variant on
the target. The numbers are real measurements of the real graph; fidelity needs the real weights
and is not available (`None`, with the reason).

Results are cached under `cache_dir("config_cost")`, keyed by (config hash, variant, target,
measure config), and appended to the measurement store (`hf_spider.hardware.cost`).

For catalog entries that only carry card facts (model type, parameter count, labels, input size),
`config_from_card` reconstructs a config from the family's standard sizes, choosing the one whose
parameter count matches the card (text vocabularies are solved from the count), and says how
close it came.
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

from hf_spider import _paths
from hf_spider.errors import ExportError, UserInputError
from hf_spider.hardware.config import MeasureConfig

logger = logging.getLogger("hf_spider.hardware")

CONFIG_LABEL = "measured-from-config"
CONFIG_NOTE = "measured from config (random weights; fidelity n/a)"
# What is fetched from the Hub for a config-only build: never weights.
CONFIG_FILES = ("config.json", "preprocessor_config.json")


# The reference runs' protocol (benchmarks/device_cost.py, the third pass): it serves a cost model,
# and a calibration compares its figures with those runs. At most 2 s of timed runs; with 2
# warm-up runs and 10 timed ones, a 20 ms model was timed for 0.2 s and two builds of one graph
# could differ by 15%.
QUICK = MeasureConfig(batch=2, warmup=5, iterations=200, min_seconds=2.0)


@dataclass(frozen=True)
class ConfigMeasureConfig:
    """A config-only measurement: the protocol (`MeasureConfig`) and the synthetic input."""

    measure: MeasureConfig = QUICK
    seq_len: int = 64  # tokens of a text input; image inputs take the config's image size
    rows: int = 8  # rows of random input (batch 1 runs cycle through them)
    repeats: int = 1  # timed figures are the median over this many repeats
    # False: batch-1 timing and memory only (no larger-batch throughput, no sample outputs); the
    # cost sweep reads nothing else, and on a large model the skipped runs take most of the time
    throughput: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure.to_dict(),
            "seq_len": self.seq_len,
            "rows": self.rows,
            "repeats": self.repeats,
            "throughput": self.throughput,
        }


@dataclass
class ConfigBuild:
    """A model built from its config: the export, its input shape and the config facts."""

    model_id: str
    config: dict[str, Any]
    config_hash: str
    exported: Any  # ExportedModel
    feeds: dict[str, np.ndarray]
    input: dict[str, Any] = field(default_factory=dict)
    source: str = ""


def config_hash(config: dict[str, Any]) -> str:
    """A stable hash of the architecture-relevant part of a config (names and ids left out)."""
    skip = {"_name_or_path", "transformers_version", "id2label", "label2id", "torch_dtype", "dtype"}
    clean = {k: v for k, v in config.items() if k not in skip}
    labels = config.get("id2label")
    if labels and "num_labels" not in clean:
        clean["num_labels"] = len(labels)
    return hashlib.sha256(json.dumps(clean, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fetch_config(
    model: str | os.PathLike, *, token: str | None = None, endpoint: str | None = None
) -> tuple[dict[str, Any], str]:
    """The config of a local folder or a Hub repo, downloading only `CONFIG_FILES`."""
    path = Path(model).expanduser()
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.exists():
            raise UserInputError(f"{path} has no config.json", hint="pass a model folder or a Hub repo id")
        return json.loads(config_file.read_text()), path.resolve().name
    text = str(model)
    if text.count("/") > 1 or text.startswith((".", "/", "~")):
        raise UserInputError(
            f"model folder {text} " + ("is a file, not a folder" if path.is_file() else "does not exist"),
            hint="pass a model folder or a Hub repo id",
        )
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    from hf_spider.models import local_caches

    own = _paths.cache_dir("config_cost") / "hub"
    for cache in (*local_caches(), own):  # the offline zoo and the caches first: no request
        if cache.is_dir():
            try:
                local = hf_hub_download(text, "config.json", cache_dir=str(cache), local_files_only=True)
                return json.loads(Path(local).read_text()), text
            except HFValidationError as exc:
                raise UserInputError(
                    f"{text!r} is not a model folder or a Hub repo id", hint="check the name"
                ) from exc
            except Exception:  # not in this cache
                pass
    # A cache of its own: a config-only snapshot in the Hub cache would look like a complete model
    # to the next `bench` of the same repo (huggingface_hub does not check snapshots are whole).
    own_cache = _paths.cache_dir("config_cost") / "hub"
    from hf_spider.errors import HubConnectionError
    from hf_spider.models import hub_reachable

    unreachable = HubConnectionError(
        f"the config of model {text} is in no local cache and {endpoint or 'the Hub'} cannot be reached",
        hint="check the network or --endpoint, or pass a local model folder",
    )
    if not hub_reachable(endpoint):  # no cache has it: fail now, not after the client's retries
        raise unreachable
    try:
        local = hf_hub_download(text, "config.json", cache_dir=str(own_cache), token=token, endpoint=endpoint)
    except HFValidationError as exc:
        raise UserInputError(
            f"{text!r} is not a model folder or a Hub repo id", hint="check the name"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise UserInputError(
            f"model {text} not found on the Hub", hint="check the repo id, or pass --token for a private repo"
        ) from exc
    except LocalEntryNotFoundError as exc:  # the Hub was not reached and no cache has it
        raise unreachable from exc
    except EntryNotFoundError as exc:
        raise UserInputError(f"model {text} has no config.json", hint="config-only cost needs one") from exc
    except Exception as exc:  # no connection, auth, server errors: one line with what to do
        from hf_spider.errors import hub_error

        raise hub_error(exc, f"the config of model {text}", endpoint=endpoint) from exc
    config = json.loads(Path(local).read_text())
    return config, text


def _auto_class(config: dict[str, Any], task_kind: str):
    import transformers

    architectures = " ".join(config.get("architectures") or [])
    if task_kind == "auto":
        if "ForImageClassification" in architectures:
            task_kind = "image-classification"
        elif "ForSequenceClassification" in architectures:
            task_kind = "text-classification"
        else:
            task_kind = "feature-extraction"
    name = {
        "image-classification": "AutoModelForImageClassification",
        "text-classification": "AutoModelForSequenceClassification",
        "feature-extraction": "AutoModel",
    }[task_kind]
    return getattr(transformers, name), task_kind


def _hf_config(config: dict[str, Any]):
    from transformers import CONFIG_MAPPING

    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING:
        raise UserInputError(
            f"config-only build does not know model type {model_type!r}",
            hint="only architectures of the installed transformers library can be built from a config",
        )
    kwargs = {k: v for k, v in config.items() if k not in ("model_type", "transformers_version")}
    return CONFIG_MAPPING[model_type](**kwargs)


def _check_exportable(config: dict[str, Any]) -> None:
    """Fail before building the model when optimum has no ONNX config for its type."""
    import optimum.exporters.onnx.model_configs  # noqa: F401  (registers the ONNX configs)
    from optimum.exporters.tasks import TasksManager

    try:
        TasksManager.get_supported_tasks_for_model_type(
            config.get("model_type"), exporter="onnx", library_name="transformers"
        )
    except KeyError as exc:
        raise ExportError(
            f"optimum has no ONNX export for model type {config.get('model_type')!r}",
            hint="config-only cost needs an architecture optimum can export",
        ) from exc


def modality_of(config: dict[str, Any]) -> str:
    if "image_size" in config or "num_channels" in config:
        return "image"
    return "text"


def image_size_of(config: dict[str, Any]) -> int:
    size = config.get("image_size", 224)
    return int(size[0] if isinstance(size, list | tuple) else size)


def build_from_config(
    config: dict[str, Any],
    *,
    model_id: str | None = None,
    task_kind: str = "auto",
    measure_config: ConfigMeasureConfig | None = None,
    seed: int = 0,
) -> ConfigBuild:
    """Build the model with random weights, export it to ONNX (cached by config hash) and make feeds."""
    from hf_spider.hardware._export import METADATA_FILE, ExportedModel, export, quiet

    mc = measure_config or ConfigMeasureConfig()
    key = config_hash(config)
    auto, kind = _auto_class(config, task_kind)
    hf_config = _hf_config(config)  # an unknown model type fails here, before anything is built
    _check_exportable(config)
    model_id = model_id or f"config-{key}"
    # variants are built next to the export: everything of one architecture lives in one folder
    out = _paths.cache_dir("config_cost") / f"build-{key}-{kind}" / "export"
    if (out / METADATA_FILE).exists() and (out / "model.onnx").exists():
        exported = ExportedModel.load(out)
        logger.info("using cached config-only export of %s at %s", model_id, out)
    else:
        import torch

        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="hf-spider-config-") as tmp:
            folder = Path(tmp) / "random-weights"
            torch.manual_seed(seed)
            with quiet():
                model = auto.from_config(hf_config)
                model.eval()
                model.save_pretrained(folder, safe_serialization=True)
            del model
            exported = export(folder, kind, out_dir=out)
        exported.model_id = model_id
        exported.sha = f"config-{key}"
        exported.source_dir = None
        exported.method += "; random weights built from config.json"
        exported.export_seconds = time.perf_counter() - started
        exported.save()
    exported.model_id = model_id
    feeds, spec = synthetic_feeds(exported, config, mc.rows, mc.seq_len, seed=seed)
    return ConfigBuild(model_id, config, key, exported, feeds, spec, source=CONFIG_NOTE)


def synthetic_feeds(exported, config: dict[str, Any], rows: int, seq_len: int, *, seed: int = 0):
    """Random inputs shaped as the graph declares: token ids within the vocabulary, or pixels."""
    import onnx

    graph = onnx.load(str(exported.path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    spec: dict[str, Any] = {"rows": rows}
    for item in graph.input:
        if item.name in initializers:
            continue
        dims = [d.dim_value or None for d in item.type.tensor_type.shape.dim]
        if item.name == "pixel_values" or len(dims) == 4:
            size = image_size_of(config)
            channels = int(config.get("num_channels", 3))
            feeds[item.name] = rng.standard_normal((rows, channels, size, size)).astype(np.float32)
            spec.update(modality="image", image_size=size)
        elif item.name == "input_ids":
            vocab = int(config.get("vocab_size", 1000))
            feeds[item.name] = rng.integers(5, max(6, vocab), (rows, seq_len)).astype(np.int64)
            spec.update(modality="text", seq_len=seq_len)
        elif item.name == "attention_mask":
            feeds[item.name] = np.ones((rows, seq_len), dtype=np.int64)
        else:  # token_type_ids and the like
            feeds[item.name] = np.zeros((rows, seq_len), dtype=np.int64)
    return feeds, spec


def _target_key(target) -> dict[str, Any]:
    info = target.info
    return {
        "name": target.name,
        "kind": target.kind,
        "cpu": info.get("cpu_model"),
        "isa": info.get("isa"),
        "cores": info.get("cores"),
    }


def _cache_key(build: ConfigBuild, variant: str, target, mc: ConfigMeasureConfig, threads: int) -> str:
    from hf_spider.hardware.variants import _versions

    payload = {
        "config": build.config_hash,
        "variant": variant,
        "target": _target_key(target),
        "measure": {**mc.to_dict(), "threads": threads},
        "versions": _versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def measure_from_config(
    model: str | os.PathLike | dict[str, Any],
    variants: list[str] | str = ("fp32", "int8-dynamic"),
    target: Any = "local",
    *,
    task_kind: str = "auto",
    measure_config: ConfigMeasureConfig | None = None,
    model_id: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    agent_token: str | None = None,
    store: bool = True,
    source: str = "config-only",
) -> list[dict[str, Any]]:
    """Measure a model's variants on a target from its config alone (no weight download).

    Args:
        model: a Hub repo id, a local folder with a config.json, or a config dict.
        variants: names from `hf_spider.hardware.variants.VARIANTS`.
        target: `local`, an agent URL or a profile name, or a `DeviceTarget`.
        measure_config: the protocol (sequence length, rows, iterations); small by default.
        store: append each result to the measurement store.

    Returns:
        One `measure`-style result per variant (without `outputs`), each figure labelled
        `measured-from-config` (`estimated` for a profile) with `note` CONFIG_NOTE, fidelity `None`.

    Example:
        >>> results = measure_from_config("google-bert/bert-base-uncased", ["fp32"])
        >>> results[0]["figures"]["latency_p50_ms"]["label"]
        'measured-from-config'
    """
    from hf_spider.hardware.targets import DeviceTarget
    from hf_spider.hardware.variants import make_variants, parse_variants

    mc = measure_config or ConfigMeasureConfig()
    if isinstance(model, dict):
        config, name = model, model_id or f"config-{config_hash(model)}"
    else:
        config, name = fetch_config(model, token=token, endpoint=endpoint)
        name = model_id or name
    device = DeviceTarget.resolve(target, token=agent_token)
    names = parse_variants(variants)
    protocol = mc.measure if mc.measure.threads else mc.measure.replace(threads=device.threads)
    build = build_from_config(config, model_id=name, task_kind=task_kind, measure_config=mc)
    cache = _paths.cache_dir("config_cost")
    results: list[dict[str, Any]] = []
    pending = []
    for variant_name in names:
        file = cache / f"result-{_cache_key(build, variant_name, device, mc, protocol.threads)}.json"
        if file.exists():
            cached = json.loads(file.read_text())
            cached["model_id"] = name
            cached["cached"] = True
            results.append(cached)
        else:
            pending.append((variant_name, file))
    if pending:
        built = make_variants(
            build.exported,
            [v for v, _ in pending],
            device,
            calibration=build.feeds,
            calibration_source="random inputs (config-only build)",
        )
        for variant, (_, file) in zip(built, pending, strict=True):
            if variant.skipped:
                results.append({"model_id": name, "variant": variant.name, "skipped": variant.skipped})
                continue
            runs = []
            for _ in range(max(1, mc.repeats)):
                result = device.measure(variant, build.feeds, config=protocol, throughput=mc.throughput)
                result.pop("outputs", None)
                runs.append(result)
            result = _median_of(runs)
            _label(result, build, mc)
            _write_json(file, result)
            results.append(result)
            if store:
                from hf_spider.hardware.measurements import record_measurement

                record_measurement(result, config=config, source=source)
    order = {v: i for i, v in enumerate(names)}
    results.sort(key=lambda r: order.get(r["variant"], 99))
    return results


def _median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The first run, with every timed figure replaced by the median over the repeats."""
    result = runs[0]
    if len(runs) == 1:
        return result
    for key, fig in result["figures"].items():
        values = [r["figures"][key]["value"] for r in runs if r["figures"][key]["value"] is not None]
        if values and key not in ("file_size_mb", "build_s"):
            fig["value"] = float(np.median(values))
            fig["method"] += f"; median of {len(values)} repeats"
    result["repeats"] = len(runs)
    return result


def _label(result: dict[str, Any], build: ConfigBuild, mc: ConfigMeasureConfig) -> None:
    for key, fig in result["figures"].items():
        if key in ("fidelity", "logme_delta"):
            fig.update(
                value=None, label="n/a", method="not available: random weights (needs the real weights)"
            )
            continue
        if fig["label"] == "measured":
            fig["label"] = CONFIG_LABEL
        fig["note"] = CONFIG_NOTE
    result["config_only"] = {
        "note": CONFIG_NOTE,
        "config_hash": build.config_hash,
        "input": build.input,
        "measure_config": mc.to_dict(),
    }
    result["input"] = {**build.input, "memory_batch": mc.measure.batch}


def _write_json(path: Path, data: Any) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        json.dump(data, handle, indent=2, default=str)
    os.replace(handle.name, path)


def clear_exports() -> None:
    """Remove the cached config-only exports (the measurement results stay)."""
    for folder in _paths.cache_dir("config_cost").glob("build-*"):
        shutil.rmtree(folder, ignore_errors=True)
