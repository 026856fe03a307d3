"""`load_task`: a dataset argument -> `Task` (metadata, stratified sample, task token)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.errors import DatasetError, HfSpiderError, UserInputError, first_line, hub_error
from hf_spider.tasks._columns import MODALITIES, Columns, detect_columns, label_key
from hf_spider.tasks._sampling import class_balance, stratified_indices
from hf_spider.tasks._sources import Source, _file_identity, resolve_source
from hf_spider.tasks.task import Task, summarise_features

logger = logging.getLogger("hf_spider.tasks")

# Probe encoders of the data part of the task token, one per modality, loaded from the offline zoo.
PROBE_MODELS = {
    "text": "sentence-transformers/all-MiniLM-L6-v2",
    "image": "timm/tf_efficientnet_lite0.in1k",
}
_PEEK_ROWS = 64


def load_task(
    dataset: str | os.PathLike,
    *,
    config: str | None = None,
    split: str | None = None,
    sample: int = 500,
    input_column: str | None = None,
    label_column: str | None = None,
    modality: str | None = None,
    seed: int = 0,
    token: str | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
    max_scan: int | None = None,
    probe: str | bool | None = None,
    batch_size: int = 32,
    progress=None,
) -> Task:
    """Load a classification dataset as a `Task` with its task token.

    Args:
        dataset: a Hub dataset id (`org/name`), a `save_to_disk` folder, an imagefolder, a
            Hub-layout repo folder (parquet/csv/jsonl + optional `README.md`), a single data file,
            or a repo/folder holding only its card (gives a metadata-only task); in memory, a
            `datasets.Dataset` / `DatasetDict` or a pandas DataFrame (a streamed
            `IterableDataset` is refused).
        config, split: the dataset config and split (default: the default config, then `train`,
            `validation`, `test`, or the first split).
        sample: size of the stratified sample (`0` = metadata only, no data part).
        input_column, label_column, modality: overrides of the detection.
        seed: seeds the sample; same dataset + arguments + seed = same sample and fingerprint.
        token, endpoint, revision: for Hub ids; `endpoint` points at another Hub (tests use the
            loopback server). The token is never logged nor stored.
        trust_remote_code: accepted for API symmetry; dataset scripts are never run (datasets 5
            dropped them), only data files are read.
        max_scan: how many rows the sample is drawn from: the first rows of a streamed csv/json/
            imagefolder split (default `max(10 * sample, 10_000)`), or random row groups of a Hub
            parquet split (default `max(4 * sample, 2_000)` rows; sizes and class balance come from
            the whole label column when it is cheap to read). Local parquet files and `save_to_disk`
            datasets are sampled from the whole split unless `max_scan` is given.
        probe: the probe encoder of the data part: None = the zoo's encoder of the modality,
            a repo id or folder = that model, False = no data part.
        progress: optional callable(done, total) for the probe encoder's batches.

    Raises:
        DatasetError: not found, no label column, a single class, an empty split, or no readable
            example. UserInputError: a bad argument.

    Example:
        >>> task = load_task("data/tweets.jsonl", sample=300, label_column="device")  # doctest: +SKIP
        >>> task.metadata["num_classes"], task.data_token.shape
        (3, (104,))
    """
    del trust_remote_code  # no dataset scripts are executed, whatever the caller allows
    if isinstance(sample, bool) or not isinstance(sample, int) or sample < 0:
        raise UserInputError(
            f"sample must be a whole number, 0 or more, got {sample!r}", hint="e.g. sample=256"
        )
    if modality is not None and modality not in MODALITIES:
        raise UserInputError(f"unknown modality {modality!r}", hint=f"use one of: {', '.join(MODALITIES)}")
    source = resolve_source(dataset, config=config, token=token, endpoint=endpoint, revision=revision)
    if not source.has_data:
        task = _metadata_only_task(source, split=split, label_column=label_column, modality=modality)
        task.metadata["source"]["location"] = _location(dataset)
        return task

    with _reading(source):  # what a broken file or a failing Hub raises, as one line
        return _task_from(
            source,
            dataset,
            split=split,
            sample=sample,
            input_column=input_column,
            label_column=label_column,
            modality=modality,
            seed=seed,
            max_scan=max_scan,
            probe=probe,
            batch_size=batch_size,
            progress=progress,
        )


def _task_from(
    source: Source,
    dataset: str | os.PathLike,
    *,
    split: str | None,
    sample: int,
    input_column: str | None,
    label_column: str | None,
    modality: str | None,
    seed: int,
    max_scan: int | None,
    probe: str | bool | None,
    batch_size: int,
    progress,
) -> Task:
    """`load_task` once the dataset is resolved to a source with data files."""

    chosen = source.pick_split(split)
    features = source.features(chosen)
    features = _with_card_labels(features, source)
    peek = _peek(source, chosen)
    if not peek:
        raise DatasetError(
            f"split {chosen!r} of {source.name} is empty", hint="pick another split with --split"
        )
    if source.builder == "imagefolder" and label_column is None and list(features or peek[0]) == ["image"]:
        # `datasets` gives an image folder a label only from two or more class folders
        raise DatasetError(
            f"the images of {source.name} are not sorted into class folders (one folder, or a "
            "single class), so they have no labels",
            hint=f"put each class's images in a subfolder named after it ({source.name}/cat/1.png, "
            f"{source.name}/dog/2.png, ...), or add a metadata.csv with file_name and label columns",
        )
    try:
        cols = detect_columns(
            features,
            peek,
            input_column=input_column,
            label_column=label_column,
            modality=modality,
            name=source.name,
        )
    except DatasetError as exc:
        if not source.images_beside:
            raise
        tables = ", ".join(Path(f).name for f in source.data_files.get(chosen, [])[:2])
        raise DatasetError(  # a stray csv beside class folders of images: say what was read
            f"{exc}; {source.name} was read from {tables}, not from the {source.images_beside} "
            "images beside it",
            hint=f"to read the images (in class folders), move {tables} out of the folder"
            + (f"; to read {tables}: {exc.hint}" if exc.hint else ""),
        ) from exc

    # pass 1: the labels (of the whole split when cheap, else of a scan window)
    full_rows = source.num_rows(chosen)
    # A Hub parquet pool is fetched in full later (whole row groups), so it is kept small; local
    # parquet files are sampled from the whole split.
    if max_scan:
        limit = max_scan
    elif source.is_parquet:
        limit = max(4 * sample, 2_000) if source.is_remote else sys.maxsize
    else:
        limit = max(10 * sample, 10_000)
    positions, keys, pool, scanned, exhausted = _scan_labels(source, chosen, cols, limit=limit, seed=seed)
    if scanned == 0:
        raise DatasetError(
            f"split {chosen!r} of {source.name} is empty", hint="pick another split with --split"
        )
    if not keys:
        raise DatasetError(
            f"no labelled example in split {chosen!r} of {source.name} (column {cols.label_column!r})",
            hint="pick the column holding the classes with --label-column",
        )
    if full_rows is None and exhausted:
        full_rows = scanned

    label_names, ids = _label_ids(keys, cols)
    present, counts = np.unique(ids, return_counts=True)
    if len(present) < 2:
        only = label_names[present[0]] if len(present) else "?"
        where = (
            f"split {chosen!r} of {source.name} holds"
            if exhausted
            else (f"the {scanned} rows read of split {chosen!r} of {source.name} hold")
        )
        raise DatasetError(
            f"{where} a single class ({only!r} in column {cols.label_column!r})",
            hint="a classification task needs at least two classes; check --label-column or --split"
            + ("" if exhausted else ", or read more rows with --max-scan"),
        )
    num_classes = len(label_names)
    _check_class_counts(source.name, cols.label_column, counts, len(keys), sample)
    if sample == 0 and cols.modality == "image":
        _check_some_image_decodes(source, chosen, peek, cols)

    metadata = _card_metadata(source, chosen)
    metadata.update(
        num_classes=num_classes,
        num_examples=full_rows,
        label_names=label_names,
        class_balance=round(class_balance(counts), 6),
        source=_source_dict(source, chosen, cols, scanned=scanned, exhausted=exhausted, pool=len(pool)),
    )
    metadata["source"]["location"] = _location(dataset)
    task = Task(name=source.name, modality=cols.modality, metadata=metadata)
    if sample == 0:
        task.fingerprint = _fingerprint(source, chosen, cols, sample, seed, np.array([], dtype=np.int64))
        return task

    # pass 2: read the chosen rows and decode their inputs
    ids_arr = np.asarray(ids)
    chosen_pos = pool[stratified_indices(ids_arr[pool], sample, seed=seed)]
    row_at = np.asarray(positions)[chosen_pos]
    label_of = dict(zip(row_at.tolist(), ids_arr[chosen_pos].tolist(), strict=True))
    rows = source.take(chosen, row_at.tolist())
    named = [rows.get(pos, {}).get(cols.input_column) for pos in row_at.tolist()]  # the stored inputs
    inputs, labels, skipped = [], [], 0
    for pos, stored in zip(row_at.tolist(), named, strict=True):
        value = _decode_input(source, stored, cols.modality, chosen)
        if value is None:
            skipped += 1
            continue
        inputs.append(value)
        labels.append(label_of[pos])
    if skipped:
        urls = sum(isinstance(v, str) and "://" in v for v in named) if cols.modality == "image" else 0
        logger.warning(
            "%s: skipped %d unreadable example(s) of %d sampled%s",
            source.name,
            skipped,
            len(row_at),
            f" ({urls} of them image URLs, which are never fetched)" if urls else "",
        )
    if not inputs:
        first = named[0] if named else None
        if isinstance(first, str) and cols.modality == "image":
            raise _paths_unreadable(source, chosen, cols, first, skipped)
        raise DatasetError(
            f"no readable example in split {chosen!r} of {source.name}: "
            f"all {skipped} sampled {'images' if cols.modality == 'image' else 'examples'} are corrupt",
            hint=f"check the files of column {cols.input_column!r}",
        )

    task.inputs = inputs
    task.labels = np.asarray(labels, dtype=np.int64)
    task.skipped = skipped
    task.fingerprint = _fingerprint(source, chosen, cols, sample, seed, row_at)
    if cols.modality == "image" and not source.is_remote and any(isinstance(v, str) for v in named):
        # images named by a csv are not part of its identity: their sizes and times are
        files = [source.file_of(v.strip(), chosen) for v in named if isinstance(v, str)]
        images = _file_identity([Path(f) for f in files if f])
        task.fingerprint = hashlib.sha256((task.fingerprint + images).encode()).hexdigest()[:32]
    if len(np.unique(task.labels)) < 2:
        logger.warning("%s: the readable sample holds one class only; no data token", source.name)
        return task
    if probe is not False:
        _attach_data_token(task, probe=probe, batch_size=batch_size, progress=progress)
    return task


@contextlib.contextmanager
def _reading(source: Source):
    """Turn what reading a dataset's files raises past `Source`'s own checks into one-line errors:
    a file that is not what its name says (a corrupt or truncated parquet), the Hub failing
    (5xx, dropped connections) and `datasets`' metadata-file convention."""
    import pyarrow as pa

    try:
        yield
    except HfSpiderError:
        raise
    except pa.ArrowInvalid as exc:
        raise DatasetError(
            f"cannot read the data files of {source.name}: {first_line(exc)}",
            hint="a data file is corrupt or truncated; check the files, or pass another --split",
        ) from None
    except ValueError as exc:
        if "file_name" in str(exc) and "metadata" in str(exc):
            raise DatasetError(
                f"the metadata file of {source.name} has no file_name column, which `datasets` needs "
                "beside images",
                hint="name the image column file_name, or rename metadata.csv (e.g. data.csv): a csv "
                "of image paths is read as such",
            ) from None
        raise
    except OSError as exc:  # huggingface_hub's HTTP errors, requests' and fsspec's connection errors
        if source.kind == "hub":
            raise hub_error(exc, f"dataset {source.name}") from None
        raise DatasetError(
            f"cannot read the files of {source.name}: {first_line(exc)}",
            hint="check that the files are there and readable",
        ) from None


