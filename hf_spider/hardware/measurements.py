"""The local measurement store: one JSON line per measured variant, with the model's config,
its input and the target; what the cost model (`hf_spider.hardware.cost`) is fitted on. It grows
with every `bench`, `recommend` and config-only build.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider import _paths

logger = logging.getLogger("hf_spider.hardware")

STORE_FILE = "measurements.jsonl"


def store_path() -> Path:
    return _paths.cache_dir("measurements") / STORE_FILE


def target_key(target: dict[str, Any]) -> str:
    """What makes two targets the same for the cost model: kind, name, CPU, ISA and threads."""
    info = target.get("info") or {}
    parts = [
        target.get("kind") or "local",
        target.get("name") if target.get("kind") != "local" else "local",
        info.get("cpu_model") or "?",
        info.get("isa") or "?",
        str(info.get("threads") or "?"),
    ]
    return "|".join(str(p) for p in parts)


def record_measurement(
    result: dict[str, Any],
    *,
    config: dict[str, Any] | None,
    source: str,
    input_spec: dict[str, Any] | None = None,
    path: Path | None = None,
) -> dict[str, Any] | None:
    """Append one `measure` result to the store (one JSON line); returns the record.

    Results without a config (ONNX-only repos) or without a latency are not recorded: the cost
    model could not use them.
    """
    figures = result.get("figures") or {}
    latency = (figures.get("latency_p50_ms") or {}).get("value")
    if not config or latency is None:
        return None
    target = dict(result.get("target") or {})
    threads = (result.get("protocol") or {}).get("threads")
    info = dict(target.get("info") or {})
    if threads:
        info["threads"] = threads
    target["info"] = {k: info.get(k) for k in ("cpu_model", "isa", "cores", "threads", "int8_dot_product")}
    record = {
        "model": result.get("model_id"),
        "variant": result.get("variant"),
        "source": source,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "target": {"name": target.get("name"), "kind": target.get("kind"), "info": target["info"]},
        "target_key": target_key(target),
        "label": (figures.get("latency_p50_ms") or {}).get("label"),
        "input": input_spec or result.get("input") or {},
        "config": config,
        "latency_ms": latency,
        "cpu_ms": (figures.get("cpu_time_p50_ms") or {}).get("value"),
        "memory_mb": (figures.get("peak_memory_mb") or {}).get("value"),
        "size_mb": (figures.get("file_size_mb") or {}).get("value"),
        "sensors": result.get("sensors"),
    }
    path = path or store_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=str) + "\n"
    with open(path, "a", encoding="utf-8") as handle:  # one write per line: appends do not interleave
        handle.write(line)
    return record


def load_records(*paths: Path) -> list[dict[str, Any]]:
    """Records of the given store files (default: the local store); unreadable lines are skipped."""
    records = []
    for path in paths or (store_path(),):
        if not Path(path).exists():
            continue
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                logger.warning("skipping unreadable line %d of %s", number, path)
    return records


def input_of_feeds(feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """The input shape a measurement ran on, from its ONNX feeds."""
    for name, value in feeds.items():
        if name == "input_ids" or (value.ndim == 2 and value.dtype.kind in "iu"):
            return {"modality": "text", "seq_len": int(value.shape[1]), "rows": int(value.shape[0])}
    for value in feeds.values():
        if value.ndim == 4:
            channels_first = value.shape[1] in (1, 3)
            size = int(value.shape[2] if channels_first else value.shape[1])
            return {"modality": "image", "image_size": size, "rows": int(value.shape[0])}
    return {}
