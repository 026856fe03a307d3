"""Resolve what the user calls a dataset into rows that can be streamed.

A dataset may be a Hub dataset id, a `datasets.save_to_disk` folder, an imagefolder, a Hub-layout
dataset repo folder (parquet / csv / jsonl files, optional `README.md` card), a single data file, or
a repo holding only its card. Every kind becomes a `Source`: the card, the declared features, the
splits, and a way to iterate rows of one split.

Hub repos are never downloaded whole. The repo's file list comes from `HfApi(endpoint=...)`, the
split layout is worked out by `datasets`' own default patterns (run over an empty skeleton of that
file list), and the data files are streamed as `hf://datasets/<id>@<sha>/<path>` through
`datasets.load_dataset(<builder>, data_files=..., streaming=True, storage_options={"hf": {...}})`,
whose `HfFileSystem` gets the endpoint and token from `storage_options`. That avoids `HF_ENDPOINT`,
which `datasets` and `huggingface_hub` read once at import. Parquet files are read by pyarrow from the
byte ranges of the footer and of the column chunks needed (`HfFileSystem(endpoint=...)` range reads),
so a label column or a few row groups cost a fraction of the file.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import posixpath
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.errors import DatasetError, UserInputError, first_line, hub_error
from hf_spider.tasks._card import CardInfo, parse_card, read_card

logger = logging.getLogger("hf_spider.tasks")

# file extension -> `datasets` packaged builder
_BUILDERS = {
    ".parquet": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".jsonl": "json",
    ".json": "json",
    ".arrow": "arrow",
    ".txt": "text",
}
_IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst")
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_REPO_ID = re.compile(r"^(?:[A-Za-z0-9][\w.\-]*/)?[A-Za-z0-9][\w.\-]*$")


@dataclass
class Source:
    """A dataset resolved to one config, ready to list splits and stream rows."""

    name: str
    kind: str  # "hub" | "disk" | "files" | "card-only"
    identity: str  # what the dataset is, for the fingerprint (repo sha, file sizes and mtimes)
    card: CardInfo = field(default_factory=CardInfo)
    config: str | None = None
    # split -> data files (paths or hf:// URLs); empty for disk and card-only sources
    data_files: dict[str, list[str]] = field(default_factory=dict)
    builder: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)
    token: str | bool | None = None
    encoding: str | None = None  # of local csv/json/text files that are not UTF-8
    separator: str | None = None  # of local csv files not separated by commas (`;` from Excel)
    disk: Any = None  # datasets.Dataset or DatasetDict for save_to_disk folders
    # images among the files of a folder read as a table (a csv may name them, or stand beside them)
    images_beside: int = 0
    _memo: dict = field(default_factory=dict, repr=False)

    @property
    def splits(self) -> list[str]:
        if self.disk is not None:
            from datasets import DatasetDict

            return list(self.disk.keys()) if isinstance(self.disk, DatasetDict) else ["train"]
        if self.data_files:
            return list(self.data_files)
        return list(self.card.split_sizes(self.config))

    @property
    def has_data(self) -> bool:
        return self.kind != "card-only"

    def pick_split(self, split: str | None) -> str:
        splits = self.splits
        if split is not None:
            if split not in splits:
                raise DatasetError(
                    f"split {split!r} not found in {self.name} (splits: {', '.join(splits) or 'none'})",
                    hint="pass one of the listed splits with --split",
                )
            return split
        if not splits:
            raise DatasetError(f"{self.name} has no splits", hint="check the dataset's files or card")
        for preferred in ("train", "validation", "test"):
            if preferred in splits:
                return preferred
        return splits[0]

    def features(self, split: str):
        """Declared features of `split` (disk, stream metadata or card), or None when unknown."""
        if self.disk is not None:
            return self._disk_split(split).features
        if self.is_parquet:
            from datasets import Features

            return Features.from_arrow_schema(
                self._footer(self.data_files[split][0]).schema.to_arrow_schema()
            )
        if self.data_files:
            return self._stream(split).features or self.card.features(self.config)
        return self.card.features(self.config)

    def num_rows(self, split: str) -> int | None:
        if self.disk is not None:
            return len(self._disk_split(split))
        sizes = self.card.split_sizes(self.config)
        if split in sizes:
            return sizes[split]
        if self.is_parquet:
            try:
                return sum(n for _, _, n in self.parquet_groups(split))
            except Exception as exc:  # size is a nicety; the rows still stream
                logger.debug("could not read parquet footers of %s: %s", self.name, exc)
        return None

    def head(self, split: str, n: int) -> list[dict[str, Any]]:
        """The first `n` rows of `split` (fewer when the split is shorter)."""
        if self.is_parquet:
            total = sum(rows for _, _, rows in self.parquet_groups(split))
            taken = self.parquet_take(split, list(range(min(n, total))))
            return [taken[i] for i in sorted(taken)]
        rows = []
        for row in self.iter_rows(split):
            if len(rows) >= n:
                break
            rows.append(row)
        return rows

    def iter_rows(self, split: str, *, columns: list[str] | None = None) -> Iterator[dict[str, Any]]:
        """Rows of `split` in stored order; images stay undecoded (`{"bytes", "path"}`)."""
        if self.disk is not None:
            ds = _undecoded(self._disk_split(split))
            if columns:
                ds = ds.select_columns(columns)
            yield from ds
            return
        stream = self._stream(split, columns=columns)
        try:
            yield from _undecoded(stream)
        except UnicodeDecodeError as exc:
            raise DatasetError(
                f"cannot read {self._shown(split)}: not {exc.encoding or 'UTF-8'} text "
                f"(byte 0x{exc.object[exc.start]:02x} at offset {exc.start} of a block)",
                hint="save the file as UTF-8",
            ) from None
        except _parse_errors() as exc:
            raise DatasetError(
                f"cannot read {self._shown(split)}: {first_line(exc)}",
                hint=_FORMAT_HINTS.get(self.builder or "", "check the file's format"),
            ) from None

    def take(self, split: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        """The rows at `indices` (any order), read with one pass up to the largest index."""
        if not indices:
            return {}
        if self.disk is not None:
            ds = _undecoded(self._disk_split(split))
            order = sorted(set(indices))
            return dict(zip(order, ds.select(order), strict=True))
        if self.is_parquet:
            return self.parquet_take(split, indices)
        wanted = set(indices)
        last = max(wanted)
        out: dict[int, dict[str, Any]] = {}
        for i, row in enumerate(self.iter_rows(split)):
            if i in wanted:
                out[i] = row
            if i >= last:
                break
        return out

    # -- parquet: whole label column, rows by row group ------------------------------------------

    @property
    def is_remote(self) -> bool:
        return any(f.startswith("hf://") for files in self.data_files.values() for f in files)

    @property
    def is_parquet(self) -> bool:
        return self.builder == "parquet" and self.disk is None and bool(self.data_files)

    def parquet_groups(self, split: str) -> list[tuple[str, int, int]]:
        """(file, row group, rows) of every row group of `split`, in row order."""
        key = ("groups", split)
        if key not in self._memo:
            groups = []
            for path in self.data_files[split]:
                meta = self._footer(path)
                groups += [(path, g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)]
            self._memo[key] = groups
        return self._memo[key]

    def parquet_column(
        self, split: str, column: str, groups: list[int] | None = None
    ) -> tuple[list[int], list]:
        """(row positions, values) of `column` in the given row groups (indices into
        `parquet_groups`; None = all), reading only that column's chunks."""
        layout = self.parquet_groups(split)
        starts = np.cumsum([0] + [n for _, _, n in layout]).tolist()
        chosen = sorted(set(range(len(layout)) if groups is None else groups))
        positions: list[int] = []
        values: list = []
        for path, gs in _by_file(layout, chosen).items():
            with self._parquet(path, columns=[column], row_groups=[layout[g][1] for g in gs]) as pf:
                for g in gs:
                    col = pf.read_row_group(layout[g][1], columns=[column]).column(column).to_pylist()
                    positions += range(starts[g], starts[g] + len(col))
                    values += col
        return positions, values

    def parquet_column_cost(self, split: str, column: str) -> int:
        """What reading `column` of the whole split costs, in bytes: the bytes fetched (ranges
        merged as they would be) plus `_REQUEST_BYTES` for each request."""
        if not any(p.startswith("hf://") for p in self.data_files[split]):
            return 0  # local files: reading a column is cheap
        total = 0
        for path in self.data_files[split]:
            meta = self._footer(path)
            merged = _merge_ranges(_chunk_ranges(meta, None, [column]))
            total += sum(e - s for s, e in merged) + _REQUEST_BYTES * len(merged)
        return total

    def parquet_stats(self, split: str, column: str) -> list[tuple[Any, Any] | None]:
        """(min, max) of `column` per row group from the footers, None where not recorded."""
        out = []
        for path, g, _ in self.parquet_groups(split):
            rg = self._footer(path).row_group(g)
            stats = None
            for j in range(rg.num_columns):
                col = rg.column(j)
                if col.path_in_schema == column and col.is_stats_set and col.statistics.has_min_max:
                    stats = (col.statistics.min, col.statistics.max)
            out.append(stats)
        return out

    def parquet_take(self, split: str, indices: list[int]) -> dict[int, dict[str, Any]]:
        """The rows at `indices`, reading only the row groups that hold them."""
        import bisect

        layout = self.parquet_groups(split)
        starts = np.cumsum([0] + [n for _, _, n in layout]).tolist()
        wanted: dict[int, list[int]] = {}
        for i in sorted(set(indices)):
            g = bisect.bisect_right(starts, i) - 1
            wanted.setdefault(g, []).append(i)
        out: dict[int, dict[str, Any]] = {}
        for path, gs in _by_file(layout, sorted(wanted)).items():
            with self._parquet(path, row_groups=[layout[g][1] for g in gs]) as pf:
                for g in gs:
                    table = pf.read_row_group(layout[g][1])
                    for i in wanted[g]:
                        out[i] = table.slice(i - starts[g], 1).to_pylist()[0]
        return out

    def _footer(self, path: str):
        """The parquet footer (FileMetaData) of a data file, read once."""
        key = ("footer", path)
        if key not in self._memo:
            import pyarrow.parquet as pq

            if path.startswith("hf://"):
                fs = _range_filesystem(**self.storage_options.get("hf", {}))
                size = fs.size(path)
                tail_start = max(0, size - (1 << 16))
                tail = fs.cat_file(path, start=tail_start, end=size)
                footer_len = int.from_bytes(tail[-8:-4], "little")
                if footer_len + 8 > len(tail):  # a footer larger than the first guess
                    tail_start = max(0, size - footer_len - 8)
                    tail = fs.cat_file(path, start=tail_start, end=size)
                self._memo[("tail", path)] = ((tail_start, size), tail)
                with self._parts_file(fs, path, {}) as fh:
                    self._memo[key] = pq.ParquetFile(fh).metadata
            else:
                self._memo[key] = pq.read_metadata(path)
        return self._memo[key]

    def _parts_file(self, fs, path: str, data: dict):
        """A file object that serves reads from known byte ranges (the footer always included)."""
        tail_range, tail = self._memo[("tail", path)]
        parts = {**data, tail_range: tail}
        return fs.open(path, "rb", cache_type="parts", cache_options={"data": parts, "strict": True})

    def _parquet(self, path: str, *, columns: list[str] | None = None, row_groups: list[int] | None = None):
        """A `pyarrow.parquet.ParquetFile` of a data file. On the Hub, only the byte ranges of the
        given columns and row groups are fetched, nearby ranges merged into one request."""
        import contextlib

        import pyarrow.parquet as pq

        @contextlib.contextmanager
        def opened():
            metadata = self._footer(path)
            if not path.startswith("hf://"):
                yield pq.ParquetFile(path, metadata=metadata)
                return
            fs = _range_filesystem(**self.storage_options.get("hf", {}))
            merged = _merge_ranges(_chunk_ranges(metadata, row_groups, columns))
            blobs = (
                fs.cat_ranges([path] * len(merged), [a for a, _ in merged], [b for _, b in merged])
                if merged
                else []
            )
            for blob in blobs:
                if isinstance(blob, Exception):
                    raise blob
            with self._parts_file(fs, path, dict(zip(merged, blobs, strict=True))) as fh:
                yield pq.ParquetFile(fh, metadata=metadata)

        return opened()

    def file_of(self, path: str, split: str) -> str | None:
        """Where an image path a row holds (a csv column of file names) lies: as given when
        absolute, else relative to the folder of the split's data file, as a csv's own paths are
        written (backslashes read as folder separators). Where a split's files lie in several
        folders, the one folder holding the file; a name found beside more than one is refused.
        A remote dataset's rows may only name files of its own repo. None for a URL (never
        fetched), a Windows drive path, and on the Hub an absolute path or a way out of the repo."""
        path = path.strip()
        if "\\" in path and os.sep == "/":  # written on Windows
            path = path.replace("\\", "/")
        if "://" in path or _WINDOWS_DRIVE.match(path):
            return None
        files = self.data_files.get(split) or [f for fs in self.data_files.values() for f in fs]
        folders = list(dict.fromkeys(posixpath.dirname(f) for f in files))
        if self.is_remote:
            if path.startswith("/") or not folders:
                return None
            scheme, _, rest = folders[0].partition("://")
            joined = posixpath.normpath(posixpath.join(rest, path))
            at = rest.find("@")  # the repo's root: datasets/<id>@<sha>
            root = rest if at < 0 or rest.find("/", at) < 0 else rest[: rest.find("/", at)]
            return f"{scheme}://{joined}" if joined.startswith(root + "/") else None
        if os.path.isabs(path) or not folders:
            return path
        found = [os.path.join(d, path) for d in folders if os.path.exists(os.path.join(d, path))]
        if len(found) > 1:
            raise DatasetError(
                f"image {path!r} of {self.name} lies beside more than one of its data files "
                f"({found[0]}, {found[1]}): which one a row means cannot be told",
                hint="write the paths relative to one folder (or absolute), or keep the data files "
                "of a split in one folder",
            )
        return found[0] if found else os.path.join(folders[0], path)

    def open_file(self, path: str, **kwargs):
        """Open a data file or a file a row points to (an imagefolder image), local or on the Hub."""
        if path.startswith("hf://"):
            from huggingface_hub import HfFileSystem

            options = self.storage_options.get("hf", {})
            return HfFileSystem(**options).open(path, "rb", **kwargs)
        return open(path, "rb")

    # -- internals ---------------------------------------------------------------------------

    def _shown(self, split: str) -> str:
        """The files of `split` as a user would name them: a local file by its name."""
        files = self.data_files.get(split) or []
        names = [f if f.startswith("hf://") else Path(f).name for f in files]
        return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "") or self.name

    def _disk_split(self, split: str):
        from datasets import DatasetDict

        return self.disk[split] if isinstance(self.disk, DatasetDict) else self.disk

    def _stream(self, split: str, *, columns: list[str] | None = None):
        import datasets
        from datasets.data_files import DataFilesDict, DataFilesList

        files = self.data_files[split]
        origin = [(self.identity,)] * len(files)
        data_files = DataFilesDict({split: DataFilesList(list(files), origin)})
        kwargs: dict[str, Any] = {}
        if columns and self.builder == "parquet":
            kwargs["columns"] = columns  # parquet reads only these columns
        if self.builder == "csv" and all(f.endswith(".tsv") for f in files):
            kwargs["sep"] = "\t"
        elif self.builder == "csv" and self.separator:
            kwargs["sep"] = self.separator
        if self.encoding and self.builder in ("csv", "json", "text"):
            kwargs["encoding"] = self.encoding
        try:
            stream = datasets.load_dataset(
                self.builder,
                data_files=data_files,
                split=split,
                streaming=True,
                token=self.token,
                storage_options=self.storage_options or None,
                **kwargs,
            )
        except FileNotFoundError as exc:
            raise DatasetError(f"cannot read the files of {self.name}: {exc}") from exc
        if columns and self.builder != "parquet":
            present = [c for c in columns if stream.features is None or c in stream.features]
            stream = stream.select_columns(present)
        return stream