MANY_CLASSES = 1000


def _check_class_counts(name: str, column: str, counts: np.ndarray, labelled: int, sample: int) -> None:
    """Refuse a label column with one example per class (an id, not a label); warn on classes
    too rare or too many for the sample to hold several examples of each."""
    if counts.max() < 2 and labelled > 2:
        raise DatasetError(
            f"every class of {name} has a single example ({len(counts)} classes in column {column!r})",
            hint="a column with one value per row is not a label; pick the class column with --label-column",
        )
    if len(counts) > MANY_CLASSES:
        logger.warning("%s has %d classes: expect weak stage-2 estimates", name, len(counts))
    singles = int((counts < 2).sum())
    if singles:
        logger.warning("%s: %d of %d classes have a single example", name, singles, len(counts))
    if 0 < sample < 2 * len(counts):
        logger.warning(
            "%s: a sample of %d for %d classes holds under 2 examples per class; raise --sample",
            name,
            sample,
            len(counts),
        )


_DECODE_CHECK = 16


def _check_some_image_decodes(source: Source, split: str, peek: list[dict[str, Any]], cols: Columns) -> None:
    """With no sample drawn, decode up to `_DECODE_CHECK` images so a folder of corrupt files is refused."""
    tried = 0
    for row in peek[:_DECODE_CHECK]:
        tried += 1
        if _decode_input(source, row.get(cols.input_column), "image", split) is not None:
            if tried > 1:
                logger.warning("%s: %d corrupt image(s) skipped before one decoded", source.name, tried - 1)
            return
    first = peek[0].get(cols.input_column) if peek else None
    if isinstance(first, str):
        raise _paths_unreadable(source, split, cols, first, tried)
    raise DatasetError(
        f"no image of split {split!r} of {source.name} decodes: the {tried} read are all corrupt",
        hint=f"check the files of column {cols.input_column!r}",
    )


