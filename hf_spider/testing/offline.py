"""Offline mode inside one test."""

from __future__ import annotations


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
