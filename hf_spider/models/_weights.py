"""The one weights policy: pickle checkpoints are refused unless the user allows them.

A checkpoint in a pickle format (`.bin`, `.pt`, `.pth`, `.ckpt`, shards included) can run code
when it is loaded. A repo that also has safetensors or ONNX weights is loaded from those, so only
repos whose weights exist *only* as pickle are refused. `training_args.bin` (the Trainer's
arguments, not weights) does not count.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hf_spider.errors import UnsafeWeightsError

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
SAFE_SUFFIXES = (".safetensors", ".onnx")


def _is_pickle(name: str) -> bool:
    return name.endswith(PICKLE_SUFFIXES) and "training_args" not in name


def pickle_only(files: Iterable[str]) -> bool:
    """Whether these file names (repo siblings or folder entries) hold pickle weights and no safe ones."""
    names = [Path(f).name for f in files]
    has_safe = any(n.endswith(SAFE_SUFFIXES) for n in names)
    return not has_safe and any(_is_pickle(n) for n in names)


def has_weights(folder: Path) -> bool:
    """Whether a model folder holds weights of any format (a partial snapshot may hold only configs)."""
    return any(
        p.is_file()
        and (p.name.endswith(SAFE_SUFFIXES) or _is_pickle(p.name) or p.name.endswith(".index.json"))
        for p in folder.rglob("*")
    )


def check_weights(folder: Path, name: str, *, allow_pickle: bool) -> None:
    """Raise `UnsafeWeightsError` when `folder` has only pickle weights and they were not allowed."""
    files = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
    if pickle_only(files) and not allow_pickle:
        raise pickle_error(name)


def pickle_error(name: str) -> UnsafeWeightsError:
    return UnsafeWeightsError(
        f"model {name!r} has only pickle weights (.bin/.pt/.pth/.ckpt), which can run code when loaded",
        hint="use a safetensors version of the model, or pass --allow-pickle if you trust its author",
    )


def read_safetensors_header(path: Path) -> dict[str, Any] | None:
    """The JSON header of a safetensors file (tensor names, dtypes, shapes), without reading tensors."""
    try:
        with open(path, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > 100_000_000:
                return None
            return json.loads(handle.read(length))
    except (OSError, struct.error, json.JSONDecodeError, UnicodeDecodeError):
        return None