def _paths_unreadable(source: Source, split: str, cols: Columns, first: str, tried: int) -> DatasetError:
    """The error for a column of image file names none of which could be read, saying why the
    first could not: a URL, a Windows drive path, a way out of the dataset, a file not there, or
    a file there that is not an image."""
    first = first.strip()
    where = source.file_of(first, split)
    hint = "paths are read relative to the data file's folder; fix them, or pass --modality text if the column is not images"
    if "://" in first:
        why = "is a URL, and URLs are never fetched"
        hint = "download the images and list their paths relative to the data file"
    elif where is None and not source.is_remote:
        why = "is a Windows drive path"
        hint = "list the images' paths relative to the data file (or absolute on this machine)"
    elif where is None:
        why = "points outside the dataset's repo"
    elif not source.is_remote and os.path.isfile(where):
        why = f"is there, as {where}, but is not an image PIL can read"
        hint = f"check the files of column {cols.input_column!r}: corrupt, or not images"
    else:
        why = f"was looked for as {where}"
    return DatasetError(
        f"column {cols.input_column!r} of {source.name} names image files, but none of the {tried} "
        f"tried could be read (the first, {first!r}, {why})",
        hint=hint,
    )


def _scan_labels(source: Source, split: str, cols: Columns, *, limit: int, seed: int):
    """Labels of the split -> (row positions, class keys, sampling pool, rows scanned, whole split?).

    The pool indexes `positions`: the rows the sample is drawn from. Parquet: see `_scan_parquet`.
    Other streamed splits are read up to `limit` rows in order; a `save_to_disk` split is read whole.
    """
    positions: list[int] = []
    keys: list = []
    if source.is_parquet:
        return _scan_parquet(source, split, cols, limit=limit, seed=seed)
    window = None if source.kind == "disk" else limit
    scanned = 0
    for i, row in enumerate(source.iter_rows(split, columns=[cols.label_column])):
        if window is not None and i >= window:
            break
        scanned = i + 1
        key = label_key(row.get(cols.label_column), cols.label_kind, cols.label_names)
        if key is not None:
            positions.append(i)
            keys.append(key)
    exhausted = window is None or scanned < window
    return positions, keys, np.arange(len(positions)), scanned, exhausted


