"""`hf-spider recommend --demo`: the bundled rotten tomatoes reviews, the embedded catalog and the
offline zoo, all stages, measured on this machine. It runs with no network."""

from __future__ import annotations

from pathlib import Path

from hf_spider import _paths
from hf_spider.errors import DatasetError

DEMO_DATASET = "rotten_tomatoes"
DEMO_SAMPLE = 256


def demo_dataset() -> Path:
    """The offline zoo's rotten tomatoes dataset repo (installed by `hf-spider zoo install`)."""
    folder = _paths.zoo_dir() / "datasets" / DEMO_DATASET
    if not (folder / "README.md").is_file():
        raise DatasetError(
            f"the demo dataset is not installed ({folder} is missing)",
            hint="run `bash scripts/setup.sh` or `hf-spider zoo install` first",
        )
    return folder


def demo_inputs() -> tuple[str, None]:
    """(dataset, catalog) of the demo: the catalog None means embedded catalog + offline zoo."""
    return str(demo_dataset()), None
