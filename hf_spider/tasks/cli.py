"""`hf-spider task DATASET`: load a dataset as a task and show (or save) its task token."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "task",
        help="embed a dataset as a task token (metadata + probe-encoder features of a stratified sample)",
        description=(
            "Load DATASET (Hub dataset id, save_to_disk folder, imagefolder, Hub-layout repo folder, "
            "parquet/csv/jsonl file, or a card-only repo) and print its task token summary."
        ),
    )
    p.add_argument("dataset", help="Hub dataset id (org/name) or a local folder / file")
    p.add_argument("--config", help="dataset config name")
    p.add_argument("--split", help="split to sample (default: train, else validation, test, first)")
    p.add_argument("--sample", type=int, default=500, help="stratified sample size (0: metadata only)")
    p.add_argument("--input-column", help="column holding the images or texts")
    p.add_argument("--label-column", help="column holding the classes")
    p.add_argument("--modality", choices=["image", "text"], help="override the detected modality")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample")
    p.add_argument("--max-scan", type=int, help="rows of a streamed split to draw the sample from")
    p.add_argument(
        "--probe", help="probe encoder for the data part (default: the zoo's encoder of the modality)"
    )
    p.add_argument("--no-probe", action="store_true", help="skip the data part of the token")
    p.add_argument("--revision", help="dataset revision on the Hub")
    p.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--token", help="Hub token (default: the logged-in token); never printed")
    p.add_argument("--json", metavar="PATH", help="write the task summary as JSON ('-' for stdout)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from hf_spider.tasks._load import load_task

    with _progress() as progress:
        task = load_task(
            args.dataset,
            config=args.config,
            split=args.split,
            sample=args.sample,
            input_column=args.input_column,
            label_column=args.label_column,
            modality=args.modality,
            seed=args.seed,
            token=args.token,
            endpoint=args.endpoint,
            revision=args.revision,
            max_scan=args.max_scan,
            probe=False if args.no_probe else args.probe,
            progress=progress,
        )
    summary = task.to_dict()
    if args.json:
        text = json.dumps(summary, indent=2)
        if args.json == "-":
            print(text)
            return 0
        _write_atomic(Path(args.json), text + "\n")
    _print_table(summary)
    return 0


class _progress:
    """A rich progress bar for the probe encoder's batches, shown only on a terminal."""

    def __enter__(self):
        self._bar = None
        self._task = None
        if sys.stderr.isatty():
            from rich.progress import Progress

            self._bar = Progress(transient=True)
            self._bar.start()
        return self._update if self._bar else None

    def _update(self, done: int, total: int) -> None:
        if self._task is None:
            self._task = self._bar.add_task("probe encoder", total=total)
        self._bar.update(self._task, completed=done)

    def __exit__(self, *exc):
        if self._bar is not None:
            self._bar.stop()
        return False


def _print_table(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    md = summary["metadata"]
    src = md.get("source") or {}
    table = Table(title=f"task: {summary['name']}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    names = md.get("label_names") or []
    shown = ", ".join(names[:12]) + (f", … ({len(names)})" if len(names) > 12 else "")
    rows = [
        ("modality", summary["modality"]),
        *([("config", str(src["config"]))] if src.get("config") else []),
        ("split", str(src.get("split"))),
        ("columns", f"input={src.get('input_column')}  label={src.get('label_column')}"),
        ("classes", f"{md.get('num_classes')}: {shown}"),
        ("examples", str(md.get("num_examples") if md.get("num_examples") is not None else "unknown")),
        ("class balance", "unknown" if md.get("class_balance") is None else f"{md['class_balance']:.3f}"),
        ("task categories", ", ".join(md.get("task_categories") or []) or "-"),
        ("sample", f"{summary['sample_size']} (skipped {summary['skipped']} unreadable)"),
        ("token parts", "metadata" + (" + data" if summary["data_token"] is not None else " only")),
        ("probe", summary.get("probe") or "-"),
        ("fingerprint", summary["fingerprint"]),
    ]
    for key, value in rows:
        table.add_row(key, value)
    Console().print(table)


def _write_atomic(path: Path, text: str) -> None:
    import os
    import tempfile

    from hf_spider._cli_utils import umask_mode

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        umask_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