# Read a parquet split's whole label column when that costs at most this many bytes (each request
# counted as 1 MiB): a few requests for small or text files, not one per row group of a big image set.
LABEL_COLUMN_BUDGET = 32 * 1024 * 1024


def _scan_parquet(source: Source, split: str, cols: Columns, *, limit: int, seed: int):
    """Parquet: a pool of random row groups (about `limit` rows) that covers every class.

    When the whole label column is cheap to read (local files, or at most LABEL_COLUMN_BUDGET
    bytes of ranged reads), it is read, so sizes and class balance are exact and a row group is
    added to the pool for each class the random groups missed. Otherwise only the pool's labels are
    read, and missing classes are looked up in the row groups' min/max statistics.
    """
    groups = source.parquet_groups(split)
    total = sum(n for _, _, n in groups)
    rng = np.random.default_rng(seed)
    order = [int(g) for g in rng.permutation(len(groups))]
    pool_groups: list[int] = []
    rows = 0
    for g in order:
        if rows >= limit:
            break
        pool_groups.append(g)
        rows += groups[g][2]
    whole = total <= limit or source.parquet_column_cost(split, cols.label_column) <= LABEL_COLUMN_BUDGET

    def keyed(pos_vals):
        pos, vals = pos_vals
        out_pos, out_keys = [], []
        for i, value in zip(pos, vals, strict=True):
            key = label_key(value, cols.label_kind, cols.label_names)
            if key is not None:
                out_pos.append(i)
                out_keys.append(key)
        return out_pos, out_keys

    starts = np.cumsum([0] + [n for _, _, n in groups])
    if whole:
        positions, keys = keyed(source.parquet_column(split, cols.label_column))
        pos = np.asarray(positions, dtype=np.int64)
        group_of = np.searchsorted(starts, pos, side="right") - 1
        key_arr = np.asarray([str(k) for k in keys])
        in_pool = np.isin(group_of, pool_groups)
        for missing in sorted(set(key_arr.tolist()) - set(key_arr[in_pool].tolist())):
            holders = np.unique(group_of[key_arr == missing])
            pool_groups.append(int(rng.choice(holders)))
            in_pool = np.isin(group_of, pool_groups)
        return positions, keys, np.flatnonzero(in_pool), total, True

    positions, keys = keyed(source.parquet_column(split, cols.label_column, pool_groups))
    if cols.label_kind == "classlabel" and cols.label_names:
        stats = source.parquet_stats(split, cols.label_column)
        seen = set(keys)
        extra = []
        for cls in range(len(cols.label_names)):
            if cls in seen:
                continue
            holders = [g for g, st in enumerate(stats) if st is not None and st[0] <= cls <= st[1]]
            holders = [g for g in holders if g not in pool_groups and g not in extra]
            if holders:
                extra.append(int(rng.choice(holders)))
        if extra:
            more_pos, more_keys = keyed(source.parquet_column(split, cols.label_column, extra))
            pairs = sorted(zip(positions + more_pos, keys + more_keys, strict=True))
            positions, keys = [p for p, _ in pairs], [k for _, k in pairs]
    return positions, keys, np.arange(len(positions)), len(positions), False


