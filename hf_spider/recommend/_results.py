"""`Recommendations`: the result of `hf_spider.recommend`, one row per (model, variant).

A row carries the model's transfer scores (stage 1 ranker, stage 2 estimators and their fusion),
the stage it reached, and — for benchmarked variants — device figures with how each was obtained:
`measured` on the target, `estimated` from a profile, or `skipped` with the reason. Everything the
run knew about its inputs (task, catalog snapshot, protocol, target, constraints, timings) lives in
`meta`, so a saved or pushed result can be read back and explained without the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hf_spider._cli_utils import umask_mode
from hf_spider.hardware.record import DEVICE_STATUSES, DeviceRecord
from hf_spider.recommend._columns import COLUMNS, DEVICE_FIGURES, PREDICTED_COLUMNS

logger = logging.getLogger("hf_spider.recommend")

# 2: device figures under the one row vocabulary (`hf_spider.hardware.record.FIGURES`), and
# `transfer_score` as the percentile of the final order; version-1 files are read back renamed.
SCHEMA_VERSION = 2
_V1_NAMES = {
    "latency_ms_p50": "latency_p50_ms",
    "latency_ms_p90": "latency_p90_ms",
    "latency_ms_p99": "latency_p99_ms",
    "throughput_bs1": "throughput_b1_per_s",
    "memory_mb": "peak_memory_mb",
    "size_mb": "file_size_mb",
}


def _clean(value: Any) -> Any:
    """JSON/parquet-friendly scalars: numpy scalars to Python, NaN to None."""
    if hasattr(value, "item") and not isinstance(value, (list, dict, str)):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


@dataclass
class Recommendations:
    """Ranked recommendations for one dataset on one device target.

    Args:
        rows: one dict per (model, variant); see `COLUMNS`. Models that were ranked but not
            benchmarked have one row with `variant=None` and `device_status="skipped"`.
        meta: task, catalog snapshot, protocol, target, constraints, pick, timings, notes.

    Example:
        >>> recs = hf_spider.recommend("rotten_tomatoes", top_k=3)
        >>> recs.to_pandas().head()
        >>> recs.plot("pareto.png"); recs.push_to_hub("me/rt-recommendations")
    """

    rows: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rows = [{_V1_NAMES.get(k, k): v for k, v in row.items()} for row in self.rows]
        extra = sorted({k for row in self.rows for k in row if k not in COLUMNS})
        self.columns = [*COLUMNS, *extra]
        self.rows = [{c: _clean(row.get(c)) for c in self.columns} for row in self.rows]
        for row in self.rows:
            status = row.get("device_status")
            if status not in DEVICE_STATUSES:
                from hf_spider.errors import DatasetError  # a ValueError too

                raise DatasetError(
                    f"device_status must be one of {DEVICE_STATUSES}, got {status!r}",
                    hint="rows come from `hf-spider recommend`; check any edited row",
                )

    # ----------------------------------------------------------------- views
    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        best = self.best
        pick = f"{best['model_id']} ({best['variant'] or 'no variant'})" if best else "none"
        return f"Recommendations(dataset={self.meta.get('dataset')!r}, rows={len(self.rows)}, pick={pick})"

    @property
    def best(self) -> dict[str, Any] | None:
        """The recommended row: the pick under constraints, else the top-ranked row; None when
        no row meets the constraints."""
        if (self.meta.get("pick") or {}).get("nothing_fits"):
            return None
        for row in self.rows:
            if row.get("recommended"):
                return row
        return self.rows[0] if self.rows else None

    def ranking(self) -> list[dict[str, Any]]:
        """One entry per model, in rank order: `{"model_id", "score", "stage", "rank", "basis"}`
        (`basis`: what its stage-1 score was computed from, the `rank_basis` column)."""
        seen: dict[str, dict[str, Any]] = {}
        for row in sorted(self.rows, key=lambda r: (r["rank"] is None, r["rank"] or 0)):
            if row["model_id"] not in seen:
                seen[row["model_id"]] = {
                    "rank": row["rank"],
                    "model_id": row["model_id"],
                    "score": row["transfer_score"],
                    "stage": row["stage"],
                    "basis": row.get("rank_basis"),
                }
        return list(seen.values())

    def to_pandas(self):
        """A `pandas.DataFrame`, one row per (model, variant), columns in `self.columns` order."""
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def to_dataset(self):
        """A `datasets.Dataset` of the rows; `meta` is kept in its description as JSON."""
        import datasets
        import pyarrow as pa

        table = pa.Table.from_pylist(self.rows, schema=self._arrow_schema())
        info = datasets.DatasetInfo(description=json.dumps(self.meta, sort_keys=True, default=str))
        return datasets.Dataset(table, info=info)

    def _arrow_schema(self):
        import pyarrow as pa

        fields = []
        for col in self.columns:
            values = [r[col] for r in self.rows if r[col] is not None]
            if col in ("rank", "copeland_rank"):
                typ = pa.int64()
            elif col in ("meets_constraints", "pareto", "recommended") or (
                values and all(isinstance(v, bool) for v in values)
            ):
                typ = pa.bool_()
            elif (
                (values and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values))
                or col in DEVICE_FIGURES
                or col in PREDICTED_COLUMNS
                or col.startswith("score_")
                or col.endswith("_score")
            ):
                typ = pa.float64()
            else:
                typ = pa.string()
            fields.append(pa.field(col, typ))
        return pa.schema(fields)

    # ----------------------------------------------------------------- files
    def to_json(self) -> dict[str, Any]:
        """Everything, JSON-serialisable: `{"ranking", "rows", "meta", "schema_version"}`."""
        return {
            "schema_version": SCHEMA_VERSION,
            "dataset": self.meta.get("dataset"),
            "ranking": self.ranking(),
            "recommended": self.best,
            "rows": self.rows,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> Recommendations:
        """From the dict `to_json` gives, or the JSON text `dumps` gives."""
        from hf_spider.errors import DatasetError

        if isinstance(data, str | bytes):
            try:
                data = json.loads(data)
            except ValueError:
                raise DatasetError(
                    "not hf-spider recommendations: the text is not JSON",
                    hint="pass the dict of to_json() or the text of dumps()",
                ) from None
        rows = data.get("rows") if isinstance(data, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise DatasetError(
                "not hf-spider recommendations: no list of rows",
                hint="pass a folder or recommendations.json written by `hf-spider recommend`",
            )
        version = data.get("schema_version")
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise DatasetError(
                f"recommendations of schema {version}, newer than this hf-spider reads ({SCHEMA_VERSION})",
                hint="upgrade hf-spider",
            )
        meta = data.get("meta")
        return cls(rows=list(rows), meta=dict(meta) if isinstance(meta, dict) else {})

    def save(self, output_dir: str | os.PathLike) -> dict[str, Path]:
        """Write `recommendations.parquet`, `recommendations.json`, `pareto.png` and `report.md`.

        Returns the paths written, by kind. Each file is written atomically.
        """
        from hf_spider._cli_utils import check_writable_folder

        out = Path(output_dir)
        check_writable_folder(out, "output_dir")  # a file there, or no write access: one line
        out.mkdir(parents=True, exist_ok=True)
        paths = {
            "parquet": out / "recommendations.parquet",
            "json": out / "recommendations.json",
            "plot": out / "pareto.png",
            "report": out / "report.md",
        }
        with _folder_lock(out):  # two runs into one folder leave one run's set, not a mix
            _atomic_write(paths["parquet"], lambda p: self.to_pandas().to_parquet(p, index=False))
            _atomic_write(paths["json"], lambda p: Path(p).write_text(self.dumps()))
            self.plot(paths["plot"])
            _atomic_write(paths["report"], lambda p: Path(p).write_text(self.report(plot_path="pareto.png")))
        return paths

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str) + "\n"

    @classmethod
    def load(cls, path: str | os.PathLike) -> Recommendations:
        """Read back a folder written by `save` (or any of its files: its `recommendations.json`
        is read)."""
        from hf_spider.errors import DatasetError

        path = Path(path)
        if path.is_dir():
            path = path / "recommendations.json"
        elif path.suffix != ".json" and (path.parent / "recommendations.json").is_file():
            path = path.parent / "recommendations.json"  # the parquet, report or plot beside it
        elif path.is_file() and path.suffix != ".json":
            raise DatasetError(
                f"{path} is not recommendations written by hf-spider",
                hint="pass the folder `hf-spider recommend` wrote, or its recommendations.json",
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DatasetError(
                f"no recommendations at {path}", hint="pass a folder written by `hf-spider recommend`"
            ) from None
        except (OSError, ValueError) as exc:  # unreadable, not UTF-8, not JSON (truncated)
            raise DatasetError(
                f"{path} cannot be read as recommendations ({type(exc).__name__})",
                hint="it may be truncated; run `hf-spider recommend` again",
            ) from None
        return cls.from_json(data)

    # ------------------------------------------------------------ rendering
    def plot(self, path: str | os.PathLike | None = None, *, ax=None):
        """Pareto plot: transfer score vs latency p50, one point per variant, the front drawn.

        Measured points are filled, estimated ones hollow; the recommended variant is a star.
        Without device figures (bench not run) it shows the transfer scores as bars instead.
        Returns the matplotlib figure; saves it to `path` when given.
        """
        from hf_spider.recommend._plot import pareto_plot

        return pareto_plot(self, path, ax=ax)

    def report(self, *, plot_path: str | None = None, max_rows: int = 30) -> str:
        """A markdown report saying, for every figure, whether it was measured, estimated or skipped."""
        from hf_spider.recommend._report import render_report

        return render_report(self, plot_path=plot_path, max_rows=max_rows)

    # ------------------------------------------------------------------ hub
    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        token: str | None = None,
        endpoint: str | None = None,
        commit_message: str | None = None,
    ) -> str:
        """Push the rows as a Hub dataset (parquet via `datasets`) with a dataset card and the plot.

        A second push to the same repo replaces the data and the card in place. The token comes
        from `token=` or huggingface_hub's usual chain (`HF_TOKEN`, the saved login); it is never
        written anywhere. Returns the dataset's URL.
        """
        from hf_spider.recommend._hub import push_recommendations

        return push_recommendations(
            self, repo_id, private=private, token=token, endpoint=endpoint, commit_message=commit_message
        )

    @classmethod
    def from_hub(
        cls,
        repo_id: str,
        *,
        token: str | None = None,
        endpoint: str | None = None,
        max_bytes: int | None = None,
    ) -> Recommendations:
        """Read a recommendations dataset pushed by `push_to_hub` (refused unread when its files
        are larger than `max_bytes`)."""
        from hf_spider.recommend._hub import load_recommendations

        return cls.from_json(
            load_recommendations(repo_id, token=token, endpoint=endpoint, max_bytes=max_bytes)
        )


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sort_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order rows by model rank, then benchmarked variants before unbenchmarked ones."""
    return sorted(
        rows,
        key=lambda r: (
            r.get("rank") is None,
            r.get("rank") or 0,
            r.get("variant") is None,
            r.get("latency_p50_ms") is None,
            r.get("latency_p50_ms") or 0.0,
        ),
    )


