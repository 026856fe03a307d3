"""Test support: a Hub-compatible server on loopback (`hub_server.HubServer`)."""

from __future__ import annotations

from hf_spider.testing.hub_server import (
    Faults,
    HubServer,
    Request,
    Response,
    error_response,
    json_response,
    write_repo,
)

__all__ = ["Faults", "HubServer", "Request", "Response", "error_response", "json_response", "write_repo"]
