"""`resolve_model`: a model id or folder -> its files on disk, for every stage that loads a model.

Lookup order for a repo id:

1. the local Hub caches, without the network: every folder of `local_caches()` (the offline zoo's
   `hub/` folder, folders named in `HF_SPIDER_MODEL_CACHES`, then the huggingface_hub cache).
   This holds also when an `endpoint` is given: a model that is right here is used from here;
2. a download from the Hub (`endpoint`, e.g. a mirror or the loopback test Hub) into the
   huggingface_hub cache, of the files a model needs (configs, tokenizer, safetensors, ONNX);
   pickle weights only when the repo has nothing else and `allow_pickle=True`.

The weights policy (`hf_spider.models._weights`) is applied to every folder found, local or
downloaded, so no stage loads pickle weights the user did not allow.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_spider import _paths
from hf_spider.errors import UserInputError, hub_error
from hf_spider.models._weights import check_weights, has_weights, pickle_error, pickle_only

logger = logging.getLogger("hf_spider.models")

# Files a model needs to be loaded, exported or run; pickle weights are added only when allowed.
MODEL_FILE_PATTERNS = (
    "*.json",
    "*.safetensors",
    "*.onnx",
    "*.onnx_data",
    "*.txt",
    "*.model",
    "tokenizer*",
    "vocab*",
    "merges*",
    "*/config.json",
    "*/*.json",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".msgpack", ".h5")


@dataclass
class ResolvedModel:
    """A model's folder on disk and what it is.

    `name` is the repo id, or the folder path for a local folder; `sha` the snapshot commit, or a
    content hash of a local folder's configs and weights (stable across copies); `kind` one of
    `transformers`, `onnx`, `efficientnet-lite`, `timm` (another timm architecture) or `unknown`.
    """

    path: Path
    name: str
    sha: str
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    local: bool = False  # a folder the user gave, not a repo id

    @property
    def short_name(self) -> str:
        """The repo id, or a local folder's own name."""
        return self.path.name if self.local else self.name


def local_caches() -> list[Path]:
    """Hub-cache folders searched before any download, in order.

    The offline zoo (`hf_spider._paths.zoo_dir() / "hub"`) is one such folder: a plain Hub cache,
    with nothing zoo-specific about how it is read. `HF_SPIDER_MODEL_CACHES` (paths separated by
    `os.pathsep`) adds more; the huggingface_hub cache comes last.
    """
    folders = [_paths.zoo_dir() / "hub"]
    extra = os.environ.get("HF_SPIDER_MODEL_CACHES", "")
    folders += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    folders.append(hub_cache())
    out: list[Path] = []
    for folder in folders:
        if folder.is_dir() and folder not in out:
            out.append(folder)
    return out


