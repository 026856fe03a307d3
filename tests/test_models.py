"""The models layer: features pooled per family, ONNX Runtime, caching, the one weights policy, one
lookup (local caches first, then the Hub), the offline zoo."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from hf_spider import _paths
from hf_spider.errors import UnsafeWeightsError, UserInputError
from hf_spider.models import extract_features, features, resolve_model, source_probs
from hf_spider.tasks._tiny import make_tiny_onnx_image_model, make_tiny_text_model, make_tiny_vision_model
from hf_spider.testing.hub_server import HubServer

TEXTS = ["good movie", "bad film , awful plot", "the cat", "fresh tweet from iphone one two three", "love"]

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {
        "encoder": make_tiny_text_model(root / "encoder"),
        "st": make_tiny_text_model(root / "st", kind="sentence-transformers", seed=1),
        "classifier": make_tiny_text_model(root / "classifier", kind="classifier", seed=2),
        "pickle": make_tiny_text_model(root / "pickle", safetensors=False),
        "vit": make_tiny_vision_model(root / "vit"),
        "resnet": make_tiny_vision_model(root / "resnet", kind="resnet"),
    }


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (8 + i, 10, 3), dtype=np.uint8)) for i in range(5)]


def _reference_hidden(path, texts):
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path).eval()
    enc = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return model(**enc).last_hidden_state, enc["attention_mask"]


def test_plain_encoder_uses_masked_mean_pooling(models):
    feats = extract_features(models["encoder"], TEXTS, modality="text", use_cache=False)
    hidden, mask = _reference_hidden(models["encoder"], TEXTS)
    m = mask.unsqueeze(-1).float()
    expected = ((hidden * m).sum(1) / m.sum(1)).numpy()
    assert feats.shape == (5, 32) and feats.dtype == np.float32
    assert np.allclose(feats, expected, atol=1e-5)
    # padding must not leak in: batch size 1 gives the same features
    assert np.allclose(
        extract_features(models["encoder"], TEXTS, modality="text", batch_size=1, use_cache=False),
        feats,
        atol=1e-5,
    )


def test_sentence_transformers_repo_matches_sentence_transformers(models):
    from sentence_transformers import SentenceTransformer

    feats = extract_features(models["st"], TEXTS, modality="text", use_cache=False)
    reference = SentenceTransformer(str(models["st"]), device="cpu").encode(TEXTS)
    assert np.allclose(feats, reference, atol=1e-5)
    assert np.allclose(np.linalg.norm(feats, axis=1), 1.0, atol=1e-5)  # the Normalize module


def test_text_classifier_cls_pooling_and_source_probs(models):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    feats = extract_features(models["classifier"], TEXTS, modality="text", use_cache=False)
    hidden, _ = _reference_hidden(models["classifier"], TEXTS)
    assert np.allclose(feats, hidden[:, 0].numpy(), atol=1e-5)
    probs = source_probs(models["classifier"], TEXTS, modality="text", use_cache=False)
    tok = AutoTokenizer.from_pretrained(models["classifier"])
    clf = AutoModelForSequenceClassification.from_pretrained(models["classifier"]).eval()
    with torch.no_grad():
        logits = clf(**tok(TEXTS, padding=True, return_tensors="pt")).logits
    assert probs.shape == (5, 3)
    assert np.allclose(probs, torch.softmax(logits, -1).numpy(), atol=1e-5)
    assert source_probs(models["encoder"], TEXTS, modality="text") is None


def test_vision_models_class_token_and_pooler(models, images):
    from transformers import AutoImageProcessor, AutoModel

    for name, pool in (("vit", "cls"), ("resnet", "pooler")):
        feats = extract_features(models[name], images, modality="image", batch_size=2, use_cache=False)
        proc = AutoImageProcessor.from_pretrained(models[name])
        model = AutoModel.from_pretrained(models[name]).eval()
        with torch.no_grad():
            out = model(**proc(images=[im.convert("RGB") for im in images], return_tensors="pt"))
        expected = out.last_hidden_state[:, 0] if pool == "cls" else out.pooler_output.flatten(1)
        assert np.allclose(feats, expected.numpy(), atol=1e-5), name
    probs = source_probs(models["vit"], images, modality="image", use_cache=False)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert source_probs(models["resnet"], images, modality="image") is None


def test_onnx_model_through_onnx_runtime(tmp_path, images):
    folder, w1, w2 = make_tiny_onnx_image_model(tmp_path / "onnx", size=8)
    feats = extract_features(folder, images, modality="image", use_cache=False)
    # independent recomputation: resize short side to 8, centre-crop 8x8, scale, normalise, mean, matmul
    rows = []
    for im in images:
        w, h = im.size
        r = 8 / min(w, h)
        im = im.resize((max(8, round(w * r)), max(8, round(h * r))), Image.BILINEAR)
        w, h = im.size
        im = im.crop(((w - 8) // 2, (h - 8) // 2, (w - 8) // 2 + 8, (h - 8) // 2 + 8))
        x = (np.asarray(im, np.float32) / 255.0 - 0.5) / 0.5
        rows.append(x.mean(axis=(0, 1)) @ w1)
    assert np.allclose(feats, np.stack(rows), atol=1e-5)
    probs = source_probs(folder, images, modality="image", use_cache=False)
    logits = feats @ w2
    expected = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(probs, expected / expected.sum(1, keepdims=True), atol=1e-5)
    with pytest.raises(UserInputError, match="takes images"):
        extract_features(folder, TEXTS, modality="text", use_cache=False)


def test_onnx_caffe_style_preprocessing(tmp_path, images):
    folder, w1, _ = make_tiny_onnx_image_model(tmp_path / "caffe", size=8, caffe_style=True)
    feats = extract_features(folder, images, modality="image", use_cache=False)
    rows = []
    for im in images:
        im = im.convert("RGB").resize((10, 10), Image.BILINEAR).crop((1, 1, 9, 9))
        bgr = np.asarray(im, np.float32)[..., ::-1] - np.array([104.0, 117.0, 123.0], np.float32)
        rows.append(bgr.mean(axis=(0, 1)) @ w1)
    assert np.allclose(feats, np.stack(rows), atol=1e-3)


def test_features_are_cached_on_disk(models, monkeypatch):
    seen = []
    first = extract_features(
        models["encoder"],
        TEXTS,
        modality="text",
        cache_key="task-a",
        progress=lambda d, t: seen.append((d, t)),
        batch_size=2,
    )
    assert seen == [(2, 5), (4, 5), (5, 5)]
    files = list(_paths.cache_dir("features").glob("*.npy"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("the model ran although the features were cached")

    monkeypatch.setattr(features._Runner, "run", boom)
    assert np.array_equal(
        extract_features(models["encoder"], TEXTS, modality="text", cache_key="task-a"), first
    )
    with pytest.raises(AssertionError):  # another dataset fingerprint is another cache entry
        extract_features(models["encoder"], TEXTS, modality="text", cache_key="task-b")
    with pytest.raises(AssertionError):  # so is another model
        extract_features(models["st"], TEXTS, modality="text", cache_key="task-a")


def test_pickle_weights_refused_unless_allowed(models):
    with pytest.raises(UnsafeWeightsError) as err:
        extract_features(models["pickle"], TEXTS, modality="text")
    assert "allow-pickle" in err.value.one_line()
    feats = extract_features(models["pickle"], TEXTS, modality="text", allow_pickle=True, use_cache=False)
    assert np.allclose(
        feats, extract_features(models["encoder"], TEXTS, modality="text", use_cache=False), atol=1e-5
    )


def test_hub_model_ids_through_loopback(models, tmp_path):
    import shutil

    root = tmp_path / "hub"
    shutil.copytree(models["st"], root / "models" / "org" / "tiny-st")
    shutil.copytree(models["pickle"], root / "models" / "org" / "tiny-pickle")
    with HubServer(root) as hub:
        resolved = resolve_model("org/tiny-st", endpoint=hub.url, cache_dir=tmp_path / "cache")
        assert len(resolved.sha) == 40 and resolved.kind == "transformers"
        feats = extract_features(
            "org/tiny-st", TEXTS, modality="text", endpoint=hub.url, cache_dir=tmp_path / "cache"
        )
        assert np.allclose(
            feats, extract_features(models["st"], TEXTS, modality="text", use_cache=False), atol=1e-6
        )
        with pytest.raises(UnsafeWeightsError):
            extract_features(
                "org/tiny-pickle", TEXTS, modality="text", endpoint=hub.url, cache_dir=tmp_path / "c2"
            )
        assert hub.count(r"tiny-pickle/resolve/.*\.bin") == 0  # refused before downloading
        with pytest.raises(UserInputError, match="not found"):
            extract_features(
                "org/absent", TEXTS, modality="text", endpoint=hub.url, cache_dir=tmp_path / "c3"
            )


def test_local_caches_are_looked_up_first_also_with_an_endpoint(models, tmp_path, monkeypatch):
    """Issue 12 item 7: a model that is right here is used from here, whatever the endpoint says."""
    from hf_spider.zoo._hubcache import write_cache_repo

    cache = tmp_path / "extra-cache"
    commit = write_cache_repo(models["st"], "org/here", cache)
    monkeypatch.setenv("HF_SPIDER_MODEL_CACHES", str(cache))
    dead = "http://127.0.0.1:9"  # nothing listens there: any request would fail
    resolved = resolve_model("org/here", endpoint=dead)
    assert resolved.sha == commit and resolved.path.parents[2] == cache
    feats = extract_features("org/here", TEXTS, modality="text", endpoint=dead, use_cache=False)
    assert np.allclose(
        feats, extract_features(models["st"], TEXTS, modality="text", use_cache=False), atol=1e-6
    )
    # the hardware stage finds it through the same lookup
    from hf_spider.hardware._export import export

    assert export("org/here", "feature-extraction", endpoint=dead).sha == commit


def test_one_pickle_policy_for_every_format_and_stage(models, tmp_path):
    """.bin, .pt, .pth, .ckpt and shards are refused without allow_pickle, by features and export alike."""
    import shutil

    from hf_spider.hardware._export import export
    from hf_spider.models import pickle_only

    assert pickle_only(["pytorch_model-00001-of-00002.bin", "config.json"])
    assert pickle_only(["model.ckpt"]) and pickle_only(["weights.pth"])
    assert not pickle_only(["model.safetensors", "training_args.bin"])
    assert not pickle_only(["config.json", "training_args.bin"])  # not weights
    sharded = tmp_path / "sharded"
    shutil.copytree(models["pickle"], sharded)
    (sharded / "pytorch_model.bin").rename(sharded / "pytorch_model-00001-of-00001.bin")
    for call in (
        lambda: extract_features(sharded, TEXTS, modality="text"),
        lambda: export(sharded, "feature-extraction"),
    ):
        with pytest.raises(UnsafeWeightsError, match="only pickle weights"):
            call()


def test_wrong_modality_and_unknown_model(models, images, tmp_path, monkeypatch):
    with pytest.raises(UserInputError, match="image processor"):
        extract_features(models["encoder"], images, modality="image", use_cache=False)
    monkeypatch.setenv("HF_SPIDER_ZOO", str(tmp_path / "empty-zoo"))
    with pytest.raises(UserInputError, match="not in the local caches"):
        extract_features("org/not-anywhere", TEXTS, modality="text", offline=True)
    with pytest.raises(UserInputError, match="unknown modality"):
        extract_features(models["encoder"], TEXTS, modality="audio")


# -- the offline zoo -----------------------------------------------------------------------------


def _zoo_snapshot(repo_id):
    hub = _paths.zoo_dir() / "hub" / f"models--{repo_id.replace('/', '--')}"
    snaps = sorted((hub / "snapshots").glob("*")) if hub.is_dir() else []
    if not snaps:
        pytest.skip(f"{repo_id} not in the offline zoo")
    return snaps[0]


@pytest.mark.zoo
def test_zoo_minilm_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    snap = _zoo_snapshot("sentence-transformers/all-MiniLM-L6-v2")
    feats = extract_features("sentence-transformers/all-MiniLM-L6-v2", TEXTS, modality="text", offline=True)
    reference = SentenceTransformer(str(snap), device="cpu").encode(TEXTS)
    assert feats.shape == (5, 384)
    assert np.allclose(feats, reference, atol=1e-4)


@pytest.mark.zoo
def test_zoo_efficientnet_lite0_features_and_imagenet_probs(images):
    _zoo_snapshot("timm/tf_efficientnet_lite0.in1k")
    feats = extract_features("timm/tf_efficientnet_lite0.in1k", images, modality="image", offline=True)
    assert feats.shape == (5, 1280) and np.isfinite(feats).all() and (feats >= 0).all()  # after ReLU6 + avg
    probs = source_probs("timm/tf_efficientnet_lite0.in1k", images, modality="image", offline=True)
    assert probs.shape == (5, 1000) and np.allclose(probs.sum(1), 1.0, atol=1e-4)


@pytest.mark.zoo
def test_zoo_open_nsfw_onnx_features_and_probs(images):
    _zoo_snapshot("hf-spider-zoo/open-nsfw-onnx")
    feats = extract_features("hf-spider-zoo/open-nsfw-onnx", images, modality="image", offline=True)
    assert feats.shape == (5, 1024) and np.isfinite(feats).all()
    probs = source_probs("hf-spider-zoo/open-nsfw-onnx", images, modality="image", offline=True)
    assert probs.shape == (5, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-4)


@pytest.mark.zoo
def test_zoo_fine_tuned_variants_have_their_source_heads(images):
    _zoo_snapshot("hf-spider-zoo/efficientnet-lite0-digits")
    probs = source_probs("hf-spider-zoo/efficientnet-lite0-digits", images, modality="image", offline=True)
    assert probs.shape == (5, 10) and np.allclose(probs.sum(1), 1.0, atol=1e-4)
    _zoo_snapshot("hf-spider-zoo/all-MiniLM-L6-v2-debates-2016")
    probs = source_probs("hf-spider-zoo/all-MiniLM-L6-v2-debates-2016", TEXTS, modality="text", offline=True)
    assert probs.shape == (5, 3) and np.allclose(probs.sum(1), 1.0, atol=1e-4)


@pytest.mark.zoo
def test_zoo_installs_the_lite_models_under_their_hub_ids(images):
    """The default image probe encoder is a real Hub id, the zoo's own repo of it served offline."""
    from hf_spider.tasks import PROBE_MODELS
    from hf_spider.zoo.specs import MODELS

    repo_id = PROBE_MODELS["image"]
    assert repo_id == "timm/tf_efficientnet_lite0.in1k" and MODELS[repo_id].on_hub
    snapshot = _zoo_snapshot(repo_id)
    resolved = resolve_model(repo_id, offline=True)
    assert resolved.kind == "efficientnet-lite"
    assert (resolved.path / "model.safetensors").resolve() == (snapshot / "model.safetensors").resolve()
    feats = extract_features(PROBE_MODELS["image"], images, modality="image", offline=True, use_cache=False)
    assert feats.shape == (len(images), 1280)