def _attach_data_token(task: Task, *, probe: str | None, batch_size: int, progress) -> None:
    from hf_spider.models import extract_features

    model = probe or PROBE_MODELS[task.modality]
    try:
        feats = extract_features(
            model,
            task.inputs,
            modality=task.modality,
            batch_size=batch_size,
            cache_key=task.fingerprint,
            offline=probe is None,
            progress=progress,
        )
    except HfSpiderError as exc:
        if probe is not None:
            raise
        logger.warning(
            "no data part for %s: probe encoder %s unavailable (%s)", task.name, model, exc.one_line()
        )
        return
    task.data_token, task.prototypes = summarise_features(feats, task.labels)
    task.probe = model


def _metadata_only_task(
    source: Source, *, split: str | None, label_column: str | None, modality: str | None
) -> Task:
    """A card-only repo: classes from the card's ClassLabel feature, sizes from its splits."""
    from datasets import ClassLabel, Image, Value

    card = source.card
    features = card.features(source.config)
    sizes = card.split_sizes(source.config)
    label_names = None
    columns = list(features) if features else []
    if features:
        class_labels = [c for c in columns if isinstance(features[c], ClassLabel)]
        if label_column is not None and label_column not in class_labels:
            raise DatasetError(
                f"label column {label_column!r} is not a class_label feature of {source.name}'s card",
                hint=f"class_label features: {', '.join(class_labels) or 'none'}",
            )
        col = label_column or (class_labels[0] if class_labels else None)
        if col is not None:
            label_names = list(features[col].names)
            label_column = col
    if not label_names:
        raise DatasetError(
            f"no label column in the card of {source.name} (it holds no data files)",
            hint="declare a class_label feature under dataset_info.features, or add the data files",
        )
    if len(label_names) < 2:
        raise DatasetError(
            f"the card of {source.name} declares a single class ({label_names[0]!r})",
            hint="a classification task needs at least two classes",
        )
    if modality is None:
        kinds = [f for c, f in features.items() if c != label_column]
        cats = " ".join(card.task_categories)
        if any(isinstance(f, Image) for f in kinds) or "image" in cats:
            modality = "image"
        elif any(isinstance(f, Value) and "string" in f.dtype for f in kinds) or "text" in cats:
            modality = "text"
        else:
            raise DatasetError(
                f"cannot tell the modality of {source.name} from its card", hint="pass --modality image|text"
            )
    chosen = split if split is not None else None
    if chosen is not None and sizes and chosen not in sizes:
        raise DatasetError(f"split {chosen!r} not in the card of {source.name} (splits: {', '.join(sizes)})")
    if chosen is None and sizes:
        chosen = next((s for s in ("train", "validation", "test") if s in sizes), next(iter(sizes)))
    if chosen is not None and sizes.get(chosen) == 0:
        raise DatasetError(f"split {chosen!r} of {source.name} is empty (card)", hint="pick another split")
    metadata = _card_metadata(source, chosen)
    metadata.update(
        num_classes=len(label_names),
        num_examples=sizes.get(chosen) if chosen else None,
        label_names=label_names,
        class_balance=None,
        source={
            "dataset": source.name,
            "kind": source.kind,
            "config": source.config,
            "split": chosen,
            "label_column": label_column,
            "input_column": None,
        },
    )
    digest = hashlib.sha256(json.dumps([source.identity, source.config, chosen, label_column]).encode())
    return Task(name=source.name, modality=modality, metadata=metadata, fingerprint=digest.hexdigest()[:32])


