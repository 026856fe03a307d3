"""Dataset cards of the records' datasets (`benchmarks/task_cards`) and `eval ranking --task-cards`:
every card parses with the project's card reader and agrees with the records' class counts (the
records' known mistakes named), the option attaches cards, lists datasets without one, and a bad
folder is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from hf_spider.cli import main
from hf_spider.ranker.records import load_records
from hf_spider.ranker.task_cards import card_folder, card_meta, read_task_cards
from hf_spider.tasks import read_card

ROOT = Path(__file__).resolve().parents[1]
CARDS = ROOT / "benchmarks" / "task_cards"
SHARED = ROOT.parent / "shared" / "data" / "transfergraph"
TARGET_FILES = [
    *(SHARED / m / "target_datasets.csv" for m in ("image", "text")),
    *(ROOT / "benchmarks" / "zoo_records" / m / "target_datasets.csv" for m in ("image", "text")),
]
# class counts of target_datasets.csv that are wrong, with what the dataset really has (each card
# says so in its prose)
RECORDS_MISTAKES = {"flowers": 102, "tweet_eval/offensive": 2}
# not classification datasets, or a copy whose label set we have not seen: the card declares no
# class_label and says why
NO_LABELS = {
    "wikimedia/wikipedia/20231101.en",
    "bertweet-covid19-cased-tweet-data",
    "chiapudding/kaggle-financial-sentiment",
    "HHousen/quora",
    "mteb/amazon_reviews_multi/en",
}


def _targets() -> list[tuple[str, int]]:
    out = []
    for path in TARGET_FILES:
        if not path.is_file():
            continue
        frame = pd.read_csv(path)
        name = frame.columns[0]
        out += [(str(r[name]), int(r["number_of_classes"])) for _, r in frame.iterrows()]
    return out


def test_every_target_has_a_card_that_parses_and_matches_the_records():
    targets = _targets()
    assert len(targets) >= 13  # the zoo's, even without ../shared
    for target, classes in targets:
        path = CARDS / card_folder(target) / "README.md"
        assert path.is_file(), f"no card for {target}"
        card = read_card(path)
        assert card.data.get("pretty_name") and card.task_categories, target
        assert len(card.description) >= 40, target
        assert "Source:" in card.body, target
        meta = card_meta(path)
        if target in NO_LABELS:
            assert "label_names" not in meta, target
            assert "no class_label" in card.body or "no class labels" in card.body, target
            continue
        names = meta["label_names"]
        assert len(set(names)) == len(names) >= 2, target
        expected = RECORDS_MISTAKES.get(target, classes)
        assert meta["num_classes"] == expected, (target, meta["num_classes"], classes)
        if target in RECORDS_MISTAKES:
            assert f"gives {classes} classes" in card.body, target


def test_card_meta_reads_labels_categories_and_prose(tmp_path):
    folder = tmp_path / "org__set"
    folder.mkdir()
    (folder / "README.md").write_text(
        "---\npretty_name: A set\ntask_categories: [text-classification]\ndataset_info:\n  features:\n"
        "  - name: text\n    dtype: string\n  - name: label\n    dtype:\n      class_label:\n"
        "        names:\n          '0': cold\n          '1': warm\n---\n\n# A set\n\n"
        "Short notes about the weather, labelled by how warm the day felt.\n"
    )
    cards, missing = read_task_cards(tmp_path, ["org/set", "other"])
    assert missing == ["other"]
    assert cards["org/set"] == {
        "label_names": ["cold", "warm"],
        "num_classes": 2,
        "task_categories": ["text-classification"],
        "description": "Short notes about the weather, labelled by how warm the day felt.",
    }
    # an empty card, and one whose YAML is broken and body is empty, say nothing: counted as none
    for name, text in (("empty", ""), ("broken", "---\ntags: [a\n  - : :\n---\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "README.md").write_text(text)
    cards, missing = read_task_cards(tmp_path, ["org/set", "empty", "broken"])
    assert list(cards) == ["org/set"] and missing == ["empty", "broken"]


def _records(tmp_path: Path) -> Path:
    from test_eval_ranking import make_records

    return make_records(tmp_path / "text", modality="text", n_models=10, n_targets=4)


def test_task_cards_enter_the_dataset_metadata_but_not_the_class_count(tmp_path):
    folder = _records(tmp_path)
    cards = tmp_path / "cards"
    (cards / "text_target_1").mkdir(parents=True)
    (cards / "text_target_1" / "README.md").write_text(
        "---\ntask_categories: [text-classification]\ndataset_info:\n  features:\n  - name: label\n"
        "    dtype:\n      class_label:\n        names: ['no', 'yes', 'maybe']\n---\n"
    )
    records = load_records([folder])
    found, missing = read_task_cards(cards, records.dataset_names)
    assert missing == ["text_target_0", "text_target_2", "text_target_3"]
    meta = records.with_task_cards(found).dataset_meta("text_target_1")
    assert meta["label_names"] == ["no", "yes", "maybe"]
    assert meta["num_classes"] == records.dataset_meta("text_target_1")["num_classes"] == 5
    # the copy keeps the cards under TransferGraph's ground truth too
    assert records.with_task_cards(found).with_ground_truth("best_eval").cards == found


def test_cli_task_cards_lists_datasets_without_one_and_rejects_a_bad_folder(tmp_path, capsys):
    folder = _records(tmp_path)
    cards = tmp_path / "cards"
    (cards / "text_target_0").mkdir(parents=True)
    (cards / "text_target_0" / "README.md").write_text(
        "---\ndataset_info:\n  features:\n  - name: label\n    dtype:\n      class_label:\n"
        "        names: ['a', 'b']\n---\n"
    )
    out = tmp_path / "res.json"
    base = ["eval", "ranking", "--data", str(folder), "--methods", "static,collaborative"]
    assert main([*base, "--task-cards", str(cards), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "without a card: text_target_1, text_target_2, text_target_3" in captured.err
    assert "top-1 regret (accuracy points), mean / max over datasets: static " in captured.err
    payload = json.loads(out.read_text())
    assert payload["protocol"]["task_cards"]["with_card"] == ["text_target_0"]
    assert payload["protocol"]["task_cards"]["without_card"] == [
        "text_target_1",
        "text_target_2",
        "text_target_3",
    ]
    mean = payload["mean"]["static"]
    assert mean["max_top1_regret"] == pytest.approx(
        max(d["static"]["top1_regret"] for d in payload["datasets"].values())
    )
    for bad in (tmp_path / "missing", cards / "text_target_0" / "README.md"):
        code = main([*base, "--task-cards", str(bad)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "--task-cards" in err[0] and "Traceback" not in err[0]


def test_card_content_does_not_enter_the_score(tmp_path):
    """No content feature passed nested CV (benchmarks/ranking.md): cards leave spider's scores as
    they are, held-out dataset and training datasets alike."""
    from test_eval_ranking import FAST

    from hf_spider.ranker.evaluation import evaluate_ranking

    folder = _records(tmp_path)
    cards = tmp_path / "cards"
    for i, names in enumerate((["no", "yes"], ["cold", "warm", "hot"], ["a", "b"], ["up", "down"])):
        (cards / f"text_target_{i}").mkdir(parents=True)
        labels = "".join(f"\n          '{j}': {n}" for j, n in enumerate(names))
        (cards / f"text_target_{i}" / "README.md").write_text(
            "---\ntask_categories: [text-classification]\ndataset_info:\n  features:\n  - name: label\n"
            f"    dtype:\n      class_label:\n        names:{labels}\n---\n\nNotes labelled {names}, a test card.\n"
        )
    records = load_records([folder])
    runs = [
        evaluate_ranking(
            records, ["text_target_1"], methods=["spider"], config=FAST, tune=False, task_cards=c
        )
        for c in (None, cards)
    ]
    assert runs[1]["protocol"]["task_cards"]["without_card"] == []
    assert [r["score"] for r in runs[0]["predictions"]] == [r["score"] for r in runs[1]["predictions"]]
