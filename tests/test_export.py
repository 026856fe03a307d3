"""Export to ONNX with optimum (real tiny models), ONNX repos used as they are, safety checks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from test_hardware_fixtures import tiny_bert, tiny_vit

from hf_spider.cli import main
from hf_spider.errors import UnsafeWeightsError, UserInputError
from hf_spider.hardware._export import ExportedModel, export
from hf_spider.hardware._runtime import make_session, sample_outputs
from hf_spider.hardware.sample import TaskSample, feeds_for
from hf_spider.models import folder_sha


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="module")
def vit_dir(tmp_path_factory):
    return tiny_vit(tmp_path_factory.mktemp("models") / "tiny-vit")


def test_optimum_exports_a_text_classifier_that_matches_torch(bert_dir, tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification

    exported = export(bert_dir, "auto", tmp_path / "out")
    assert exported.method.startswith("optimum") and exported.task_kind == "text-classification"
    assert (exported.output_name, exported.output_kind, exported.modality) == ("logits", "logits", "text")
    assert exported.path.exists() and (exported.dir / "tokenizer.json").exists()

    sample = TaskSample.synthetic("text", n=6)
    feeds = feeds_for(exported, sample)
    onnx_logits = sample_outputs(make_session(exported.path, 1), feeds, 4, "logits")
    model = AutoModelForSequenceClassification.from_pretrained(bert_dir).eval()
    with torch.no_grad():
        torch_logits = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)


def test_export_is_cached_by_model_sha(bert_dir, tmp_path):
    first = export(bert_dir, "text-classification", tmp_path / "out")
    mtime = first.path.stat().st_mtime_ns
    again = export(bert_dir, "text-classification", tmp_path / "out")
    assert again.path.stat().st_mtime_ns == mtime and again.sha == first.sha
    assert ExportedModel.load(first.dir).sha == folder_sha(bert_dir)


def test_vit_feature_extraction_uses_its_image_processor(vit_dir, tmp_path):
    exported = export(vit_dir, "feature-extraction", tmp_path / "vit")
    assert exported.modality == "image" and exported.output_kind == "features"
    feeds = feeds_for(exported, TaskSample.synthetic("image", n=3))
    assert feeds["pixel_values"].shape == (3, 3, 32, 32)
    features = sample_outputs(make_session(exported.path, 1), feeds, 2, exported.output_name)
    assert features.shape == (3, 64) and np.isfinite(features).all()


def test_onnx_repo_is_used_as_is(bert_dir, tmp_path):
    exported = export(bert_dir, "text-classification", tmp_path / "src")
    repo = tmp_path / "onnx-repo"
    repo.mkdir()
    shutil.copy(exported.path, repo / "model.onnx")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(exported.dir / name, repo / name)
    (repo / "hf_spider_onnx.json").write_text(
        json.dumps({"modality": "text", "output_name": "logits", "output_kind": "logits"})
    )
    as_is = export(repo, "auto", tmp_path / "as-is")
    assert as_is.method.startswith("onnx-as-is")
    assert as_is.path.read_bytes() == exported.path.read_bytes()


def test_pickle_only_weights_are_refused(tmp_path):
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path / "pickled"
    BertModel(
        BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    ).save_pretrained(folder, safe_serialization=False)
    assert (folder / "pytorch_model.bin").exists()
    with pytest.raises(UnsafeWeightsError, match="pickle"):
        export(folder, "feature-extraction", tmp_path / "out")
    del torch


def test_bad_inputs_are_user_errors(tmp_path, capsys):
    with pytest.raises(UserInputError, match="unknown task kind"):
        export(tmp_path, "object-detection")
    with pytest.raises(UserInputError, match="does not exist"):
        export("./no/such/folder/here")
    code = main(["bench", str(tmp_path / "missing" / "x" / "y"), "--variants", "fp32"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_repo_id_is_downloaded_from_the_loopback_hub(bert_dir, tmp_path):
    from hf_spider.testing import HubServer

    root = tmp_path / "hub"
    shutil.copytree(bert_dir, root / "models" / "org" / "tiny-bert")
    (root / "models" / "org" / "tiny-bert" / ".hub.json").write_text(json.dumps({"private": True}))
    with HubServer(root, token="hf_secret") as hub:
        exported = export("org/tiny-bert", "auto", tmp_path / "out", endpoint=hub.url, token="hf_secret")
        assert exported.model_id == "org/tiny-bert" and exported.method.startswith("optimum")
        assert hub.count("resolve") > 0, hub.requests
        with pytest.raises(UserInputError, match="not found"):
            export("org/does-not-exist", "auto", tmp_path / "out2", endpoint=hub.url, token="hf_secret")
