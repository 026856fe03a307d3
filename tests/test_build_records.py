"""`hf-spider build-records`: protocol, exclusions, schema, resume, and the committed records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import needs_zoo, zoo_has

from hf_spider import _paths
from hf_spider.cli import main
from hf_spider.zoo._datasets import DATASETS
from hf_spider.zoo.records import (
    C_GRID,
    CONFIG_COLUMNS,
    MODES,
    RECORD_COLUMNS,
    SCORE_COLUMNS,
    TARGET_COLUMNS,
    _pairs,
    build_records,
    linear_probe,
)
from hf_spider.zoo.specs import MODELS, excluded_families

COMMITTED = _paths.REPO_DIR / "benchmarks" / "zoo_records"


def _blobs(n: int, sep: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    centers = rng.normal(size=(3, 16)) * sep
    return centers[y] + rng.normal(size=(len(y), 16)), y


def test_linear_probe_follows_separability_and_is_deterministic():
    x, y = _blobs(240, 3.0, 0)
    xt, yt = _blobs(120, 3.0, 0)
    easy = linear_probe(x, y, xt, yt)
    assert easy == linear_probe(x, y, xt, yt)
    assert easy["C"] in C_GRID and easy["test_accuracy"] > 0.9 and easy["eval_examples"] == 48
    x, y = _blobs(240, 0.05, 1)
    xt, yt = _blobs(120, 0.05, 2)
    assert linear_probe(x, y, xt, yt)["test_accuracy"] < easy["test_accuracy"] - 0.3


def test_pairs_keep_sources_and_targets_apart():
    for modality in ("text", "image"):
        pairs = _pairs(modality, None, None)
        for model, task in pairs:
            assert DATASETS[task].family not in excluded_families(model)
            assert DATASETS[task].modality == MODELS[model].modality == modality
        assert ("hf-spider-zoo/efficientnet-lite0-mnist", "mnist") not in _pairs("image", None, None)
        assert ("timm/tf_efficientnet_lite0.in1k", "mnist") in _pairs("image", None, None)
    assert ("hf-spider-zoo/splade-tiny-debates-2016", "debates_2016") not in _pairs("text", None, None)


def test_bad_names_are_one_line_errors(capsys):
    assert main(["build-records", "--tasks", "no_such_task"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: not a zoo dataset")
    assert main(["build-records", "--mode", "full_finetune"]) == 2
    assert capsys.readouterr().err.strip().startswith("error: mode")


@needs_zoo("timm/tf_efficientnet_lite0.in1k", datasets=("digits", "fashion_mnist_sub5_1"))
def test_build_records_schema_and_resume(tmp_path):
    needed = {"timm/tf_efficientnet_lite0.in1k"}
    args = dict(
        modality="image",
        models=sorted(needed),
        tasks=["digits", "fashion_mnist_sub5_1"],
        n_train=80,
        n_test=40,
        out_dir=tmp_path / "rec",
        estimators=["logme", "knn", "leep"],
        features_dir=tmp_path / "f",
    )
    first = build_records(**args)
    assert first["written"] == 2 and first["remaining"] == 0
    folder = tmp_path / "rec" / "image"
    records = pd.read_csv(folder / "records.csv")
    assert list(records.columns[: len(RECORD_COLUMNS)]) == RECORD_COLUMNS
    assert set(records["mode"]) == {"linear_probe"} and records["test_accuracy"].between(0, 1).all()
    assert records.loc[records.finetuned_dataset == "digits", "train_examples"].item() == 80
    # the subset task is a view of its parent's sample: only its own classes
    assert records.loc[records.finetuned_dataset == "fashion_mnist_sub5_1", "train_examples"].item() < 80
    scores = pd.read_csv(folder / "transferability_scores.csv")
    assert list(scores.columns[: len(SCORE_COLUMNS)]) == SCORE_COLUMNS
    assert set(scores["metric"]) == {"logme", "knn", "leep"}  # leep from Lite's ImageNet head
    assert list(pd.read_csv(folder / "model_config.csv").columns[: len(CONFIG_COLUMNS)]) == CONFIG_COLUMNS
    targets = pd.read_csv(folder / "target_datasets.csv")
    assert list(targets.columns[: len(TARGET_COLUMNS)]) == TARGET_COLUMNS
    assert targets.set_index("target_dataset").loc["digits", "number_of_classes"] == 10
    npz = np.load(tmp_path / "f" / "timm--tf_efficientnet_lite0.in1k" / "digits.npz")
    assert npz["train_X"].shape == (80, 1280) and npz["test_y"].shape == (40,)

    again = build_records(**args)
    assert again["written"] == 0 and again["skipped"] == 2
    records.iloc[[0]].to_csv(folder / "records.csv", index=False)  # lose one row
    third = build_records(**args)
    assert third["written"] == 1
    resumed = pd.read_csv(folder / "records.csv")
    assert len(resumed) == 2
    # Same protocol, same sample: the recomputed row equals the first run's.
    merged = resumed.merge(records, on=["model", "finetuned_dataset"], suffixes=("", "_first"))
    assert np.allclose(merged["test_accuracy"], merged["test_accuracy_first"])

    from hf_spider.ranker.records import load_records

    loaded = load_records([folder])
    assert set(loaded.perf["dataset"]) == {"digits", "fashion_mnist_sub5_1"}


@pytest.mark.parametrize("modality", ["text", "image"])
def test_committed_records_cover_8_models_by_4_tasks(modality):
    folder = COMMITTED / modality
    if not (folder / "records.csv").is_file():
        pytest.skip("records not built yet")
    records = pd.read_csv(folder / "records.csv")
    assert set(records["mode"]) <= set(MODES)
    assert records[["eval_accuracy", "test_accuracy"]].stack().between(0, 1).all()
    per_task = records.groupby("finetuned_dataset")["model"].nunique()
    assert (per_task >= 8).sum() >= 4, per_task.to_dict()
    for model, task in records[["model", "finetuned_dataset"]].itertuples(index=False):
        assert MODELS[model].modality == modality and DATASETS[task].family not in excluded_families(model)
    configs = pd.read_csv(folder / "model_config.csv")
    assert set(records["model"]) <= set(configs["model"])
    targets = pd.read_csv(folder / "target_datasets.csv")
    assert set(records["finetuned_dataset"]) <= set(targets["target_dataset"])
    scores_file = Path(folder / "transferability_scores.csv")
    if scores_file.stat().st_size:
        scores = pd.read_csv(scores_file)
        assert set(zip(scores.model, scores.target_dataset, strict=True)) <= set(
            zip(records.model, records.finetuned_dataset, strict=True)
        )


@pytest.mark.slow
@pytest.mark.zoo
def test_two_processes_shard_models_and_merge(tmp_path):
    """torchrun with 2 CPU processes deals the models out and merges into the same rows as 1 process."""
    import os
    import subprocess
    import sys

    models = ["hf-spider-zoo/splade-tiny", "hf-spider-zoo/splade-tiny-guardian-headlines-month"]
    if not zoo_has(models, ["debates_2016"]):
        pytest.skip("SPLADE-tiny models / debates_2016 not installed")
    args = [
        "build-records",
        "--threads",
        "1",
        "--modality",
        "text",
        "--models",
        *models,
        "--tasks",
        "debates_2016",
        "--sample",
        "60",
        "--estimators",
        "logme",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "hf_spider.cli"]
    proc = subprocess.run(
        [*torchrun, *args, "--out", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    two = pd.read_csv(tmp_path / "two" / "text" / "records.csv").drop(columns="elapsed_time")
    one = pd.read_csv(tmp_path / "one" / "text" / "records.csv").drop(columns="elapsed_time")
    pd.testing.assert_frame_equal(two, one)
    assert not (tmp_path / "two" / "text" / ".parts").exists()
