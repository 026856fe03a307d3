"""Dataset cards of fine-tuning datasets: what a card says about a records dataset's task.

A folder of cards holds `<dataset with "/" replaced by "__">/README.md` (Hub dataset-card layout:
YAML front matter with `dataset_info.features`, `task_categories`, prose). The project keeps
cards for every dataset of the shared and zoo records in `benchmarks/task_cards/`.
`hf-spider eval ranking --task-cards DIR` attaches them to the records (`Records.with_task_cards`):
each dataset's metadata then carries the card's label names, task categories and description, in
the keys `hf_spider.tasks.Task.metadata` uses, so a held-out dataset is described exactly like a
user's task. The ranker reads them only through features that nested cross-validation keeps.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hf_spider.errors import UserInputError

CARD_FILE = "README.md"


def card_folder(dataset: str) -> str:
    """The folder name of a dataset's card (`tweet_eval/hate` -> `tweet_eval__hate`)."""
    return dataset.replace("/", "__")


def card_meta(path: str | Path) -> dict[str, Any]:
    """Task metadata a card gives: `label_names` and `num_classes` (from its first class_label
    feature), `task_categories`, `description`; keys the card lacks are left out."""
    from datasets import ClassLabel

    from hf_spider.tasks import read_card

    card = read_card(path)
    meta: dict[str, Any] = {}
    features = card.features()
    labels = [f for f in (features or {}).values() if isinstance(f, ClassLabel)]
    if labels:
        meta["label_names"] = [str(n) for n in labels[0].names]
        meta["num_classes"] = len(meta["label_names"])
    if card.task_categories:
        meta["task_categories"] = [str(c) for c in card.task_categories]
    if card.description:
        meta["description"] = card.description
    return meta


def read_task_cards(directory: str | Path, datasets: Iterable[str]) -> tuple[dict[str, dict], list[str]]:
    """`({dataset: card_meta}, [datasets without a card])` from `directory`."""
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise UserInputError(
            f"task cards folder not found: {root}",
            hint='pass a folder of <dataset with "/" as "__">/README.md, e.g. benchmarks/task_cards',
        )
    found: dict[str, dict] = {}
    missing: list[str] = []
    for dataset in datasets:
        path = root / card_folder(dataset) / CARD_FILE
        meta = card_meta(path) if path.is_file() else {}
        if meta:
            found[dataset] = meta
        else:  # no card, or one that says nothing readable (empty, YAML not valid): counted as none
            missing.append(dataset)
    return found, missing
