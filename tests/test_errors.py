"""Every error class lives in `hf_spider.errors`, and failed Hub calls read the same everywhere:
`hub_error` on real exceptions from huggingface_hub against the loopback Hub."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import hf_spider
from hf_spider import errors
from hf_spider.errors import (
    AuthError,
    DatasetError,
    HfSpiderError,
    HubConnectionError,
    UserInputError,
    hub_error,
)
from hf_spider.testing import HubServer, write_repo

PACKAGE = Path(hf_spider.__file__).resolve().parent


def test_every_error_class_is_in_errors_py_and_subclasses_a_builtin():
    elsewhere = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ClassDef)
                and node.name.endswith("Error")
                and not node.name.startswith("_")
            ):
                elsewhere.append(f"{path.relative_to(PACKAGE)}:{node.name}")
    assert not elsewhere
    for value in vars(errors).values():
        if isinstance(value, type) and issubclass(value, HfSpiderError) and value is not HfSpiderError:
            builtin = [c for c in value.__mro__[1:] if c.__module__ == "builtins" and c is not Exception]
            assert builtin and builtin[0] is not BaseException, value


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    write_repo(root, "acme/a-model", {"README.md": "# a model\n"})
    with HubServer(root, token="hf_right") as server:
        yield server


def _fail(call):
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("the call did not fail")


def test_rejected_missing_and_unreachable_read_the_same_everywhere(hub):
    from huggingface_hub import HfApi

    wrong = _fail(lambda: HfApi(endpoint=hub.url, token="hf_wrong").whoami())
    err = hub_error(wrong, "the token", endpoint=hub.url)
    assert isinstance(err, AuthError) and "HTTP 401" in err.one_line() and "--token" in err.one_line()
    assert "hf_wrong" not in err.one_line()

    missing = _fail(lambda: HfApi(endpoint=hub.url, token="hf_right").model_info("acme/nope"))
    err = hub_error(missing, "model acme/nope", endpoint=hub.url, not_found=DatasetError)
    assert isinstance(err, DatasetError) and "acme/nope was not found on" in str(err)
    assert isinstance(hub_error(missing, "model acme/nope"), UserInputError)

    down = _fail(lambda: HfApi(endpoint="http://127.0.0.1:9", token="hf_right").model_info("acme/x"))
    err = hub_error(down, "model acme/x", endpoint="http://127.0.0.1:9")
    assert isinstance(err, HubConnectionError) and "cannot reach http://127.0.0.1:9" in str(err)

    ours = UserInputError("already ours")
    assert hub_error(ours, "anything") is ours


def test_a_file_not_in_the_cache_offline_is_not_called_missing_from_the_hub():
    """huggingface_hub's LocalEntryNotFoundError (offline, or the Hub unreachable, and nothing
    cached) is an EntryNotFoundError: it used to read "was not found on the Hub"."""
    from huggingface_hub.errors import LocalEntryNotFoundError

    err = hub_error(LocalEntryNotFoundError("no connection and not cached"), "model acme/nope")
    assert isinstance(err, HubConnectionError) and "not in the local Hub cache" in str(err)
    assert "not found" not in str(err) and "HF_HUB_OFFLINE" in err.hint
