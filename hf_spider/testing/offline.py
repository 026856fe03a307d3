"""Offline mode inside one test."""

from __future__ import annotations


def force_hub_offline(monkeypatch) -> None:
    """Offline mode for one test, as `HF_HUB_OFFLINE=1` would give at start-up.

    huggingface_hub and transformers read `HF_HUB_OFFLINE` once, at import; setting the variable
    inside a test after they were imported changes nothing, and a load would then try the network
    (minutes of retries on a machine without one). This sets the variable and both flags.

    huggingface_hub also keeps one HTTP session per thread, built offline or online when first
    asked for; the cache is emptied here and by `online_again`, which the test suite calls after
    every test, so an offline session never outlives its test.
    """
    import huggingface_hub.constants
    from huggingface_hub.utils import reset_sessions

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    reset_sessions()
    try:
        import transformers.utils.hub
    except ImportError:
        return
    monkeypatch.setattr(transformers.utils.hub, "_is_offline_mode", True, raising=False)


def online_again() -> None:
    """Drop huggingface_hub's cached HTTP sessions (after a test that forced offline mode)."""
    import sys

    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import reset_sessions

        reset_sessions()
