"""Features (and source-classifier probabilities) of a model on a sample of inputs.

`extract_features(model, inputs, modality=...)` runs a model over images or texts and returns an
`N x D` float32 array, pooled the way the model's family expects (`hf_spider.models._encoders`).
The task stage uses it for its probe encoder, the probe stage for every candidate.

Inference runs in batches under `torch.inference_mode()` on the device accelerate picks (several
GPUs: split across `accelerate launch` processes, or `DataParallel` in one process). Results are
cached in `hf_spider._paths.cache_dir("features")`, keyed by (model sha, dataset fingerprint or a
digest of the inputs, sample size, pooling). Models are found by `resolve_model` (local caches
first), under the one weights policy; remote code runs only with `trust_remote_code=True`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider import _paths
from hf_spider.errors import UserInputError
from hf_spider.models._encoders import accelerate_state, check_runnable, has_head, make_encoder
from hf_spider.models._resolve import ResolvedModel, resolve_model

logger = logging.getLogger("hf_spider.models")

# Bump when the pooling of any family changes, so cached features are recomputed.
POOLING_VERSION = "1"


def extract_features(
    model: str | os.PathLike,
    inputs: Sequence[Any],
    *,
    modality: str,
    batch_size: int = 32,
    device: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_key: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
    offline: bool = False,
) -> np.ndarray:
    """Pooled features of `model` on `inputs` (PIL images or strings), `N x D` float32.

    Args:
        model: a Hub repo id (looked up in the local caches first, then the Hub at `endpoint`)
            or a local model folder.
        inputs: the sample, e.g. `Task.inputs`.
        modality: "image" or "text".
        batch_size: examples per forward pass.
        device: "cpu", "cuda", "cuda:1", ...; default: accelerate's device for this process.
        revision, token, endpoint: where to fetch the model from (never logged).
        cache_dir: huggingface_hub cache for downloaded model files.
        cache_key: identity of the inputs (`Task.fingerprint`); default: a digest of the inputs.
        trust_remote_code, allow_pickle: off unless the user asks.
        progress: callable(done, total) called after each batch.
        use_cache: read/write the on-disk features cache.
        offline: only local folders and caches (the offline zoo among them), never the network.

    Example:
        >>> feats = extract_features("sentence-transformers/all-MiniLM-L6-v2", ["a", "b"], modality="text")  # doctest: +SKIP
        >>> feats.shape
        (2, 384)
    """
    return _run(
        "features",
        model,
        inputs,
        modality=modality,
        batch_size=batch_size,
        device=device,
        revision=revision,
        token=token,
        endpoint=endpoint,
        cache_dir=cache_dir,
        cache_key=cache_key,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        progress=progress,
        use_cache=use_cache,
        offline=offline,
    )


def source_probs(
    model: str | os.PathLike,
    inputs: Sequence[Any],
    *,
    modality: str,
    batch_size: int = 32,
    device: str | None = None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_key: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle: bool = False,
    progress: Callable[[int, int], None] | None = None,
    use_cache: bool = True,
    offline: bool = False,
) -> np.ndarray | None:
    """Softmax of the model's own classification head on `inputs` (`N x C`, for LEEP / NCE).

    None when the model has no classification head (a plain encoder, a sentence embedder).
    Arguments as `extract_features`.
    """
    resolved = resolve_model(
        model,
        revision=revision,
        token=token,
        endpoint=endpoint,
        cache_dir=cache_dir,
        allow_pickle=allow_pickle,
        offline=offline,
    )
    if not has_head(resolved):
        return None
    return _run(
        "probs",
        resolved,
        inputs,
        modality=modality,
        batch_size=batch_size,
        device=device,
        cache_key=cache_key,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
        progress=progress,
        use_cache=use_cache,
    )


def _run(
    what: str,
    model,
    inputs: Sequence[Any],
    *,
    modality: str,
    batch_size: int,
    device: str | None,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    cache_dir=None,
    cache_key: str | None,
    trust_remote_code: bool,
    allow_pickle: bool,
    progress,
    use_cache: bool,
    offline: bool = False,
) -> np.ndarray:
    if modality not in ("image", "text"):
        raise UserInputError(f"unknown modality {modality!r}", hint="use image or text")
    if batch_size < 1:
        raise UserInputError(f"batch size must be >= 1, got {batch_size}")
    resolved = resolve_model(
        model,
        revision=revision,
        token=token,
        endpoint=endpoint,
        cache_dir=cache_dir,
        allow_pickle=allow_pickle,
        offline=offline,
    )
    check_runnable(resolved)
    inputs = list(inputs)
    key = _cache_key(what, resolved, modality, cache_key or _inputs_digest(inputs, modality), len(inputs))
    cache_file = _paths.cache_dir("features") / f"{key}.npy"
    if use_cache and cache_file.is_file():
        try:
            cached = np.load(cache_file)
            if len(cached) == len(inputs):
                logger.debug("features of %s from cache %s", resolved.name, cache_file.name)
                return cached
        except (OSError, ValueError):
            logger.warning("ignoring unreadable feature cache %s", cache_file)
    if not inputs:
        raise UserInputError("no inputs to encode")
    runner = _Runner(
        resolved,
        modality=modality,
        device=device,
        trust_remote_code=trust_remote_code,
        allow_pickle=allow_pickle,
    )
    out = runner.run(inputs, what=what, batch_size=batch_size, progress=progress)
    if use_cache:
        _save_atomic(cache_file, out)
    return out


def _cache_key(what: str, resolved: ResolvedModel, modality: str, data_key: str, n: int) -> str:
    parts = [what, resolved.name, resolved.sha, resolved.kind, modality, data_key, n, POOLING_VERSION]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:40]


def _inputs_digest(inputs: list, modality: str) -> str:
    digest = hashlib.sha256()
    for x in inputs:
        if modality == "text":
            digest.update(str(x).encode("utf-8", "replace"))
        else:
            digest.update(f"{getattr(x, 'mode', '')}{getattr(x, 'size', '')}".encode())
            digest.update(x.tobytes() if hasattr(x, "tobytes") else repr(x).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def _save_atomic(path: Path, array: np.ndarray) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class _Runner:
    """Loads one model once and encodes batches with it."""

    def __init__(
        self,
        resolved: ResolvedModel,
        *,
        modality: str,
        device: str | None,
        trust_remote_code: bool,
        allow_pickle: bool,
    ):
        self.resolved = resolved
        self.modality = modality
        self.device_arg = device
        self.trust_remote_code = trust_remote_code
        self.allow_pickle = allow_pickle

    def run(self, inputs: list, *, what: str, batch_size: int, progress) -> np.ndarray:
        import torch

        state = accelerate_state()
        if (
            state is not None and state.num_processes > 1 and self.device_arg is None
        ):  # GPU path: untested here
            from accelerate.utils import gather_object

            with state.split_between_processes(list(enumerate(inputs))) as shard:
                xs = [x for _, x in shard]  # empty when there are more processes than inputs
                local = self._encode(xs, what=what, batch_size=batch_size, progress=progress) if xs else []
                pairs = gather_object([(i, row) for (i, _), row in zip(shard, local, strict=True)])
            pairs = sorted(pairs, key=lambda p: p[0])
            return np.stack([row for _, row in pairs]).astype(np.float32)
        with torch.inference_mode():
            return self._encode(inputs, what=what, batch_size=batch_size, progress=progress)

    def _encode(self, inputs: list, *, what: str, batch_size: int, progress) -> np.ndarray:
        import torch

        with torch.inference_mode():
            encode = make_encoder(
                self.resolved,
                modality=self.modality,
                what=what,
                device=self.device_arg,
                trust_remote_code=self.trust_remote_code,
                allow_pickle=self.allow_pickle,
            )
            chunks = []
            for start in range(0, len(inputs), batch_size):
                batch = inputs[start : start + batch_size]
                out = encode(batch)
                chunks.append(np.asarray(out, dtype=np.float32))
                if progress is not None:
                    progress(min(start + batch_size, len(inputs)), len(inputs))
        return np.concatenate(chunks, axis=0)
