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


def test_the_dataset_options_a_message_names_exist_and_results_are_shared_readable(tmp_path, capsys):
    """A label column the detection does not know (`verdict`) is named with --label-column, as the
    error says; results are written with the user's umask (0644 under 022), not tempfile's 0600;
    a mistyped --task names the modality's tags; --sample too small for bench is refused."""
    import json
    import os

    data = tmp_path / "reviews.csv"
    words = ["good", "bad", "fine", "awful", "nice", "meh", "great", "poor"]
    rows = ["review,verdict"] + [f"{w} day,{r}" for w, r in zip(words, "51315351", strict=True)]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "out"
    base = ["recommend", str(data), "--stages", "rank"]
    assert main([*base, "--output-dir", str(out)]) == 2
    assert "--label-column" in capsys.readouterr().err
    mask = os.umask(0o022)
    try:
        assert (
            main(
                [
                    *base,
                    "--label-column",
                    "verdict",
                    "--output-dir",
                    str(out),
                    "--json",
                    str(tmp_path / "r.json"),
                ]
            )
            == 0
        )
    finally:
        os.umask(mask)
    task = json.loads((tmp_path / "r.json").read_text())["meta"]["task"]
    assert task["num_classes"] == 3 and task["modality"] == "text"
    for name in ("recommendations.json", "recommendations.parquet", "report.md"):
        assert (out / name).stat().st_mode & 0o777 == 0o644, name
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644
    capsys.readouterr()
    assert (
        main([*base, "--label-column", "verdict", "--task", "text-clasification", "--output-dir", str(out)])
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "text tags: " in err[0] and "text-classification" in err[0], err
    code = main(
        ["recommend", str(data), "--label-column", "verdict", "--stages", "rank,bench", "--sample", "0"]
    )
    assert code == 2 and "too small" in capsys.readouterr().err
