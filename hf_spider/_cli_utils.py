"""Small helpers shared by the stages' command-line modules."""

from __future__ import annotations

import json
import math
import numbers
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hf_spider._paths import nearest_existing
from hf_spider.errors import UserInputError


def _plain(value: Any) -> Any:
    """JSON fallback: numpy scalars become numbers, anything else its string."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return json_safe(item())
        except (TypeError, ValueError):
            pass
    return str(value)


def umask_mode(path: str | os.PathLike) -> None:
    """Give a file made by `tempfile` (always 0600) the mode a plain `open` would have given it
    under the user's umask, before it is moved into place: results are meant to be shared."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def json_safe(value: Any) -> Any:
    """`value` with every NaN or infinite number as None (JSON's null): `NaN` is not JSON, and strict
    parsers (JavaScript's, jq) reject a file that holds it."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, numbers.Real) and not isinstance(value, bool | int) and not math.isfinite(value):
        return None
    return value


def write_json(dest: str | os.PathLike | None, payload: Any) -> None:
    """Write `payload` for `--json DEST`: nothing for None, stdout for `-`, else atomically to a file.
    Numbers that are not finite are written as null (`json_safe`)."""
    if not dest:
        return
    text = json.dumps(json_safe(payload), indent=2, default=_plain, allow_nan=False) + "\n"
    if str(dest) == "-":
        sys.stdout.write(text)
        return
    out = Path(dest)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=out.parent, delete=False, suffix=".tmp") as handle:
            handle.write(text)
        umask_mode(handle.name)
        os.replace(handle.name, out)
    except OSError as exc:
        raise UserInputError(
            f"cannot write {dest} ({exc.strerror or exc})", hint="pass a writable --json path"
        ) from None


def check_writable_folder(path: Path, flag: str) -> None:
    """Refuse, before any work, a folder that cannot be created or written to. Creates nothing.

    Permission bits do not tell (root ignores them, a read-only mount does not show in them), so
    a temporary file is made and removed in the folder, or in its nearest existing parent.
    """
    if path.exists() and not path.is_dir():
        raise UserInputError(f"{flag} {path} is a file, not a folder", hint="pass a folder path")
    probe = nearest_existing(path)
    if not probe.is_dir():
        raise UserInputError(
            f"{flag} {path} is under the file {probe}, which is a file, not a folder",
            hint="pass a folder path",
        )
    try:
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".hf-spider-write-check-")
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise UserInputError(
            f"cannot write to {flag} {path} ({exc.strerror or exc})", hint="pass a folder you can write to"
        ) from None


def check_json_path(dest: str | None) -> None:
    """Refuse, before any work, a `--json` path that is a folder or whose folder cannot be written
    (`-`, stdout, and None pass)."""
    if not dest or dest == "-":
        return
    path = Path(dest).expanduser()
    if path.is_dir():
        raise UserInputError(f"--json {dest} is a folder", hint="pass a file path, or - for stdout")
    check_writable_folder(path.parent if str(path.parent) else Path("."), "--json")


class StageBars:
    """One rich progress bar per stage, with its elapsed time; fed by `recommend(progress=...)` and
    `bench(progress=...)`. On a terminal the bars are live; elsewhere (a log, a pipe) each stage is
    one plain line at the end. A run that fails leaves only its error line."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.live = bool(console.is_terminal)
        self.progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[note]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.state: dict[str, tuple[int, int, str, float | None]] = {}

    def __enter__(self):
        if self.live:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            if exc[0] is not None:
                self.progress.live.transient = True
            return self.progress.__exit__(*exc)
        if exc[0] is None:
            now = time.perf_counter()
            for stage, (done, total, note, ended) in self.state.items():
                seconds = (ended or now) - self.started[stage]
                self.console.print(
                    f"{stage:<22} {done}/{max(total, 1)} {seconds:.1f}s {note}".rstrip(),
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )
        return False

    def __call__(self, stage: str, done: int, total: int, note: str = "") -> None:
        if stage not in self.started:
            self.started[stage] = time.perf_counter()
        self.state[stage] = (done, total, note, time.perf_counter() if done >= total else None)
        if not self.live:
            return
        if stage not in self.tasks:
            self.tasks[stage] = self.progress.add_task(stage, total=max(total, 1), note=note)
        task = self.tasks[stage]
        self.progress.update(task, completed=done, total=max(total, 1), note=note)
        if done >= total:
            self.progress.stop_task(task)
