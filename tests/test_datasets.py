"""Datasets -> Task: every accepted form, detection, stratified sampling, errors (exit 2)."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from hf_spider.cli import main
from hf_spider.errors import DatasetError, UserInputError
from hf_spider.tasks import load_task
from hf_spider.tasks._sampling import class_balance, stratified_indices

CARD = """---
pretty_name: Tiny Reviews
task_categories:
- text-classification
tags:
- sentiment
- movies
dataset_info:
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': neg
          '1': pos
  splits:
  - name: train
    num_examples: 120
  - name: test
    num_examples: 30
---
# Tiny reviews

Short movie reviews labelled as positive or negative, made up for the tests.
"""


def _reviews(n: int, *, seed: int = 0, classes=("neg", "pos"), weights=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = rng.choice(len(classes), size=n, p=weights)
    words = ["good", "bad", "great", "awful", "movie", "film", "plot", "story"]
    texts = [" ".join(rng.choice(words, size=6)) + f" {i}" for i in range(n)]
    return pd.DataFrame({"id": np.arange(n), "text": texts, "label": [classes[i] for i in labels]})


def _png(rng, size=12) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _imagefolder(root, classes=("cat", "dog", "fox"), per_class=8, corrupt=1, seed=0):
    rng = np.random.default_rng(seed)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / c / f"{i}.png").write_bytes(_png(rng))
    for i in range(corrupt):
        (root / classes[0] / f"broken{i}.png").write_bytes(b"\x89PNG not really")
    return root


def _hf_image_dataset(n=40, classes=4, seed=0):
    import datasets

    rng = np.random.default_rng(seed)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[f"c{i}" for i in range(classes)])}
    )
    return datasets.Dataset.from_dict(
        {
            "image": [{"bytes": _png(rng), "path": None} for _ in range(n)],
            "label": [i % classes for i in range(n)],
        },
        features=features,
    )


# -- forms of a dataset --------------------------------------------------------------------------


def test_csv_file_detects_columns_and_string_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    _reviews(200).to_csv(path, index=False)
    task = load_task(path, sample=50, probe=False)
    assert task.modality == "text"
    src = task.metadata["source"]
    assert (src["input_column"], src["label_column"]) == ("text", "label")
    assert task.metadata["label_names"] == ["neg", "pos"]
    assert task.metadata["num_examples"] == 200
    assert len(task.inputs) == 50 and task.labels.dtype == np.int64
    assert all(isinstance(x, str) and x for x in task.inputs)
    # the sample's labels are the file's labels for those texts
    df = _reviews(200).set_index("text")
    for text, label in zip(task.inputs, task.labels, strict=True):
        assert task.metadata["label_names"][label] == df.loc[text, "label"]


def test_a_title_beside_a_body_is_not_the_input(tmp_path):
    """title, body, rating: the review is the body (the title came first in the file and was taken)."""
    df = _reviews(60)
    df.insert(0, "title", [f"t{i}" for i in range(len(df))])
    df = df.rename(columns={"text": "body", "label": "rating"})
    path = tmp_path / "reviews.csv"
    df.to_csv(path, index=False)
    task = load_task(path, sample=20, probe=False)
    assert (task.metadata["source"]["input_column"], task.metadata["source"]["label_column"]) == (
        "body",
        "rating",
    )


def test_a_csv_separated_by_semicolons_is_read(tmp_path):
    """Excel writes `;` where the decimal mark is a comma: such a csv is read (pandas' "Expected
    1 fields in line 3, saw 2" came out), commas inside the texts included."""
    path = tmp_path / "avis.csv"
    rows = [("a wonderful, moving film", "pos"), ("dull, far too long", "neg")] * 20
    path.write_text("text;label\n" + "".join(f"{x} {i};{y}\n" for i, (x, y) in enumerate(rows)))
    task = load_task(path, sample=10, probe=False)
    assert task.metadata["label_names"] == ["neg", "pos"] and task.metadata["num_examples"] == 40
    assert any(x.startswith("a wonderful, moving film") for x in task.inputs)


def test_in_memory_datasets_are_read_as_hf_users_hold_them():
    """A `datasets.Dataset`, a `DatasetDict` and a pandas DataFrame are read in memory (they were
    refused: save them first), with their labels, and `recommend` ranks for them."""
    import datasets

    from hf_spider.recommend import recommend

    df = _reviews(60)
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    ds = datasets.Dataset.from_dict({"text": list(df["text"]), "label": list(df["label"])}, features=features)
    task = load_task(ds, sample=20, probe=False)
    assert (task.modality, task.metadata["label_names"], task.metadata["num_examples"]) == (
        "text",
        ["neg", "pos"],
        60,
    )
    assert task.metadata["source"]["location"] == "in-memory Dataset"
    frame = load_task(df.rename(columns={"text": "review", "label": "sentiment"}), sample=20, probe=False)
    assert (
        frame.metadata["label_names"] == ["neg", "pos"]
        and frame.metadata["source"]["input_column"] == "review"
    )
    split = load_task(
        datasets.DatasetDict({"train": ds, "test": ds.select(range(20))}),
        split="test",
        sample=10,
        probe=False,
    )
    assert split.metadata["num_examples"] == 20
    assert load_task(ds, sample=20, probe=False).fingerprint == task.fingerprint  # same data, same sample
    recs = recommend(ds, stages=("rank",))
    assert (
        recs.meta["dataset"] == "in-memory Dataset"
        and recs.meta["task"]["modality"] == "text"
        and recs.ranking()
    )


def test_jsonl_and_tsv_files(tmp_path):
    df = _reviews(60, classes=("a", "b", "c"))
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("\n".join(json.dumps(r) for r in df.to_dict("records")))
    tsv = tmp_path / "d.tsv"
    df.to_csv(tsv, sep="\t", index=False)
    for path in (jsonl, tsv):
        task = load_task(path, sample=30, probe=False)
        assert task.metadata["num_classes"] == 3
        assert task.metadata["source"]["input_column"] == "text"
        assert len(task.labels) == 30


def test_parquet_repo_folder_with_card_and_splits(tmp_path):
    repo = tmp_path / "tiny-reviews"
    (repo / "data").mkdir(parents=True)
    (repo / "README.md").write_text(CARD)
    df = _reviews(120)
    df["label"] = (df["label"] == "pos").astype(int)
    df.to_parquet(repo / "data" / "train-00000-of-00001.parquet")
    df.head(30).to_parquet(repo / "data" / "test-00000-of-00001.parquet")
    task = load_task(repo, sample=40, probe=False)
    md = task.metadata
    assert task.name == "Tiny Reviews"
    assert md["task_categories"] == ["text-classification"]
    assert md["tags"] == ["sentiment", "movies"]
    assert "positive or negative" in md["description"]
    assert md["label_names"] == ["neg", "pos"]  # ClassLabel names from the card, ints in the files
    assert md["num_examples"] == 120
    assert md["source"]["split"] == "train"
    test_task = load_task(repo, split="test", sample=10, probe=False)
    assert test_task.metadata["num_examples"] == 30
    assert test_task.fingerprint != task.fingerprint


def test_card_configs_select_files(tmp_path):
    repo = tmp_path / "multi"
    repo.mkdir()
    card = (
        "---\nconfigs:\n- config_name: small\n  data_files:\n  - split: train\n    path: small.csv\n"
        "- config_name: big\n  data_files:\n  - split: train\n    path: big/*.csv\n---\n"
    )
    (repo / "README.md").write_text(card)
    _reviews(20).to_csv(repo / "small.csv", index=False)
    (repo / "big").mkdir()
    _reviews(50, seed=1).to_csv(repo / "big" / "part1.csv", index=False)
    _reviews(50, seed=2).to_csv(repo / "big" / "part2.csv", index=False)
    assert load_task(repo, config="small", sample=5, probe=False).metadata["num_examples"] == 20
    assert load_task(repo, config="big", sample=5, probe=False).metadata["num_examples"] == 100
    with pytest.raises(DatasetError, match="several configs"):
        load_task(repo, sample=5, probe=False)
    with pytest.raises(DatasetError, match="config 'nope' not found"):
        load_task(repo, config="nope", sample=5, probe=False)


def test_imagefolder_skips_and_counts_corrupt_images(tmp_path):
    root = _imagefolder(tmp_path / "pets", per_class=8, corrupt=2)
    task = load_task(root, sample=100, probe=False)
    assert task.modality == "image"
    assert task.metadata["label_names"] == ["cat", "dog", "fox"]
    assert task.skipped == 2
    assert len(task.inputs) == 24 and len(task.labels) == 24
    assert all(img.mode == "RGB" and img.size == (12, 12) for img in task.inputs)
    assert np.bincount(task.labels).tolist() == [8, 8, 8]


def test_imagefolder_with_only_corrupt_images_is_an_error(tmp_path):
    root = tmp_path / "bad"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        (root / c / "x.png").write_bytes(b"garbage")
        (root / c / "y.jpg").write_bytes(b"")
    with pytest.raises(DatasetError, match="no readable example"):
        load_task(root, sample=10, probe=False)


def test_save_to_disk_dataset_and_dict(tmp_path):
    import datasets

    ds = _hf_image_dataset(n=40, classes=4)
    ds.save_to_disk(tmp_path / "single")
    task = load_task(tmp_path / "single", sample=20, probe=False)
    assert task.modality == "image" and task.metadata["num_examples"] == 40
    assert task.metadata["label_names"] == ["c0", "c1", "c2", "c3"]
    assert np.bincount(task.labels).tolist() == [5, 5, 5, 5]

    text = datasets.Dataset.from_pandas(_reviews(30)).class_encode_column("label")
    datasets.DatasetDict({"train": text, "validation": text.select(range(10))}).save_to_disk(tmp_path / "dd")
    task = load_task(tmp_path / "dd", split="validation", sample=5, probe=False)
    assert task.metadata["num_examples"] == 10 and task.modality == "text"


def test_parquet_with_image_bytes_single_file(tmp_path):
    ds = _hf_image_dataset(n=24, classes=3)
    path = tmp_path / "imgs.parquet"
    ds.to_parquet(str(path))
    task = load_task(path, sample=12, probe=False)
    assert task.modality == "image"
    assert task.metadata["label_names"] == ["c0", "c1", "c2"]  # HF features travel in the parquet schema
    assert np.bincount(task.labels).tolist() == [4, 4, 4]


# -- detection and overrides ---------------------------------------------------------------------


def test_overrides_pick_columns_and_modality(tmp_path):
    df = _reviews(60)
    df["title"] = [f"t{i}" for i in range(60)]
    df["device"] = np.where(np.arange(60) % 3 == 0, "android", "iphone")
    path = tmp_path / "tweets.csv"
    df.to_csv(path, index=False)
    task = load_task(path, sample=20, label_column="device", input_column="title", probe=False)
    assert task.metadata["label_names"] == ["android", "iphone"]
    assert task.inputs[0].startswith("t")
    # without an override the longest text column is the input
    assert load_task(path, sample=5, probe=False).metadata["source"]["input_column"] == "text"
    with pytest.raises(DatasetError, match="label column 'nope' not in"):
        load_task(path, label_column="nope", probe=False)
    with pytest.raises(UserInputError, match="unknown modality"):
        load_task(path, modality="audio", probe=False)
    # the text column named as the label: what is left holds no input, and the message says why
    plain = tmp_path / "plain.csv"
    _reviews(20).assign(label=lambda d: (d["label"] == "pos").astype(int)).to_csv(plain, index=False)
    with pytest.raises(DatasetError, match="besides the label column 'text'") as err:
        load_task(plain, label_column="text", probe=False)
    assert "--label-column" in err.value.hint


def test_continuous_label_is_refused(tmp_path):
    path = tmp_path / "reg.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "label": [0.5, 1.25, 3.1]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match="continuous"):
        load_task(path, probe=False)


# -- stratified sampling -------------------------------------------------------------------------


def test_stratified_indices_proportional_deterministic_and_keeps_rare_classes():
    rng = np.random.default_rng(3)
    labels = rng.choice(4, size=2000, p=[0.7, 0.2, 0.095, 0.005])
    idx = stratified_indices(labels, 200, seed=7)
    assert len(idx) == 200 and len(set(idx.tolist())) == 200
    counts = np.bincount(labels[idx], minlength=4)
    expected = 200 * np.bincount(labels, minlength=4) / len(labels)
    assert np.all(np.abs(counts - expected) <= 1.0 + 1e-9)
    assert counts[3] >= 1
    assert np.array_equal(idx, stratified_indices(labels, 200, seed=7))
    assert not np.array_equal(idx, stratified_indices(labels, 200, seed=8))
    # more slots than examples: everything; fewer slots than classes: the most frequent classes
    assert np.array_equal(stratified_indices(labels[:10], 50), np.arange(10))
    few = stratified_indices(np.array([0, 0, 0, 1, 1, 2]), 2)
    assert sorted(np.array([0, 0, 0, 1, 1, 2])[few].tolist()) == [0, 1]


def test_class_balance_entropy_ratio():
    assert class_balance(np.array([5, 5, 5])) == pytest.approx(1.0)
    p = np.array([0.9, 0.1])
    assert class_balance(np.array([90, 10])) == pytest.approx(-(p * np.log(p)).sum() / np.log(2))
    assert class_balance(np.array([7])) == 0.0


def test_same_seed_same_sample_and_fingerprint(tmp_path):
    path = tmp_path / "r.csv"
    df = _reviews(300, weights=[0.8, 0.2])
    df.to_csv(path, index=False)
    a = load_task(path, sample=40, seed=1, probe=False)
    b = load_task(path, sample=40, seed=1, probe=False)
    c = load_task(path, sample=40, seed=2, probe=False)
    assert a.inputs == b.inputs and a.fingerprint == b.fingerprint
    assert a.inputs != c.inputs and a.fingerprint != c.fingerprint
    share = (df["label"] == "pos").mean()
    assert abs(np.bincount(a.labels)[1] - 40 * share) <= 1  # stratified: proportions kept
    assert a.metadata["class_balance"] < 0.95


def test_max_scan_bounds_the_rows_read(tmp_path):
    path = tmp_path / "r.csv"
    _reviews(500).to_csv(path, index=False)
    task = load_task(path, sample=20, max_scan=100, probe=False)
    assert task.metadata["source"]["rows_scanned"] == 100
    assert task.metadata["source"]["scanned_whole_split"] is False
    assert task.metadata["num_examples"] is None  # csv size unknown without reading it all
    ids = {int(t.rsplit(" ", 1)[1]) for t in task.inputs}
    assert max(ids) < 100


def test_sorted_parquet_split_is_sampled_across_classes(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    labels = np.repeat(["a", "b", "c", "d"], 300)  # sorted by label, as many converted datasets are
    table = pa.table({"text": [f"row {i} text" for i in range(1200)], "label": labels})
    pq.write_table(table, tmp_path / "sorted.parquet", row_group_size=50)
    task = load_task(tmp_path / "sorted.parquet", sample=40, max_scan=200, probe=False)
    src = task.metadata["source"]
    assert src["scanned_whole_split"] is True and 200 <= src["sample_pool"] < 1200
    assert task.metadata["num_examples"] == 1200 and task.metadata["class_balance"] == pytest.approx(1.0)
    assert (
        np.bincount(task.labels, minlength=4).min() >= 1
    )  # every class, though the pool is a few row groups
    for text, label in zip(task.inputs, task.labels, strict=True):
        assert labels[int(text.split()[1])] == task.metadata["label_names"][label]
    assert load_task(tmp_path / "sorted.parquet", sample=40, max_scan=200, probe=False).inputs == task.inputs
    # a csv is read in order: its first 200 rows hold one class, and the error says how to read more
    pd.DataFrame({"text": table["text"].to_pylist(), "label": labels}).to_csv(
        tmp_path / "sorted.csv", index=False
    )
    with pytest.raises(DatasetError, match="200 rows read") as err:
        load_task(tmp_path / "sorted.csv", sample=40, max_scan=200, probe=False)
    assert "--max-scan" in err.value.one_line()


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "not found"),
        ("nolabel", "no label column"),
        ("oneclass", "single class"),
        ("emptysplit", "is empty"),
        ("badsplit", "split 'nope' not found"),
    ],
)
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, case, message):
    args = []
    if case == "missing":
        target = tmp_path / "does-not-exist.csv"
    elif case == "nolabel":
        target = tmp_path / "nolabel.csv"
        pd.DataFrame({"text": ["a b c", "d e f"], "score": [1, 2]}).to_csv(target, index=False)
    elif case == "oneclass":
        target = tmp_path / "one.csv"
        pd.DataFrame({"text": ["a b", "c d", "e f"], "label": ["x", "x", "x"]}).to_csv(target, index=False)
    elif case == "emptysplit":
        target = tmp_path / "empty.csv"
        target.write_text("text,label\n")
    else:
        target = tmp_path / "ok.csv"
        _reviews(10).to_csv(target, index=False)
        args = ["--split", "nope"]
    code = main(["task", str(target), "--no-probe", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_subprocess_error_and_json(tmp_path):
    path = tmp_path / "r.csv"
    _reviews(80).to_csv(path, index=False)
    out = tmp_path / "task.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hf_spider",
            "task",
            str(path),
            "--sample",
            "20",
            "--no-probe",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["sample_size"] == 20 and data["has_data"] is True
    assert data["metadata"]["label_names"] == ["neg", "pos"]
    assert len(data["metadata_vector"]) == 64 and data["data_token"] is None
    proc = subprocess.run(
        [sys.executable, "-m", "hf_spider", "task", "no-such-org/no-such-set-on-disk/x", "--no-probe"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1


def test_cli_prints_a_summary_table(tmp_path, capsys):
    path = tmp_path / "r.csv"
    _reviews(40).to_csv(path, index=False)
    assert main(["task", str(path), "--sample", "10", "--no-probe"]) == 0
    out = capsys.readouterr().out
    assert "classes" in out and "neg, pos" in out and "metadata only" in out
