"""The ranker: shipped weights offline, two stages, save/load, train CLI, cards-only ranking."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_eval_ranking import make_records

from hf_spider.catalog import Catalog, ModelToken, crawl
from hf_spider.cli import main
from hf_spider.ranker import Ranker, rank_catalog
from hf_spider.ranker.model import RankerConfig
from hf_spider.ranker.ranker import WEIGHTS_DIR
from hf_spider.ranker.records import load_records
from hf_spider.ranker.trainer import train_ranker
from hf_spider.testing import force_hub_offline

REPO = Path(__file__).resolve().parents[1]
BEANS = {"name": "beans", "modality": "image", "num_classes": 3, "num_examples": 1034}


@pytest.fixture(scope="module")
def shipped() -> Ranker:
    return Ranker.default()


def test_shipped_weights_load_offline_and_rank(shipped, monkeypatch):
    force_hub_offline(monkeypatch)
    assert (WEIGHTS_DIR / "model.safetensors").is_file() and (WEIGHTS_DIR / "README.md").is_file()
    size = sum(p.stat().st_size for p in WEIGHTS_DIR.iterdir())
    assert size < 2_000_000  # small enough to ship in the wheel
    catalog = Catalog.load("model_cards")
    images = [t for t in catalog if t.modality == "image"]
    result = shipped.rank(images, BEANS)
    assert len(result.ranking) == len(images)
    scores = [s for _, s in result.ranking]
    assert scores == sorted(scores, reverse=True) and np.isfinite(scores).all()
    assert result.ranking == result.stage1  # stage 2 is hf_spider.probe, not the ranker
    # history matters: the collaborative signal lifts models that did well on earlier targets
    assert len(shipped.history) > 300 and len(shipped.datasets) >= 15


def test_unseen_model_is_scored_from_its_card(shipped):
    fresh = ModelToken(
        model_id="someone/brand-new-vit",
        modality="image",
        pipeline_tag="image-classification",
        library="transformers",
        architecture="ViTForImageClassification",
        model_type="vit",
        family="vit",
        num_parameters=86_000_000,
        datasets=["imagenet-21k"],
    )
    tiny = ModelToken(
        model_id="someone/tiny", modality="image", model_type="vit", family="vit", num_parameters=5_000_000
    )
    scores = shipped.score([fresh, tiny], BEANS)
    assert set(scores) == {"someone/brand-new-vit", "someone/tiny"}
    assert scores["someone/brand-new-vit"] != scores["someone/tiny"]


def test_train_is_deterministic_and_round_trips(tmp_path):
    data = make_records(tmp_path / "img", n_models=12, n_targets=4)
    recs = load_records([data])
    cfg = RankerConfig(steps=15, ensemble=2, step_grid=(5, 15), inner_folds=2, min_residual_datasets=3)
    _, info = train_ranker(recs, config=cfg, seed=7, catalog=False)
    assert info["config"]["steps"] in (0, 5, 15) and set(info["chosen"]) == {"image"}
    assert set(info["chosen"]["image"]["cv"]["steps"]) == {"0", "5", "15"}  # 0: the prior alone
    a, _ = train_ranker(recs, config=cfg, seed=7, tune=False, catalog=False)
    b, _ = train_ranker(recs, config=cfg, seed=7, tune=False, catalog=False)
    a.save_pretrained(tmp_path / "a")
    b.save_pretrained(tmp_path / "b")
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (
        tmp_path / "b" / "model.safetensors"
    ).read_bytes()
    loaded = Ranker.from_pretrained(tmp_path / "a")
    tokens = [
        ModelToken(model_id=f"org/image-{i}", modality="image", num_parameters=10**6 * (i + 1))
        for i in range(12)
    ]
    task = {"name": "new", "modality": "image", "num_classes": 4}
    assert loaded.score(tokens, task) == pytest.approx(a.score(tokens, task))


def test_train_cli_writes_weights_and_card(tmp_path, capsys):
    data = make_records(tmp_path / "img", n_models=10, n_targets=3)
    out = tmp_path / "weights"
    code = main(
        [
            "train",
            "--data",
            str(data),
            "--out",
            str(out),
            "--no-tune",
            "--steps",
            "5",
            "--json",
            str(tmp_path / "i.json"),
        ]
    )
    assert code == 0
    assert {"config.json", "model.safetensors", "README.md", "history.json"} <= {
        p.name for p in out.iterdir()
    }
    assert "Plackett-Luce" in (out / "README.md").read_text()
    assert json.loads((tmp_path / "i.json").read_text())["config"]["steps"] == 5
    capsys.readouterr()
    code = main(["train", "--data", str(tmp_path / "missing"), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0]


def test_weights_pushed_to_a_hub_load_from_it_safetensors_only_and_fail_fast_offline(hub, tmp_path, capsys):
    """`train --push-to-hub` to another Hub (here a loopback one) and `--ranker org/name` from it:
    the pushed weights rank as the folder does, and then load from the cache with no network. A
    repo with only pickle weights is refused, and with no network and no cached copy the one-line
    error comes at once, not after huggingface_hub's minutes of retries."""
    import contextlib
    import time

    from huggingface_hub import HfApi

    from hf_spider.errors import CatalogError, HubConnectionError, UserInputError
    from tests.conftest import HUB_TOKEN

    data = make_records(tmp_path / "img", n_models=10, n_targets=3)
    out = tmp_path / "weights"
    train = ["train", "--data", str(data), "--out", str(out), "--no-tune", "--steps", "5"]
    # a malformed repo id or a refused token stops in one line before the training, not after it
    for repo, token, says in (("bad id!", HUB_TOKEN, "invalid repo id"), ("me/ranker", "hf_wrong", "401")):
        assert main([*train, "--push-to-hub", repo, "--endpoint", hub.url, "--token", token]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert says in line and not out.exists()
    push = ["--push-to-hub", "me/ranker", "--endpoint", hub.url, "--token", HUB_TOKEN]
    assert main([*train, *push]) == 0
    assert "Traceback" not in capsys.readouterr().err
    assert {"config.json", "model.safetensors", "history.json"} <= {
        p.name for p in hub.repo_dir("models", "me/ranker").iterdir()
    }
    task = {"name": "t_new", "modality": "image", "num_classes": 5, "num_examples": 500}
    local = Ranker.from_pretrained(out)
    tokens = [ModelToken(model_id=m, modality="image") for m in local.history]
    pulled = Ranker.from_pretrained("me/ranker", endpoint=hub.url)
    assert pulled.rank(tokens, task).ranking == local.rank(tokens, task).ranking

    api = HfApi(endpoint=hub.url, token=HUB_TOKEN)
    api.create_repo("me/pickled-ranker")
    for name, content in (("config.json", (out / "config.json").read_bytes()), ("pytorch_model.bin", b"x")):
        with contextlib.suppress(ValueError):  # applied; huggingface_hub misreads this Hub's reply
            api.upload_file(path_or_fileobj=content, path_in_repo=name, repo_id="me/pickled-ranker")
    with pytest.raises(CatalogError, match=r"no config\.json and model\.safetensors"):
        Ranker.from_pretrained("me/pickled-ranker", endpoint=hub.url)

    with pytest.raises(UserInputError, match="neither a folder nor a Hub repo id"):
        Ranker.from_pretrained("a b/c", endpoint=hub.url)  # not "retry later"
    started = time.perf_counter()
    with pytest.raises(HubConnectionError, match="could not be reached"):
        Ranker.from_pretrained("me/never-fetched", endpoint="http://127.0.0.1:9")
    assert time.perf_counter() - started < 10
    with pytest.MonkeyPatch.context() as offline:  # fetched once: no network needed
        force_hub_offline(offline)
        again = Ranker.from_pretrained("me/ranker", endpoint=hub.url)
    assert again.rank(tokens, task).ranking == local.rank(tokens, task).ranking


def _repo(root: Path, model_id: str, files: dict[str, str]) -> None:
    folder = root / model_id
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text)


