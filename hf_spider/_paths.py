"""Where hf-spider keeps its files. `HF_SPIDER_HOME` overrides the default user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
# a source checkout (the package beside pyproject.toml and benchmarks/), not an installed wheel
# (whose REPO_DIR is site-packages, where nothing of the user's belongs)
IN_CHECKOUT = (REPO_DIR / "pyproject.toml").is_file() and (REPO_DIR / "benchmarks").is_dir()


def benchmark_records_dir(name: str) -> Path:
    """Where records built by the zoo tools go by default: `benchmarks/<name>` of a source
    checkout, else `./<name>` in the current folder."""
    return REPO_DIR / "benchmarks" / name if IN_CHECKOUT else Path.cwd() / name


# The embedded catalog: `model_cards/` at the top of a source tree; an installed wheel carries a
# copy inside the package (`hf_spider/_model_cards`, see setup.py).
_PACKAGED_CATALOG_DIR = PACKAGE_DIR / "_model_cards"
EMBEDDED_CATALOG_DIR = (
    _PACKAGED_CATALOG_DIR if (_PACKAGED_CATALOG_DIR / "catalog.jsonl").is_file() else REPO_DIR / "model_cards"
)
# The project's config-only measurements of the catalog's architectures (benchmarks/device_cost.py):
# the cost model's reference on a machine that has measured too little itself; a wheel carries a copy.
# Beside them, what a cold `hf-spider cost --target local` computes for the embedded catalog (the
# FLOPs of every config, the configs recovered from the cards): seeds for the user's cache.
_PACKAGED_REFERENCE_DIR = PACKAGE_DIR / "_reference"
REFERENCE_DIR = (
    _PACKAGED_REFERENCE_DIR
    if (_PACKAGED_REFERENCE_DIR / "device_cost_third_pass.jsonl").is_file()
    else REPO_DIR / "benchmarks" / "results"
)
# the third pass: quiet, and timed long enough (5 warm-up runs, 2 s of timed runs); the sweep's first
# pass ran beside other jobs, and the second timed a 20 ms model for 0.2 s (benchmarks/device_cost.md)
REFERENCE_DEVICE_RUNS = REFERENCE_DIR / "device_cost_third_pass.jsonl"
# other sizes of the families the catalog holds in one compute shape, measured the same way
REFERENCE_SIBLING_RUNS = REFERENCE_DIR / "device_cost_siblings.jsonl"
REFERENCE_FILES = (
    "device_cost_third_pass.jsonl",
    "device_cost_siblings.jsonl",
    "cost_facts.json",
    "cost_card_configs.json",
)


def home() -> Path:
    env = os.environ.get("HF_SPIDER_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hf-spider"


def default_catalog_path() -> Path:
    return home() / "catalog"


def cache_dir(name: str) -> Path:
    """A named sub-folder of the cache (features, variants, zoo, ...), created on demand."""
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def nearest_existing(path: Path) -> Path:
    """`path` itself if it exists, else its nearest existing parent: where a folder would be created
    from (that parent may be a file, which the callers refuse)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def zoo_dir() -> Path:
    """The offline zoo: real models laid out as a Hub cache (`hub/`) and local datasets (`datasets/`).

    `HF_SPIDER_ZOO` overrides; tests keep pointing at the installed zoo while isolating the rest.
    """
    env = os.environ.get("HF_SPIDER_ZOO")
    return Path(env).expanduser() if env else home() / "zoo"
