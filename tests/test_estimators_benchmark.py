"""The estimator benchmark's zoo part on a small records folder and features files written here
(real files in the shared schema; the features are synthetic with known separability), and the
TransferGraph part on the shared records when they are present."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import estimators as bench

TRANSFERGRAPH = bench.TRANSFERGRAPH


def _write_zoo(root: Path, zoo: Path) -> Path:
    """5 models x 2 targets; model i has class separation 0.4 * (i + 1) and accuracy rising with i."""
    rows, configs = [], []
    rng = np.random.default_rng(0)
    for i in range(5):
        model = f"org/model-{i}"
        configs.append({"model": model, "number_of_parameters": 1000 * (5 - i)})
        for target, centres in (("alpha", np.eye(3, 12) * 2), ("beta", np.eye(3, 12, k=4) * 2)):
            y = np.repeat(np.arange(3), 30)
            X = rng.normal(size=(len(y), 12)) + 0.4 * (i + 1) * centres[y]
            folder = zoo / "features" / model.replace("/", "--")
            folder.mkdir(parents=True, exist_ok=True)
            arrays = {"train_X": X.astype(np.float32), "train_y": y, "test_X": X[:5], "test_y": y[:5]}
            if i % 2 == 0:
                arrays["train_probs"] = softmax(X[:, :4], axis=1)
            np.savez(folder / f"{target}.npz", **arrays)
            rows.append(
                {
                    "model": model,
                    "finetuned_dataset": target,
                    "test_accuracy": 0.5 + 0.1 * i,
                    "eval_accuracy": 0.5,
                }
            )
    records = root / "records" / "image"
    records.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(records / "records.csv", index=False)
    pd.DataFrame(configs).to_csv(records / "model_config.csv", index=False)
    pd.DataFrame({"target_dataset": ["alpha", "beta"], "size": [90, 90], "number_of_classes": [3, 3]}).to_csv(
        records / "target_datasets.csv", index=False
    )
    return records


def test_zoo_part_ranks_every_estimator_against_the_records(tmp_path, monkeypatch):
    zoo = tmp_path / "zoo"
    monkeypatch.setenv("HF_SPIDER_ZOO", str(zoo))
    records = _write_zoo(tmp_path, zoo)
    names = ["logme", "hscore", "knn", "leep", "nce"]
    out = bench.part_zoo([records], sample=60, names=names)
    assert out["targets"] == ["alpha", "beta"]
    means = out["mean"]
    # features get more separable as the ground truth rises: the estimators must see it
    for name in ("logme", "hscore"):
        assert means[name]["tau_w_rank_true"] > 0.8, (name, means[name])
        assert means[name]["top1_regret"] == pytest.approx(0.0)
    # leep / nce only where a features file holds probs (3 models of 5)
    assert out["per_target"]["alpha"]["leep"]["n_models"] == 3
    assert means["#params"]["tau_w_rank_true"] == pytest.approx(-1.0)
    assert {"random", "collaborative"} <= set(means)
    calls = [c for c in out["calls"] if c["estimator"] == "logme"]
    assert len(calls) == 10 and all(c["n"] == 60 and c["seconds"] >= 0 for c in calls)


def test_zoo_part_without_records_is_skipped():
    assert "skipped" in bench.part_zoo([], sample=100, names=["logme"])


@pytest.mark.skipif(not (TRANSFERGRAPH / "image" / "records.csv").is_file(), reason="shared records absent")
def test_transfergraph_part_reads_the_published_scores():
    out = bench.part_transfergraph(TRANSFERGRAPH)
    image = out["image / all runs"]["mean"]
    # published scores rank better than chance, and the random baseline sits near 0
    assert image["logme"]["tau_w_rank_true"] > 0.2
    assert abs(image["random"]["tau_w_rank_true"]) < 0.05
    assert image["logme"]["median_seconds"] > 0