def _models_dir(root: Path) -> Path:
    """Hub-layout repos: transformers-style and timm-style cards with their configs."""
    tf_card = "---\nlibrary_name: transformers\npipeline_tag: image-classification\ndatasets:\n- {ds}\nlicense: apache-2.0\n---\n# {name}\n"
    _repo(
        root,
        "google/vit-base-patch16-224",
        {
            "README.md": tf_card.format(ds="imagenet-21k", name="ViT base"),
            "config.json": json.dumps(
                {
                    "model_type": "vit",
                    "architectures": ["ViTForImageClassification"],
                    "hidden_size": 768,
                    "image_size": 224,
                    "num_hidden_layers": 12,
                    "id2label": {str(i): f"c{i}" for i in range(1000)},
                }
            ),
        },
    )
    _repo(
        root,
        "someone/vit-tiny-beans",
        {
            "README.md": tf_card.format(ds="beans", name="tiny"),
            "config.json": json.dumps(
                {
                    "model_type": "vit",
                    "architectures": ["ViTForImageClassification"],
                    "hidden_size": 192,
                    "image_size": 224,
                    "num_hidden_layers": 12,
                    "id2label": {"0": "a", "1": "b", "2": "c"},
                }
            ),
        },
    )
    timm_card = "---\nlibrary_name: timm\ntags:\n- image-classification\n- timm\ndatasets:\n- imagenet-1k\nlicense: apache-2.0\n---\n# {arch}\n"
    for arch, feats in (("resnet50.a1_in1k", 2048), ("convnext_tiny.fb_in22k", 768)):
        _repo(
            root,
            f"timm/{arch}",
            {
                "README.md": timm_card.format(arch=arch),
                "config.json": json.dumps(
                    {
                        "architecture": arch.split(".")[0],
                        "num_classes": 1000,
                        "num_features": feats,
                        "pretrained_cfg": {"input_size": [3, 224, 224]},
                    }
                ),
            },
        )
    return root


