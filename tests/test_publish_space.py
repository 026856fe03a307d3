"""`hf-spider publish --space` against the loopback Hub: the app, the package it runs, a README with
valid Space YAML; updates in place; a wrong token creates nothing."""

from __future__ import annotations

import json

import gradio
import yaml
from conftest import HUB_TOKEN
from huggingface_hub import HfApi

from hf_spider.cli import main
from hf_spider.recommend import publish_space

TOKEN = HUB_TOKEN  # the `hub` fixture of conftest.py


def test_publish_uploads_app_package_and_valid_readme(hub, capsys):
    rc = main(
        [
            "publish",
            "--space",
            "me/spider",
            "--dataset",
            "me/rt-recs",
            "--token",
            TOKEN,
            "--endpoint",
            hub.url,
        ]
    )
    assert rc == 0
    assert f"{hub.url}/spaces/me/spider" in capsys.readouterr().out
    api = HfApi(endpoint=hub.url, token=TOKEN)
    files = set(api.list_repo_files("me/spider", repo_type="space"))
    assert {"app.py", "requirements.txt", "README.md", "space_config.json"} <= files
    assert {
        "hf_spider/__init__.py",
        "hf_spider/recommend/_results.py",
        "hf_spider/recommend/templates/dataset_card.md.jinja",
    } <= files
    assert not any("__pycache__" in f or f.startswith("hf_spider/testing/") for f in files)

    readme = (hub.repo_dir("spaces", "me/spider") / "README.md").read_text()
    header = yaml.safe_load(readme.split("---\n", 2)[1])
    assert header["sdk"] == "gradio"
    assert header["sdk_version"] == gradio.__version__
    assert header["app_file"] == "app.py" and "app.py" in files
    assert "hf-spider" in header["tags"]
    assert header["datasets"] == ["me/rt-recs"]
    info = api.space_info("me/spider")
    assert info.card_data["sdk"] == "gradio"
    assert json.loads((hub.repo_dir("spaces", "me/spider") / "space_config.json").read_text()) == {
        "recommendations_dataset": "me/rt-recs"
    }
    app = (hub.repo_dir("spaces", "me/spider") / "app.py").read_text()
    assert "gr.Blocks" in app


def test_republish_updates_in_place(hub):
    publish_space("me/spider", token=TOKEN, endpoint=hub.url)
    url = publish_space("me/spider", token=TOKEN, endpoint=hub.url, dataset_repo="me/other")
    assert url.endswith("/spaces/me/spider")
    assert hub.repo_ids("spaces") == ["me/spider"]
    header = yaml.safe_load(
        (hub.repo_dir("spaces", "me/spider") / "README.md").read_text().split("---\n", 2)[1]
    )
    assert header["datasets"] == ["me/other"]


def test_private_space(hub):
    publish_space("me/hidden", private=True, token=TOKEN, endpoint=hub.url)
    assert HfApi(endpoint=hub.url, token=TOKEN).space_info("me/hidden").private is True


def test_wrong_token_exit_2_one_line_nothing_created(hub, capsys):
    rc = main(["publish", "--space", "me/spider", "--token", "hf_wrong", "--endpoint", hub.url])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert "token" in err
    assert hub.repo_ids("spaces") == [] and hub.count("/api/repos/create") == 0


def test_a_space_that_is_not_hf_spiders_is_never_replaced(hub):
    """publish_space wrote its app over an existing, unrelated Space (and left it public when asked
    for private); now it refuses, and an hf-spider Space made private on request is private."""
    import pytest

    from hf_spider.errors import UserInputError
    from hf_spider.testing import write_repo

    api = HfApi(endpoint=hub.url, token=TOKEN)
    mine = {"app.py": "print('mine')", "README.md": "---\nsdk: gradio\n---\n"}
    write_repo(hub.root, "me/mine", mine, repo_type="space")
    with pytest.raises(UserInputError, match="not an hf-spider Space"):
        publish_space("me/mine", token=TOKEN, endpoint=hub.url, private=True)
    assert (hub.repo_dir("spaces", "me/mine") / "app.py").read_text() == "print('mine')"
    publish_space("me/spider", token=TOKEN, endpoint=hub.url)
    assert api.space_info("me/spider").private is False
    publish_space("me/spider", token=TOKEN, endpoint=hub.url, private=True)
    assert api.space_info("me/spider").private is True
    with pytest.raises(UserInputError, match="invalid dataset repo id"):
        publish_space("me/spider", token=TOKEN, endpoint=hub.url, dataset_repo="not an id!")
