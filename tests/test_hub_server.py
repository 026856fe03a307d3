"""The loopback Hub server, driven by huggingface_hub's real client code over real HTTP."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import requests
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError, RepositoryNotFoundError

from hf_spider.testing import Faults, HubServer, json_response, write_repo


def _safetensors(shape=(10, 5)) -> bytes:
    header = json.dumps(
        {"w": {"dtype": "F32", "shape": list(shape), "data_offsets": [0, 4 * shape[0] * shape[1]]}}
    )
    return struct.pack("<Q", len(header)) + header.encode() + b"\0" * (4 * shape[0] * shape[1])


@pytest.fixture
def hub_root(tmp_path):
    for i in range(5):
        write_repo(
            tmp_path,
            f"org/model-{i}",
            {
                "README.md": f"---\nlicense: mit\ndatasets: [imdb]\nbase_model: org/base\n---\n# model {i}\n",
                "config.json": {
                    "model_type": "bert",
                    "architectures": ["BertForSequenceClassification"],
                    "hidden_size": 8,
                },
                "model.safetensors": _safetensors(),
            },
            meta={"downloads": 10 * i, "likes": i},
        )
    write_repo(tmp_path, "timm/resnet", {"config.json": {"architecture": "resnet50", "num_features": 2048}})
    write_repo(
        tmp_path,
        "org/data",
        {"README.md": "---\nlicense: cc0-1.0\n---\n", "train.csv": "a,b\n1,2\n"},
        repo_type="dataset",
    )
    return tmp_path


def test_listing_paginates_with_link_header_and_expands(hub_root):
    with HubServer(hub_root, page_size=2) as hub:
        api = HfApi(endpoint=hub.url)
        models = list(
            api.list_models(expand=["sha", "cardData", "config", "safetensors", "downloads", "baseModels"])
        )
        assert sorted(m.id for m in models) == [*(f"org/model-{i}" for i in range(5)), "timm/resnet"]
        assert hub.count(r"^/api/models$") == 3  # 6 models, 2 a page
        bert = next(m for m in models if m.id == "org/model-3")
        assert bert.safetensors.total == 50 and bert.downloads == 30
        assert bert.card_data.license == "mit" and bert.config["model_type"] == "bert"
        assert len(bert.sha) == 40
        top = list(api.list_models(sort="downloads", direction=-1, limit=2))
        assert [m.id for m in top] == ["org/model-4", "org/model-3"]
        assert [m.id for m in api.list_models(filter="timm")] == ["timm/resnet"]
        assert len(list(api.list_models(pipeline_tag="text-classification"))) == 5


def test_model_info_resolve_and_sha_follows_content(hub_root):
    with HubServer(hub_root) as hub:
        api = HfApi(endpoint=hub.url)
        info = api.model_info("org/model-1")
        assert info.library_name == "transformers" and info.pipeline_tag == "text-classification"
        assert {s.rfilename for s in info.siblings} == {"README.md", "config.json", "model.safetensors"}
        assert "dataset:imdb" in info.tags
        path = hf_hub_download("org/model-1", "config.json", endpoint=hub.url, cache_dir=hub_root / "cache")
        assert json.loads(Path(path).read_text())["hidden_size"] == 8
        head = requests.head(f"{hub.url}/org/model-1/resolve/main/config.json")
        assert head.headers["X-Repo-Commit"] == info.sha and head.headers["ETag"].startswith('"')
        assert (
            int(head.headers["Content-Length"])
            == (hub_root / "models/org/model-1/config.json").stat().st_size
        )
        part = requests.get(f"{hub.url}/org/model-1/resolve/main/config.json", headers={"Range": "bytes=0-4"})
        assert part.status_code == 206 and len(part.content) == 5
        # unchanged content -> same sha; changed content -> new sha
        assert api.model_info("org/model-1").sha == info.sha
        (hub_root / "models/org/model-1/README.md").write_text("---\nlicense: apache-2.0\n---\n")
        assert api.model_info("org/model-1").sha != info.sha
        with pytest.raises(EntryNotFoundError):
            hf_hub_download("org/model-1", "nope.json", endpoint=hub.url, cache_dir=hub_root / "cache")
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("org/absent")


def test_tree_paths_info_and_dataset_repos(hub_root):
    with HubServer(hub_root) as hub:
        api = HfApi(endpoint=hub.url)
        names = {f.path for f in api.list_repo_tree("org/model-0", recursive=True)}
        assert names == {"README.md", "config.json", "model.safetensors"}
        assert [p.path for p in api.get_paths_info("org/model-0", ["config.json", "missing"])] == [
            "config.json"
        ]
        assert api.dataset_info("org/data").card_data.license == "cc0-1.0"
        path = hf_hub_download(
            "org/data", "train.csv", repo_type="dataset", endpoint=hub.url, cache_dir=hub_root / "c"
        )
        assert Path(path).read_text() == "a,b\n1,2\n"
        assert [d.id for d in api.list_datasets()] == ["org/data"]


def test_token_check(hub_root):
    with HubServer(hub_root, token="hf_right", require_auth=True) as hub:
        assert HfApi(endpoint=hub.url, token="hf_right").model_info("org/model-0").id == "org/model-0"
        with pytest.raises(HfHubHTTPError) as wrong:
            HfApi(endpoint=hub.url, token="hf_wrong").model_info("org/model-0")
        assert wrong.value.response.status_code == 401
        assert requests.get(f"{hub.url}/api/models").status_code == 401
        assert HfApi(endpoint=hub.url, token="hf_right").whoami()["name"] == hub.user


def test_fault_injection(hub_root):
    with HubServer(hub_root, faults=Faults(rate_429=1.0, retry_after=7)) as hub:
        response = requests.get(f"{hub.url}/api/models")
        assert response.status_code == 429 and response.headers["Retry-After"] == "7"
    faults = Faults(rate_503=0.5, seed=1)
    with HubServer(hub_root, faults=faults) as hub:
        codes = [requests.get(f"{hub.url}/api/models/org/model-0").status_code for _ in range(40)]
        assert 10 < codes.count(503) < 30 and set(codes) == {200, 503}
    faults = Faults(malformed_yaml=frozenset({"org/model-0"}), missing_config=frozenset({"org/model-1"}))
    with HubServer(hub_root, faults=faults) as hub:
        api = HfApi(endpoint=hub.url)
        assert api.model_info("org/model-0").card_data is None  # YAML no longer parses
        readme = requests.get(f"{hub.url}/org/model-0/resolve/main/README.md").text
        assert readme.startswith("---\n") and "# model 0" in readme
        assert "config.json" not in {s.rfilename for s in api.model_info("org/model-1").siblings}


def test_add_route_extension_point(hub_root):
    with HubServer(hub_root) as hub:
        hub.add_route("POST", r"/api/repos/create", lambda req: json_response({"echo": req.json()["name"]}))
        hub.add_route(
            "GET", r"/api/models/(?P<repo>[^/]+/[^/]+)", lambda req: json_response({"id": "override"})
        )
        assert requests.post(f"{hub.url}/api/repos/create", json={"name": "x"}).json() == {"echo": "x"}
        assert requests.get(f"{hub.url}/api/models/org/model-0").json() == {"id": "override"}
        assert hub.count("/api/repos/create", method="POST") == 1


def test_datasets_library_loads_a_dataset_repo(tmp_path):
    """`datasets.load_dataset` (HfFileSystem: paths-info, tree, resolve) reads CSV and parquet repos."""
    import os
    import subprocess
    import sys

    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = "".join(f"t{i},{i % 2}\n" for i in range(20))
    write_repo(
        tmp_path,
        "org/csv",
        {"README.md": "---\nlicense: mit\n---\n", "train.csv": "text,label\n" + rows},
        repo_type="dataset",
    )
    (tmp_path / "datasets/org/pq/data").mkdir(parents=True)
    pq.write_table(
        pa.table({"x": [1, 2, 3], "label": [0, 1, 0]}),
        tmp_path / "datasets/org/pq/data/train-00000-of-00001.parquet",
    )
    code = (
        "import datasets\n"
        "a = datasets.load_dataset('org/csv', split='train')\n"
        "b = datasets.load_dataset('org/pq', split='train')\n"
        "print(a.num_rows, a.column_names, b.num_rows, b[2])\n"
    )
    with HubServer(tmp_path) as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "20 ['text', 'label'] 3 {'x': 3, 'label': 0}"
