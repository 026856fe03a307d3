"""The installed zoo's repos: list them, find their folders, export them for the loopback Hub."""

from __future__ import annotations

from pathlib import Path

from hf_spider import _paths
from hf_spider.errors import UserInputError
from hf_spider.zoo._install import datasets_dir, hub_dir, installed
from hf_spider.zoo.specs import MODELS, ZooModel


def list_models(modality: str | None = None) -> list[ZooModel]:
    """The zoo's models (installed or not), optionally of one modality."""
    return [m for m in MODELS.values() if modality in (None, m.modality)]


def list_datasets(modality: str | None = None) -> list[str]:
    from hf_spider.zoo._datasets import DATASETS

    return [name for name, spec in DATASETS.items() if modality in (None, spec.modality)]


def is_installed(zoo_dir: str | Path | None = None) -> bool:
    """True when the zoo has at least one model and one dataset installed."""
    record = installed(zoo_dir)
    return bool(record["models"]) and bool(record["datasets"])


def model_path(repo_id: str, zoo_dir: str | Path | None = None) -> Path:
    """The snapshot folder of an installed zoo model."""
    from hf_spider.zoo._hubcache import snapshot_path

    path = snapshot_path(repo_id, hub_dir(zoo_dir))
    if path is None:
        raise UserInputError(
            f"{repo_id} is not in the offline zoo at {zoo_dir or _paths.zoo_dir()}",
            hint="run `hf-spider zoo install` (see `hf-spider zoo list`)",
        )
    return path


def dataset_path(name: str, zoo_dir: str | Path | None = None) -> Path:
    """The folder of an installed local dataset repo."""
    path = datasets_dir(zoo_dir) / name
    if not (path / "README.md").is_file():
        raise UserInputError(
            f"dataset {name!r} is not in the offline zoo", hint="run `hf-spider zoo install`"
        )
    return path


def export_repo(
    repo_id: str, root: str | Path, *, zoo_dir: str | Path | None = None, repo_type: str = "model"
) -> Path:
    """Copy an installed zoo repo as a plain folder to `root/<repo_type>s/<org>/<name>/`.

    That is the layout `hf_spider.testing.hub_server.HubServer` serves. For `repo_type="dataset"`,
    `repo_id` is a local dataset name (exported under the `hf-spider-zoo` org unless it has one).
    """
    from hf_spider.zoo._hubcache import export_plain

    if repo_type == "dataset":
        name = repo_id.split("/")[-1]
        org = repo_id.split("/")[0] if "/" in repo_id else "hf-spider-zoo"
        return export_plain(dataset_path(name, zoo_dir), Path(root) / "datasets" / org / name)
    org, name = repo_id.split("/")
    return export_plain(model_path(repo_id, zoo_dir), Path(root) / "models" / org / name)


def serve_root(
    root: str | Path,
    *,
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    zoo_dir: str | Path | None = None,
) -> Path:
    """Export installed zoo models (default: all installed) and datasets into a HubServer root."""
    record = installed(zoo_dir)
    for repo_id in models if models is not None else sorted(record["models"]):
        export_repo(repo_id, root, zoo_dir=zoo_dir)
    for name in datasets if datasets is not None else []:
        export_repo(name, root, zoo_dir=zoo_dir, repo_type="dataset")
    return Path(root)
