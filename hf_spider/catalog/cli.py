"""`hf-spider crawl` and `hf-spider catalog show|stats`."""

from __future__ import annotations

import argparse
import json
import sys

from hf_spider._cli_utils import write_json as _write_json
from hf_spider.errors import CatalogError, UserInputError


def register(subparsers: argparse._SubParsersAction) -> None:
    crawl = subparsers.add_parser(
        "crawl",
        help="crawl Hub model cards (or a folder of Hub-layout repos) into the local catalog",
        description="Crawl model cards into model tokens. Incremental: unchanged models cost no request.",
    )
    crawl.add_argument("--task", action="append", default=None, help="pipeline tag to list (repeatable)")
    crawl.add_argument(
        "--library", default=None, help="only models of this library (transformers, timm, ...)"
    )
    crawl.add_argument("--limit", type=int, default=None, help="stop after this many listed models")
    crawl.add_argument(
        "--sort", default=None, help="downloads, likes, last_modified, created_at, trending_score"
    )
    crawl.add_argument(
        "--catalog", default=None, help="catalog folder or .sqlite file (default: the user catalog)"
    )
    crawl.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT, else huggingface.co)")
    crawl.add_argument("--token", default=None, help="Hub token (default: huggingface_hub's token chain)")
    crawl.add_argument("--workers", type=int, default=8, help="concurrent per-model fetches (default 8)")
    crawl.add_argument("--from-dir", default=None, help="crawl a folder of Hub-layout model repos instead")
    crawl.add_argument("--timeout", type=float, default=30.0, help="seconds per HTTP request (default 30)")
    crawl.add_argument("--no-progress", action="store_true", help="no progress bar")
    crawl.add_argument(
        "--json", default=None, metavar="PATH", help="write the crawl report as JSON ('-' = stdout)"
    )
    crawl.set_defaults(func=_cmd_crawl)

    catalog = subparsers.add_parser("catalog", help="inspect a catalog of model tokens")
    sub = catalog.add_subparsers(dest="catalog_command", metavar="{show,stats}")
    show = sub.add_parser("show", help="one model's token")
    show.add_argument("model_id")
    stats = sub.add_parser("stats", help="counts by task, library, family")
    for parser in (show, stats):
        parser.add_argument(
            "--catalog",
            default=None,
            help="a catalog folder or file, or a folder of model repos as recommend takes "
            "(default: user catalog, else model_cards/)",
        )
        parser.add_argument("--json", default=None, metavar="PATH", help="write JSON ('-' = stdout)")
    show.set_defaults(func=_cmd_show)
    stats.set_defaults(func=_cmd_stats)
    catalog.set_defaults(func=lambda args: catalog.print_help() or 2)


def _cmd_crawl(args: argparse.Namespace) -> int:
    if args.from_dir and args.endpoint:
        raise UserInputError(
            "--from-dir reads a folder, --endpoint a Hub: pass one of them",
            hint="drop --endpoint to crawl the folder, or --from-dir to crawl the Hub",
        )
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from hf_spider.catalog._crawl import crawl

    console = Console(stderr=True)
    show_progress = not args.no_progress and console.is_terminal
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed} models"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show_progress,
    )
    with progress:
        bar = progress.add_task("crawling", total=args.limit)

        def on_model(event: str, model_id: str, done: int, total: int | None) -> None:
            progress.update(bar, completed=done, description=f"{event}: {model_id}"[:60])

        report = crawl(
            args.catalog,
            tasks=args.task,
            library=args.library,
            limit=args.limit,
            sort=args.sort,
            endpoint=args.endpoint,
            token=args.token,
            workers=args.workers,
            from_dir=args.from_dir,
            progress=on_model,
            timeout=args.timeout,
        )
    if args.json:
        _write_json(args.json, report.to_dict())
    if args.json != "-":
        print(f"catalog {report.catalog}: {report.summary()}")
        for model_id, reason in sorted(report.failed.items()):
            print(f"  failed {model_id}: {reason}")
        if report.listed == 0:  # nothing to read: say where to look, not only "0 listed"
            print(
                f"  no model repo found under {args.from_dir} (expected <org>/<name>/ folders with a "
                "README.md or config.json, or a Hugging Face cache)"
                if args.from_dir
                else "  no model on the Hub matched these filters (--task, --library); check their spelling"
            )
    return 0


def _load(path: str | None):
    """The catalog `path` names, read as `recommend --catalog` reads it: a catalog folder or file,
    or a folder of Hub-layout model repos (crawled into a cached catalog); None: the default."""
    from hf_spider.catalog._candidates import load_catalog
    from hf_spider.catalog._store import Catalog

    return Catalog.load(None) if path is None else load_catalog(path)[0]


def _cmd_show(args: argparse.Namespace) -> int:
    from hf_spider.catalog._aliases import former_id

    catalog = _load(args.catalog)
    token = catalog.get(args.model_id)
    if token is None and former_id(args.model_id):  # held under its id before the Hub moved it
        token = catalog.get(former_id(args.model_id))
        if token is not None:
            print(
                f"{args.model_id} is held as {token.model_id}, its id before the Hub moved it",
                file=sys.stderr,
            )
    if token is None:
        raise CatalogError(
            f"{args.model_id} is not in the catalog {args.catalog or catalog.path}",
            hint="check the id, or crawl it with `hf-spider crawl`",
        )
    if args.json:
        _write_json(args.json, token.to_dict())
        if args.json == "-":
            return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=token.model_id, show_header=False)
    for key, value in token.to_dict().items():
        if key == "model_id" or value in (None, [], {}):
            continue
        table.add_row(key, json.dumps(value, default=str) if isinstance(value, list | dict) else str(value))
    Console().print(table)
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    catalog = _load(args.catalog)
    stats = catalog.stats()
    if args.json:
        _write_json(args.json, stats)
        if args.json == "-":
            return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    # plain text: a line piped into a file or another program is not cut at 80 columns
    print(
        f"catalog {stats['path']} (schema {stats['schema_version']}): {stats['models']} models, "
        f"{stats['with_num_parameters']} with a parameter count, {stats['with_warnings']} with warnings"
        + (" (see `hf-spider catalog show MODEL_ID`)" if stats["with_warnings"] else "")
    )
    for title in ("by_task", "by_library", "by_family"):
        table = Table(title=title.replace("_", " "))
        table.add_column("value")
        table.add_column("models", justify="right")
        for key, count in stats[title].items():
            table.add_row(key, str(count))
        console.print(table)
    return 0


__all__ = ["register"]
