"""Sub-tasks of the zoo's datasets: many training tasks for the ranker's learned part (Model Spider's recipe).

The zoo has a dozen datasets; a learned task token cannot be fitted on a dozen rows. Like Model
Spider, this samples many sub-tasks from each root dataset (one without a `parent`): a random
class subset of 2..C classes and a training size per class, seeded. For every sub-task:

1. Features: every zoo model of the modality (never one fine-tuned on the root's family,
   `specs.excluded_families`) runs once over the root's stratified sample
   (`records._Samples`, `hf_spider.models.extract_features`, cached); a sub-task takes its rows.
2. Ground truth: a linear probe on the frozen features (`ridge_probe`: standardised features, a
   one-vs-all ridge classifier whose penalty is chosen from `ALPHAS` by exact leave-one-out
   accuracy on the training rows, accuracy on the sub-task's test rows). Closed form: the
   logistic regression of `build-records` took about a second per fit here, and there are
   thousands of fits.
3. Task token: the data token of `hf_spider.tasks` (`summarise_features`) from the product's default
   probe encoder (`hf_spider.tasks.PROBE_MODELS`) on the sub-task's training rows, as
   `load_task` computes it for a real dataset (where the probe encoder is one of the zoo models,
   its features are reused: the same weights); stored in `target_datasets.csv` (`data_token`,
   JSON) with the label names.
4. LogME of every (sub-task, model) on the training features, the baseline to beat.

Output: `<out>/<modality>/{records.csv, model_config.csv, target_datasets.csv,
transferability_scores.csv}` in the shared records schema (`hf_spider.ranker.load_records`).
Rebuilt with `python -m benchmarks.subtasks build`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hf_spider import _paths

logger = logging.getLogger("hf_spider.zoo")

DEFAULT_OUT = _paths.benchmark_records_dir("subtask_records")
# Root sample per dataset: at most this many train / test rows, stratified (30 / 15 per class for
# 10 classes: forward passes of 9 image models ran at ~0.15 s per image on the shared CPUs).
N_TRAIN = 300
N_TEST = 150
# Training examples per class a sub-task keeps (None: every row of its classes in the root sample).
PER_CLASS = (10, 20, 40, None)
# Ridge penalties on standardised features (hundreds to a thousand dimensions, tens of rows per class).
ALPHAS = (1.0, 10.0, 100.0, 1000.0, 10000.0)
MODE = "ridge_probe"


@dataclass(frozen=True)
class SubTask:
    """A class subset of a root dataset with a training size per class."""

    name: str
    root: str
    classes: tuple[int, ...]  # class ids of the root
    per_class: int | None  # training rows per class (None: all in the root sample)


def roots(modality: str) -> list[str]:
    """The zoo datasets of `modality` that are not class subsets of another."""
    from hf_spider.zoo._datasets import DATASETS

    return [name for name, spec in DATASETS.items() if spec.modality == modality and not spec.parent]


def sample_subtasks(root: str, n_classes: int, count: int, *, seed: int = 0) -> list[SubTask]:
    """`count` distinct sub-tasks of a root with `n_classes` classes: class-subset size uniform in
    2..C, the classes uniform among those, the training size per class from `PER_CLASS`. The full
    class set appears like any other subset. Fewer when the root has fewer distinct sub-tasks."""
    rng = np.random.default_rng([seed, *root.encode()])
    seen: set[tuple] = set()
    out: list[SubTask] = []
    for _ in range(50 * count):
        if len(out) == count:
            break
        k = int(rng.integers(2, n_classes + 1))
        classes = tuple(sorted(int(c) for c in rng.choice(n_classes, size=k, replace=False)))
        per_class = PER_CLASS[int(rng.integers(len(PER_CLASS)))]
        if (classes, per_class) in seen:
            continue
        seen.add((classes, per_class))
        # the name's own words are the root's only (`ranker.features.name_tokens` drops numbers)
        out.append(SubTask(f"{root}-{len(out):03d}", root, classes, per_class))
    return out


def subtask_rows(
    sub: SubTask, y_train: np.ndarray, y_test: np.ndarray, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the root sample a sub-task uses: `per_class` training rows of each of its classes
    (seeded) and every test row of its classes."""
    rng = np.random.default_rng([seed, *sub.name.encode()])
    train = []
    for c in sub.classes:
        rows = np.flatnonzero(y_train == c)
        if sub.per_class is not None and len(rows) > sub.per_class:
            rows = np.sort(rng.choice(rows, size=sub.per_class, replace=False))
        train.append(rows)
    return np.sort(np.concatenate(train)), np.flatnonzero(np.isin(y_test, sub.classes))


