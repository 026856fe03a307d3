"""The Gradio Space (`space_app/app.py`), launched on loopback and driven like a user would:
through `gradio_client`, and once through a real headless Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from conftest import HUB_TOKEN
from test_recommend_results import make_recs

from hf_spider._paths import REPO_DIR
from hf_spider.testing import write_repo

TOKEN = HUB_TOKEN  # the `hub` fixture of conftest.py
ALL = ["measured", "estimated", "skipped"]


@pytest.fixture
def hub(hub, monkeypatch):  # conftest's loopback Hub, also as the import-time endpoint
    from huggingface_hub import constants, file_download

    make_recs(estimated_model=2).push_to_hub("me/rt-recs", token=TOKEN, endpoint=hub.url)
    # The Space reads the Hub from its environment (HF_ENDPOINT), as on huggingface.co.
    template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    yield hub


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
    summary, table, _plot = client.predict("me/rt-recs", ALL, 0, False, "", api_name="/browse")
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
    _, table, _ = client.predict("me/rt-recs", ["estimated"], 0, False, "", api_name="/browse")
    rows = _rows(table)
    assert rows and {r["device_status"] for r in rows} == {"estimated"}
    assert {r["model_id"] for r in rows} == {"org/model-2"}
    _, table, _ = client.predict("me/rt-recs", ALL, 0, True, "", api_name="/browse")
    assert all(r["meets_constraints"] for r in _rows(table))
    _, table, _ = client.predict("me/rt-recs", ALL, 9, False, "", api_name="/browse")
    assert {(r["model_id"], r["variant"]) for r in _rows(table)} == {
        ("org/model-0", "int8-dynamic"),
        ("org/model-1", "int8-dynamic"),
    }


def test_browse_unknown_dataset_shows_an_error(space):
    from gradio_client import Client

    client = Client(space, verbose=False)
    with pytest.raises(Exception, match=r"me/absent.* was not found"):
        client.predict("me/absent", ALL, 0, False, "", api_name="/browse")


def test_browse_refuses_a_dataset_larger_than_it_reads(hub, app_module, monkeypatch):
    """A visitor's dataset is sized from its file listing and refused before its files download."""
    import gradio as gr

    monkeypatch.setattr(app_module, "MAX_BROWSE_BYTES", 1000)
    hub.reset_log()
    with pytest.raises(gr.Error, match=r"more than the 0.001 MB read here"):
        app_module.browse("me/rt-recs", ALL, 0, False)
    assert hub.count("/resolve/") == 0


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
    assert "Max memory (MiB)" in dom and "(MB)" not in dom  # units as in the CLI
    assert 'type="password"' in dom  # the visitor's token field shows no token

    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1280, 1800)
    lo, hi = image.getextrema()
    assert hi - lo > 100  # not a blank page
    assert len(set(image.resize((64, 90)).getdata())) > 20


REVIEWS = "text,label\n" + "".join(f"{t},{y}\n" for t, y in [("a fine film", "pos"), ("dull", "neg")] * 6)


@pytest.fixture
def private_reviews(hub):
    """A private text dataset on the loopback Hub, readable with TOKEN only."""
    write_repo(
        hub.root, "owner/private-reviews", {"data.csv": REVIEWS}, repo_type="datasets", meta={"private": True}
    )
    return "owner/private-reviews"


def _run_args(dataset: str, token: str = "", stages=("rank",), sample: int = 64) -> list:
    return [dataset, "local", 3, list(stages), sample, 0, 0, 0, 0, token]


def test_api_names_only_browse_and_run(space):
    from gradio_client import Client

    endpoints = Client(space, verbose=False).view_api(return_format="dict", print_info=False)
    assert set(endpoints["named_endpoints"]) == {"/browse", "/run"}
    assert not endpoints["unnamed_endpoints"]


def test_run_uses_the_visitors_token_never_the_spaces(space, private_reviews, monkeypatch):
    """The Space's owner set HF_TOKEN (as for private data); a visitor without a token must not
    read a private dataset through it, a visitor with their own token may."""
    from gradio_client import Client

    monkeypatch.setenv("HF_TOKEN", TOKEN)
    client = Client(space, verbose=False)
    with pytest.raises(Exception, match="not found") as err:
        client.predict(*_run_args(private_reviews), api_name="/run")
    assert "pos" not in str(err.value)
    summary, table, _plot, report = client.predict(*_run_args(private_reviews, token=TOKEN), api_name="/run")
    assert "Recommended for" in summary and "pos" in report and _rows(table)
    assert TOKEN not in summary + report


