"""The hardware stage on the real offline-zoo models (skipped when the zoo is not installed)."""

from __future__ import annotations

import numpy as np
import pytest

from hf_spider import _paths
from hf_spider.hardware import DeviceTarget, MeasureConfig, make_variants, measure
from hf_spider.hardware._export import export
from hf_spider.hardware._runtime import make_session, sample_outputs
from hf_spider.hardware.sample import TaskSample, feeds_for
from hf_spider.testing import force_hub_offline

pytestmark = pytest.mark.zoo

FAST = MeasureConfig(iterations=5, min_seconds=0.1, warmup=1, threads=1, batch=4, memory=False)


def _need(repo: str) -> None:
    name = "models--" + repo.replace("/", "--")
    if not (_paths.zoo_dir() / "hub" / name).is_dir():
        pytest.skip(f"{repo} is not in the offline zoo (hf-spider zoo install)")


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    force_hub_offline(monkeypatch)


def test_efficientnet_lite_goes_through_torch_onnx_and_matches_torch(tmp_path):
    _need("timm/tf_efficientnet_lite0.in1k")
    import torch

    from hf_spider.models.efficientnet_lite import from_pretrained

    exported = export("timm/tf_efficientnet_lite0.in1k", "auto", tmp_path / "lite0")
    assert exported.method.startswith("torch.onnx") and exported.output_kind == "features"
    feeds = feeds_for(exported, TaskSample.synthetic("image", n=2))
    onnx_features = sample_outputs(make_session(exported.path, 1), feeds, 2, "features")
    net = from_pretrained("timm/tf_efficientnet_lite0.in1k", cache_dir=_paths.zoo_dir() / "hub").eval()
    with torch.no_grad():
        torch_features = net.forward_features(torch.from_numpy(feeds["pixel_values"])).numpy()
    assert onnx_features.shape == (2, 1280)
    np.testing.assert_allclose(onnx_features, torch_features, rtol=1e-3, atol=1e-3)


def test_open_nsfw_onnx_is_used_as_is_with_its_preprocessing(tmp_path):
    _need("hf-spider-zoo/open-nsfw-onnx")
    exported = export("hf-spider-zoo/open-nsfw-onnx", "auto", tmp_path / "nsfw")
    assert exported.method.startswith("onnx-as-is") and exported.output_name == "features"
    feeds = feeds_for(exported, TaskSample.synthetic("image", n=2))
    assert list(feeds) == ["input_0"]
    pixels = feeds["input_0"]
    assert pixels.shape == (2, 224, 224, 3) and pixels.max() > 50  # BGR 0..255 minus the Caffe means
    fp32, int8 = make_variants(exported, ["fp32", "int8-static"], DeviceTarget.resolve("local"), feeds)
    ref = measure(fp32, None, feeds, config=FAST)
    result = measure(int8, None, feeds, reference=ref["outputs"], config=FAST)
    assert result["figures"]["file_size_mb"]["value"] < 0.5 * ref["figures"]["file_size_mb"]["value"]
    assert result["figures"]["fidelity"]["value"] > 0.9


def test_sentence_transformer_export_matches_sentence_transformers(tmp_path):
    _need("sentence-transformers/all-MiniLM-L6-v2")
    from huggingface_hub import snapshot_download
    from sentence_transformers import SentenceTransformer

    exported = export("sentence-transformers/all-MiniLM-L6-v2", "auto", tmp_path / "minilm")
    assert "sentence_transformers" in exported.method and exported.output_name == "sentence_embedding"
    sample = TaskSample.synthetic("text", n=4)
    onnx_emb = sample_outputs(
        make_session(exported.path, 1), feeds_for(exported, sample), 4, exported.output_name
    )
    folder = snapshot_download("sentence-transformers/all-MiniLM-L6-v2", cache_dir=_paths.zoo_dir() / "hub")
    st_emb = SentenceTransformer(folder, device="cpu").encode(sample.texts, normalize_embeddings=False)
    cos = (onnx_emb * st_emb).sum(1) / np.linalg.norm(onnx_emb, axis=1) / np.linalg.norm(st_emb, axis=1)
    assert cos.min() > 0.999
