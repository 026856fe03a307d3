"""Records loader: shared schema, concatenation, and every known defect handled and reported."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from hf_spider.errors import DatasetError, UserInputError
from hf_spider.ranker.records import load_records

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "transfergraph"


def _write(folder: Path, name: str, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(folder / name, index=False)


def _image_dir(root: Path) -> Path:
    d = root / "img"
    rows = []
    for i in range(8):
        rows.append(
            {
                "model": f"org/m{i}",
                "finetuned_dataset": "beans",
                "eval_accuracy": 0.8 + i / 100,
                "test_accuracy": 0.8 + i / 100,
            }
        )
    rows.append(
        {"model": "org/m8", "finetuned_dataset": "beans", "eval_accuracy": 0.34, "test_accuracy": 0.34}
    )  # failed run
    for i in range(6):  # a target whose runs all failed (at chance)
        rows.append(
            {"model": f"org/m{i}", "finetuned_dataset": "food", "eval_accuracy": 0.01, "test_accuracy": 0.01}
        )
    _write(d, "records.csv", rows)
    _write(
        d,
        "model_config.csv",
        [
            {
                "model": f"org/m{i}",
                "architectures": "['ViTForImageClassification']",
                "model_type": "vit",
                "number_of_parameters": 1e6 * (i + 1),
            }
            for i in range(8)
        ],
    )
    _write(d, "target_datasets.csv", [{"target_dataset": "beans", "size": 1000, "number_of_classes": 3}])
    _write(
        d,
        "transferability_scores.csv",
        [
            {
                "model": "org/m1",
                "target_dataset": "beans",
                "metric": "TransferabilityMethod.LOG_ME",
                "score": 1.5,
            },
            {
                "model": "org/m1",
                "target_dataset": "beans",
                "metric": "TransferabilityMethod.REG_H_SCORE",
                "score": 3.0,
            },
        ],
    )
    return d


def _text_dir(root: Path) -> Path:
    d = root / "txt"
    rows = [
        {"model": "a/bert", "finetuned_dataset": "imdb", "eval_accuracy": 0.90, "peft_method": None},
        {
            "model": "a/bert",
            "finetuned_dataset": "imdb",
            "eval_accuracy": 0.92,
            "peft_method": None,
        },  # repeat
        {"model": "a/bert", "finetuned_dataset": "imdb", "eval_accuracy": 0.70, "peft_method": "lora"},
        {"model": "b/roberta", "finetuned_dataset": "imdb", "eval_accuracy": 0.93, "peft_method": None},
        {"model": "c/distil", "finetuned_dataset": "imdb", "eval_accuracy": 0.88, "peft_method": None},
        {"model": "d/only-lora", "finetuned_dataset": "imdb", "eval_accuracy": 0.80, "peft_method": "lora"},
        {"model": "1.0", "finetuned_dataset": "0.1", "eval_accuracy": None, "peft_method": None},  # shifted
        {"model": "x/unknown-id", "finetuned_dataset": "imdb", "eval_accuracy": 0.91, "peft_method": None},
    ]
    _write(d, "records.csv", rows)
    _write(
        d,
        "model_config.csv",
        [
            {
                "model": m,
                "architectures": "BertForSequenceClassification",
                "model_type": "bert",
                "number_of_parameters": 1e8,
            }
            for m in ("a/bert", "b/roberta", "c/distil", "d/only-lora")
        ],
    )
    _write(d, "target_datasets.csv", [{"finetune_dataset": "imdb", "size": 25000, "number_of_classes": 2}])
    return d


def test_defects_are_handled_and_reported(tmp_path):
    recs = load_records([_image_dir(tmp_path), _text_dir(tmp_path)])
    report = "\n".join(recs.report)
    perf = recs.perf.set_index(["model", "dataset"])
    # modality inferred per folder
    assert recs.modality_of("beans") == "image" and recs.modality_of("imdb") == "text"
    # shifted rows dropped, and said so
    assert "shifted" in report and "0.1" not in set(recs.perf["dataset"])
    # repeated full fine-tunes averaged (mean), LoRA set apart, LoRA-only pair not in the ground truth
    assert perf.loc[("a/bert", "imdb"), "accuracy"] == pytest.approx(0.91)
    assert perf.loc[("a/bert", "imdb"), "n_runs"] == 2
    # TransferGraph's ground truth: the best full fine-tune evaluation accuracy (LoRA runs out)
    assert perf.loc[("a/bert", "imdb"), "best_eval"] == pytest.approx(0.92)
    best = recs.with_ground_truth("best_eval").perf.set_index(["model", "dataset"])
    assert best.loc[("a/bert", "imdb"), "accuracy"] == pytest.approx(0.92)
    assert ("d/only-lora", "imdb") not in best.index
    assert ("d/only-lora", "imdb") not in perf.index
    assert len(recs.peft) == 2 and "lora" in report and "mean" in report
    # a run far below the chance-corrected median is flagged; a target at chance is flagged whole
    assert bool(perf.loc[("org/m8", "beans"), "failed"])
    assert not perf.loc[("org/m3", "beans"), "failed"]
    assert recs.perf[recs.perf["dataset"] == "food"]["failed"].all()
    assert bool(recs.datasets.set_index("dataset").loc["food", "failed"])
    assert "'food'" in report and "at chance" in report
    # ids that do not join model_config are reported
    assert "x/unknown-id" in report and "org/m8" in report
    # metadata of a target and its estimator scores
    assert recs.dataset_meta("beans") == {
        "name": "beans",
        "modality": "image",
        "num_classes": 3,
        "num_examples": 1000,
    }
    assert recs.score_matrix("logme", "beans").to_dict() == {"org/m1": 1.5}


def test_a_dataset_without_a_class_count_is_judged_on_raw_accuracy(tmp_path):
    """No class count in `target_datasets.csv`: runs close together are all kept (taking the lowest
    run as chance flagged it always, and the whole dataset when its runs were close); a run far
    below the others is still flagged, and a dataset at 1% still fails as a whole."""
    d = tmp_path / "nocount"
    close = [0.900, 0.903, 0.905, 0.907, 0.910]
    rows = [
        {"model": f"org/m{i}", "finetuned_dataset": name, "eval_accuracy": a, "test_accuracy": a}
        for name, accs in (("close", close), ("mixed", [*close, 0.30]))
        for i, a in enumerate(accs)
    ]
    rows += [
        {"model": f"org/m{i}", "finetuned_dataset": "dead", "eval_accuracy": 0.01, "test_accuracy": 0.01}
        for i in range(6)
    ]
    _write(d, "records.csv", rows)
    _write(
        d,
        "model_config.csv",
        [
            {"model": f"org/m{i}", "architectures": "['ViTForImageClassification']", "model_type": "vit"}
            for i in range(6)
        ],
    )
    recs = load_records([d])
    failed = recs.datasets.set_index("dataset")["failed"]
    assert not failed["close"] and not failed["mixed"] and failed["dead"]
    runs = recs.perf.set_index(["dataset", "model"])["failed"]
    assert not runs["close"].any()
    assert runs["mixed"].to_dict() == {f"org/m{i}": i == 5 for i in range(6)}


def test_same_files_concatenated_and_duplicates_dropped(tmp_path):
    a = _image_dir(tmp_path / "a")
    b = tmp_path / "b"
    b.mkdir()
    (b / "records.csv").write_text((a / "records.csv").read_text())  # an exact duplicate file
    _write(b, "model_config.csv", [{"model": "org/new", "architectures": "['ViTForImageClassification']"}])
    _write(
        b,
        "records.csv",
        [{"model": "org/new", "finetuned_dataset": "pets", "test_accuracy": 0.9}] * 2
        + [{"model": "org/m1", "finetuned_dataset": "pets", "test_accuracy": 0.8}],
    )
    single = load_records([a])
    both = load_records([a, b])
    assert len(both.perf) == len(single.perf) + 2  # the new target: any name is accepted
    assert "pets" in both.dataset_names
    assert both.dataset_meta("pets") == {
        "name": "pets",
        "modality": "image",
    }  # no metadata: no made-up values
    assert "org/new" in set(both.models["model"])


def test_errors_are_user_errors(tmp_path):
    with pytest.raises(UserInputError):
        load_records([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError):
        load_records([tmp_path / "empty"])
    bad = tmp_path / "bad"
    _write(bad, "records.csv", [{"model": "a", "accuracy_typo": 1}])
    with pytest.raises(DatasetError):
        load_records([bad])


def test_files_a_user_gets_wrong_say_what_to_fix(tmp_path):
    """An empty file, a scores or config file without its key column, a --data that is a file:
    one DatasetError / UserInputError each, naming what to fix."""
    d = _image_dir(tmp_path)
    (d / "transfergraph_predictions.csv").write_text("")
    with pytest.raises(DatasetError, match=r"transfergraph_predictions\.csv is empty"):
        load_records([d])
    (d / "transfergraph_predictions.csv").unlink()
    for name, column in (("transferability_scores.csv", "metric"), ("model_config.csv", "model")):
        kept = pd.read_csv(d / name)
        kept.drop(columns=[column]).to_csv(d / name, index=False)
        with pytest.raises(DatasetError, match=re.escape(f"{name} lacks the column {column!r}")):
            load_records([d])
        kept.to_csv(d / name, index=False)
    assert len(load_records([d]).perf)
    with pytest.raises(UserInputError, match="is a file, not a records folder"):
        load_records([d / "records.csv"])


def test_accuracies_in_percent_are_read_as_fractions(tmp_path):
    """A dataset whose accuracies are percentages (the shared schema has fractions) is read as
    fractions and the report says so; before, every row of it was dropped as outside [0, 1]."""
    fractions = load_records([_image_dir(tmp_path / "a")])
    d = _image_dir(tmp_path / "b")
    rows = pd.read_csv(d / "records.csv")
    beans = rows["finetuned_dataset"] == "beans"
    rows.loc[beans, ["eval_accuracy", "test_accuracy"]] *= 100  # one dataset in percent, food in fractions
    rows.to_csv(d / "records.csv", index=False)
    percent = load_records([d])
    pd.testing.assert_frame_equal(
        percent.perf.sort_values(["model", "dataset"]).reset_index(drop=True),
        fractions.perf.sort_values(["model", "dataset"]).reset_index(drop=True),
    )
    said = [line for line in percent.report if "percentages" in line]
    assert len(said) == 2 and all("(beans)" in line for line in said)
    assert not any("percentages" in line for line in fractions.report)


def test_a_failed_dataset_in_percent_is_read_in_percent_in_both_accuracy_columns(tmp_path):
    """A dataset whose runs failed, written in percent: its eval accuracies (1.0 = 1%) give the
    scale away only where a few runs reached above 1%; the test accuracy of the same dataset is
    on the same scale even though 1.0 alone looks like a fraction (found with a copy of the
    shared records whose food101 was in percent: it trained the ranker as ~99% accuracies)."""
    fractions = load_records([_image_dir(tmp_path / "a")])
    d = _image_dir(tmp_path / "b")
    rows = pd.read_csv(d / "records.csv")
    food = rows["finetuned_dataset"] == "food"
    rows.loc[food, ["eval_accuracy", "test_accuracy"]] *= 100  # 1.0 each
    rows.loc[food & (rows["model"] == "org/m0"), "eval_accuracy"] = 3.0  # a few above 1%
    rows.loc[food & (rows["model"] == "org/m1"), "eval_accuracy"] = 2.0
    rows.loc[food & (rows["model"] == "org/m2"), "eval_accuracy"] = 1.5
    rows.loc[food & (rows["model"] == "org/m3"), "eval_accuracy"] = 1.2
    rows.to_csv(d / "records.csv", index=False)
    percent = load_records([d])
    test_acc = percent.perf.set_index(["model", "dataset"])["accuracy"]
    assert test_acc.xs("food", level="dataset").max() == pytest.approx(0.01)
    assert test_acc.xs("food", level="dataset").equals(
        fractions.perf.set_index(["model", "dataset"])["accuracy"].xs("food", level="dataset")
    )
    said = [line for line in percent.report if "percentages" in line]
    assert len(said) == 2 and all("(food)" in line for line in said)


def test_lora_runs_without_a_peft_method_column_and_padded_model_ids(tmp_path):
    """Runs with LoRA settings are LoRA runs even where the peft_method column is missing (they
    were averaged into the full fine-tunes); a dataset with LoRA runs only is named as left out;
    model ids padded with spaces join their model_config rows."""
    d = _text_dir(tmp_path)
    rows = pd.read_csv(d / "records.csv")
    rows["lora_alpha"] = rows["peft_method"].map(lambda m: 16.0 if m == "lora" else None)
    rows = pd.concat(
        [
            rows,
            pd.DataFrame(
                [{"model": "a/bert", "finetuned_dataset": "sst2", "eval_accuracy": 0.8, "lora_alpha": 8.0}]
            ),
        ]
    )
    rows = rows.drop(columns="peft_method")
    rows["model"] = rows["model"].map(lambda m: f" {m}  " if m == "b/roberta" else m)
    rows.to_csv(d / "records.csv", index=False)
    loaded = load_records([d])
    imdb = loaded.perf[loaded.perf["dataset"] == "imdb"].set_index("model")["accuracy"]
    assert imdb["a/bert"] == pytest.approx(0.91)  # the two full runs, not the LoRA one
    assert "d/only-lora" not in imdb.index and "b/roberta" in imdb.index
    assert any("LoRA settings" in line and "read as LoRA runs" in line for line in loaded.report)
    assert any("parameter-efficient runs only" in line and "sst2" in line for line in loaded.report)
    assert not any("b/roberta" in line for line in loaded.report)


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared data not present")
def test_shared_data_known_defects():
    recs = load_records([SHARED / "image", SHARED / "text"])
    report = "\n".join(recs.report)
    assert set(recs.perf.groupby("dataset")["modality"].first()) == {"image", "text"}
    assert bool(recs.datasets.set_index("dataset").loc["food101", "failed"])  # median run at chance
    assert "dropped 3 shifted record rows" in report
    assert not recs.perf.duplicated(["model", "dataset"]).any()
    assert recs.perf["accuracy"].between(0, 1).all()
    assert recs.models["model"].nunique() == 349
    # TransferGraph's published predictions come along; repeated (dataset, model) rows keep the first
    assert {"caltech101", "glue/cola"} <= set(recs.predictions["dataset"])
    assert not recs.predictions.duplicated(["dataset", "model"]).any()
    assert "218 repeated (dataset, model) predictions" in report


def test_transfergraph_predictions_spelled_otherwise_are_matched_and_the_rest_reported(tmp_path):
    """The task-card spelling (`__` for `/`) in another case still names the records' dataset; a
    dataset the records lack and scores that are not numbers are reported, not silently lost."""
    d = _image_dir(tmp_path)
    rows = pd.read_csv(d / "records.csv")
    rows["finetuned_dataset"] = rows["finetuned_dataset"].replace({"beans": "org/beans"})
    rows.to_csv(d / "records.csv", index=False)
    pd.DataFrame(
        {
            "target_dataset": ["ORG__BEANS", "ORG__BEANS", "other", "org/beans"],
            "model": ["org/m1", "org/m2", "org/m1", "org/m3"],
            "score": [0.5, "n/a", 0.2, 0.1],
        }
    ).to_csv(d / "transfergraph_predictions.csv", index=False)
    recs = load_records([d])
    assert sorted(recs.predictions["dataset"].unique()) == ["org/beans", "other"]
    assert len(recs.predictions[recs.predictions["dataset"] == "org/beans"]) == 3  # n/a keeps its model
    said = " | ".join(line for line in recs.report if "transfergraph_predictions.csv" in line)
    assert "1 dataset name(s) spelled otherwise than in records.csv, matched: ['ORG__BEANS']" in said
    assert "1 dataset(s) without records, left out: ['other']" in said
    assert "1 predictions without a numeric score" in said


def test_transferability_scores_spelled_otherwise_are_matched(tmp_path):
    """LogME and H-score rows name their dataset as the predictions file may (another case, `__`
    for `/`) and their model ids may be padded: they still score the records' dataset (they were
    lost, and stage 2 with them, without a word)."""
    d = _image_dir(tmp_path)
    scores = pd.read_csv(d / "transferability_scores.csv")
    scores["target_dataset"] = "BEANS"
    scores["model"] = " org/m1 "
    scores.to_csv(d / "transferability_scores.csv", index=False)
    recs = load_records([d])
    assert set(recs.scores["dataset"]) == {"beans"} and set(recs.scores["model"]) == {"org/m1"}
    assert any(
        line.startswith("transferability_scores.csv: 1 dataset name(s) spelled otherwise")
        for line in recs.report
    )