def build_subtasks(
    modality: str,
    *,
    per_root: int = 24,
    roots_: list[str] | None = None,
    models: list[str] | None = None,
    n_train: int = N_TRAIN,
    n_test: int = N_TEST,
    seed: int = 0,
    out_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    probe: str | None = None,
    batch_size: int = 32,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Sample `per_root` sub-tasks of every root dataset of `modality`, evaluate every zoo model of
    the modality on each, and write `<out_dir>/<modality>/` (see the module docstring).

    `roots_`, `models`: subsets (default: all); `probe`: the data token's encoder (default the
    product's, `hf_spider.tasks.PROBE_MODELS[modality]`). Returns counts and seconds per phase.
    """
    from hf_spider import estimators
    from hf_spider.models import extract_features
    from hf_spider.tasks import PROBE_MODELS
    from hf_spider.tasks.task import summarise_features
    from hf_spider.zoo import datasets_dir
    from hf_spider.zoo._datasets import DATASETS
    from hf_spider.zoo.records import _Samples, model_config_row
    from hf_spider.zoo.specs import MODELS, excluded_families

    zoo = Path(zoo_dir) if zoo_dir else _paths.zoo_dir()
    folder = (Path(out_dir) if out_dir else DEFAULT_OUT) / modality
    folder.mkdir(parents=True, exist_ok=True)
    probe = probe or PROBE_MODELS[modality]
    model_ids = [m for m in (models or MODELS) if MODELS[m].modality == modality]
    samples = _Samples(datasets_dir(zoo), n_train, n_test, seed)
    records, scores, targets, dims = [], [], [], {}
    seconds = {"features": 0.0, "probes": 0.0, "logme": 0.0, "data_token": 0.0}
    for root in roots_ or roots(modality):
        data = samples.root(root)
        inputs = data["train"][0] + data["test"][0]
        n_tr = len(data["train"][0])
        y_tr, y_te = data["train"][1], data["test"][1]
        key = f"zoo:{root}:train{n_tr}+test{len(inputs) - n_tr}:seed{seed}"
        family = DATASETS[root].family
        t0 = time.perf_counter()
        feats = {}
        for m in model_ids:
            if family in excluded_families(m):
                continue
            if progress:
                progress(f"{modality}: features of {m.split('/')[-1]} on {root}")
            x = extract_features(
                m, inputs, modality=modality, batch_size=batch_size, cache_key=key, offline=True
            )
            feats[m] = np.asarray(x, dtype=np.float32)
            dims[m] = feats[m].shape[1]
        if probe in feats:  # the probe encoder is a zoo model (both defaults are)
            probe_x = feats[probe][:n_tr]
        else:
            probe_x = np.asarray(
                extract_features(
                    probe,
                    data["train"][0],
                    modality=modality,
                    batch_size=batch_size,
                    cache_key=key,
                    offline=True,
                ),
                dtype=np.float32,
            )
        seconds["features"] += time.perf_counter() - t0
        names = list(data["names"])
        subs = sample_subtasks(root, len(names), per_root, seed=seed)
        for j, sub in enumerate(subs):
            tr, te = subtask_rows(sub, y_tr, y_te, seed=seed)
            remap = np.full(len(names), -1)
            remap[list(sub.classes)] = np.arange(len(sub.classes))
            ytr, yte = remap[y_tr[tr]], remap[y_te[te]]
            t0 = time.perf_counter()
            token, _ = summarise_features(probe_x[tr], ytr)
            seconds["data_token"] += time.perf_counter() - t0
            targets.append(
                {
                    "target_dataset": sub.name,
                    "size": len(tr) + len(te),
                    "number_of_classes": len(sub.classes),
                    "modality": modality,
                    "family": family,
                    "parent": root,
                    "train_examples": len(tr),
                    "test_examples": len(te),
                    "label_names": json.dumps([names[c] for c in sub.classes]),
                    "classes": json.dumps(list(sub.classes)),
                    "data_token": json.dumps([round(float(v), 5) for v in token]),
                    "probe": probe,
                }
            )
            for m, x in feats.items():
                t0 = time.perf_counter()
                result = ridge_probe(x[tr], ytr, x[n_tr:][te], yte)
                t1 = time.perf_counter()
                records.append(
                    {
                        "model": m,
                        "finetuned_dataset": sub.name,
                        "mode": MODE,
                        **result,
                        "train_examples": len(tr),
                        "test_examples": len(te),
                        "feature_dim": x.shape[1],
                        "seed": seed,
                        "elapsed_time": round(t1 - t0, 3),
                    }
                )
                value = estimators.score("logme", x[tr], ytr)
                t2 = time.perf_counter()
                scores.append(
                    {
                        "model": m,
                        "target_dataset": sub.name,
                        "metric": "logme",
                        "score": float(value),
                        "runtime": round(t2 - t1, 3),
                        "train_examples": len(tr),
                        "feature_dim": x.shape[1],
                    }
                )
                seconds["probes"] += t1 - t0
                seconds["logme"] += t2 - t1
            if progress:
                progress(f"{modality}: {root} sub-task {j + 1}/{len(subs)}")
    _write(folder / "records.csv", records)
    _write(folder / "transferability_scores.csv", scores)
    _write(folder / "target_datasets.csv", targets)
    _write(folder / "model_config.csv", [model_config_row(m, zoo, dims[m]) for m in sorted(dims)])
    logger.info("%s: %d sub-tasks, %d records", modality, len(targets), len(records))
    return {
        "subtasks": len(targets),
        "records": len(records),
        "out_dir": str(folder),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def ridge_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray) -> dict:
    """The sub-tasks' linear probe: `eval_accuracy` = the best leave-one-out accuracy over `ALPHAS`,
    `test_accuracy` on the test rows, `C` = 1 / the chosen penalty (the records' column)."""
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    clf = RidgeClassifierCV(alphas=ALPHAS, scoring="accuracy").fit(scaler.transform(x_train), y_train)
    return {
        "eval_accuracy": float(clf.best_score_),
        "test_accuracy": float((clf.predict(scaler.transform(x_test)) == y_test).mean()),
        "C": 1.0 / float(clf.alpha_),
        "eval_examples": len(y_train),
    }


def _write(path: Path, rows: list[dict]) -> None:
    import pandas as pd

    pd.DataFrame(rows).to_csv(path, index=False, float_format="%.6g")