def _dataset_card(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "README.md").write_text(
        "---\ntask_categories:\n- image-classification\npretty_name: Beans\ndataset_info:\n  features:\n"
        "  - name: image\n    dtype: image\n  - name: labels\n    dtype:\n      class_label:\n        names:\n"
        "          '0': angular_leaf_spot\n          '1': bean_rust\n          '2': healthy\n"
        "  splits:\n  - name: train\n    num_examples: 1034\n---\n# Beans\nLeaf images of bean plants, three classes.\n"
    )
    return root


def test_rank_catalog_from_cards_only(tmp_path, shipped):
    models = _models_dir(tmp_path / "models")
    crawl(tmp_path / "catalog", from_dir=models)
    catalog = Catalog.load(tmp_path / "catalog")
    assert len(catalog) == 4
    card = _dataset_card(tmp_path / "beans")
    ranking = rank_catalog(catalog, card, ranker=shipped)
    assert [m for m, _ in ranking] and len(ranking) == 4
    assert {m for m, _ in ranking} == set(catalog.model_ids)
    assert all(np.isfinite(s) for _, s in ranking)
    # the same from a folder path and a task dict
    again = rank_catalog(
        tmp_path / "catalog", {"name": "beans", "modality": "image", "num_classes": 3, "num_examples": 1034}
    )
    assert {m for m, _ in again} == {m for m, _ in ranking}
    # a model directory (not a catalog) is crawled on the fly
    direct = rank_catalog(models, card, ranker=shipped)
    assert [m for m, _ in direct] == [m for m, _ in ranking]
    # the two timm cards state no fact (median, a tie): ties go by id, not by the catalog's order
    reversed_order = shipped.rank(list(reversed(list(catalog))), card).ranking
    assert [m for m, _ in reversed_order] == [m for m, _ in ranking]
    ties = [m for m, s in ranking if s == dict(ranking)["timm/resnet50.a1_in1k"]]
    assert ties == sorted(ties) and len(ties) >= 2