_MAX_GAP = 256 * 1024  # merge two byte ranges into one request when at most this far apart
_REQUEST_BYTES = 1 << 20  # a request's latency, counted as the bytes it could have transferred


def _chunk_ranges(metadata, row_groups: list[int] | None, columns: list[str] | None) -> list[tuple[int, int]]:
    """Byte ranges of the column chunks of `row_groups` (all when None) for top-level `columns`."""
    ranges = []
    groups = range(metadata.num_row_groups) if row_groups is None else row_groups
    for g in groups:
        rg = metadata.row_group(g)
        for j in range(rg.num_columns):
            col = rg.column(j)
            if columns is not None and col.path_in_schema.split(".")[0] not in columns:
                continue
            start = col.data_page_offset
            if col.has_dictionary_page and col.dictionary_page_offset:
                start = min(start, col.dictionary_page_offset)
            ranges.append((start, start + col.total_compressed_size))
    return ranges


def _merge_ranges(ranges: list[tuple[int, int]], max_gap: int = _MAX_GAP) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start - merged[-1][1] <= max_gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _by_file(layout: list[tuple[str, int, int]], groups: list[int]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for g in groups:
        out.setdefault(layout[g][0], []).append(g)
    return out


def _range_filesystem(**options):
    """An `HfFileSystem` whose `cat_file(path, start, end)` fetches exactly that range.

    The stock one opens a buffered file and reads ahead a 5 MiB block on every ranged read, which
    `fsspec.parquet` issues once per merged range. One class for the process, so that fsspec's
    instance cache gives every read with the same options the same filesystem, whose listing
    cache resolves the revision and lists the repo once (a class made per call re-fetched both
    for every file opened).
    """
    return _range_filesystem_class()(**options)


@functools.cache
def _range_filesystem_class():
    from huggingface_hub import HfFileSystem

    class _RangeHfFileSystem(HfFileSystem):
        def cat_file(self, path, start=None, end=None, **kwargs):
            kwargs.setdefault("cache_type", "none")
            return super().cat_file(path, start=start, end=end, **kwargs)

    return _RangeHfFileSystem


def _undecoded(ds):
    """Cast image columns to `decode=False`, so a corrupt file is counted instead of raising."""
    from datasets import Image

    features = getattr(ds, "features", None)
    if not features:
        return ds
    for name, feature in features.items():
        if isinstance(feature, Image) and feature.decode:
            ds = ds.cast_column(name, Image(decode=False))
    return ds


# -- resolution ---------------------------------------------------------------------------------


def resolve_source(
    dataset: str | os.PathLike,
    *,
    config: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    revision: str | None = None,
) -> Source:
    """Turn a dataset argument into a `Source`. Local paths win over Hub ids of the same spelling."""
    if not isinstance(dataset, str | os.PathLike):
        return _resolve_memory(dataset)
    if not str(dataset).strip():
        raise UserInputError("the dataset is an empty string", hint="pass a Hub dataset id or a path")
    path = Path(dataset).expanduser()
    if path.exists():
        return _resolve_local(path, config=config)
    text = str(dataset)
    if (
        text.startswith(("/", ".", "~"))
        or text.count("/") > 1
        or "\\" in text
        or _is_data_file(text)  # `data.csv`: a file name, not a Hub id
    ):
        raise DatasetError(f"dataset {text!r} not found: no such file or folder", hint="check the path")
    if not _REPO_ID.match(text):
        raise DatasetError(
            f"dataset {text!r} not found: not a local path nor a Hub dataset id",
            hint="give a Hub id like 'org/name', a dataset folder or a data file",
        )
    return _resolve_hub(text, config=config, token=token, endpoint=endpoint, revision=revision)


def _resolve_local(path: Path, *, config: str | None) -> Source:
    path = path.resolve()
    if path.is_file():
        if path.name.lower() == "readme.md":
            return _card_only(path.parent.name, f"card:{_file_identity([path])}", read_card(path), config)
        if config not in (None, "default"):
            raise DatasetError(
                f"config {config!r} not found in {path.name}",
                hint="a single data file has no named configs: drop --config",
            )
        builder = _builder_for([path.name])
        if builder is None:
            raise DatasetError(
                f"cannot read {path.name}: unsupported file type",
                hint="use parquet, csv, tsv, jsonl/json or arrow files, an imagefolder or a save_to_disk folder",
            )
        encoding = _text_encoding([path], builder)
        return Source(
            name=path.stem,
            kind="files",
            identity=f"file:{_file_identity([path])}",
            data_files={"train": [str(path)]},
            builder=builder,
            config=config,
            encoding=encoding,
            separator=_csv_separator([path], builder, encoding),
        )
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return _resolve_disk(path)
    files = sorted(
        p.relative_to(path).as_posix()
        for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )
    card = read_card(path / "README.md")
    identity = f"dir:{_file_identity([path / f for f in files])}"
    data_files = _split_files(files, card, config, name=path.name)
    if not data_files:
        if card.data:
            return _card_only(path.name, identity, card, config)
        if card.error:  # the card is there but cannot be read: say that, not that it is missing
            raise DatasetError(
                f"no data files in {path}, and its README.md card cannot be read: {card.error}",
                hint="fix the YAML between the card's --- lines",
            )
        raise DatasetError(
            f"no data files nor dataset card in {path}",
            hint="a dataset folder needs parquet/csv/jsonl files, images in class folders, or a README.md card",
        )
    data_files = {s: [str(path / f) for f in fs] for s, fs in data_files.items()}
    builder = _builder_for([f for fs in data_files.values() for f in fs])
    images = sum(_suffix(f) in _IMAGE_EXTENSIONS for f in files)
    builder, data_files = _metadata_as_table(builder, data_files, _open_local, path.name)
    data_files = _files_of(data_files, builder, path.name)
    local = [Path(f) for fs in data_files.values() for f in fs]
    encoding = _text_encoding(local, builder)
    return Source(
        name=card.pretty_name or path.name,
        kind="files",
        identity=identity,
        card=card,
        config=config,
        data_files=data_files,
        builder=builder,
        encoding=encoding,
        separator=_csv_separator(local, builder, encoding),
        images_beside=images if builder != "imagefolder" else 0,
    )


def _resolve_memory(dataset: Any) -> Source:
    """A dataset held in memory: a `datasets.Dataset` or `DatasetDict` (read as a `save_to_disk`
    folder is), or a pandas DataFrame (made a Dataset). A streamed `IterableDataset` is refused:
    its size and classes cannot be read without consuming it."""
    kind, module = type(dataset).__name__, type(dataset).__module__ or ""
    if module.startswith("pandas") and kind == "DataFrame":
        import datasets

        if dataset.empty:
            raise DatasetError("the DataFrame is empty", hint="a dataset needs a label column and examples")
        dataset = datasets.Dataset.from_pandas(dataset, preserve_index=False)
        kind, module = "Dataset", "datasets"
    if module.startswith("datasets"):
        import datasets

        if isinstance(dataset, datasets.IterableDataset | datasets.IterableDatasetDict):
            raise UserInputError(
                f"an {kind} (streamed) cannot be sampled here: its size and classes are not known "
                "without reading it all",
                hint="pass a Dataset (e.g. Dataset.from_list(list(ds.take(10000)))), a path or a Hub id",
            )
        if isinstance(dataset, datasets.Dataset | datasets.DatasetDict):
            parts = dataset.values() if isinstance(dataset, datasets.DatasetDict) else [dataset]
            prints = [str(getattr(d, "_fingerprint", "") or "") for d in parts]
            names = [d.info.dataset_name for d in parts if d.info and d.info.dataset_name]
            return Source(
                name=names[0] if names else "in-memory dataset",
                kind="disk",
                identity="memory:" + hashlib.sha256("|".join(prints).encode()).hexdigest()[:16],
                disk=dataset,
            )
    article = "an" if kind[:1].lower() in "aeiou" else "a"
    raise UserInputError(
        f"a dataset is a Hub id, a path, a datasets.Dataset / DatasetDict or a pandas DataFrame, "
        f"not {article} {kind}",
        hint="pass a Hub dataset id or a local path",
    )


def _resolve_disk(path: Path) -> Source:
    from datasets import load_from_disk

    try:
        disk = load_from_disk(str(path))
    except Exception as exc:
        raise DatasetError(f"cannot load the saved dataset in {path}: {exc}") from exc
    card = read_card(path / "README.md")
    return Source(
        name=card.pretty_name or path.name,
        kind="disk",
        identity=f"disk:{_file_identity(sorted(p for p in path.rglob('*') if p.is_file()))}",
        card=card,
        disk=disk,
    )


def _resolve_hub(
    repo_id: str, *, config: str | None, token: str | None, endpoint: str | None, revision: str | None
) -> Source:
    from huggingface_hub import HfApi, constants

    endpoint = (endpoint or constants.ENDPOINT).rstrip("/")
    api = HfApi(endpoint=endpoint, token=token)
    try:
        info = api.dataset_info(repo_id, revision=revision, files_metadata=False)
        card_text = None
        files = [s.rfilename for s in (info.siblings or [])]
        if "README.md" in files:
            from huggingface_hub import hf_hub_download

            local = hf_hub_download(
                repo_id, "README.md", repo_type="dataset", revision=info.sha, token=token, endpoint=endpoint
            )
            card_text = Path(local).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:  # huggingface_hub's HTTP errors and requests' connection errors
        what = f"dataset {repo_id!r}" + (f" at revision {revision!r}" if revision else "")
        raise hub_error(exc, what, endpoint=endpoint, not_found=DatasetError) from exc
    card = parse_card(card_text) if card_text else CardInfo()
    if card.error:
        logger.warning("the dataset card of %s: %s", repo_id, card.error)
    sha = info.sha or revision or "main"
    identity = f"hub:{repo_id}@{sha}"
    split_files = _split_files(files, card, config, name=repo_id)
    if not split_files:
        if card.data:
            return _card_only(repo_id, identity, card, config)
        if card.error:  # the card is there but cannot be read: say that, not that it is missing
            raise DatasetError(
                f"dataset {repo_id!r} has no data files, and its README.md card cannot be read: {card.error}",
                hint="fix the YAML between the card's --- lines",
            )
        raise DatasetError(
            f"dataset {repo_id!r} has no data files nor card", hint="check the repo's contents"
        )
    base = f"hf://datasets/{repo_id}@{sha}"
    builder = _builder_for([f for fs in split_files.values() for f in fs])
    data_files = {s: [f"{base}/{f}" for f in fs] for s, fs in split_files.items()}

    def opener(url: str):
        from huggingface_hub import HfFileSystem

        return HfFileSystem(endpoint=endpoint, token=token).open(url, "rb", block_size=1 << 16)

    builder, data_files = _metadata_as_table(builder, data_files, opener, repo_id)
    data_files = _files_of(data_files, builder, repo_id)
    return Source(
        name=repo_id,
        kind="hub",
        identity=identity,
        card=card,
        config=config,
        data_files=data_files,
        builder=builder,
        storage_options={"hf": {"endpoint": endpoint, "token": token}},
        token=token,
    )


def _card_only(name: str, identity: str, card: CardInfo, config: str | None) -> Source:
    return Source(
        name=card.pretty_name or name, kind="card-only", identity=identity, card=card, config=config
    )


def _split_files(files: list[str], card: CardInfo, config: str | None, *, name: str) -> dict[str, list[str]]:
    """split -> repo-relative data files, by the card's `configs` or `datasets`' default patterns."""
    declared = [c for c in card.data.get("configs") or [] if isinstance(c, dict)]
    if declared:
        chosen = _choose_config(declared, config, name)
        patterns = _config_patterns(chosen)
        out = {split: _match_files(files, pats) for split, pats in patterns.items()}
        return {s: f for s, f in out.items() if f}
    if config not in (None, "default"):
        raise DatasetError(
            f"config {config!r} not found in {name}", hint="this dataset has no named configs: drop --config"
        )
    candidates = [f for f in files if _is_data_file(f)]
    if not candidates:
        return {}
    return _default_splits(candidates)


def _choose_config(declared: list[dict], config: str | None, name: str) -> dict:
    names = [c.get("config_name", "default") for c in declared]
    if config is None:
        for c in declared:
            if c.get("default"):
                return c
        if "default" in names or len(declared) == 1:
            return declared[names.index("default")] if "default" in names else declared[0]
        raise DatasetError(f"{name} has several configs: {', '.join(names)}", hint="pick one with --config")
    if config not in names:
        raise DatasetError(
            f"config {config!r} not found in {name} (configs: {', '.join(names)})",
            hint="pass one of the listed configs with --config",
        )
    return declared[names.index(config)]


def _config_patterns(config: dict) -> dict[str, list[str]]:
    data_files = config.get("data_files")
    if data_files is None and config.get("data_dir"):
        data_files = f"{config['data_dir'].rstrip('/')}/**"
    if data_files is None:
        return {"train": ["**"]}
    if isinstance(data_files, str):
        return {"train": [data_files]}
    if isinstance(data_files, list) and data_files and isinstance(data_files[0], dict):
        out: dict[str, list[str]] = {}
        for item in data_files:
            path = item.get("path")
            out[str(item.get("split", "train"))] = [path] if isinstance(path, str) else list(path or [])
        return out
    if isinstance(data_files, dict):
        return {str(k): [v] if isinstance(v, str) else list(v) for k, v in data_files.items()}
    return {"train": list(data_files)}


def _match_files(files: list[str], patterns: list[str]) -> list[str]:
    """Glob `patterns` against a repo file list with fsspec semantics (`**`, `*`, `[...]`)."""
    regexes = [re.compile(_glob_to_regex(p.lstrip("/"))) for p in patterns]
    return [f for f in files if _is_data_file(f) and any(r.fullmatch(f) for r in regexes)]


def _glob_to_regex(pattern: str) -> str:
    from fsspec.utils import glob_translate

    return glob_translate(pattern)


def _default_splits(files: list[str]) -> dict[str, list[str]]:
    """Run `datasets`' default split patterns over an empty skeleton of the repo's files."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    with tempfile.TemporaryDirectory(prefix="hf-spider-layout-") as tmp:
        for rel in files:
            target = Path(tmp, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()
        try:
            patterns = get_data_patterns(tmp)
            resolved = DataFilesDict.from_patterns(patterns, base_path=tmp)
        except (FileNotFoundError, ValueError):
            return {}
        root = Path(tmp).resolve()
        out = {}
        for split, found in resolved.items():
            rels = [Path(f).resolve().relative_to(root).as_posix() for f in found]
            rels = [r for r in rels if _is_data_file(r)]
            if rels:
                out[str(split)] = sorted(rels)
        return out


def _is_data_file(rel: str) -> bool:
    name = rel.lower()
    for ext in _COMPRESSION:
        if name.endswith(ext):
            name = name[: -len(ext)]
    suffix = Path(name).suffix
    if Path(rel).name.lower() == "readme.md" or suffix == ".md":
        return False
    if suffix == ".json" and Path(rel).name in {"dataset_infos.json", "dataset_info.json", "state.json"}:
        return False
    return suffix in _BUILDERS or suffix in _IMAGE_EXTENSIONS


def _suffix(file: str) -> str:
    """A data file's format suffix, lower case, past any compression suffix."""
    name = file.lower()
    for ext in _COMPRESSION:
        if name.endswith(ext):
            name = name[: -len(ext)]
    return Path(name).suffix


def _files_of(data_files: dict[str, list[str]], builder: str | None, name: str) -> dict[str, list[str]]:
    """`data_files` less the tables `builder` cannot read: a folder mixing a.csv and b.jsonl is
    read from the files of the format chosen (`_builder_for`), with a warning naming the others,
    instead of feeding csv lines to the json reader."""
    if builder in (None, "imagefolder"):
        return data_files
    kept = {s: [f for f in fs if _BUILDERS.get(_suffix(f)) == builder] for s, fs in data_files.items()}
    ignored = [  # other tables; images are not data files of a table (a csv may name them)
        Path(f).name
        for fs in data_files.values()
        for f in fs
        if _suffix(f) in _BUILDERS and _BUILDERS[_suffix(f)] != builder
    ]
    if ignored:
        logger.warning(
            "%s mixes data file formats: reading its %s files, ignoring %d other(s): %s",
            name,
            builder,
            len(ignored),
            ", ".join(ignored[:3]) + (" ..." if len(ignored) > 3 else ""),
        )
    return {s: fs for s, fs in kept.items() if fs}


def _open_local(path: str):
    return open(path, "rb")  # the caller closes it (`with opener(...)`)


def _metadata_as_table(
    builder: str | None, data_files: dict[str, list[str]], opener, name: str
) -> tuple[str | None, dict[str, list[str]]]:
    """An image folder whose metadata.csv / .jsonl names its images in another column than
    `file_name` (`path,label`): `datasets`' image folder refuses it, so it is read as the table it
    is, a csv of image paths (`Source.file_of`). Else `builder` and `data_files` unchanged."""
    if builder != "imagefolder":
        return builder, data_files
    tables = {
        s: [f for f in fs if Path(f).stem == "metadata" and _suffix(f) in _BUILDERS]
        for s, fs in data_files.items()
    }
    first = next((f for fs in tables.values() for f in fs), None)
    if first is None:
        return builder, data_files
    try:
        with opener(first) as handle:
            head = handle.read(1 << 16).decode("utf-8", errors="replace").splitlines()[0]
    except (OSError, IndexError) as exc:
        logger.debug("could not read the header of %s: %s", first, exc)
        return builder, data_files
    if _suffix(first) in (".jsonl", ".json"):
        import json

        try:
            names = list(json.loads(head))
        except ValueError:
            return builder, data_files
    else:
        import csv

        names = next(csv.reader([head], delimiter="\t" if _suffix(first) == ".tsv" else ","), [])
    if any(n.strip() == "file_name" or n.strip().endswith("_file_name") for n in names):
        return builder, data_files
    logger.info("%s: %s has no file_name column; read as a table of image paths", name, Path(first).name)
    return _BUILDERS[_suffix(first)], {s: fs for s, fs in tables.items() if fs}


def _builder_for(files: list[str]) -> str | None:
    builders = set()
    for f in files:
        suffix = _suffix(f)
        if suffix in _IMAGE_EXTENSIONS:
            builders.add("imagefolder")
        elif suffix in _BUILDERS:
            builders.add(_BUILDERS[suffix])
    if not builders:
        return None
    if "imagefolder" in builders:
        tables = [f for f in files if Path(f.lower()).suffix in _BUILDERS]
        if all(Path(f).stem == "metadata" for f in tables):
            return "imagefolder"  # images with an optional metadata.csv/jsonl beside them
        images = sum(Path(f.lower()).suffix in _IMAGE_EXTENSIONS for f in files)
        stray = [f for f in tables if Path(f).stem != "metadata"]
        if images > len(stray) and all(Path(f.lower()).suffix in (".txt", ".md") for f in stray):
            # a notes.txt among class folders of images: the images are the data
            logger.warning("ignoring %d text file(s) among %d images: %s", len(stray), images, stray[:3])
            return "imagefolder"
        builders.discard("imagefolder")
    if len(builders) > 1:
        for preferred in ("parquet", "arrow", "json", "csv", "text"):
            if preferred in builders:
                return preferred
    return builders.pop()


_FORMAT_HINTS = {
    "csv": "a csv file needs a header row, then one example per line",
    "json": "a jsonl file needs one JSON object per line",
    "parquet": "check that the parquet file is complete",
}
_ENCODING_PROBE = 1 << 20  # bytes of each local text file checked for its encoding


def _parse_errors() -> tuple[type[BaseException], ...]:
    """What `datasets`' packaged builders raise on a malformed file (pandas, pyarrow, json)."""
    import json

    errors: list[type[BaseException]] = [json.JSONDecodeError]
    try:
        import pandas as pd

        errors += [pd.errors.EmptyDataError, pd.errors.ParserError]
    except ImportError:
        pass
    try:
        import pyarrow as pa

        errors.append(pa.ArrowInvalid)
    except ImportError:
        pass
    return tuple(errors)


_CHAOS_MARGIN = 0.15  # detections this close in charset_normalizer's "chaos" are a tie
_RARE_CODEPAGE = re.compile(r"^(?:cp(?:437|7\d\d|8\d\d|1125)|mac_)")


def _text_encoding(paths: list[Path], builder: str | None) -> str | None:
    """None when the local csv/json/text files are UTF-8, else the encoding they are read with.

    An empty file is refused here, before `datasets` fails on it. A file that is not UTF-8 is
    read in the encoding `charset_normalizer` detects, with a warning naming it; when none can be
    told, the error says so.
    """
    if builder not in ("csv", "json", "text"):
        return None
    found = None
    for path in paths:
        if path.suffix.lower() in _COMPRESSION:
            continue
        with open(path, "rb") as fh:
            head = fh.read(_ENCODING_PROBE)
        if not head.strip():
            raise DatasetError(f"{path.name} is empty", hint="a data file needs a header row and examples")
        try:
            head.decode("utf-8")
            continue
        except UnicodeDecodeError as exc:
            if len(head) == _ENCODING_PROBE and exc.start >= len(head) - 4:
                continue  # a character cut at the end of the probe
            bad = exc
        guess = None
        try:
            from charset_normalizer import from_bytes

            matches = list(from_bytes(head))
            if matches:
                # Several code pages often decode a short file about equally well; Windows-1252
                # (a superset of Latin-1) is by far the most common of them in the wild, and the
                # DOS and old Mac code pages the rarest (charset_normalizer may rank cp775 first
                # for "café naïve €" written by Excel).
                close = [m.encoding for m in matches if m.chaos <= matches[0].chaos + _CHAOS_MARGIN]
                common = [e for e in close if not _RARE_CODEPAGE.match(e)]
                guess = "cp1252" if "cp1252" in close else (common or [matches[0].encoding])[0]
        except ImportError:
            pass
        if guess is None:
            raise DatasetError(
                f"{path.name} is not UTF-8 text (byte 0x{head[bad.start]:02x} at offset {bad.start}) "
                "and its encoding cannot be told",
                hint="save the file as UTF-8",
            )
        logger.warning("%s is not UTF-8: reading it as %s", path.name, guess)
        found = found or guess
    return found


def _csv_separator(paths: list[Path], builder: str | None, encoding: str | None) -> str | None:
    """`;`, `|` or a tab where the header line of every local .csv file holds no comma but one of
    them (Excel writes `;` where the decimal mark is a comma); None for comma-separated files."""
    if builder != "csv":
        return None
    found = set()
    for path in paths:
        if path.suffix.lower() != ".csv":
            return None
        try:
            with open(path, encoding=encoding or "utf-8", errors="replace") as fh:
                header = fh.readline()
        except OSError:
            return None
        if "," in header:
            return None
        found |= {sep for sep in (";", "\t", "|") if sep in header}
    if len(found) != 1:
        return None
    sep = found.pop()
    logger.info("csv separated by %r", sep)
    return sep


def _file_identity(paths: list[Path]) -> str:
    """A digest of names, sizes and modification times: changes when the files change."""
    digest = hashlib.sha256()
    for p in paths:
        try:
            st = p.stat()
        except OSError:
            continue
        digest.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