def _location(dataset: str | os.PathLike) -> str:
    """Where the dataset was read from, without the local directories above it: a Hub id as given,
    a local folder or file by its name (the name fine-tuning records use, e.g. `rotten_tomatoes`)."""
    if not isinstance(dataset, str | os.PathLike):
        return describe(dataset)
    text = os.fspath(dataset)
    path = Path(text).expanduser()
    return path.name if path.exists() else text


def describe(dataset: Any) -> str:
    """A dataset argument as text: a Hub id or path as given, an in-memory one by its kind."""
    if isinstance(dataset, str | os.PathLike):
        return os.fspath(dataset)
    return f"in-memory {type(dataset).__name__}"


def _card_metadata(source: Source, split: str | None) -> dict[str, Any]:
    card = source.card
    return {
        "task_categories": [str(c) for c in card.task_categories],
        "tags": [str(t) for t in card.tags],
        "description": card.description,
        "splits": card.split_sizes(source.config) or {s: None for s in source.splits},
    }


def _source_dict(
    source: Source, split: str, cols: Columns, *, scanned: int, exhausted: bool, pool: int
) -> dict[str, Any]:
    return {
        "dataset": source.name,
        "kind": source.kind,
        "config": source.config,
        "split": split,
        "input_column": cols.input_column,
        "label_column": cols.label_column,
        "rows_scanned": scanned,
        "scanned_whole_split": exhausted,
        "sample_pool": pool,
    }