def test_card_prior_ranks_an_unseen_model_from_its_card(tmp_path):
    """Fitted on synthetic records where accuracy grows with size, the card prior puts an unseen
    big model above an unseen small one, and the trained ranker carries it (saved and reloaded)."""
    from hf_spider.ranker import inference as I
    from hf_spider.ranker import priors as P
    from hf_spider.ranker import training as T
    from hf_spider.ranker.tokens import tokens_for

    recs = load_records([make_records(tmp_path / "img", n_models=16, n_targets=4)])
    tokens, _ = tokens_for(recs, catalog=False)
    matrix = recs.perf.pivot_table(index="model", columns="dataset", values="accuracy")
    ridge = T.fit_card_prior(P.percentiles(matrix), tokens)
    big = ModelToken(model_id="new/big", modality="image", model_type="vit", num_parameters=250_000_000)
    small = ModelToken(model_id="new/small", modality="image", model_type="vit", num_parameters=6_000_000)
    prior = T.card_prior_of(ridge, ["new/big", "new/small"], {"new/big": big, "new/small": small})
    assert prior["new/big"] > prior["new/small"] + 0.2
    # a cold model's context carries its card prior; one with history keeps its history prior
    seen = "org/image-0"
    ctx = I.build_context(
        {"name": "t", "modality": "image"},
        ["new/big", seen],
        {**tokens, "new/big": big},
        {seen: [({"name": "x"}, 0.1)]},
        card_prior={"new/big": prior["new/big"], seen: 0.9},
    )
    assert ctx.summary[0, 0] == pytest.approx(prior["new/big"] - 0.5)
    assert ctx.summary[1, 0] == pytest.approx(0.1 - 0.5)
    cfg = RankerConfig(steps=5, ensemble=1)
    ranker, _ = train_ranker(recs, config=cfg, seed=0, tune=False, catalog=False)
    assert ranker.card_prior["image"]["kind"] == "cold" and ranker.card_prior["image"]["facts"]["coef"]
    ranker.save_pretrained(tmp_path / "w")
    loaded = Ranker.from_pretrained(tmp_path / "w")
    assert loaded.card_prior == ranker.card_prior
    scores = loaded.score([big, small], {"name": "new", "modality": "image", "num_classes": 4})
    assert scores["new/big"] > scores["new/small"]


def test_a_ranker_trained_on_too_few_models_places_no_unseen_model_by_its_card(tmp_path):
    """With fewer than 10 models the card prior cannot be cross-validated (`cold.can_place`): the
    trained ranker keeps it for the histories it is mixed into, but scores an unseen model at the
    median of the models it knows, however big its card says it is. Trained on 16, the card counts."""
    seen_task = {"name": "new", "modality": "image", "num_classes": 4}
    big = ModelToken(model_id="new/big", modality="image", model_type="vit", num_parameters=250_000_000)
    small = ModelToken(model_id="new/small", modality="image", model_type="vit", num_parameters=6_000_000)
    cfg = RankerConfig(steps=0, ensemble=1)
    for n_models, placed in ((8, False), (16, True)):
        recs = load_records([make_records(tmp_path / f"img{n_models}", n_models=n_models, n_targets=4)])
        ranker, _ = train_ranker(recs, config=cfg, seed=0, tune=False, catalog=False)
        assert ranker.card_prior["image"].get("places_cold", True) is placed
        ranker.save_pretrained(tmp_path / f"w{n_models}")
        loaded = Ranker.from_pretrained(tmp_path / f"w{n_models}")
        known = [ModelToken(model_id=m, modality="image") for m in sorted(loaded.history)]
        ctx = loaded.context([big, small, *known], seen_task)
        priors = ctx.summary[:, 0]
        if placed:
            assert priors[0] > priors[1]
        else:
            assert priors[0] == priors[1] == pytest.approx(float(np.median(priors[2:])))
            assert np.ptp(priors[2:]) > 0


SHIPPED_DATA = [
    Path(__file__).resolve().parents[2] / "shared" / "data" / "transfergraph" / "image",
    Path(__file__).resolve().parents[2] / "shared" / "data" / "transfergraph" / "text",
    Path(__file__).resolve().parents[1] / "benchmarks" / "zoo_records" / "image",
    Path(__file__).resolve().parents[1] / "benchmarks" / "zoo_records" / "text",
]


