"""The catalog: model tokens on disk, and the read-only `Catalog` view over them.

Two formats, chosen by path:
- SQLite (`catalog.sqlite` in a folder, or a `.sqlite` / `.db` file): what the crawler writes. WAL
  journal and one transaction per model, so a crawl killed at any instant leaves every committed
  model intact and never a half-written one.
- JSON Lines (`catalog.jsonl` in a folder, or a `.jsonl` file): one token per line, sorted by id;
  the embedded catalog in `model_cards/` ships this way because it diffs well in git.

Both carry the schema version (`SCHEMA_VERSION`); a catalog written by a newer schema is refused
with a hint instead of being misread.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider import _paths
from hf_spider.catalog._token import SCHEMA_VERSION, TOKEN_DIM, VECTOR_FIELDS, ModelToken
from hf_spider.errors import CatalogError

logger = logging.getLogger("hf_spider.catalog")

SQLITE_NAME = "catalog.sqlite"
# Vectors are cached in SQLite next to each token; they are used only while the layout is the same.
VECTOR_LAYOUT = hashlib.sha1("\n".join(VECTOR_FIELDS).encode()).hexdigest()[:16]
JSONL_NAME = "catalog.jsonl"
# Columns kept outside the JSON blob, so filters need not parse every token.
_COLUMNS = (
    "model_id",
    "sha",
    "last_modified",
    "pipeline_tag",
    "library",
    "model_type",
    "family",
    "num_parameters",
)
_SCALAR_FIELDS = (
    "model_id",
    "sha",
    "last_modified",
    "pipeline_tag",
    "library",
    "architecture",
    "model_type",
    "family",
    "modality",
    "num_parameters",
    "num_parameters_source",
    "input_size",
    "max_seq_len",
    "feature_dim",
    "num_labels",
    "license",
    "downloads",
    "likes",
)


def resolve_catalog_path(path: str | os.PathLike | None) -> Path:
    """Where a catalog lives: the given path, else the user catalog if it exists, else the embedded one."""
    if path is None:
        user = _paths.default_catalog_path()
        if _storage_file(user, must_exist=True) is not None:
            return user
        return _paths.EMBEDDED_CATALOG_DIR
    candidate = Path(path).expanduser()
    if not candidate.exists() and not candidate.is_absolute() and (_paths.REPO_DIR / candidate).exists():
        candidate = _paths.REPO_DIR / candidate  # `Catalog.load("model_cards")` from any folder
    return candidate


def _storage_file(path: Path, *, must_exist: bool) -> Path | None:
    """The file holding the catalog at `path` (a folder or a file)."""
    if path.suffix in (".sqlite", ".db", ".jsonl"):
        return path if path.exists() or not must_exist else None
    for name in (SQLITE_NAME, JSONL_NAME):
        if (path / name).exists():
            return path / name
    return None if must_exist else path / SQLITE_NAME


def _check_version(version: Any, where: Path) -> None:
    try:
        version = int(version)
    except (TypeError, ValueError):
        raise CatalogError(f"catalog {where} has no readable schema version", hint="re-crawl it") from None
    if version > SCHEMA_VERSION:
        raise CatalogError(
            f"catalog {where} has schema version {version}, this hf-spider reads up to {SCHEMA_VERSION}",
            hint="upgrade hf-spider or re-crawl into a new catalog path",
        )


class Catalog:
    """A set of model tokens, read-only, keyed by model id.

    Example:
        >>> cat = Catalog.load("model_cards")
        >>> vits = cat.filter(task="image-classification", model_type="vit", max_params=100e6)
        >>> vits.to_pandas()[["model_id", "num_parameters"]].head()
    """

    def __init__(self, tokens: Iterable[ModelToken | dict[str, Any]] = (), *, path: Path | None = None):
        self.path = path
        self.schema_version = SCHEMA_VERSION
        self._raw: dict[str, str | dict[str, Any]] = {}
        self._rows: dict[str, tuple] = {}
        self._cache: dict[str, ModelToken] = {}
        self._vectors: dict[str, bytes] = {}
        for token in tokens:
            data = token.to_dict() if isinstance(token, ModelToken) else dict(token)
            self._add(data["model_id"], data, _row_of(data))

    def _add(self, model_id: str, raw: str | dict[str, Any], row: tuple) -> None:
        self._raw[model_id] = raw
        self._rows[model_id] = row

    # --- loading ----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> Catalog:
        """Load a catalog.

        Args:
            path: a catalog folder or file. None: the user catalog (`HF_SPIDER_HOME`) if one was
                crawled, else the embedded catalog in `model_cards/`.
        """
        where = resolve_catalog_path(path)
        file = _storage_file(where, must_exist=True)
        if file is None:
            raise CatalogError(
                f"no catalog at {where}",
                hint="run `hf-spider crawl --catalog PATH` first, or pass a folder holding catalog.sqlite or catalog.jsonl",
            )
        started = time.perf_counter()
        catalog = cls(path=where)
        try:
            if file.suffix == ".jsonl":
                catalog._load_jsonl(file)
            else:
                catalog._load_sqlite(file)
        except (sqlite3.DatabaseError, json.JSONDecodeError, KeyError, UnicodeDecodeError) as exc:
            raise CatalogError(
                f"catalog {file} is unreadable ({exc})", hint="re-crawl it into a new path"
            ) from exc
        logger.debug("loaded %d models from %s in %.3fs", len(catalog), file, time.perf_counter() - started)
        return catalog

    def _load_jsonl(self, file: Path) -> None:
        with open(file, encoding="utf-8") as handle:
            header = json.loads(handle.readline() or "{}")
            _check_version(header.get("schema_version"), file)
            for number, line in enumerate(handle, start=2):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CatalogError(
                        f"catalog {file}, line {number}, is not JSON ({exc.msg})",
                        hint="fix or delete that line, or re-crawl into a new path",
                    ) from exc
                if not isinstance(data, dict) or not isinstance(data.get("model_id"), str):
                    raise CatalogError(
                        f"catalog {file}, line {number}, is not a model entry (no model_id)",
                        hint="fix or delete that line, or re-crawl into a new path",
                    )
                self._add(data["model_id"], data, _row_of(data))

    def _load_sqlite(self, file: Path) -> None:
        uri = f"file:{file}?mode=ro"
        con = sqlite3.connect(uri, uri=True)
        try:
            version = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            _check_version(version[0] if version else None, file)
            layout = con.execute("SELECT value FROM meta WHERE key = 'vector_layout'").fetchone()
            cached = layout is not None and layout[0] == VECTOR_LAYOUT
            query = f"SELECT {', '.join(_COLUMNS)}, {'vector' if cached else 'NULL'}, data FROM models"
            for row in con.execute(query):
                self._add(row[0], row[-1], tuple(row[: len(_COLUMNS)]))
                if row[-2] is not None:
                    self._vectors[row[0]] = row[-2]
        finally:
            con.close()

    # --- access ------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._raw

    def __iter__(self) -> Iterator[ModelToken]:
        for model_id in self._raw:
            yield self[model_id]

    def __getitem__(self, model_id: str) -> ModelToken:
        token = self._cache.get(model_id)
        if token is None:
            raw = self._raw[model_id]
            token = ModelToken.from_dict(json.loads(raw) if isinstance(raw, str) else raw)
            self._cache[model_id] = token
        return token

    def get(self, model_id: str) -> ModelToken | None:
        """The token of `model_id`, or None when the catalog does not hold it."""
        return self[model_id] if model_id in self._raw else None

    @property
    def model_ids(self) -> list[str]:
        return list(self._raw)

    def filter(
        self,
        *,
        task: str | Iterable[str] | None = None,
        library: str | Iterable[str] | None = None,
        model_type: str | Iterable[str] | None = None,
        family: str | Iterable[str] | None = None,
        modality: str | None = None,
        min_params: float | None = None,
        max_params: float | None = None,
        predicate: Callable[[ModelToken], bool] | None = None,
    ) -> Catalog:
        """The models that match every given criterion (a new `Catalog`).

        `task` is a pipeline tag; string criteria accept one value or several. Models with an
        unknown parameter count fail `min_params` / `max_params`. A modality or bound of the wrong
        kind is refused (UserInputError), not matched against nothing.
        """
        from hf_spider.catalog._token import MODALITIES
        from hf_spider.errors import UserInputError

        if modality is not None:
            modality = str(modality).strip().lower()
            if modality not in MODALITIES:
                raise UserInputError(
                    f"unknown modality {modality!r}", hint=f"use one of: {', '.join(MODALITIES)}"
                )
        for name, bound in (("min_params", min_params), ("max_params", max_params)):
            if bound is not None and (isinstance(bound, bool) or not isinstance(bound, int | float)):
                raise UserInputError(f"{name} must be a number, got {bound!r}", hint=f"e.g. {name}=1e8")
        wanted = {
            _COLUMNS.index("pipeline_tag"): _as_set(task),
            _COLUMNS.index("library"): _as_set(library),
            _COLUMNS.index("model_type"): _as_set(model_type),
            _COLUMNS.index("family"): _as_set(family),
        }
        wanted = {i: v for i, v in wanted.items() if v is not None}
        p_index = _COLUMNS.index("num_parameters")
        out = Catalog(path=self.path)
        for model_id, row in self._rows.items():
            if any(row[i] not in values for i, values in wanted.items()):
                continue
            params = row[p_index]
            if min_params is not None and (params is None or params < min_params):
                continue
            if max_params is not None and (params is None or params > max_params):
                continue
            if modality is not None and self[model_id].modality != modality:
                continue
            if predicate is not None and not predicate(self[model_id]):
                continue
            out._add(model_id, self._raw[model_id], row)
            if model_id in self._vectors:
                out._vectors[model_id] = self._vectors[model_id]
            if model_id in self._cache:
                out._cache[model_id] = self._cache[model_id]
        return out

    def vectors(self) -> tuple[list[str], np.ndarray]:
        """(model ids, matrix of shape (len, TOKEN_DIM)) in catalog order."""
        ids = self.model_ids
        if ids and len(self._vectors) == len(ids):  # every vector cached in the file: one buffer
            joined = b"".join(self._vectors[m] for m in ids)
            return ids, np.frombuffer(joined, dtype=np.float32).reshape(len(ids), TOKEN_DIM).copy()
        matrix = np.zeros((len(ids), TOKEN_DIM), dtype=np.float32)
        for i, model_id in enumerate(ids):
            blob = self._vectors.get(model_id)
            matrix[i] = np.frombuffer(blob, dtype=np.float32) if blob is not None else self[model_id].vector()
        return ids, matrix

    def to_pandas(self):
        """One row per model: the scalar fields, list fields as lists, warnings as a count."""
        import pandas as pd

        records = []
        for token in self:
            record = {name: getattr(token, name) for name in _SCALAR_FIELDS}
            for name in ("datasets", "base_models", "languages", "tags", "eval_results"):
                record[name] = list(getattr(token, name))
            record["num_warnings"] = len(token.warnings)
            record["source"] = token.provenance.get("source")
            records.append(record)
        return pd.DataFrame.from_records(
            records,
            columns=[
                *_SCALAR_FIELDS,
                "datasets",
                "base_models",
                "languages",
                "tags",
                "eval_results",
                "num_warnings",
                "source",
            ],
        )

    def stats(self) -> dict[str, Any]:
        """Counts a user wants first: models, by task / library / family, params filled, warnings."""

        def count(column: str) -> dict[str, int]:
            idx = _COLUMNS.index(column)
            out: dict[str, int] = {}
            for row in self._rows.values():
                key = row[idx] or "unknown"
                out[key] = out.get(key, 0) + 1
            return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

        p_index = _COLUMNS.index("num_parameters")
        return {
            "path": str(self.path) if self.path else None,
            "schema_version": self.schema_version,
            "models": len(self),
            "with_num_parameters": sum(1 for r in self._rows.values() if r[p_index]),
            "with_warnings": sum(1 for t in self if t.warnings),
            "by_task": count("pipeline_tag"),
            "by_library": count("library"),
            "by_family": count("family"),
        }

    def records(self) -> list[dict[str, Any]]:
        """Every token as a dict, sorted by model id (what two equal catalogs agree on)."""
        return [self[m].to_dict() for m in sorted(self._raw)]

    def save(self, path: str | os.PathLike) -> Path:
        """Write the catalog atomically: JSON Lines for `.jsonl` paths or folders holding one, else SQLite."""
        target = Path(path)
        file = _storage_file(target, must_exist=False) if target.suffix else None
        if file is None:
            target.mkdir(parents=True, exist_ok=True)
            file = target / (JSONL_NAME if (target / JSONL_NAME).exists() else SQLITE_NAME)
        if file.suffix == ".jsonl":
            write_jsonl(file, self)
        else:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=file.parent, suffix=".sqlite.tmp")
            os.close(fd)
            os.unlink(tmp)
            store = CatalogStore(Path(tmp))
            try:
                store.upsert_many(self)
            finally:
                store.close()
            os.replace(tmp, file)
        return file

    def __repr__(self) -> str:
        return f"Catalog({len(self)} models, path={str(self.path) if self.path else None!r})"


def _as_set(value: str | Iterable[str] | None) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else set(value)


def _row_of(data: dict[str, Any]) -> tuple:
    return tuple(data.get(c) for c in _COLUMNS)


def write_jsonl(file: Path, tokens: Iterable[ModelToken]) -> None:
    """Atomically write tokens as JSON Lines (a header line with the schema, then one token a line)."""
    file.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted((t.to_dict() for t in tokens), key=lambda d: d["model_id"])
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=".catalog-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({"schema_version": SCHEMA_VERSION, "token_dim": TOKEN_DIM}) + "\n")
            for data in ordered:
                handle.write(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n")
        os.replace(tmp, file)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class CatalogStore:
    """Read-write SQLite catalog used by the crawler. One transaction per model (crash-safe).

    Only the thread that opened it may use it; crawl workers hand their tokens to that thread.
    """

    def __init__(self, file: Path):
        self.file = file
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(str(file), timeout=30, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.executescript(
                """
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
                CREATE TABLE IF NOT EXISTS models (
                    model_id TEXT PRIMARY KEY, sha TEXT, last_modified TEXT, pipeline_tag TEXT,
                    library TEXT, model_type TEXT, family TEXT, num_parameters INTEGER,
                    data TEXT NOT NULL, updated_at REAL, vector BLOB);
                CREATE TABLE IF NOT EXISTS failures (model_id TEXT PRIMARY KEY, reason TEXT, at REAL);
                """
            )
            columns = {r[1] for r in self._con.execute("PRAGMA table_info(models)")}
            if "vector" not in columns:  # catalogs written before vectors were cached alongside
                self._con.execute("ALTER TABLE models ADD COLUMN vector BLOB")
            row = self._con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                self._con.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            else:
                _check_version(row[0], file)
            layout = self._con.execute("SELECT value FROM meta WHERE key = 'vector_layout'").fetchone()
            if layout is None or layout[0] != VECTOR_LAYOUT:  # new catalog, or vectors of another layout
                with self._con:
                    self._con.execute("BEGIN IMMEDIATE")
                    self._con.execute("UPDATE models SET vector = NULL")
                    self._con.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('vector_layout', ?)", (VECTOR_LAYOUT,)
                    )
        except (OSError, sqlite3.Error) as exc:
            if isinstance(exc, sqlite3.DatabaseError) and (
                "not a database" in str(exc) or "malformed" in str(exc)
            ):
                raise CatalogError(
                    f"the catalog at {file} is damaged ({exc})",
                    hint="move it aside and crawl again into that path, or pass another --catalog",
                ) from exc
            raise CatalogError(
                f"cannot write the catalog at {file} ({exc})",
                hint="pass --catalog with a writable path (or set HF_SPIDER_HOME)",
            ) from exc

    def known(self) -> dict[str, tuple[str | None, str | None]]:
        """model id -> (sha, last_modified) of every catalogued model."""
        return {
            r[0]: (r[1], r[2]) for r in self._con.execute("SELECT model_id, sha, last_modified FROM models")
        }

    def upsert(self, token: ModelToken) -> None:
        data = token.to_dict()
        with self._con:  # one transaction: the row and the cleared failure commit together
            self._con.execute("BEGIN IMMEDIATE")
            self._write(data)
            self._con.execute("DELETE FROM failures WHERE model_id = ?", (token.model_id,))

    def upsert_many(self, tokens: Iterable[ModelToken]) -> None:
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")
            for token in tokens:
                self._write(token.to_dict())

    def _write(self, data: dict[str, Any]) -> None:
        self._con.execute(
            f"INSERT OR REPLACE INTO models ({', '.join(_COLUMNS)}, data, updated_at, vector) "
            f"VALUES ({', '.join('?' * (len(_COLUMNS) + 3))})",
            (
                *_row_of(data),
                json.dumps(data, ensure_ascii=False, sort_keys=True),
                time.time(),
                ModelToken.from_dict(data).vector().tobytes(),
            ),
        )

    def update_stats(self, model_id: str, downloads: int | None, likes: int | None) -> bool:
        """Refresh the popularity figures the listing gives for free; True when they changed."""
        row = self._con.execute("SELECT data FROM models WHERE model_id = ?", (model_id,)).fetchone()
        if row is None:
            return False
        data = json.loads(row[0])
        if (data.get("downloads"), data.get("likes")) == (downloads, likes):
            return False
        data["downloads"], data["likes"] = downloads, likes
        with self._con:
            self._con.execute("BEGIN IMMEDIATE")
            self._write(data)
        return True

    def record_failure(self, model_id: str, reason: str) -> None:
        with self._con:
            self._con.execute(
                "INSERT OR REPLACE INTO failures VALUES (?, ?, ?)", (model_id, reason, time.time())
            )

    def set_meta(self, key: str, value: str) -> None:
        with self._con:
            self._con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._con.close()
