"""Sub-tasks of the zoo's datasets (`hf_spider.zoo.subtasks`) and the data part of the task token."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from conftest import needs_zoo

from hf_spider.ranker import features as F
from hf_spider.tasks import DATA_TOKEN_LENGTH
from hf_spider.zoo.subtasks import PER_CLASS, ridge_probe, sample_subtasks, subtask_rows

SPLADE = "hf-spider-zoo/splade-tiny"


def test_subtasks_are_distinct_seeded_class_subsets():
    subs = sample_subtasks("fashion_mnist", 10, 30, seed=0)
    assert subs == sample_subtasks("fashion_mnist", 10, 30, seed=0)
    assert subs != sample_subtasks("fashion_mnist", 10, 30, seed=1)
    assert len({(s.classes, s.per_class) for s in subs}) == 30
    for s in subs:
        assert 2 <= len(s.classes) <= 10 and len(set(s.classes)) == len(s.classes)
        assert s.per_class in PER_CLASS and s.root == "fashion_mnist"
        # the name says which root and nothing else the ranker could read as a word
        assert F.name_tokens(s.name) == F.name_tokens("fashion_mnist")
    assert len({len(s.classes) for s in subs}) > 4  # subset sizes vary
    # a binary root has one class subset: only the sizes vary
    assert len(sample_subtasks("rotten_tomatoes", 2, 30)) == len(PER_CLASS)


def test_subtask_rows_take_its_classes_and_size():
    y_train = np.repeat(np.arange(5), 30)
    y_test = np.repeat(np.arange(5), 10)
    sub = next(s for s in sample_subtasks("digits", 5, 20) if s.per_class == 10 and len(s.classes) < 5)
    tr, te = subtask_rows(sub, y_train, y_test)
    assert np.bincount(y_train[tr], minlength=5)[list(sub.classes)].tolist() == [10] * len(sub.classes)
    assert set(y_train[tr]) == set(y_test[te]) == set(sub.classes)
    assert len(te) == 10 * len(sub.classes)


def test_ground_truth_is_a_real_fit():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    centres = rng.normal(size=(3, 32)) * 3
    x, xt = centres[y] + rng.normal(size=(120, 32)), centres[y] + rng.normal(size=(120, 32))
    separable = ridge_probe(x, y, xt, y)
    shuffled = ridge_probe(x, rng.permutation(y), xt, rng.permutation(y))
    assert separable["test_accuracy"] > 0.9 > 0.6 > shuffled["test_accuracy"]
    assert separable["C"] > 0 and separable["eval_examples"] == 120


def test_task_data_vector_reads_the_scalar_slots():
    assert F.task_data_vector({}).tolist() == [0.0] * F.TASK_DATA_DIM
    token = np.arange(DATA_TOKEN_LENGTH, dtype=np.float32)
    v = F.task_data_vector({"data_token": token.tolist()})
    assert v[:-1].tolist() == token[F.DATA_SLOTS].tolist() and v[-1] == 1.0
    assert F.task_input({"num_classes": 3}).shape == (F.TASK_DIM,)
    assert F.task_input({"num_classes": 3}, True).shape == (F.TASK_DIM + F.TASK_DATA_DIM,)


@needs_zoo(SPLADE, datasets=("debates_2016",))
def test_build_subtasks_writes_records_the_ranker_reads(tmp_path):
    from hf_spider.ranker import load_records
    from hf_spider.ranker.inference import dataset_context, score_context
    from hf_spider.ranker.model import RankerConfig
    from hf_spider.ranker.tokens import tokens_for
    from hf_spider.ranker.training import fit, training_contexts
    from hf_spider.zoo.subtasks import build_subtasks

    summary = build_subtasks(
        "text",
        per_root=6,
        roots_=["debates_2016"],
        models=[SPLADE],
        n_train=60,
        n_test=30,
        out_dir=tmp_path,
        probe=SPLADE,
    )
    folder = tmp_path / "text"
    assert summary["subtasks"] == 6 and summary["records"] == 6
    targets = pd.read_csv(folder / "target_datasets.csv").set_index("target_dataset")
    records = pd.read_csv(folder / "records.csv")
    assert set(records["finetuned_dataset"]) == set(targets.index)
    assert records["test_accuracy"].between(0, 1).all() and records["test_accuracy"].nunique() > 1
    for name, row in targets.iterrows():
        classes, labels = json.loads(row["classes"]), json.loads(row["label_names"])
        assert row["number_of_classes"] == len(classes) == len(labels) >= 2
        assert len(json.loads(row["data_token"])) == DATA_TOKEN_LENGTH
        assert records.set_index("finetuned_dataset").loc[name, "train_examples"] == row["train_examples"]
    assert set(pd.read_csv(folder / "transferability_scores.csv")["metric"]) == {"logme"}

    loaded = load_records([folder])
    name = targets.index[0]
    meta = loaded.dataset_meta(name)
    assert F.task_data_vector(meta)[-1] == 1.0  # the data token reaches the task token
    # a context needs 3 models: the same records under two more ids, with other accuracies
    copies = {f"{SPLADE}-copy{i}": records["test_accuracy"] + (0.04 * i - 0.03) for i in (0, 1)}
    pd.concat([records, *(records.assign(model=m, test_accuracy=a) for m, a in copies.items())]).to_csv(
        folder / "records.csv", index=False
    )
    config = pd.read_csv(folder / "model_config.csv")
    pd.concat([config, *(config.assign(model=m) for m in copies)]).to_csv(
        folder / "model_config.csv", index=False
    )
    loaded = load_records([folder])
    tokens, _ = tokens_for(loaded, catalog=False)
    train = list(targets.index[1:])
    contexts = training_contexts(loaded, "text", train, tokens, card=False, use_scores=False)
    model = fit(contexts, RankerConfig(steps=3, ensemble=1, task_data=True, min_candidates=2))
    ctx = dataset_context(loaded, name, sorted(tokens), train, tokens, card=False)
    assert np.isfinite(score_context(model, ctx)).all()