@pytest.mark.skipif(not SHIPPED_DATA[0].is_dir(), reason="shared records absent")
def test_train_reproduces_the_shipped_weights(tmp_path):
    """The documented `hf-spider train` command rebuilds the shipped weights (docs/ranker.md).

    Discrete choices (config, priors, history) must match exactly. Weights and scores are compared
    with tolerances that float32 on another CPU justifies: reductions in a different order move
    single weights by ~1e-5 and scores by far less than the gap between neighbouring models.
    """
    from safetensors.numpy import load_file
    from scipy.stats import weightedtau

    out = tmp_path / "weights"
    assert main(["train", "--data", *map(str, SHIPPED_DATA), "--out", str(out), "--seed", "0"]) == 0
    assert json.loads((out / "config.json").read_text()) == json.loads(
        (WEIGHTS_DIR / "config.json").read_text()
    )
    assert json.loads((out / "history.json").read_text()) == json.loads(
        (WEIGHTS_DIR / "history.json").read_text()
    )
    ours, shipped = load_file(out / "model.safetensors"), load_file(WEIGHTS_DIR / "model.safetensors")
    assert ours.keys() == shipped.keys()
    for name, value in shipped.items():
        np.testing.assert_allclose(ours[name], value, atol=1e-3, rtol=1e-3, err_msg=name)
    # What users see: the scores and the order both rankers give the embedded catalog.
    retrained, reference = Ranker.from_pretrained(out), Ranker.default()
    catalog = Catalog.load("model_cards")
    for task in (BEANS, {"name": "sst2", "modality": "text", "num_classes": 2, "num_examples": 67_349}):
        models = [t for t in catalog if t.modality == task["modality"]]
        a, b = retrained.score(models, task), reference.score(models, task)
        ids = sorted(b)
        x, y = np.array([a[i] for i in ids]), np.array([b[i] for i in ids])
        np.testing.assert_allclose(x, y, atol=1e-3 * max(float(y.std()), 1e-6))
        assert weightedtau(x, y).statistic > 0.999


def test_train_refuses_what_it_cannot_write_before_training_and_a_failed_save_keeps_the_old_weights(
    tmp_path, capsys, monkeypatch
):
    """`--out` that is a file (or under one) and a negative `--seed` stop with one line before any
    training; a save that fails halfway (here: the disk fills while the weights are written, an
    OSError raised in place of the real one) leaves the folder's earlier weights loadable."""
    data = make_records(tmp_path / "img", n_models=10, n_targets=3)
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out, needle in ((afile, "is a file"), (afile / "sub", "is under the file")):
        capsys.readouterr()
        assert main(["train", "--data", str(data), "--out", str(out), "--no-tune", "--steps", "1"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err
    with pytest.raises(SystemExit) as stop:
        main(["train", "--data", str(data), "--out", str(tmp_path / "w"), "--seed", "-1"])
    assert stop.value.code == 2 and "must be 0 or more" in capsys.readouterr().err

    out = tmp_path / "weights"
    Ranker.default().save_pretrained(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    ranker = Ranker.default()

    def disk_full(folder, *args, **kwargs):
        (Path(folder) / "model.safetensors").write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ranker.model, "save_pretrained", disk_full)
    with pytest.raises(OSError):
        ranker.save_pretrained(out, card="new card")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing half-written, no leftovers
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".weights-")] == []
    Ranker.from_pretrained(out)


def test_recommend_uses_the_weights_train_wrote(tmp_path, capsys):
    """`recommend --ranker DIR` ranks with weights from `hf-spider train --out DIR` (here: the zoo's
    text records, too few models to check a card prior: train says so); a folder that is not
    there stops with one line."""
    out = tmp_path / "w"
    zoo = REPO / "benchmarks" / "zoo_records" / "text"
    assert (
        main(["train", "--data", str(zoo), "--out", str(out), "--no-tune", "--steps", "1", "--ensemble", "1"])
        == 0
    )
    assert "too few models to be cross-validated" in capsys.readouterr().err
    cards = REPO / "benchmarks" / "ood_cards"
    base = [
        "recommend",
        str(cards / "targets" / "pets"),
        "--catalog",
        str(cards / "models"),
        "--stages",
        "rank",
    ]
    assert (
        main(
            [
                *base,
                "--ranker",
                str(out),
                "--output-dir",
                str(tmp_path / "r"),
                "--json",
                str(tmp_path / "r.json"),
            ]
        )
        == 0
    )
    meta = json.loads((tmp_path / "r.json").read_text())["meta"]
    assert str(out) in json.dumps(meta)
    capsys.readouterr()
    assert main([*base, "--ranker", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "r2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no ranker weights folder" in err[0], err
