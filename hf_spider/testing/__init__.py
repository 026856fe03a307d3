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


def force_hub_offline(monkeypatch) -> None:
    """Offline mode for one test, as `HF_HUB_OFFLINE=1` would give at start-up.

    huggingface_hub and transformers read `HF_HUB_OFFLINE` once, at import; setting the variable
    inside a test after they were imported changes nothing, and a load would then try the network
    (minutes of retries on a machine without one). This sets the variable and both flags.
    """
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    try:
        import transformers.utils.hub
    except ImportError:
        return
    monkeypatch.setattr(transformers.utils.hub, "_is_offline_mode", True, raising=False)
