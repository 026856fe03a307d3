"""`bench --from-config` and `hf-spider cost`: device cost before any weight is downloaded."""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("hf_spider.hardware")


def bench_from_config(args, target, config) -> dict[str, Any]:
    """The `bench` report of a config-only measurement (same shape, so the same table prints)."""
    from hf_spider.errors import UserInputError
    from hf_spider.hardware._configonly import CONFIG_NOTE, ConfigMeasureConfig, measure_from_config
    from hf_spider.hardware._measure import flat_row
    from hf_spider.hardware.constraints import pareto_front

    if args.calibrate or args.dataset:
        raise UserInputError(
            "--from-config measures random weights: --calibrate and --dataset do not apply",
            hint="drop --from-config to measure the real weights",
        )
    if args.seq_len < 1 or args.seq_len > 8192:
        raise UserInputError(f"--seq-len must be in [1, 8192], got {args.seq_len}", hint="e.g. --seq-len 64")
    mc = ConfigMeasureConfig(measure=config, seq_len=args.seq_len)
    results = measure_from_config(
        args.model,
        args.variants,
        target,
        task_kind=args.task_kind,
        measure_config=mc,
        token=args.token,
        endpoint=args.endpoint,
    )
    rows = [flat_row(r, args.score) for r in results if "figures" in r]
    measured = [r for r in results if "figures" in r]
    return {
        "model_id": args.model,
        "export": {"method": (measured[0].get("export_method") if measured else None) or CONFIG_NOTE},
        "target": target.to_dict(),
        "sample": {"rows": mc.rows, "source": f"random inputs ({CONFIG_NOTE})"},
        "config_only": CONFIG_NOTE,
        "results": results,
        "rows": rows,
        "pareto": pareto_front(rows),
    }


def register_cost(subparsers) -> None:
    c = subparsers.add_parser(
        "cost",
        help="predict latency, memory and size of catalog models on a target from their card facts",
        description="Predict latency (batch 1), peak memory and file size of each catalog model's variants "
        "on TARGET with the cost model fitted on this machine's measurements (bench, recommend, "
        "`python -m benchmarks.device_cost`). Nothing is downloaded or exported. Fitted at 1 thread, "
        "latency is the CPU time per run: the latency on an idle core (docs/hardware.md).",
    )
    c.add_argument("--target", default="local", help="local or a profile name (default local)")
    c.add_argument("--variants", default="fp32,int8-dynamic", help="comma list (default fp32,int8-dynamic)")
    c.add_argument("--catalog", help="a catalog folder (default: the user's, else the embedded one)")
    c.add_argument("--seq-len", type=int, default=64, help="tokens of a text input (default 64)")
    c.add_argument("--threads", type=int, help="predict for this many threads (default: as measured most)")
    c.add_argument("--max-latency-ms", type=float, help="keep only rows predicted at or under this latency")
    c.add_argument("--top", type=int, default=20, help="rows to print, fastest first (default 20)")
    c.add_argument("--json", metavar="PATH", help="write every row as JSON ('-' for stdout)")
    c.set_defaults(func=_cost)


def _cost(args) -> int:
    from hf_spider._cli_utils import write_json
    from hf_spider.catalog import Catalog
    from hf_spider.errors import UserInputError
    from hf_spider.hardware.cost import predict_catalog
    from hf_spider.hardware.variants import parse_variants

    variants = tuple(parse_variants(args.variants))
    if args.seq_len < 1 or args.seq_len > 8192:
        raise UserInputError(f"--seq-len must be in [1, 8192], got {args.seq_len}", hint="e.g. --seq-len 64")
    if args.top < 1:
        raise UserInputError(f"--top must be at least 1, got {args.top}", hint="e.g. --top 20")
    if args.threads is not None and args.threads < 1:
        raise UserInputError(f"--threads must be at least 1, got {args.threads}", hint="e.g. --threads 4")
    if args.max_latency_ms is not None and not args.max_latency_ms > 0:  # NaN too
        raise UserInputError(
            f"--max-latency-ms must be above 0, got {args.max_latency_ms:g}", hint="e.g. --max-latency-ms 20"
        )
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    cards = [token.to_dict() for token in Catalog.load(args.catalog)]
    # a first run counts the FLOPs of every config (a minute for the embedded catalog), and a new
    # machine first calibrates: show both on stderr
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bars:
        task = bars.add_task("cost", total=len(cards))

        def advance(done: int, total: int, note: str) -> None:
            bars.update(task, completed=done, total=max(total, 1), description=note)

        rows = predict_catalog(
            cards, args.target, variants, seq_len=args.seq_len, threads=args.threads, progress=advance
        )
    predicted = [r for r in rows if "latency_ms" in r]
    over = 0
    if args.max_latency_ms is not None:
        within = [r for r in predicted if r["latency_ms"] <= args.max_latency_ms]
        over = len({r["model"] for r in predicted}) - len({r["model"] for r in within})
        predicted = within
    predicted.sort(key=lambda r: r["latency_ms"])
    skipped = [r for r in rows if "skipped" in r]
    write_json(args.json, {"target": args.target, "rows": predicted, "skipped": skipped})
    if args.json == "-":
        return 0
    from rich.table import Table

    console = Console(width=max(Console().width, 110))
    idle = bool(predicted) and predicted[0]["latency_figure"] == "cpu_ms"
    what = "idle-core latency (CPU time per run, 1 thread)" if idle else "wall-clock p50"
    table = Table(title=f"predicted on {args.target}: {what}; 90% interval from held-out shapes")
    for col in ("model", "variant", "latency ms", "interval", "peak MiB", "file MiB"):
        table.add_column(col, justify="left" if col in ("model", "variant") else "right", no_wrap=True)
    for r in predicted[: args.top]:
        interval = r.get("latency_interval")
        table.add_row(
            r["model"],
            r["variant"],
            f"{r['latency_ms']:.3g}",
            f"{interval['low']:.3g}-{interval['high']:.3g}" if interval else "-",
            f"{r['memory_mb']:.0f}" if r.get("memory_mb") else "-",
            f"{r['size_mb']:.3g}" if r.get("size_mb") else "-",
        )
    console.print(table)
    if predicted:
        console.print(f"method: {predicted[0]['method']}")
    console.print(
        f"{len({r['model'] for r in predicted})} models predicted"
        + (
            f" within --max-latency-ms {args.max_latency_ms:g} ({over} more predicted over it)"
            if over
            else ""
        )
        + f"; {len(skipped)} without a recoverable config"
    )
    return 0
