"""Test support: a Hub-compatible server on loopback (`hub_server.HubServer`) and offline mode for
one test (`force_hub_offline`). Product code never imports this package.

Names are imported lazily so `python -m hf_spider.testing.hub_server ROOT` runs the module cleanly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hf_spider._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "hub_server": [
            "Faults",
            "HubServer",
            "Request",
            "Response",
            "error_response",
            "json_response",
            "write_repo",
        ],
        "offline": ["force_hub_offline", "online_again"],
    },
)

if TYPE_CHECKING:
    from hf_spider.testing.hub_server import (
        Faults,
        HubServer,
        Request,
        Response,
        error_response,
        json_response,
        write_repo,
    )
    from hf_spider.testing.offline import force_hub_offline, online_again