def _with_card_labels(features, source: Source):
    """Streamed csv/json files lack ClassLabel types; take them from the card when it declares them."""
    from datasets import ClassLabel, Features

    card_features = source.card.features(source.config)
    if not card_features:
        return features
    if not features:
        return card_features
    merged = dict(features)
    for col, feat in card_features.items():
        if isinstance(feat, ClassLabel) and col in merged and not isinstance(merged[col], ClassLabel):
            merged[col] = feat
    return Features(merged)


def _peek(source: Source, split: str) -> list[dict[str, Any]]:
    return source.head(split, _PEEK_ROWS)


def _label_ids(keys: list, cols: Columns) -> tuple[list[str], list[int]]:
    """Class keys -> (label names, ids indexing them)."""
    if cols.label_kind == "classlabel":
        names = list(cols.label_names or [])
        top = max(keys)
        if top >= len(names):
            names += [str(i) for i in range(len(names), top + 1)]
        return names, list(keys)
    uniq = sorted(set(keys), key=lambda k: (isinstance(k, str), k))
    index = {k: i for i, k in enumerate(uniq)}
    return [str(k) for k in uniq], [index[k] for k in keys]


def _decode_input(source: Source, value: Any, modality: str, split: str | None = None):
    """A stored input -> a PIL RGB image or a string; None when it cannot be read. An image given
    as a file name (a csv column of paths) is read from where `Source.file_of` puts it."""
    if value is None:
        return None
    if modality == "text":
        return value if isinstance(value, str) else str(value)
    from PIL import Image, UnidentifiedImageError

    # where a file name points: outside the try, so that an ambiguous name is an error, not a skip
    path = source.file_of(value, split) if isinstance(value, str) and split is not None else None
    try:
        if isinstance(value, Image.Image):
            img = value
        elif isinstance(value, dict) and value.get("bytes") is not None:
            img = Image.open(io.BytesIO(value["bytes"]))
        elif isinstance(value, dict) and value.get("path"):
            with source.open_file(value["path"]) as fh:
                img = Image.open(io.BytesIO(fh.read()))
        elif isinstance(value, bytes | bytearray):
            img = Image.open(io.BytesIO(value))
        elif path is not None:
            with source.open_file(path) as fh:
                img = Image.open(io.BytesIO(fh.read()))
        else:
            return None
        img.load()
        return _to_rgb(img)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        logger.debug("unreadable image in %s: %s", source.name, exc)
        return None


def _to_rgb(img):
    """A PIL image as 8-bit RGB. 16-bit and float greyscale (`I;16`, `I`, `F`: medical and depth
    images) are scaled by their own range first: PIL's `convert` clips them to 255, a white image."""
    from PIL import Image

    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scaled = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        img = Image.fromarray(scaled.round().astype(np.uint8))
    return img.convert("RGB")


def _fingerprint(source: Source, split: str, cols: Columns, sample: int, seed: int, rows: np.ndarray) -> str:
    digest = hashlib.sha256()
    head = [
        source.identity,
        source.config,
        split,
        cols.input_column,
        cols.label_column,
        cols.modality,
        sample,
        seed,
    ]
    digest.update(json.dumps(head).encode())
    digest.update(np.asarray(rows, dtype=np.int64).tobytes())
    return digest.hexdigest()[:32]
