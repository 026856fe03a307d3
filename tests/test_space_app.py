"""The Gradio Space (`space_app/app.py`), launched on loopback and driven like a user would:
through `gradio_client`, and once through a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from test_recommend_results import make_recs

from hf_spider._paths import REPO_DIR
from hf_spider.testing import HubServer
from hf_spider.testing.hub_writes import install

TOKEN = "hf_space_reader"
ALL = ["measured", "estimated", "skipped"]


@pytest.fixture
def hub(tmp_path, monkeypatch):
    from huggingface_hub import constants, file_download

    with install(HubServer(tmp_path / "hub", token=TOKEN)) as server:
        make_recs(estimated_model=2).push_to_hub("me/rt-recs", token=TOKEN, endpoint=server.url)
        # The Space reads the Hub from its environment (HF_ENDPOINT), as on huggingface.co.
        template = server.url + "/{repo_id}/resolve/{revision}/{filename}"
        monkeypatch.setattr(constants, "ENDPOINT", server.url)
        monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
        yield server


@pytest.fixture
def app_module():
    sys.path.insert(0, str(REPO_DIR / "space_app"))
    try:
        import app

        yield app
    finally:
        sys.path.remove(str(REPO_DIR / "space_app"))
        sys.modules.pop("app", None)


@pytest.fixture
def space(hub, app_module, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # tests send nothing anywhere
    demo = app_module.build_app(default_repo="me/rt-recs")
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True, show_error=True)
    try:
        yield demo.local_url.rstrip("/")
    finally:
        demo.close()


def _rows(table) -> list[dict]:
    return [dict(zip(table["headers"], row, strict=True)) for row in table["data"]]


def test_browse_returns_the_ranked_table(space):
    from gradio_client import Client

    client = Client(space, verbose=False)
    summary, table, _plot = client.predict("me/rt-recs", ALL, 0, False, api_name="/browse")
    rows = _rows(table)
    expected = make_recs(estimated_model=2).rows
    assert [r["model_id"] for r in rows] == [r["model_id"] for r in expected]
    assert [r["variant"] for r in rows[:2]] == ["fp32", "int8-dynamic"]
    assert [r["rank"] for r in rows] == [r["rank"] for r in expected]
    assert rows[1]["recommended"] is True and sum(bool(r["recommended"]) for r in rows) == 1
    assert "`org/model-0` (int8-dynamic)" in summary


def test_browse_filters(space):
    from gradio_client import Client

    client = Client(space, verbose=False)
    _, table, _ = client.predict("me/rt-recs", ["estimated"], 0, False, api_name="/browse")
    rows = _rows(table)
    assert rows and {r["device_status"] for r in rows} == {"estimated"}
    assert {r["model_id"] for r in rows} == {"org/model-2"}
    _, table, _ = client.predict("me/rt-recs", ALL, 0, True, api_name="/browse")
    assert all(r["meets_constraints"] for r in _rows(table))
    _, table, _ = client.predict("me/rt-recs", ALL, 9, False, api_name="/browse")
    assert {(r["model_id"], r["variant"]) for r in _rows(table)} == {
        ("org/model-0", "int8-dynamic"),
        ("org/model-1", "int8-dynamic"),
    }


def test_browse_unknown_dataset_shows_an_error(space):
    from gradio_client import Client

    client = Client(space, verbose=False)
    with pytest.raises(Exception, match="not a recommendations dataset"):
        client.predict("me/absent", ALL, 0, False, api_name="/browse")


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_chromium_screenshot_of_the_space(space, tmp_path):
    """One real browser: the page renders, loads the default dataset and shows the ranked table."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    shot = tmp_path / "space.png"
    common = [chromium, *CHROMIUM_FLAGS, "--window-size=1280,1800", "--virtual-time-budget=10000"]
    subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile-1'}", f"--screenshot={shot}", space + "/"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [*common, f"--user-data-dir={tmp_path / 'profile-2'}", "--dump-dom", space + "/"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert "hf-spider" in dom
    assert "org/model-0" in dom and "org/model-2" in dom  # the ranked table, rendered into the page
    assert "Recommended for" in dom

    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1280, 1800)
    lo, hi = image.getextrema()
    assert hi - lo > 100  # not a blank page
    assert len(set(image.resize((64, 90)).getdata())) > 20


def _zoo_dataset(name: str):
    from hf_spider import _paths

    folder = _paths.zoo_dir() / "datasets" / name
    return folder if (folder / "README.md").is_file() else None


@pytest.mark.zoo
def test_run_tab_ranks_a_dataset_through_the_python_api(space):
    """The Run tab calls `hf_spider.recommend` (stage 1 here, to stay fast) and shows its ranking."""
    from gradio_client import Client

    dataset = _zoo_dataset("rotten_tomatoes")
    if dataset is None:
        pytest.skip("offline zoo not installed (hf-spider zoo install)")
    client = Client(space, verbose=False)
    summary, table, _plot, report = client.predict(
        str(dataset), "local", 3, ["rank"], 64, 0, 0, 0, 0, api_name="/run"
    )
    rows = _rows(table)
    assert len(rows) > 10
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    assert all(r["stage"] == "rank" and r["device_status"] == "skipped" for r in rows)
    assert "Recommended for" in summary and "## How each figure was obtained" in report
