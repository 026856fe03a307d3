"""`hf_spider.recommend` end to end on real parts: the learned ranker, real zoo models and data,
real ONNX Runtime measurements, and the CLI around it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import needs_zoo

import hf_spider
from hf_spider import _paths
from hf_spider.cli import main
from hf_spider.errors import UserInputError
from hf_spider.testing import HubServer, write_repo
from hf_spider.testing.hub_writes import install

TOKEN = "hf_pipeline_writer"


TEXT_DATA = "rotten_tomatoes"
SMALL_TEXT = ("hf-spider-zoo/splade-tiny", "sentence-transformers/all-MiniLM-L6-v2")
needs_text_zoo = needs_zoo(*SMALL_TEXT, datasets=(TEXT_DATA,))


@pytest.fixture
def small_catalog(tmp_path) -> Path:
    """A folder of Hub-layout repos: two small real zoo text models (links to their snapshots)."""
    from hf_spider.zoo import model_path

    root = tmp_path / "models"
    for repo_id in SMALL_TEXT:
        link = root / repo_id
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(model_path(repo_id), target_is_directory=True)
    return root


def _dataset() -> str:
    return str(_paths.zoo_dir() / "datasets" / TEXT_DATA)


def test_public_api_exports():
    for name in ("recommend", "Recommendations", "Catalog", "Task", "Ranker", "DeviceTarget", "Constraints"):
        assert getattr(hf_spider, name) is not None
    import inspect

    from hf_spider.recommend import Recommendations, recommend  # binds `hf_spider.recommend` to the package

    assert callable(hf_spider.recommend) and hf_spider.Recommendations is Recommendations
    assert inspect.signature(hf_spider.recommend) == inspect.signature(recommend)
    with pytest.raises(UserInputError, match="top_k"):
        hf_spider.recommend("anything", top_k=0)


# ---------------------------------------------------------------------- cards only (no weights, no data)
def _model_repos(root: Path) -> list[str]:
    write_repo(
        root,
        "acme/bert-sst2",
        {
            "README.md": "---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: text-classification\n"
            "datasets: [sst2]\nbase_model: bert-base-uncased\n---\n# BERT fine-tuned on SST-2\n",
            "config.json": {
                "architectures": ["BertForSequenceClassification"],
                "model_type": "bert",
                "hidden_size": 768,
                "num_hidden_layers": 12,
                "vocab_size": 30522,
                "max_position_embeddings": 512,
                "id2label": {"0": "negative", "1": "positive"},
            },
        },
    )
    write_repo(
        root,
        "acme/tiny-distilbert",
        {
            "README.md": "---\nlibrary_name: transformers\npipeline_tag: text-classification\n---\n# tiny\n",
            "config.json": {
                "architectures": ["DistilBertForSequenceClassification"],
                "model_type": "distilbert",
                "dim": 64,
                "n_layers": 2,
                "vocab_size": 30522,
            },
        },
    )
    write_repo(
        root,
        "timm/resnet18.a1_in1k",
        {
            "README.md": "---\nlibrary_name: timm\nlicense: apache-2.0\npipeline_tag: image-classification\n"
            "tags: [image-classification, timm]\ndatasets: [imagenet-1k]\n---\n# resnet18\n\n## Model Details\n"
            "- **Model Stats:**\n  - Params (M): 11.7\n  - GMACs: 1.8\n  - Image size: train = 224 x 224\n",
            "config.json": {
                "architecture": "resnet18",
                "num_classes": 1000,
                "num_features": 512,
                "pretrained_cfg": {"input_size": [3, 224, 224]},
            },
        },
    )
    return ["acme/bert-sst2", "acme/tiny-distilbert", "timm/resnet18.a1_in1k"]


def _card_only_dataset(root: Path, modality: str) -> Path:
    card = (
        "---\ntask_categories: [text-classification]\n"
        "dataset_info:\n  features:\n  - name: text\n    dtype: string\n  - name: label\n    dtype:\n"
        "      class_label:\n        names:\n          '0': neg\n          '1': pos\n"
        "  splits:\n  - name: train\n    num_examples: 8530\n---\n# movie reviews\n"
        if modality == "text"
        else "---\ntask_categories: [image-classification]\n"
        "dataset_info:\n  features:\n  - name: image\n    dtype: image\n  - name: label\n    dtype:\n"
        "      class_label:\n        names:\n          '0': cat\n          '1': dog\n          '2': bird\n"
        "  splits:\n  - name: train\n    num_examples: 3000\n---\n# pets\n"
    )
    folder = root / f"card-{modality}"
    folder.mkdir(parents=True)
    (folder / "README.md").write_text(card)
    return folder


@pytest.mark.parametrize("modality", ["text", "image"])
def test_cards_only_ranking(tmp_path, modality):
    models = _model_repos(tmp_path / "repos")
    dataset = _card_only_dataset(tmp_path, modality)
    out = tmp_path / "ranking.json"
    rc = main(
        [
            "recommend",
            str(dataset),
            "--catalog",
            str(tmp_path / "repos"),
            "--stages",
            "rank",
            "--json",
            str(out),
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0
    ranking = json.loads(out.read_text())["ranking"]
    wanted = {m for m in models if ("timm" in m) == (modality == "image")}
    assert {r["model_id"] for r in ranking} == wanted
    assert all(isinstance(r["score"], float) for r in ranking)
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores, reverse=True)


# ---------------------------------------------------------------------- the zoo, real forward passes
@needs_text_zoo
def test_rank_and_probe_on_real_zoo_models(small_catalog):
    recs = hf_spider.recommend(
        _dataset(), catalog=small_catalog, stages=("rank", "probe"), top_k=2, sample=64
    )
    assert {r["model_id"] for r in recs.rows} == set(SMALL_TEXT)
    assert all(r["stage"] == "probe" and r["transfer_source"] == "probe" for r in recs.rows)
    assert all(r["score_logme"] is not None for r in recs.rows)
    assert all(
        r["device_status"] == "skipped" and r["device_reason"] == "bench stage not run" for r in recs.rows
    )
    assert recs.meta["forward_passes"] >= 2
    assert [r["rank"] for r in recs.rows] == [1, 2]
    assert recs.rows[0]["transfer_score"] >= recs.rows[1]["transfer_score"]


@needs_text_zoo
@pytest.mark.slow
def test_all_stages_measured_push_and_cli(small_catalog, tmp_path, monkeypatch, capsys):
    """The whole command: ranked table, files, measured figures, and the push to the loopback Hub."""
    monkeypatch.chdir(tmp_path)
    with install(HubServer(tmp_path / "hub", token=TOKEN)) as hub:
        rc = main(
            [
                "recommend",
                _dataset(),
                "--catalog",
                str(small_catalog),
                "--sample",
                "64",
                "--top-k",
                "2",
                "--max-latency-ms",
                "1000",
                "--output-dir",
                "out",
                "--json",
                "out.json",
                "--push-to-hub",
                "me/rt-recs",
                "--token",
                TOKEN,
                "--endpoint",
                hub.url,
            ]
        )
        assert rc == 0
        printed = capsys.readouterr().out
        assert "Recommended:" in printed and "measured" in printed
        payload = json.loads(Path("out.json").read_text())
        rows = payload["rows"]
        benched = [r for r in rows if r["variant"] is not None]
        assert {r["variant"] for r in benched} == {"fp32", "int8-dynamic"}
        assert {r["model_id"] for r in benched} == set(SMALL_TEXT)
        for r in benched:
            assert r["device_status"] == "measured"
            assert r["latency_p50_ms"] > 0 and r["file_size_mb"] > 0 and r["peak_memory_mb"] > 0
            assert 0 < r["fidelity"] <= 1.0 + 1e-6
            assert r["meets_constraints"] is True
        assert sum(bool(r["recommended"]) for r in rows) == 1
        assert payload["meta"]["pick"]["reason"]
        assert any(r["pareto"] for r in benched)
        for name in ("recommendations.parquet", "recommendations.json", "pareto.png", "report.md"):
            assert (Path("out") / name).stat().st_size > 0
        report = (Path("out") / "report.md").read_text()
        assert report.count("measured (") >= 4
        from huggingface_hub import HfApi

        files = HfApi(endpoint=hub.url).list_repo_files("me/rt-recs", repo_type="dataset")
        assert "data/train-00000-of-00001.parquet" in files and "README.md" in files
        back = hf_spider.Recommendations.from_hub("me/rt-recs", endpoint=hub.url)
        assert back.best["model_id"] == payload["recommended"]["model_id"]


@needs_text_zoo
@pytest.mark.slow
def test_constraint_nothing_meets_exit_2_nothing_uploaded(small_catalog, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with install(HubServer(tmp_path / "hub", token=TOKEN)) as hub:
        rc = main(
            [
                "recommend",
                _dataset(),
                "--catalog",
                str(small_catalog),
                "--sample",
                "64",
                "--stages",
                "rank,bench",
                "--top-k",
                "1",
                "--max-latency-ms",
                "0.001",
                "--push-to-hub",
                "me/recs",
                "--space",
                "me/app",
                "--token",
                TOKEN,
                "--endpoint",
                hub.url,
            ]
        )
        assert rc == 2
        err = capsys.readouterr().err
        assert err.startswith("error: no candidate meets") and err.count("\n") == 1
        assert "--max-latency-ms" in err
        assert hub.repo_ids("datasets") == [] and hub.repo_ids("spaces") == []
        assert hub.count("/api/repos/create") == 0


def test_unknown_target_is_a_user_error(tmp_path, capsys):
    dataset = _card_only_dataset(tmp_path, "text")
    rc = main(["recommend", str(dataset), "--target", "toaster-9000", "--stages", "rank,bench"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "toaster-9000" in err and err.count("\n") == 1
