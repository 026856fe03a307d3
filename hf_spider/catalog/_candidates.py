"""The candidates of a recommendation: a catalog, filtered to the models that fit the task.

`candidates_for(catalog, modality=..., tag=...)` takes what the user named (a `Catalog`, a catalog
folder, a folder of Hub-layout model repos, or nothing: the user or embedded catalog plus the
models of the installed offline zoo) and returns the candidates with a description of the
snapshot they came from, for the report.
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
from hf_spider.catalog._crawl import crawl
from hf_spider.catalog._store import Catalog
from hf_spider.errors import CatalogError, UserInputError

logger = logging.getLogger("hf_spider.catalog")

# Pipeline tags a candidate may carry for each modality of the task.
MODALITY_TAGS = {
    "text": {
        "text-classification",
        "feature-extraction",
        "sentence-similarity",
        "fill-mask",
        "zero-shot-classification",
    },
    "image": {"image-classification", "image-feature-extraction", "zero-shot-image-classification"},
}


@dataclass
class Candidates:
    """The filtered candidates (`tokens`, a `Catalog`) and what they came from (`info`)."""

    tokens: Catalog
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)


def of_other_modality(token: Any, modality: str | None) -> bool:
    """Whether a card is an image model for a text task or the reverse. A card whose tag says one
    modality and whose config another (a ViT tagged text-classification) is what its config runs:
    never a candidate for the other's tasks."""
    return modality in ("image", "text") and token.modality in {"image", "text"} - {modality}


def candidates_for(catalog: Any, *, modality: str, tag: str | None = None) -> Candidates:
    """The catalog models that serve a task of `modality` (or carry pipeline tag `tag`).

    Raises:
        CatalogError: no catalog at the path given, or no candidate for the task.
    """
    cat, info = load_catalog(catalog)
    if tag:
        tokens = cat.filter(predicate=lambda t: t.pipeline_tag == tag and not of_other_modality(t, modality))
    else:
        wanted = MODALITY_TAGS.get(modality)
        tokens = (
            cat.filter(modality=modality)
            if wanted is None
            else cat.filter(
                predicate=lambda t: (
                    t.modality == modality
                    or (t.pipeline_tag in wanted and not of_other_modality(t, modality))
                )
            )
        )
    info["num_candidates"] = len(tokens)
    # cards that say nothing of what they are for (no pipeline tag, library, tags nor config):
    # left out, and `recommend` says so
    kept = set(tokens.model_ids)
    info["unknown_modality"] = sorted(
        t.model_id for t in cat if t.modality is None and t.model_id not in kept
    )
    if not len(tokens):
        article = "an" if modality[:1] in "aeiou" else "a"
        tags = ", ".join(sorted(MODALITY_TAGS.get(modality, ())))
        raise CatalogError(
            f"no model in the catalog ({info['source']}) serves {article} {modality} task"
            + (f" with tag {tag!r}" if tag else ""),
            hint=(f"check the tag ({modality} tags: {tags}) or drop --task" if tag else "")
            + (
                f"; or crawl {modality} models with `hf-spider crawl --task TAG`"
                if tag
                else f"crawl {modality} models with `hf-spider crawl --task TAG` ({tags})"
            ),
        )
    return Candidates(tokens, info)


def check_tag(tag: str | None, modality: str, dataset: str) -> None:
    """Refuse a pipeline tag made for another modality than the dataset's (image models for text)."""
    if not tag or tag in MODALITY_TAGS.get(modality, {tag}):
        return
    other = next((m for m, tags in MODALITY_TAGS.items() if tag in tags), None)
    if other is not None:
        raise UserInputError(
            f"--task {tag} serves {other} models, but {dataset} is a {modality} dataset",
            hint=f"drop --task, or use one of: {', '.join(sorted(MODALITY_TAGS[modality]))}",
        )


def load_catalog(catalog: Any) -> tuple[Catalog, dict[str, Any]]:
    """The catalog named by `catalog` and a snapshot description of it for the report.
    CatalogError where there is none, or it holds no model."""
    if isinstance(catalog, Catalog):
        cat, source = catalog, str(catalog.path or "in-memory catalog")
    elif catalog is not None:
        folder = Path(catalog)
        if not folder.exists():
            raise CatalogError(
                f"no catalog at {folder}", hint="pass a catalog folder or a folder of model repos"
            )
        if folder.is_file() or _is_catalog_folder(folder):
            cat, source = Catalog.load(folder), str(folder)
        else:
            cat, source = catalog_from_dir(folder), f"model repos in {folder}"
    else:
        cat = Catalog.load(None)
        source = str(cat.path or "embedded catalog")
        zoo = _zoo_catalog()
        if zoo is not None and len(zoo):
            cat = Catalog([*cat, *(t for t in zoo if t.model_id not in cat)], path=cat.path)
            source += f" + offline zoo ({len(zoo)} models)"
    if not len(cat):
        raise CatalogError(
            f"the catalog ({source}) holds no model",
            hint="crawl models into it with `hf-spider crawl`, or pass a folder of model repos",
        )
    ids = sorted(cat.model_ids)
    fingerprint = hashlib.sha1("\n".join(ids).encode()).hexdigest()[:12]
    return cat, {"source": source, "num_models": len(cat), "fingerprint": fingerprint}


def catalog_from_dir(folder: Path) -> Catalog:
    """Crawl a folder of Hub-layout repos into a cached catalog (incremental on later runs)."""
    key = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:16]
    path = _paths.cache_dir("catalogs") / key
    crawl(path, from_dir=folder)
    return Catalog.load(path)


def _is_catalog_folder(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("catalog.sqlite", "catalog.jsonl"))


def _zoo_catalog() -> Catalog | None:
    """Tokens of the installed offline zoo's models, or None.

    The zoo is a plain Hub cache (`zoo_dir()/hub`) with a manifest of the models it built
    (`zoo_dir()/manifest.json`); its snapshot folders are linked into a folder of Hub-layout
    repos and crawled like any other. Only the manifest's models are candidates: a repo the zoo
    no longer holds (a model id an older zoo used) leaves the folder and the catalog.
    """
    zoo = _paths.zoo_dir()
    try:
        models = sorted(json.loads((zoo / "manifest.json").read_text())["models"])
    except FileNotFoundError:
        return None
    except (OSError, KeyError, ValueError, TypeError) as exc:
        logger.info("offline zoo not used: %s", exc)
        return None
    farm = _paths.cache_dir("zoo-catalog") / "repos"
    linked = []
    for repo_id in models:
        target = _snapshot(zoo / "hub", repo_id)
        if target is None:
            continue
        linked.append(repo_id)
        link = farm / repo_id
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
    for link in farm.glob("*/*"):  # links of repos the zoo no longer holds (only links: never a target)
        if link.is_symlink() and link.relative_to(farm).as_posix() not in linked:
            link.unlink()
    if not linked:
        return None
    cat, keep = catalog_from_dir(farm), set(linked)
    if set(cat.model_ids) <= keep:
        return cat
    return Catalog([t for t in cat if t.model_id in keep], path=cat.path)  # the crawl keeps old entries


def _snapshot(hub: Path, repo_id: str) -> Path | None:
    repo = hub / ("models--" + repo_id.replace("/", "--"))
    try:
        snapshot = repo / "snapshots" / (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    return snapshot if snapshot.is_dir() else None
