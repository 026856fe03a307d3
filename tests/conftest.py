"""Shared fixtures. Every test runs with its own HF_HOME and HF_SPIDER_HOME in a temporary folder,
so nothing reads or writes the user's caches or tokens. The installed offline zoo stays visible
through HF_SPIDER_ZOO."""

from __future__ import annotations

import os

import pytest

from hf_spider import _paths

_REAL_ZOO = str(_paths.zoo_dir())


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
