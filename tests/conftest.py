"""Shared fixtures. Every test runs with its own HF_HOME and HF_SPIDER_HOME in a temporary folder,
so nothing reads or writes the user's caches or tokens. The installed offline zoo stays visible
through HF_SPIDER_ZOO."""

from __future__ import annotations

import os
import tempfile

import pytest

from hf_spider import _paths
from hf_spider.testing import online_again

_REAL_ZOO = str(_paths.zoo_dir())

# huggingface_hub reads its cache paths once, at import: point them at a session folder before
# any test module imports it, so nothing lands in the user's real ~/.cache/huggingface.
_SESSION_HF_HOME = tempfile.mkdtemp(prefix="hf-spider-tests-hf-")
os.environ["HF_HOME"] = _SESSION_HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_SESSION_HF_HOME, "hub")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_SESSION_HF_HOME, "datasets")
os.environ.pop("HF_TOKEN", None)


HUB_TOKEN = "hf_test_writer"  # the token the `hub` fixture accepts (read and write)


@pytest.fixture
def hub(tmp_path):
    """A Hub-compatible server on loopback, with the write endpoints, accepting `HUB_TOKEN`."""
    from hf_spider.testing import HubServer
    from hf_spider.testing.hub_writes import install

    with install(HubServer(tmp_path / "hub", token=HUB_TOKEN)) as server:
        yield server


def zoo_has(models=(), datasets=()) -> bool:
    """Whether the installed offline zoo holds these models (Hub repo ids) and local datasets."""
    zoo = _paths.zoo_dir()
    return all((zoo / "hub" / f"models--{m.replace('/', '--')}").is_dir() for m in models) and all(
        (zoo / "datasets" / d / "README.md").is_file() for d in datasets
    )


def needs_zoo(*models: str, datasets=()):
    """Mark a test `zoo` and skip it unless the offline zoo holds `models` and `datasets`."""

    def mark(test):
        test = pytest.mark.zoo(test)
        return pytest.mark.skipif(
            not zoo_has(models, datasets), reason="offline zoo not installed (hf-spider zoo install)"
        )(test)

    return mark


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_SPIDER_HOME", str(home / "spider"))
    monkeypatch.setenv("HF_SPIDER_ZOO", os.environ.get("HF_SPIDER_ZOO", _REAL_ZOO))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield home
    online_again()  # an offline HTTP session of this test must not serve the next one