def test_browse_uses_the_visitors_token(space, hub, monkeypatch):
    from gradio_client import Client

    make_recs().push_to_hub("owner/private-recs", private=True, token=TOKEN, endpoint=hub.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    client = Client(space, verbose=False)
    with pytest.raises(Exception, match=r"owner/private-recs.* was not found"):
        client.predict("owner/private-recs", ALL, 0, False, "", api_name="/browse")
    summary, table, _ = client.predict("owner/private-recs", ALL, 0, False, TOKEN, api_name="/browse")
    assert _rows(table) and "Recommended for" in summary


@pytest.mark.parametrize("dataset", ["/etc", "../hf_spider", "~/.cache", "hf_spider", "space_app/app.py"])
def test_run_refuses_paths_on_the_spaces_disk(space, dataset, monkeypatch):
    from gradio_client import Client

    monkeypatch.chdir(REPO_DIR)  # where `hf_spider` and `space_app/app.py` exist
    client = Client(space, verbose=False)
    with pytest.raises(Exception) as err:
        client.predict(*_run_args(dataset), api_name="/run")
    text = str(err.value)
    assert "Hub dataset id" in text or "not found on" in text
    if "not found on" in text:  # an existing folder reads exactly as a missing Hub dataset
        with pytest.raises(Exception) as missing:
            client.predict(
                *_run_args(dataset.replace("hf_spider", "no_such_x").replace("app.py", "no.py")),
                api_name="/run",
            )
        assert str(missing.value).replace("no_such_x", "hf_spider").replace("no.py", "app.py") == text


def test_run_errors_name_the_fields_not_cli_flags(space, private_reviews):
    from gradio_client import Client

    client = Client(space, verbose=False)
    with pytest.raises(Exception) as err:
        client.predict(
            *_run_args(private_reviews, token=TOKEN, stages=("rank", "probe"), sample=1), api_name="/run"
        )
    text = str(err.value)
    assert "'Sample size'" in text and "--" not in text


def test_run_reports_progress(space, private_reviews):
    import time

    from gradio_client import Client

    job = Client(space, verbose=False).submit(*_run_args(private_reviews, token=TOKEN), api_name="/run")
    descs = set()
    deadline = time.monotonic() + 300
    while not job.done() and time.monotonic() < deadline:
        descs |= {p.desc for p in job.status().progress_data or []}
        time.sleep(0.02)
    job.result(timeout=10)
    assert any(d and d.startswith(("task", "catalog", "rank")) for d in descs), descs


def test_filters_apply_to_loaded_rows_without_a_hub_request(hub, app_module):
    """Every filter (the latency cap included) re-filters the loaded rows on change, privately."""
    demo = app_module.build_app(default_repo="me/rt-recs")
    config = demo.get_config_file()
    labels = {c["id"]: c.get("props", {}).get("label") for c in config["components"]}
    kinds = {c["id"]: c["type"] for c in config["components"]}
    changed = {
        labels[t[0]]
        for dep in config["dependencies"]
        for t in dep["targets"]
        if t[1] == "change"
        and any(kinds[i] == "state" for i in dep["inputs"])
        and dep.get("api_visibility", "private") == "private"
    }
    assert {"Device figures", "Max latency p50 (ms)", "Only variants that meet the constraints"} <= changed
    recs = make_recs(estimated_model=2)
    _, table, _ = app_module.show(recs, ALL, 9, False)
    assert set(table["latency_p50_ms"]) <= {4.0, 8.0}
    requests = hub.count()
    app_module.show(recs, ["measured"], 5, True)
    assert hub.count() == requests


def test_hub_login_token_is_the_visitors_and_typed_one_wins(app_module):
    import gradio as gr

    login = gr.OAuthToken(token="hf_visitor_login", scope="read-repos", expires_at=0)
    assert app_module.visitor_token("", login) == "hf_visitor_login"
    assert app_module.visitor_token("hf_typed", login) == "hf_typed"
    assert app_module.visitor_token("  ", None) is False  # no token at all, never the Space's
    requirements = (REPO_DIR / "space_app" / "requirements.txt").read_text().split()
    assert {"authlib", "itsdangerous"} <= set(requirements)  # gradio's oauth extra, for the login


def test_space_with_hub_login_shows_the_button_and_uses_it(app_module, monkeypatch):
    """On a Space with OAuth (`OAUTH_CLIENT_ID` set by the Hub) the login button is shown and the
    handlers take the visitor's login token."""
    pytest.importorskip("itsdangerous", reason="gradio's oauth extra is installed on the Space only")
    pytest.importorskip("authlib", reason="gradio's oauth extra is installed on the Space only")
    import gradio.oauth

    # what the Hub sets in a Space with `hf_oauth: true` (nothing is contacted before a login)
    monkeypatch.setenv("SYSTEM", "spaces")
    monkeypatch.setenv("SPACE_ID", "me/app")
    for name, value in (
        ("OAUTH_CLIENT_ID", "client"),
        ("OAUTH_CLIENT_SECRET", "secret"),
        ("OAUTH_SCOPES", "openid profile read-repos"),
        ("OPENID_PROVIDER_URL", "http://127.0.0.1:9"),
    ):
        monkeypatch.setattr(gradio.oauth, name, value)
    monkeypatch.setattr(app_module, "OAUTH", True)
    demo = app_module.build_app(default_repo="")
    config = demo.get_config_file()
    assert any("Sign in with Hugging Face" in str(c["props"].get("value")) for c in config["components"])
    fns = {dep.get("api_name"): demo.fns[dep["id"]].fn for dep in config["dependencies"]}
    assert fns["browse"] is app_module.browse_logged_in and fns["run"] is app_module.run_logged_in


def test_what_a_visitor_sends_is_bounded_and_said_in_the_pages_words(app_module, hub, monkeypatch):
    """From a probe of the Space: a 5000-character id and an id ending in '.' gave a bare "Error"
    (uncaught OSError / HFValidationError); a cleared Sample field a TypeError; Sample had no upper
    bound; a dataset's Markdown went into the summary as links; token hints named HF_TOKEN and
    `hf auth login`, which a visitor cannot use; a run's report showed this machine's paths."""
    import gradio as gr

    def refused(*args) -> str:
        with pytest.raises(gr.Error) as err:
            app_module.run(*args)
        return err.value.message

    assert "Hub dataset id" in refused("a" * 5000, "local", 3, ["rank"], 64, 0, 0, 0, 0, "")
    assert "Hub dataset id" in refused("pub/reviews.", "local", 3, ["rank"], 64, 0, 0, 0, 0, "")
    assert "between 2 and" in refused("pub/reviews", "local", 3, ["rank"], 10**12, 0, 0, 0, 0, "")
    assert "whole number" in refused("pub/reviews", "local", 3, ["rank"], "abc", 0, 0, 0, 0, "")
    message = app_module.space_message(
        "the Hub refused x (HTTP 401) — a gated repo: accept its terms on the Hub; then pass a valid "
        "--token (a write token to upload), set HF_TOKEN, or run `hf auth login`"
    )
    assert message.endswith("accept its terms on the Hub; sign in or paste your token above")
    assert "HF_TOKEN" not in message and "auth login" not in message
    recs = make_recs()
    recs.meta["dataset"] = "evil`[click](http://evil)"
    recs.meta["pick"] = {"reason": "see [here](http://evil) <img src=x>"}
    summary = app_module._summary(recs)
    # the id stays inside its code span (no backtick closes it); the reason's link and tag are text
    assert "`evil'[click](http://evil)`" in summary and "\\[here\\]\\(http" in summary and "\\<img" in summary
    # a run of the demo dataset from the loopback Hub: the report carries no path of this machine
    rows = [{"text": f"good {i}" if i % 2 else f"bad {i}", "label": i % 2} for i in range(40)]
    write_repo(hub.root, "pub/reviews", {"data.jsonl": "\n".join(map(str, []))}, repo_type="dataset")
    import json

    (hub.root / "datasets" / "pub" / "reviews" / "data.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows)
    )
    summary, _table, _plot, report = app_module.run("pub/reviews", "local", 3, ["rank"], None, 0, 0, 0, 0, "")
    assert "Recommended for" in summary and str(REPO_DIR) not in report and "model_cards" in report
