"""The loopback Hub's write side, driven by the real huggingface_hub and datasets clients over HTTP."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import HUB_TOKEN
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

TOKEN = HUB_TOKEN  # the `hub` fixture of conftest.py


@pytest.fixture
def hub(hub, monkeypatch):  # conftest's loopback Hub, also as the import-time endpoint
    from huggingface_hub import constants, file_download

    # What HF_ENDPOINT=<loopback> would have set when huggingface_hub was imported.
    template = hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(file_download, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    yield hub


@pytest.fixture
def api(hub):
    return HfApi(endpoint=hub.url, token=TOKEN)


def test_create_repo_of_each_type_and_conflict(hub, api):
    assert api.create_repo("me/model").repo_id == "me/model"
    api.create_repo("me/data", repo_type="dataset")
    api.create_repo("me/app", repo_type="space", space_sdk="gradio")
    assert hub.repo_ids("models") == ["me/model"]
    assert hub.repo_ids("datasets") == ["me/data"]
    assert api.space_info("me/app").id == "me/app"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo("me/model")
    assert err.value.response.status_code == 409
    api.create_repo("me/model", exist_ok=True)  # no error, nothing changed
    assert hub.repo_ids("models") == ["me/model"]


def test_writes_need_the_right_token(hub):
    for token in ("hf_wrong", None):
        with pytest.raises(HfHubHTTPError) as err:
            HfApi(endpoint=hub.url, token=token or False).create_repo("me/nope", token=token or False)
        assert err.value.response.status_code == 401
    assert hub.repo_ids("models") == []


def test_upload_folder_regular_and_lfs_files_read_back(hub, api, tmp_path):
    api.create_repo("me/model")
    folder = tmp_path / "up"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "bert"}')
    weights = bytes(range(256)) * 300  # binary: goes through LFS
    (folder / "model.safetensors").write_bytes(weights)
    (folder / "sub" / "notes.txt").write_text("hello")
    before = api.model_info("me/model").sha
    api.upload_folder(folder_path=folder, repo_id="me/model")
    assert sorted(api.list_repo_files("me/model")) == ["config.json", "model.safetensors", "sub/notes.txt"]
    assert api.model_info("me/model").sha != before
    got = api.hf_hub_download("me/model", "model.safetensors", cache_dir=tmp_path / "cache")
    assert Path(got).read_bytes() == weights
    # the LFS object went through the batch API and a PUT, stored by its sha256
    oid = hashlib.sha256(weights).hexdigest()
    assert (hub.root / ".lfs" / oid[:2] / oid).read_bytes() == weights
    assert hub.count(r"\.git/info/lfs/objects/batch", "POST") == 1
    # an unchanged file is skipped: the same upload makes no new commit
    sha = api.model_info("me/model").sha
    hub.reset_log()
    api.upload_folder(folder_path=folder, repo_id="me/model")
    assert api.model_info("me/model").sha == sha
    assert hub.count(r"/commit/", "POST") == 0


def test_commit_deletes_and_parent_commit_check(hub, api):
    api.create_repo("me/data", repo_type="dataset")
    ops = [CommitOperationAdd(f"data/part-{i}.txt", f"row {i}".encode()) for i in range(3)]
    info = api.create_commit("me/data", ops, commit_message="add", repo_type="dataset")
    assert info.oid == api.dataset_info("me/data").sha
    api.create_commit(
        "me/data",
        [CommitOperationDelete("data/part-0.txt"), CommitOperationAdd("README.md", b"# data\n")],
        commit_message="edit",
        repo_type="dataset",
    )
    assert sorted(api.list_repo_files("me/data", repo_type="dataset")) == [
        "README.md",
        "data/part-1.txt",
        "data/part-2.txt",
    ]
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            "me/data",
            [CommitOperationAdd("x.txt", b"x")],
            commit_message="stale",
            repo_type="dataset",
            parent_commit=info.oid,
        )
    assert err.value.response.status_code == 412
    api.create_commit(
        "me/data", [CommitOperationDelete("data/", is_folder=True)], commit_message="rm", repo_type="dataset"
    )
    assert api.list_repo_files("me/data", repo_type="dataset") == ["README.md"]


def test_commit_to_a_missing_repo_or_bad_path_is_refused(hub, api):
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="me/absent")
    api.create_repo("me/model")
    # huggingface_hub refuses such a path itself; the server must too, for any other client
    import base64
    import json

    import requests

    payload = [
        {"key": "header", "value": {"summary": "escape"}},
        {
            "key": "file",
            "value": {
                "path": "a/../../escape.txt",
                "content": base64.b64encode(b"x").decode(),
                "encoding": "base64",
            },
        },
    ]
    resp = requests.post(
        f"{hub.url}/api/models/me/model/commit/main",
        data="\n".join(json.dumps(p) for p in payload),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
        timeout=10,
    )
    assert resp.status_code == 400
    assert not (hub.root / "models" / "me" / "escape.txt").exists()


def test_space_readme_yaml_is_validated(hub, api):
    api.create_repo("me/app", repo_type="space", space_sdk="gradio")
    with pytest.raises(ValueError, match="sdk"):
        api.upload_file(
            path_or_fileobj=b"---\ntitle: x\n---\n",
            path_in_repo="README.md",
            repo_id="me/app",
            repo_type="space",
        )
    with pytest.raises(ValueError, match="YAML"):
        api.upload_file(
            path_or_fileobj=b"---\nsdk: [gradio\n---\n",
            path_in_repo="README.md",
            repo_id="me/app",
            repo_type="space",
        )
    api.upload_file(
        path_or_fileobj=b"---\nsdk: gradio\napp_file: app.py\n---\n# app\n",
        path_in_repo="README.md",
        repo_id="me/app",
        repo_type="space",
    )
    assert api.space_info("me/app").card_data["sdk"] == "gradio"


def test_private_repo_hidden_without_token_and_delete(hub, api):
    api.create_repo("me/secret", private=True)
    assert api.model_info("me/secret").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url).model_info("me/secret", token=False)
    api.update_repo_settings("me/secret", private=False)
    assert HfApi(endpoint=hub.url).model_info("me/secret", token=False).private is False
    api.delete_repo("me/secret")
    assert not api.repo_exists("me/secret")
    with pytest.raises(RepositoryNotFoundError):
        api.delete_repo("me/secret")


def test_datasets_push_to_hub_reads_back(hub, monkeypatch, tmp_path):
    import datasets
    import datasets.config as dconfig

    monkeypatch.setattr(dconfig, "HF_ENDPOINT", hub.url)
    monkeypatch.setattr(
        dconfig, "HUB_DATASETS_URL", hub.url + "/datasets/{repo_id}/resolve/{revision}/{path}"
    )
    ds = datasets.Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 0]})
    ds.push_to_hub("me/tiny", token=TOKEN)
    files = HfApi(endpoint=hub.url, token=TOKEN).list_repo_files("me/tiny", repo_type="dataset")
    assert "README.md" in files and "data/train-00000-of-00001.parquet" in files
    back = datasets.load_dataset("me/tiny", split="train", token=TOKEN, cache_dir=str(tmp_path / "dcache"))
    assert back["text"] == ["a", "b", "c"] and back["label"] == [0, 1, 0]
    # a second push replaces the shard in place
    datasets.Dataset.from_dict({"text": ["z"], "label": [1]}).push_to_hub("me/tiny", token=TOKEN)
    back = datasets.load_dataset(
        "me/tiny",
        split="train",
        token=TOKEN,
        cache_dir=str(tmp_path / "dcache2"),
        download_mode="force_redownload",
    )
    assert back["text"] == ["z"]
