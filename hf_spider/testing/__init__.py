"""Test support: a Hub-compatible server on loopback (`hub_server.HubServer`).

Names are imported lazily so `python -m hf_spider.testing.hub_server ROOT` runs the module cleanly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = ("Faults", "HubServer", "Request", "Response", "error_response", "json_response", "write_repo")

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module("hf_spider.testing.hub_server"), name)
    raise AttributeError(f"module 'hf_spider.testing' has no attribute {name!r}")