def hub_cache() -> Path:
    """The huggingface_hub cache as the environment says now (huggingface_hub reads it once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface"
    )
    return Path(home).expanduser() / "hub"


def resolve_model(
    model: str | os.PathLike | ResolvedModel,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    allow_pickle: bool = False,
    offline: bool = False,
) -> ResolvedModel:
    """Find a model's files: a local folder, a local Hub cache, or a download from the Hub.

    Args:
        model: a local model folder or a Hub repo id (a `ResolvedModel` is returned as it is).
        revision, token, endpoint: where to download from when no local cache has the model
            (the token is never logged).
        cache_dir: huggingface_hub cache to download into and look in (default: the usual one).
        allow_pickle: accept pickle-only weights (they can run code when loaded).
        offline: local folders and caches only, never the network.

    Raises:
        UserInputError: no such folder or repo, or (offline) not in any local cache.
        UnsafeWeightsError: pickle-only weights without `allow_pickle`.
        HubConnectionError: the Hub failed or cannot be reached.

    Example:
        >>> resolve_model("sentence-transformers/all-MiniLM-L6-v2").kind  # doctest: +SKIP
        'transformers'
    """
    if isinstance(model, ResolvedModel):
        return model
    path = Path(model).expanduser()
    local = path.is_dir()
    if local:
        folder = path.resolve()
        name, sha = str(folder), folder_sha(folder)
    else:
        name = str(model)
        if name.count("/") > 1 or name.startswith((".", "/", "~")) or not name.strip():
            raise UserInputError(
                f"model folder {name} " + ("is a file, not a folder" if path.is_file() else "does not exist"),
                hint="pass a local model folder or a Hub repo id",
            )
        folder = _from_local_caches(name, revision, cache_dir)
        if folder is None:
            if offline:
                raise UserInputError(
                    f"model {name!r} is not in the local caches ({', '.join(map(str, local_caches())) or 'none'})",
                    hint="install the offline zoo with `hf-spider zoo install`, or give a local model folder",
                )
            folder = _download(
                name,
                revision=revision,
                token=token,
                endpoint=endpoint,
                cache_dir=cache_dir,
                allow_pickle=allow_pickle,
            )
        sha = folder.name if len(folder.name) == 40 else folder_sha(folder)
    check_weights(folder, name, allow_pickle=allow_pickle)
    config = read_json(folder / "config.json")
    return ResolvedModel(
        path=folder, name=name, sha=sha, kind=model_kind(folder, config), config=config, local=local
    )


def _from_local_caches(repo_id: str, revision: str | None, cache_dir) -> Path | None:
    from huggingface_hub import snapshot_download

    caches = local_caches()
    if cache_dir is not None:
        caches.append(Path(cache_dir).expanduser())
    for cache in caches:
        try:
            folder = Path(
                snapshot_download(repo_id, revision=revision, cache_dir=cache, local_files_only=True)
            )
        except Exception:  # not in this cache (LocalEntryNotFoundError, a bad id, ...)
            continue
        if has_weights(folder):  # a snapshot with only configs (a card crawl) is not a model
            logger.debug("model %s found in %s", repo_id, cache)
            return folder
    return None


def _download(
    repo_id: str,
    *,
    revision: str | None,
    token: str | None,
    endpoint: str | None,
    cache_dir: str | os.PathLike | None,
    allow_pickle: bool,
) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HFValidationError

    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.model_info(repo_id, revision=revision)
        files = [s.rfilename for s in info.siblings or []]
        patterns = list(MODEL_FILE_PATTERNS)
        refused = pickle_only(files) and not allow_pickle  # refused before anything is downloaded
        if pickle_only(files):
            patterns += ["*.bin", "*.pt", "*.pth", "*.ckpt"]
        folder = (
            None
            if refused
            else snapshot_download(
                repo_id,
                revision=info.sha or revision,
                cache_dir=cache_dir or hub_cache(),
                token=token,
                endpoint=endpoint,
                allow_patterns=patterns,
            )
        )
    except HFValidationError as exc:
        raise UserInputError(
            f"{repo_id!r} is not a model folder or a Hub repo id", hint="check the name"
        ) from exc
    except Exception as exc:  # the one translation of Hub failures (errors.hub_error)
        raise hub_error(exc, f"model {repo_id} (not in the local caches)", endpoint=endpoint) from exc
    if folder is None:
        raise pickle_error(repo_id)
    return Path(folder)


def model_kind(folder: Path, config: dict) -> str:
    """`transformers`, `onnx`, `efficientnet-lite`, `timm` or `unknown`, from a folder's files."""
    if "architecture" in config and "model_type" not in config:
        # by name, as `hardware._export` does: `efficientnet_lite` (torch) loads it, and its
        # `from_pretrained` resolves through this module
        name = str(config["architecture"]).lower().replace("-", "_")
        return "efficientnet-lite" if "efficientnet_lite" in name else "timm"
    has_torch_weights = any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))
    if onnx_file(folder) is not None and not has_torch_weights:
        return "onnx"
    if "model_type" in config:
        return "transformers"
    return "unknown"


def onnx_file(folder: Path) -> Path | None:
    """The ONNX graph of a folder: `model.onnx`, `onnx/model.onnx`, else the first `*.onnx`."""
    for candidate in ("model.onnx", "onnx/model.onnx"):
        if (folder / candidate).is_file():
            return folder / candidate
    found = sorted(folder.glob("*.onnx"))
    return found[0] if found else None


def read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def folder_sha(path: Path) -> str:
    """A content hash of a model folder's config and weight files (stable across copies)."""
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        if file.suffix not in (*_WEIGHT_SUFFIXES, ".json") or file.name == "hf_spider_export.json":
            continue  # hf_spider_export.json: hardware's export metadata, not the model
        digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:40]


def hub_reachable(endpoint: str | None = None, *, timeout: float = 3.0) -> bool:
    """False when huggingface_hub is told to stay offline or the endpoint does not answer quickly."""
    import requests
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    try:
        requests.head(endpoint or constants.ENDPOINT, timeout=timeout)
    except requests.RequestException:
        return False
    return True