def transfer_percentile(rank: int, n: int) -> float:
    """The final position as a percentile of `n` ranked candidates: 1 for the first, 0 for the last."""
    return 1.0 if n <= 1 else (n - rank) / (n - 1)


def build_rows(
    order: list[str],
    stage1: list[tuple[str, float]],
    probed: Any,
    fused: dict[str, float],
    records: Iterable[DeviceRecord],
    *,
    top_k: int,
    benched: bool,
    target: str | None = None,
    basis: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """One row per device record, and one per ranked model that was not benchmarked.

    Args:
        order: the final order (`hf_spider.probe.rerank`), best first.
        stage1: the stage-1 ranking, `[(model_id, score)]`.
        probed: the stage-2 `ProbeResult` (its estimator scores become `score_<name>` columns).
        fused: the fused stage-2 score of each probed model.
        records: the benchmarked variants.
        top_k, benched: why a model has no device figures (bench not run, or not in the top-k).
        target: the device target's name, on every row.
        basis: what each model's stage-1 score was computed from (`RankResult.basis`).
    """
    basis = basis or {}
    rows = [r.to_row() for r in records]
    done = {r["model_id"] for r in rows}
    reason = f"not among the top-{top_k} benchmarked" if benched else "bench stage not run"
    rows += [DeviceRecord.skipped(m, None, reason).to_row() for m in order if m not in done]
    rank_of = {m: i + 1 for i, m in enumerate(order)}
    stage1_score = dict(stage1)
    for row in rows:
        m = row["model_id"]
        row.update(
            rank=rank_of[m],
            stage="bench" if m in done else "probe" if m in probed.scores else "rank",
            transfer_score=transfer_percentile(rank_of[m], len(order)),
            transfer_source="probe" if m in fused else "rank",
            rank_score=stage1_score[m],
            rank_basis=basis.get(m),
            probe_score=fused.get(m),
            target=target,
            **{f"score_{k}": v for k, v in probed.scores.get(m, {}).items()},
        )
    return rows


def task_summary(task: Any) -> dict[str, Any]:
    """What the report keeps of the task: `Task.describe()` less its long and local parts."""
    described = task.describe()
    return {
        "name": task.name,
        "modality": task.modality,
        "num_classes": task.num_classes,
        "num_examples": described.get("num_examples"),
        # which split and columns were read (a DatasetDict's train, unless split= said otherwise)
        "split": (task.metadata.get("source") or {}).get("split"),
        "input_column": (task.metadata.get("source") or {}).get("input_column"),
        "label_column": (task.metadata.get("source") or {}).get("label_column"),
        "label_names": task.label_names[:50],
        "fingerprint": task.fingerprint,
        "has_data": task.has_data,
        "probe": task.probe,
        "skipped_unreadable": task.skipped,
    }


def how_obtained(row: dict[str, Any]) -> str:
    """How a row's device figures were obtained, in a word: on a profile target they are estimated."""
    return "measured" if row.get("device_status") == "measured" else "estimated"


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive advisory lock on the folder itself while a set of results is written (no
    file is left in it); a no-op where the platform cannot lock a folder."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):  # pragma: no cover - Windows
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def target_summary(device: Any, predicted_for: str | None = None) -> dict[str, Any]:
    """What the report keeps of the device target (`none` when bench did not run; then
    `predicted_for` names the target the joint ranking predicted costs for, if it ran)."""
    if device is None and predicted_for:
        return {
            "name": "none",
            "predicted_for": predicted_for,
            "description": f"no device measured (bench stage not run); costs predicted for {predicted_for}",
        }
    if device is None:
        return {"name": "none", "description": "no device (bench stage not run)"}
    return {**device.to_dict(), "description": device.describe()}


def basis_note(basis: dict[str, str]) -> str:
    """One sentence: how many stage-1 scores came from fine-tuning history, cards alone, neither."""
    n = {b: sum(v == b for v in basis.values()) for b in ("history", "card", "card_facts", "none")}
    out = (
        f"stage 1 scored {n['history']} of {len(basis)} candidates from their fine-tuning history on "
        f"other datasets and {n['card'] + n['card_facts']} from their card alone"
    )
    if n["card_facts"]:
        out += (
            f" ({n['card_facts']} of an architecture the ranker has no record of, placed by the facts "
            "on their card only: parameter count, and upstream accuracy where the ranker reads it; "
            "about as good as ordering them by size)"
        )
    if n["none"]:
        out += (
            f"; {n['none']} placed at the median of the others (no fine-tuning record, and no usable "
            "card prior: the card states neither a parameter count nor an upstream accuracy, or the "
            "ranker's card prior was fitted on too few models to place any)"
        )
    return out
