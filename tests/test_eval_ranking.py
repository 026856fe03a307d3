"""`hf-spider eval ranking`: protocol, metrics, JSON shape, determinism, cold start, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import weightedtau

from hf_spider.cli import main
from hf_spider.ranker.evaluation import METRICS, evaluate_ranking, ranking_metrics
from hf_spider.ranker.model import RankerConfig
from hf_spider.ranker.records import load_records

FAST = RankerConfig(steps=10, ensemble=1, step_grid=(5, 10), inner_folds=2)


def make_records(
    folder: Path, *, modality: str = "image", n_models: int = 16, n_targets: int = 5, seed: int = 0
) -> Path:
    """Synthetic records of the shared schema: accuracy grows with model size, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arch = "ViTForImageClassification" if modality == "image" else "BertForSequenceClassification"
    models = [f"org/{modality}-{i}" for i in range(n_models)]
    params = np.geomspace(5e6, 3e8, n_models)
    quality = (np.log(params) - np.log(params).mean()) / np.log(params).std()
    cfg = pd.DataFrame(
        {
            "model": models,
            "architectures": [f"['{arch}']"] * n_models,
            "model_type": ["vit" if modality == "image" else "bert"] * n_models,
            "number_of_parameters": params,
            "dataset": ["imagenet-21k" if i % 2 else "beans" for i in range(n_models)],
        }
    )
    cfg.to_csv(folder / "model_config.csv", index=False)
    rows, scores, targets = [], [], []
    for t in range(n_targets):
        name = f"{modality}_target_{t}"
        targets.append({"target_dataset": name, "size": 1000 * (t + 1), "number_of_classes": 2 + 3 * t})
        acc = np.clip(0.7 + 0.08 * quality + 0.03 * rng.standard_normal(n_models), 0.01, 0.999)
        for m, a in zip(models, acc, strict=True):
            rows.append({"model": m, "finetuned_dataset": name, "eval_accuracy": a, "test_accuracy": a})
            if t < 2:
                scores.append(
                    {
                        "model": m,
                        "target_dataset": name,
                        "metric": "TransferabilityMethod.LOG_ME",
                        "score": a + 0.05 * rng.standard_normal(),
                    }
                )
    pd.DataFrame(rows).to_csv(folder / "records.csv", index=False)
    pd.DataFrame(scores).to_csv(folder / "transferability_scores.csv", index=False)
    pd.DataFrame(targets).to_csv(folder / "target_datasets.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    return make_records(root / "image", modality="image"), make_records(
        root / "text", modality="text", n_models=12, n_targets=4
    )


def test_ranking_metrics_follow_the_definitions():
    gt = np.array([0.9, 0.8, 0.7, 0.6])
    perfect = ranking_metrics(gt, np.array([4.0, 3.0, 2.0, 1.0]))
    assert perfect["tau_w_rank_true"] == pytest.approx(1.0) and perfect["top1_regret"] == 0.0
    worst = ranking_metrics(gt, np.array([1.0, 2.0, 3.0, 4.0]))
    assert worst["tau_w_rank_true"] == pytest.approx(-1.0)
    assert worst["top1_regret"] == pytest.approx(30.0)  # accuracy points
    assert worst["hit_at_3"] == 0.0 and perfect["hit_at_3"] == 1.0
    s = np.array([2.0, 4.0, 1.0, 3.0])
    assert ranking_metrics(gt, s)["tau_w_rank_none"] == pytest.approx(weightedtau(gt, s, rank=None).statistic)
    assert set(perfect) == set(METRICS)


def test_lodo_shape_and_determinism(data_dirs):
    recs = load_records(list(data_dirs))
    targets = ["image_target_0"]
    first = evaluate_ranking(recs, targets, config=FAST, tune=True, seed=3, catalog=False)
    again = evaluate_ranking(recs, targets, config=FAST, tune=True, seed=3, catalog=False)
    assert first["protocol"]["chosen"]["image_target_0"]["lodo"]["steps"] in FAST.step_grid
    assert first["targets"] == again["targets"]  # deterministic for a seed
    assert set(first["targets"]) == set(targets)
    img = first["targets"]["image_target_0"]
    assert {"spider", "spider_fused", "random", "params", "collaborative", "logme"} <= set(img)
    text = evaluate_ranking(recs, ["text_target_3"], config=FAST, tune=False, catalog=False)
    assert "logme" not in text["targets"]["text_target_3"]  # no scores there
    for metrics in img.values():
        assert set(metrics) == set(METRICS)
        assert metrics["n_models"] == 16
    # size drives accuracy in this data: the learned ranker and the size baseline must see it
    assert img["params"]["tau_w_rank_true"] > 0.5
    assert first["mean"]["spider"]["tau_w_rank_true"] > 0.3
    assert first["mean"]["spider"]["n_targets"] == 1


def test_test_target_never_in_training(data_dirs, monkeypatch):
    """Every context the ranker trains on (inner CV included) comes from other targets."""
    from hf_spider.ranker import training

    seen: list[str] = []
    real = training.build_context

    def spy(task, *args, **kwargs):
        if kwargs.get("y", args[4] if len(args) > 4 else None) is not None:
            seen.append(task["name"])
        return real(task, *args, **kwargs)

    monkeypatch.setattr(training, "build_context", spy)
    recs = load_records([data_dirs[0]])
    evaluate_ranking(recs, ["image_target_1"], config=FAST, tune=True, catalog=False)
    assert seen and "image_target_1" not in seen


def test_cold_start_hides_models(data_dirs):
    recs = load_records([data_dirs[0]])
    out = evaluate_ranking(recs, ["image_target_2"], cold_start=True, config=FAST, tune=False, catalog=False)
    assert out["protocol"]["cold_folds"] == 5
    row = out["targets"]["image_target_2"]
    assert set(row) >= {"spider", "collaborative", "params"}
    assert row["spider"]["n_models"] == 16


def test_cli_json_and_errors(data_dirs, tmp_path, capsys):
    out = tmp_path / "res.json"
    code = main(
        [
            "eval",
            "ranking",
            "--data",
            str(data_dirs[0]),
            "--test-targets",
            "image_target_0,image_target_4",
            "--no-tune",
            "--steps",
            "10",
            "--ensemble",
            "1",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    payload = json.loads(out.read_text())
    assert set(payload) >= {"targets", "mean"}
    assert set(payload["mean"]["spider"]) >= set(METRICS)
    capsys.readouterr()
    code = main(["eval", "ranking", "--data", str(data_dirs[0]), "--test-targets", "no_such_target"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no_such_target" in err[0] and "Traceback" not in err[0]
    code = main(["eval", "ranking", "--data", str(tmp_path / "nope"), "--test-targets", "x"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    code = main(
        ["eval", "ranking", "--data", str(data_dirs[0]), "--test-targets", "image_target_0", "--steps", "0"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--steps" in err[0]
