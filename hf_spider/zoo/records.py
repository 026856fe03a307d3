"""`hf-spider build-records`: the ground truth of the offline zoo, in the shared records schema.

Protocol (mode `linear_probe`, the budgeted mode; recorded in every row):
1. Task sample: a stratified sample (seed 0) of at most `n_train` rows of the task's train split
   and `n_test` rows of its test split. A class-subset task (`parent`) uses the rows of its
   parent's sample whose class is in the subset, so one forward pass serves all subsets.
2. Features: frozen pooled features of the model (`hf_spider.models.extract_features`, the one
   feature path of hf-spider), offline from the zoo.
3. Classifier: standardised features, multinomial logistic regression (lbfgs). C is chosen on a
   stratified 20% validation part of the train sample from `C_GRID` (`eval_accuracy` = that
   validation accuracy), then refit on the whole train sample; `test_accuracy` is measured on
   the test sample.
4. Exclusions: a model is never evaluated on a task of a dataset family that it or one of its
   ancestors was fine-tuned on (`hf_spider.zoo.specs.excluded_families`).
5. Transferability scores (`hf_spider.estimators.score`) of the train-sample features, and the
   features themselves in `zoo_dir()/features/<org>--<name>/<task>.npz` for estimator benchmarks.

Rows already in the output are skipped (resumable). Under `accelerate launch`, the models are
dealt out to the processes by index; each writes its own part files and the main process merges.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hf_spider import _paths
from hf_spider.errors import UserInputError

logger = logging.getLogger("hf_spider.zoo")

DEFAULT_SAMPLE = 1000
SEED = 0
C_GRID = (0.01, 0.1, 1.0, 10.0)
VALIDATION_FRACTION = 0.2
MODES = ("linear_probe",)
DEFAULT_OUT = _paths.benchmark_records_dir("zoo_records")

RECORD_COLUMNS = [
    "model",
    "finetuned_dataset",
    "mode",
    "eval_accuracy",
    "test_accuracy",
    "train_examples",
    "eval_examples",
    "test_examples",
    "feature_dim",
    "C",
    "seed",
    "elapsed_time",
]
SCORE_COLUMNS = ["model", "target_dataset", "metric", "score", "runtime", "train_examples", "feature_dim"]
CONFIG_COLUMNS = [
    "model",
    "modality",
    "architectures",
    "model_type",
    "library",
    "task",
    "dataset",
    "base_model",
    "#labels",
    "labels",
    "number_of_parameters",
    "input_shape",
    "output_shape",
    "accuracy",
    "license",
]
TARGET_COLUMNS = [
    "target_dataset",
    "size",
    "number_of_classes",
    "modality",
    "family",
    "parent",
    "train_examples",
    "test_examples",
    "label_names",
]


@dataclass
class TaskSample:
    name: str
    root: str
    train_idx: np.ndarray  # rows of the root sample
    test_idx: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    label_names: list[str]
    size: int


def _pairs(modality: str, models: list[str] | None, tasks: list[str] | None) -> list[tuple[str, str]]:
    from hf_spider.zoo._datasets import DATASETS
    from hf_spider.zoo.specs import MODELS, excluded_families

    model_ids = [m for m in (models or MODELS) if MODELS.get(m) and MODELS[m].modality == modality]
    unknown = [m for m in (models or []) if m not in MODELS]
    if unknown:
        raise UserInputError(f"not a zoo model: {', '.join(unknown)}", hint="see `hf-spider zoo list`")
    unknown = [t for t in (tasks or []) if t not in DATASETS]
    if unknown:
        raise UserInputError(f"not a zoo dataset: {', '.join(unknown)}", hint="see `hf-spider zoo list`")
    task_ids = [t for t in (tasks or DATASETS) if DATASETS[t].modality == modality]
    return [(m, t) for m in model_ids for t in task_ids if DATASETS[t].family not in excluded_families(m)]


def _stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    from hf_spider.zoo._variants import stratified_sample

    return stratified_sample(labels, n, seed)


class _Samples:
    """Task samples and their inputs, read once per root dataset."""

    def __init__(self, datasets_dir: Path, n_train: int, n_test: int, seed: int):
        self.dir, self.n_train, self.n_test, self.seed = datasets_dir, n_train, n_test, seed
        self._roots: dict[str, dict] = {}

    def root(self, name: str) -> dict:
        from hf_spider.zoo._datasets import load_split

        if name not in self._roots:
            folder = self.dir / name
            if not (folder / "README.md").is_file():
                raise UserInputError(
                    f"dataset {name!r} is not installed in the zoo", hint="run `hf-spider zoo install`"
                )
            out = {}
            for split, n in (("train", self.n_train), ("test", self.n_test)):
                inputs, labels, names = load_split(folder, split)
                pick = _stratified(labels, n, self.seed)
                out[split] = ([inputs[i] for i in pick], labels[pick])
                out[f"{split}_size"] = len(labels)
            out["names"] = names
            self._roots[name] = out
        return self._roots[name]

    def task(self, name: str) -> TaskSample:
        from hf_spider.zoo._datasets import DATASETS

        spec = DATASETS[name]
        root_name = spec.parent or name
        root = self.root(root_name)
        y_tr, y_te = root["train"][1], root["test"][1]
        if spec.parent:
            classes = list(spec.classes)
            remap = np.full(len(root["names"]), -1)
            remap[classes] = np.arange(len(classes))
            tr, te = np.flatnonzero(np.isin(y_tr, classes)), np.flatnonzero(np.isin(y_te, classes))
            names = [root["names"][c] for c in classes]
            return TaskSample(
                name, root_name, tr, te, remap[y_tr[tr]], remap[y_te[te]], names, _repo_size(self.dir / name)
            )
        return TaskSample(
            name,
            root_name,
            np.arange(len(y_tr)),
            np.arange(len(y_te)),
            y_tr,
            y_te,
            list(root["names"]),
            root["train_size"] + root["test_size"],
        )


def _repo_size(folder: Path) -> int:
    import yaml

    meta = yaml.safe_load((folder / "README.md").read_text().split("---", 2)[1])
    return int(sum(s["num_examples"] for s in meta["dataset_info"]["splits"]))


def linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    seed: int = SEED,
    c_grid=C_GRID,
) -> dict:
    """The protocol's classifier: C chosen on a validation part, refit on all train, test accuracy."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    def fit(x, y, c):
        scaler = StandardScaler().fit(x)
        clf = LogisticRegression(C=c, max_iter=1000, random_state=seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(scaler.transform(x), y)
        return lambda z: clf.predict(scaler.transform(z))

    idx = np.arange(len(y_train))
    n_classes = len(np.unique(y_train))
    n_val = max(round(VALIDATION_FRACTION * len(idx)), n_classes)  # at least one example per class
    if len(idx) - n_val < n_classes:
        from hf_spider.errors import DatasetError

        raise DatasetError(
            f"{len(idx)} training examples are too few for {n_classes} classes", hint="use a larger --sample"
        )
    fit_idx, val_idx = train_test_split(idx, test_size=n_val, random_state=seed, stratify=y_train)
    val_acc = {}
    for c in c_grid:
        predict = fit(x_train[fit_idx], y_train[fit_idx], c)
        val_acc[c] = float((predict(x_train[val_idx]) == y_train[val_idx]).mean())
    best = max(c_grid, key=lambda c: (val_acc[c], -c))  # ties: the stronger regularisation
    predict = fit(x_train, y_train, best)
    return {
        "eval_accuracy": val_acc[best],
        "test_accuracy": float((predict(x_test) == y_test).mean()),
        "C": best,
        "eval_examples": len(val_idx),
    }


def _source_head(model_id: str, folder: Path) -> Callable[[np.ndarray], np.ndarray] | None:
    """Probabilities of the model's own head computed from its pooled features, where exact."""
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    if "architecture" in config and (folder / "model.safetensors").is_file():  # timm-style Lite
        from safetensors.numpy import load_file

        state = load_file(folder / "model.safetensors")
        w, b = state["classifier.weight"], state["classifier.bias"]
        return lambda f: _softmax(f @ w.T + b)
    if config.get("model_type") == "onnx":
        from hf_spider.zoo._models import onnx_linear_head

        head = onnx_linear_head(folder / "model.onnx", config.get("feature_output", "features"))
        if head is not None:
            w, b = head
            return lambda f: _softmax(f @ w + b)
    return None


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class _Table:
    """A CSV of rows keyed by some columns, rewritten atomically after each change."""

    def __init__(self, path: Path, columns: list[str], key: list[str], extra_read: list[Path] = ()):
        import pandas as pd

        self.path, self.columns, self.key = path, columns, key
        frames = []
        for p in [path, *extra_read]:
            if not (p.is_file() and p.stat().st_size > 0):
                continue
            try:
                frame = pd.read_csv(p)
            except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
                raise UserInputError(
                    f"{p} is not a records CSV this command wrote ({type(exc).__name__})",
                    hint="pass another --out, or move the file aside; it is left as it is",
                ) from None
            if len(frame.columns) and not set(key) <= set(frame.columns):
                raise UserInputError(
                    f"{p} lacks the key columns {', '.join(key)}: not records this command wrote",
                    hint="pass another --out, or move the file aside; it is left as it is",
                )
            frames.append(frame)
        frames = [f for f in frames if len(f.columns)]
        self.rows: list[dict] = []
        for frame in frames:
            self.rows += frame.to_dict("records")
        self._index = {self._key(r) for r in self.rows}

    def _key(self, row: dict) -> tuple:
        return tuple(str(row.get(k)) for k in self.key)

    def has(self, **key) -> bool:
        return tuple(str(key[k]) for k in self.key) in self._index

    def add(self, rows: list[dict], *, replace: bool = False) -> None:
        for row in rows:
            k = self._key(row)
            if k in self._index:
                if not replace:
                    continue
                self.rows = [r for r in self.rows if self._key(r) != k]
            self.rows.append(row)
            self._index.add(k)

    def save(self) -> None:
        import pandas as pd

        frame = pd.DataFrame(self.rows)
        columns = self.columns + [c for c in frame.columns if c not in self.columns]
        frame = frame.reindex(columns=columns)
        if len(frame):
            frame = frame.sort_values(self.key, kind="stable")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        frame.to_csv(tmp, index=False, float_format="%.6g")
        os.replace(tmp, self.path)


def _card_meta(folder: Path) -> dict:
    import yaml

    readme = folder / "README.md"
    if not readme.is_file():
        return {}
    text = readme.read_text()
    return yaml.safe_load(text.split("---", 2)[1]) if text.startswith("---") else {}


_BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")


def _count_params(folder: Path) -> int:
    if (folder / "model.safetensors").is_file():
        from safetensors import safe_open

        with safe_open(folder / "model.safetensors", "np") as f:
            # Parameters only: BatchNorm running statistics are buffers, not parameters.
            keys = [k for k in f.keys() if not k.endswith(_BUFFER_SUFFIXES)]  # noqa: SIM118
            return int(sum(int(np.prod(f.get_slice(k).get_shape())) for k in keys))
    if (folder / "model.onnx").is_file():
        import onnx

        graph = onnx.load(folder / "model.onnx").graph
        return int(sum(int(np.prod(t.dims)) for t in graph.initializer))
    return 0


def model_config_row(model_id: str, zoo_dir: Path | None = None, feature_dim: int | None = None) -> dict:
    """A `model_config.csv` row from the installed repo's files and card."""
    from hf_spider.zoo import model_path
    from hf_spider.zoo.specs import MODELS

    spec = MODELS[model_id]
    folder = model_path(model_id, zoo_dir)
    config = json.loads((folder / "config.json").read_text())
    meta = _card_meta(folder)
    if spec.fmt == "timm":
        arch, model_type = config["architecture"], "efficientnet_lite"
        labels = config.get("label_names") or ("imagenet" if config.get("num_classes") == 1000 else None)
        n_labels = config.get("num_classes")
        input_shape = config["pretrained_cfg"]["input_size"][-1]
    elif spec.fmt == "onnx":
        arch, model_type = config.get("architecture", "onnx"), "onnx"
        labels, n_labels = config.get("label_names"), len(config.get("label_names", []))
        input_shape = config["input_size"][0]
    else:
        arch, model_type = ",".join(config.get("architectures", [])), config.get("model_type")
        id2label = config.get("id2label") or {}
        is_classifier = any(a.endswith("ForSequenceClassification") for a in config.get("architectures", []))
        labels = [id2label[k] for k in sorted(id2label, key=int)] if is_classifier else None
        n_labels = len(labels) if labels else None
        input_shape = config.get("max_position_embeddings")
    finetune = config.get("finetuning") or {}
    return {
        "model": model_id,
        "modality": spec.modality,
        "architectures": str([arch]),
        "model_type": model_type,
        "library": meta.get("library_name", spec.fmt),
        "task": meta.get("pipeline_tag"),
        "dataset": spec.source_task or ",".join((meta.get("datasets") or [])[:3]) or None,
        "base_model": spec.base_model,
        "#labels": n_labels,
        "labels": str(labels) if labels else None,
        "number_of_parameters": _count_params(folder),
        "input_shape": input_shape,
        "output_shape": feature_dim,
        "accuracy": finetune.get("source_test_accuracy"),
        "license": meta.get("license", spec.license),
    }


def _process_state():
    try:
        import torch
        from accelerate import PartialState

        # Without a GPU, accelerate only sees the launcher's processes when told to use the CPU.
        state = PartialState(cpu=not torch.cuda.is_available())
        return state.process_index, state.num_processes, state.wait_for_everyone
    except Exception:  # accelerate absent or not configured: one process
        return 0, 1, lambda: None


def _in_zoo(fn):
    """Run `fn` with its `zoo_dir` as the zoo every lookup uses (`HF_SPIDER_ZOO` for the call):
    the model and feature lookups below read `_paths.zoo_dir()`, not the argument."""

    @functools.wraps(fn)
    def wrapper(*args, zoo_dir=None, **kwargs):
        if zoo_dir is None:
            return fn(*args, **kwargs)
        before = os.environ.get("HF_SPIDER_ZOO")
        os.environ["HF_SPIDER_ZOO"] = str(Path(zoo_dir).expanduser())
        try:
            return fn(*args, zoo_dir=zoo_dir, **kwargs)
        finally:
            if before is None:
                os.environ.pop("HF_SPIDER_ZOO", None)
            else:
                os.environ["HF_SPIDER_ZOO"] = before

    return wrapper


@_in_zoo
def build_records(
    *,
    modality: str | None = None,
    models: list[str] | None = None,
    tasks: list[str] | None = None,
    mode: str = "linear_probe",
    budget_s: float | None = None,
    n_train: int = DEFAULT_SAMPLE,
    n_test: int = DEFAULT_SAMPLE // 2,
    estimators: list[str] | None = None,
    out_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    batch_size: int = 32,
    seed: int = SEED,
    features_dir: str | Path | None = None,
    threads: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """Evaluate zoo models on local tasks and write the records folders `<out_dir>/<modality>/`.

    Args:
        modality: "text", "image" or None for both.
        models, tasks: subsets (default: every zoo model and local dataset of the modality).
        mode: "linear_probe" (the protocol in this module's docstring).
        budget_s: stop starting new (model, task) pairs after this many seconds; rerun to resume.
        n_train, n_test: sample sizes per task (train / test split).
        estimators: names for `transferability_scores.csv` (default: all available; [] = none).
        features_dir: where the per-(model, task) features go (default `zoo_dir()/features`).
        threads: torch CPU threads for this process (default: torch's own choice).

    Returns:
        {"written": rows added, "skipped": pairs already present, "remaining": pairs left, "out_dir": ...}
    """
    if mode not in MODES:
        raise UserInputError(f"unknown mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    from hf_spider.zoo import datasets_dir, model_path

    if threads:
        import torch

        torch.set_num_threads(threads)
    out_root = Path(out_dir) if out_dir else DEFAULT_OUT
    zoo = Path(zoo_dir) if zoo_dir else _paths.zoo_dir()
    features_root = Path(features_dir) if features_dir else zoo / "features"
    rank, world, barrier = _process_state()
    modalities = [modality] if modality else ["text", "image"]
    start = time.perf_counter()
    written = skipped = remaining = 0
    est_names = _estimator_names(estimators)
    for mod in modalities:
        pairs = _pairs(mod, models, tasks)
        folder = out_root / mod
        parts = folder / ".parts"
        suffix = f".rank{rank}" if world > 1 else ""
        part_files = sorted(parts.glob("records.rank*.csv")) if parts.is_dir() else []
        records = _Table(
            (parts / f"records{suffix}.csv") if world > 1 else folder / "records.csv",
            RECORD_COLUMNS,
            ["model", "finetuned_dataset", "mode"],
            extra_read=[folder / "records.csv", *part_files] if world > 1 else [],
        )
        score_parts = sorted(parts.glob("transferability_scores.rank*.csv")) if parts.is_dir() else []
        scores = _Table(
            (parts / f"transferability_scores{suffix}.csv")
            if world > 1
            else folder / "transferability_scores.csv",
            SCORE_COLUMNS,
            ["model", "target_dataset", "metric"],
            extra_read=[folder / "transferability_scores.csv", *score_parts] if world > 1 else [],
        )
        model_ids = list(dict.fromkeys(m for m, _ in pairs))
        mine = [m for i, m in enumerate(model_ids) if i % world == rank]
        todo = [
            (m, t) for m, t in pairs if m in mine and not records.has(model=m, finetuned_dataset=t, mode=mode)
        ]
        skipped += sum(1 for m, t in pairs if m in mine) - len(todo)
        samples = _Samples(datasets_dir(zoo), n_train, n_test, seed)
        done = 0
        # Roots (datasets whose one sample serves several tasks) that most models are evaluated on
        # come first, so an interrupted or budgeted run already has a full models x tasks block.
        from hf_spider.zoo._datasets import DATASETS

        def root_of(task: str) -> str:
            return DATASETS[task].parent or task

        roots = sorted(
            {root_of(t) for _, t in todo},
            key=lambda r: (-sum(root_of(t) == r for _, t in todo), list(DATASETS).index(r)),
        )
        heads: dict[str, Callable | None] = {}
        for root in roots:
            for model_id in mine:
                model_tasks = [t for m, t in todo if m == model_id and root_of(t) == root]
                if not model_tasks:
                    continue
                if budget_s is not None and time.perf_counter() - start > budget_s:
                    remaining += len(model_tasks)
                    continue
                if model_id not in heads:
                    heads[model_id] = _source_head(model_id, model_path(model_id, zoo))
                head = heads[model_id]
                t_root = time.perf_counter()
                f = _root_features(
                    model_id,
                    mod,
                    samples,
                    root,
                    seed,
                    batch_size,
                    need_probs=head is None and _needs_probs(est_names),
                )
                t_features = (time.perf_counter() - t_root) / len(model_tasks)
                for task in model_tasks:
                    t0 = time.perf_counter()
                    sample = samples.task(task)
                    x_tr, x_te = f["train"][sample.train_idx], f["test"][sample.test_idx]
                    result = linear_probe(x_tr, sample.y_train, x_te, sample.y_test, seed=seed)
                    row = {
                        "model": model_id,
                        "finetuned_dataset": task,
                        "mode": mode,
                        **result,
                        "train_examples": len(sample.y_train),
                        "test_examples": len(sample.y_test),
                        "feature_dim": x_tr.shape[1],
                        "seed": seed,
                    }
                    if head:
                        probs = head(x_tr)
                    else:
                        probs = (
                            f["train_probs"][sample.train_idx] if f.get("train_probs") is not None else None
                        )
                    score_rows = _scores(model_id, task, x_tr, sample.y_train, probs, est_names)
                    row["elapsed_time"] = round(time.perf_counter() - t0 + t_features, 2)
                    _save_features(features_root, model_id, task, x_tr, sample.y_train, x_te, sample.y_test)
                    records.add([row], replace=True)
                    scores.add(score_rows, replace=True)
                    records.save()
                    scores.save()
                    written += 1
                    done += 1
                    logger.info(
                        "%s on %s: test %.4f (eval %.4f, C=%s)",
                        model_id,
                        task,
                        result["test_accuracy"],
                        result["eval_accuracy"],
                        result["C"],
                    )
                    if progress:
                        progress(f"{mod}: {model_id.split('/')[-1]} on {task}", done, len(todo))
        if world > 1:
            barrier()
            if rank == 0:
                _merge_parts(folder)
        if rank == 0:
            _write_metadata(folder, zoo, mod)
    return {
        "written": written,
        "skipped": skipped,
        "remaining": remaining,
        "out_dir": str(out_root),
        "seconds": round(time.perf_counter() - start, 1),
        "process_index": rank,
        "num_processes": world,
    }


def _estimator_names(names: list[str] | None) -> list[str]:
    try:
        from hf_spider import estimators
    except ImportError:  # estimators stage not built: no scores
        return []
    available = estimators.available()
    if names is None:
        return available
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UserInputError(
            f"unknown estimator(s): {', '.join(unknown)}", hint=f"available: {', '.join(available)}"
        )
    return list(names)


def _needs_probs(names: list[str]) -> bool:
    from hf_spider import estimators

    return any(getattr(estimators.get_estimator(n), "needs_probs", False) for n in names)


def _scores(model_id, task, x, y, probs, names) -> list[dict]:
    from hf_spider import estimators
    from hf_spider.errors import HfSpiderError

    rows = []
    for name in names:
        needs_probs = getattr(estimators.get_estimator(name), "needs_probs", False)
        if needs_probs and probs is None:
            continue
        t0 = time.perf_counter()
        try:
            value = estimators.score(name, x, y, probs=probs if needs_probs else None)
        except HfSpiderError as exc:  # a degenerate input for this estimator: no score, logged
            logger.warning("%s on %s: %s not scored (%s)", model_id, task, name, exc)
            continue
        rows.append(
            {
                "model": model_id,
                "target_dataset": task,
                "metric": name,
                "score": float(value),
                "runtime": round(time.perf_counter() - t0, 3),
                "train_examples": len(y),
                "feature_dim": x.shape[1],
            }
        )
    return rows


def _root_features(
    model_id, modality, samples: _Samples, root: str, seed: int, batch_size: int, need_probs: bool
):
    from hf_spider.models import extract_features, source_probs

    data = samples.root(root)
    # One call (one model load) for both splits; the cache key names the exact sample.
    inputs = data["train"][0] + data["test"][0]
    n_train = len(data["train"][0])
    key = f"zoo:{root}:train{n_train}+test{len(data['test'][0])}:seed{seed}"
    both = np.asarray(
        extract_features(
            model_id, inputs, modality=modality, batch_size=batch_size, cache_key=key, offline=True
        ),
        dtype=np.float32,
    )
    out = {"train": both[:n_train], "test": both[n_train:]}
    if need_probs:
        probs = source_probs(
            model_id,
            data["train"][0],
            modality=modality,
            batch_size=batch_size,
            cache_key=f"zoo:{root}:train:n{len(data['train'][0])}:seed{seed}",
            offline=True,
        )
        out["train_probs"] = None if probs is None else np.asarray(probs, dtype=np.float64)
    return out


def _save_features(root: Path, model_id: str, task: str, x_tr, y_tr, x_te, y_te) -> None:
    folder = root / model_id.replace("/", "--")
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{task}.tmp.npz"
    np.savez(
        tmp,
        train_X=x_tr.astype(np.float32),
        train_y=y_tr.astype(np.int64),
        test_X=x_te.astype(np.float32),
        test_y=y_te.astype(np.int64),
    )
    os.replace(tmp, folder / f"{task}.npz")


def _write_metadata(folder: Path, zoo: Path, modality: str) -> None:
    """model_config.csv and target_datasets.csv for every model and task in records.csv."""
    import pandas as pd
    import yaml

    from hf_spider.zoo._datasets import DATASETS

    if not (folder / "records.csv").is_file():
        return
    records = pd.read_csv(folder / "records.csv")
    table = _Table(folder / "model_config.csv", CONFIG_COLUMNS, ["model"])
    for model_id, rows in records.groupby("model"):
        table.add([model_config_row(model_id, zoo, int(rows["feature_dim"].iloc[0]))], replace=True)
    table.save()
    table = _Table(folder / "target_datasets.csv", TARGET_COLUMNS, ["target_dataset"])
    for name, rows in records.groupby("finetuned_dataset"):
        spec = DATASETS[name]
        meta = yaml.safe_load((zoo / "datasets" / name / "README.md").read_text().split("---", 2)[1])
        info = meta["dataset_info"]
        names = [
            v
            for _, v in sorted(
                info["features"][1]["dtype"]["class_label"]["names"].items(), key=lambda kv: int(kv[0])
            )
        ]
        table.add(
            [
                {
                    "target_dataset": name,
                    "size": int(sum(s["num_examples"] for s in info["splits"])),
                    "number_of_classes": len(names),
                    "modality": modality,
                    "family": spec.family,
                    "parent": spec.parent,
                    "train_examples": int(rows["train_examples"].max()),
                    "test_examples": int(rows["test_examples"].max()),
                    "label_names": json.dumps(names),
                }
            ],
            replace=True,
        )
    table.save()


def _merge_parts(folder: Path) -> None:
    parts = folder / ".parts"
    for name, columns, key in (
        ("records", RECORD_COLUMNS, ["model", "finetuned_dataset", "mode"]),
        ("transferability_scores", SCORE_COLUMNS, ["model", "target_dataset", "metric"]),
    ):
        part_files = sorted(parts.glob(f"{name}.rank*.csv"))
        _Table(folder / f"{name}.csv", columns, key, extra_read=part_files).save()
        for path in part_files:
            path.unlink()
    if parts.is_dir() and not any(parts.iterdir()):
        parts.rmdir()
