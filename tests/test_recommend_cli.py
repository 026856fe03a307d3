"""`hf-spider recommend` errors a user can cause: one line on stderr, exit 2, nothing on the Hub."""

from __future__ import annotations

import subprocess
import sys
import time

from conftest import HUB_TOKEN

from hf_spider._paths import REPO_DIR
from hf_spider.cli import main

TOKEN = HUB_TOKEN  # the `hub` fixture of conftest.py


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _nothing_on(hub) -> None:
    for kind in ("models", "datasets", "spaces"):
        assert hub.repo_ids(kind) == []
    assert hub.count("/api/repos/create") == 0 and hub.count("/commit/") == 0


def test_dataset_that_does_not_exist(hub, capsys, tmp_path):
    args = ["--push-to-hub", "me/recs", "--space", "me/app", "--token", TOKEN, "--endpoint", hub.url]
    assert main(["recommend", str(tmp_path / "no-such-dataset"), *args]) == 2
    assert "no-such-dataset" in _one_line_error(capsys)
    assert main(["recommend", "someone/absent-dataset", "--stages", "rank", *args]) == 2
    assert "absent-dataset" in _one_line_error(capsys)
    _nothing_on(hub)


def test_wrong_token_fails_before_any_work(hub, capsys, tmp_path):
    started = time.perf_counter()
    rc = main(
        [
            "recommend",
            str(tmp_path / "whatever"),
            "--push-to-hub",
            "me/recs",
            "--token",
            "hf_wrong",
            "--endpoint",
            hub.url,
        ]
    )
    assert rc == 2
    err = _one_line_error(capsys)
    assert "token" in err and "hf_wrong" not in err
    assert time.perf_counter() - started < 10
    _nothing_on(hub)


def test_bad_arguments(capsys):
    assert main(["recommend", "x", "--stages", "rank,train"]) == 2
    assert "rank,probe,bench" in _one_line_error(capsys)
    assert main(["recommend", "x", "--stages", "probe"]) == 2
    assert "rank stage is required" in _one_line_error(capsys)
    assert main(["recommend", "x", "--top-k", "0"]) == 2
    _one_line_error(capsys)
    assert main(["recommend", "x", "--max-latency-ms", "-3"]) == 2
    _one_line_error(capsys)
    assert main(["recommend", "x", "--demo"]) == 2
    assert "not both" in _one_line_error(capsys)
    assert main(["recommend"]) == 2
    assert "--demo" in _one_line_error(capsys)


def test_bad_repo_id_for_push(hub, capsys, tmp_path):
    rc = main(
        ["recommend", str(tmp_path), "--push-to-hub", "bad id!", "--token", TOKEN, "--endpoint", hub.url]
    )
    assert rc == 2
    assert "invalid repo id" in _one_line_error(capsys)
    _nothing_on(hub)


def test_help_lists_the_options():
    out = subprocess.run(
        [sys.executable, "-m", "hf_spider", "recommend", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_DIR,
        timeout=120,
        check=True,
    ).stdout
    for flag in (
        "--catalog",
        "--task",
        "--sample",
        "--top-k",
        "--stages",
        "--target",
        "--max-latency-ms",
        "--max-memory-mb",
        "--max-size-mb",
        "--min-fidelity",
        "--output-dir",
        "--json",
        "--push-to-hub",
        "--space",
        "--private",
        "--token",
        "--endpoint",
        "--demo",
    ):
        assert flag in out
