"""`hf-spider recommend` and `hf-spider publish`: the commands users run."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time
from pathlib import Path

from hf_spider._cli_utils import StageBars, check_json_path, check_writable_folder
from hf_spider._cli_utils import write_json as _write_json
from hf_spider.errors import ConstraintError, UserInputError
from hf_spider.hardware.constraints import add_constraint_arguments

STAGES = ("rank", "probe", "bench")
CONSTRAINT_FLAGS = ("max_latency_ms", "max_memory_mb", "max_size_mb", "min_fidelity")


def register(subparsers) -> None:
    from hf_spider.hardware.cli import add_agent_token_argument

    p = subparsers.add_parser(
        "recommend",
        help="rank Hub models for a dataset and a device target (all stages)",
        description=(
            "Recommend pre-trained models for DATASET: stage 1 ranks the catalog from model cards, "
            "stage 2 re-ranks the top-k with forward-pass estimators on a sample, bench exports and "
            "measures their variants on --target, and the constraints pick one (model, variant)."
        ),
    )
    p.add_argument(
        "dataset",
        nargs="?",
        help="Hub dataset id, local dataset folder/file, or a dataset-card repo (omit with --demo)",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="the bundled rotten tomatoes reviews with the embedded catalog and the offline zoo",
    )
    p.add_argument("--catalog", help="catalog folder, or a directory of Hub-layout model repos")
    p.add_argument("--task", help="pipeline tag the candidates must serve (default: from the dataset)")
    p.add_argument("--config", help="dataset config name (a dataset with several)")
    p.add_argument("--split", help="split to sample (default: train, else validation, test, first)")
    p.add_argument("--input-column", help="column holding the images or texts (default: detected)")
    p.add_argument("--label-column", help="column holding the classes (default: detected)")
    p.add_argument("--modality", choices=["image", "text"], help="override the detected modality")
    p.add_argument(
        "--ranker",
        metavar="DIR_OR_REPO",
        help="stage-1 ranker weights: a folder written by `hf-spider train --out` or a Hub repo id "
        "(default: the weights shipped with hf-spider)",
    )
    p.add_argument("--sample", type=int, default=None, help="examples drawn for stage 2 and bench (256)")
    p.add_argument("--top-k", type=int, default=5, help="candidates re-ranked and benchmarked (5)")
    p.add_argument("--stages", default=",".join(STAGES), help="comma list of rank,probe,bench (all)")
    p.add_argument("--target", default="local", help="local, a device profile name, or http://HOST:PORT")
    add_agent_token_argument(p)
    add_constraint_arguments(p)
    p.add_argument(
        "--joint",
        default=None,
        help="how stage 1 is ranked under a latency, memory or size budget, before any "
        "measurement: learned (default: a score learned on stage-1 rank and the predicted cost), "
        "fused (the fixed rule, stage-1 rank and the predicted chance of fitting in one order), "
        "copeland (Copeland merge of the stage-1 and predicted device orders) or off (stage 1 alone); "
        "candidates predicted not to fit are dropped unless off",
    )
    p.add_argument(
        "--output-dir",
        help="where to write parquet, JSON, plot and report (default: hf-spider-results/DATASET)",
    )
    p.add_argument("--json", dest="json_out", metavar="PATH", help="write results as JSON ('-' = stdout)")
    p.add_argument("--push-to-hub", metavar="REPO", help="push the results as a Hub dataset")
    p.add_argument("--space", metavar="REPO", help="publish the Gradio Space showing the results")
    p.add_argument("--private", action="store_true", help="make the pushed repos private")
    p.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")
    p.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT)")
    p.set_defaults(func=_run_recommend)

    q = subparsers.add_parser(
        "publish",
        help="create or update the hf-spider Gradio Space on the Hub",
        description="Upload space_app/ (with the hf_spider package) as a Gradio Space.",
    )
    q.add_argument("--space", metavar="REPO", required=True, help="Space repo id (namespace/name)")
    q.add_argument("--dataset", metavar="REPO", help="a recommendations dataset the Space shows first")
    q.add_argument("--private", action="store_true")
    q.add_argument("--token", help="Hugging Face token (default: HF_TOKEN or the saved login)")
    q.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT)")
    q.add_argument("--json", dest="json_out", metavar="PATH", help="write {'url': ...} as JSON")
    q.set_defaults(func=_run_publish)


def parse_stages(text: str) -> tuple[str, ...]:
    stages = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise UserInputError(
            f"unknown stage(s) {unknown or text!r}", hint="use a comma list of rank,probe,bench"
        )
    if "rank" not in stages:
        raise UserInputError("the rank stage is required", hint="e.g. --stages rank,probe")
    return tuple(s for s in STAGES if s in stages)


def _slug(dataset: str) -> str:
    """A folder name for a dataset: a local folder's name, or a Hub id with '/' as '__'."""
    path = Path(dataset)
    text = path.resolve().name if path.exists() else dataset.strip("/").replace("/", "__")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[-80:] or "dataset"


def render_table(recs, console, max_rows: int = 15) -> None:
    """The ranked table: benchmarked variants first, then the best of the rest, up to `max_rows`."""
    from rich.markup import escape
    from rich.table import Table

    from hf_spider.recommend._results import how_obtained

    def fmt(v, digits=3):
        if v is None:
            return "—"
        if isinstance(v, bool):
            return "✓" if v else "✗"
        if isinstance(v, float):
            return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    target = (recs.meta.get("target") or {}).get("name", "")
    name = (recs.meta.get("task") or {}).get("name") or recs.meta.get("dataset")
    predicted = (recs.meta.get("target") or {}).get("predicted_for")
    where = (
        f"on {target}"
        if target and target != "none"
        else f"(costs predicted for {predicted}; bench stage not run)"
        if predicted
        else "(no device: bench stage not run)"
    )
    table = Table(title=escape(f"hf-spider: {name} {where}"), title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("model", overflow="fold", min_width=24, ratio=3)
    for name in ("variant", "stage", "transfer", "device", "p50 ms", "MiB", "file MiB", "fid.", "fits"):
        table.add_column(
            name, justify="left" if name in ("variant", "stage", "device") else "right", no_wrap=True
        )
    for r in recs.rows[:max_rows]:
        mark = " ★" if r.get("recommended") else (" ◆" if r.get("pareto") else "")
        table.add_row(
            fmt(r["rank"]),
            escape(r["model_id"]) + mark,
            fmt(r["variant"]),
            r["stage"],
            fmt(r["transfer_score"], 4),
            r["device_status"],
            fmt(r["latency_p50_ms"]),
            fmt(r["peak_memory_mb"]),
            fmt(r["file_size_mb"]),
            fmt(r["fidelity"]),
            fmt(r["meets_constraints"]),
            style="bold green" if r.get("recommended") else None,
        )
    console.print(table)
    more = len(recs.rows) - max_rows
    console.print(
        "★ recommended  ◆ on the Pareto front  transfer: percentile of the final order (1 = first, 0 = last)"
        + (f"  — {more} more rows in the output files" if more > 0 else "")
    )
    if any(r["stage"] == "rank" for r in recs.rows) and any(r["stage"] != "rank" for r in recs.rows):
        console.print(
            "Rows of stage 'rank' were scored by the ranker from their fine-tuning records and cards "
            "(their weights were not run on the data); they rank below the models checked on the data. "
            "See the report's notes."
        )
    for note in recs.meta.get("notes_shown") or []:  # shown, not only in the report
        console.print(f"[yellow]{escape(note)}[/yellow]")
    joint = recs.meta.get("joint") or {}
    if joint.get("method", "off") != "off":
        dropped = joint.get("dropped") or []
        console.print(
            f"joint ranking: {joint['method']}; {joint['kept']} candidates kept, {len(dropped)} dropped for "
            "predicted cost" + (":" if dropped else "")
        )
        if joint.get("none_predicted_to_fit"):
            console.print(
                "[yellow]no candidate is predicted to fit the budgets: none was dropped; models without "
                "a cost prediction come first (they may fit), then those predicted nearest to the budgets[/yellow]"
            )
        for d in dropped[:5]:
            console.print(f"  {escape(d['model_id'])}: {escape(d['reason'].split('): ', 1)[-1])}")
        if len(dropped) > 5:
            console.print(f"  and {len(dropped) - 5} more (report.md, --json)")
        for r in recs.rows:
            if r.get("latency_prediction_error_pct") is not None:
                console.print(
                    f"  {escape(r['model_id'] + ' [' + r['variant'] + ']')}: p50 predicted {r['predicted_latency_ms']:.3g} ms, "
                    f"{how_obtained(r)} {r['latency_p50_ms']:.3g} ms ({r['latency_prediction_error_pct']:+.0f}%)"
                )
    pick = recs.meta.get("pick") or {}
    if pick.get("reason"):
        console.print(f"[bold]Recommended:[/bold] {escape(pick['reason'])}")
    timings = recs.meta.get("timings") or {}
    if timings:
        console.print("time: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))


def _run_recommend(args: argparse.Namespace) -> int:
    from rich.console import Console

    from hf_spider.hardware import Constraints
    from hf_spider.hardware.joint import check_joint
    from hf_spider.recommend import _demo
    from hf_spider.recommend._hub import check_push_target, check_write_access, publish_space
    from hf_spider.recommend._pipeline import recommend

    stages = parse_stages(args.stages)
    constraints = {k: getattr(args, k) for k in CONSTRAINT_FLAGS if getattr(args, k) is not None}
    Constraints.parse(constraints)  # a bad limit fails here, before any work
    joint = check_joint(args.joint)
    if args.top_k < 1:
        raise UserInputError("--top-k must be at least 1")
    if args.sample is not None and args.sample < 0:
        raise UserInputError(f"--sample must be 0 or more, got {args.sample}", hint="e.g. --sample 256")
    dataset, catalog, sample = args.dataset, args.catalog, args.sample
    if args.demo:
        if dataset:
            raise UserInputError("give either DATASET or --demo, not both")
        dataset, demo_catalog = _demo.demo_inputs()
        catalog = catalog or demo_catalog
        sample = _demo.DEMO_SAMPLE if sample is None else sample
    if not dataset:
        raise UserInputError("no dataset given", hint="pass a dataset id or path, or --demo")

    # Everything that can be refused is refused before computing anything: nothing is written.
    out_dir = Path(args.output_dir) if args.output_dir else Path("hf-spider-results") / _slug(dataset)
    check_writable_folder(out_dir, "--output-dir")
    check_json_path(args.json_out)
    for repo in filter(None, (args.push_to_hub, args.space)):
        check_write_access(repo, token=args.token, endpoint=args.endpoint)
    if args.push_to_hub:
        check_push_target(args.push_to_hub, token=args.token, endpoint=args.endpoint)

    target = args.target
    if "bench" in stages:  # an agent is contacted now, with its token: a wrong one fails before any work
        from hf_spider.hardware import DeviceTarget
        from hf_spider.hardware.cli import agent_token

        target = DeviceTarget.resolve(args.target, token=agent_token(args))

    json_stdout = args.json_out == "-"
    # Wide enough for the table when the output is a file or a pipe (rich would use 80 columns).
    console = Console(stderr=json_stdout, width=None if sys.stdout.isatty() else 160)
    # With `--json -`, stdout carries the JSON only: whatever a library prints goes to stderr.
    quiet_stdout = contextlib.redirect_stdout(sys.stderr) if json_stdout else contextlib.nullcontext()
    nothing_fits = None
    with quiet_stdout, StageBars(console) as bars:
        try:
            recs = recommend(
                dataset,
                catalog=catalog,
                task=args.task,
                ranker=args.ranker,
                dataset_options={
                    "config": args.config,
                    "split": args.split,
                    "input_column": args.input_column,
                    "label_column": args.label_column,
                    "modality": args.modality,
                },
                target=target,
                constraints=constraints or None,
                top_k=args.top_k,
                stages=stages,
                sample=sample,
                joint=joint,
                token=args.token,
                endpoint=args.endpoint,
                progress=bars,
            )
        except ConstraintError as exc:
            recs = getattr(exc, "recommendations", None)
            if recs is None:
                raise
            nothing_fits = exc
    render_table(recs, console)
    kept = ""
    if nothing_fits is not None and (out_dir / "recommendations.json").exists():
        # a failed run does not write over an earlier answer: its rows go beside it
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        kept = f" (the earlier results in {out_dir} are kept)"
        out_dir = out_dir / f"unmet-{stamp}"
    paths = recs.save(out_dir)
    console.print(f"results: {paths['parquet']}, {paths['json']}, {paths['plot']}, {paths['report']}")
    if nothing_fits is not None:
        # The measurements are kept (rows marked as not meeting the constraints); nothing is pushed.
        _write_json(args.json_out, recs.to_json())
        raise ConstraintError(
            f"{_first_clause(str(nothing_fits))}; every row is in {out_dir} marked as not meeting them{kept}",
            hint=nothing_fits.hint,
        )
    payload = recs.to_json()
    with quiet_stdout:
        if args.push_to_hub:
            url = recs.push_to_hub(
                args.push_to_hub, private=args.private, token=args.token, endpoint=args.endpoint
            )
            payload["hub_url"] = url
            console.print(f"pushed: {url}")
        if args.space:
            url = publish_space(
                args.space,
                private=args.private,
                token=args.token,
                endpoint=args.endpoint,
                dataset_repo=args.push_to_hub,
                datasets=[d for d in (args.push_to_hub,) if d],
            )
            payload["space_url"] = url
            console.print(f"space: {url}")
    if args.json_out:
        _write_json(args.json_out, payload)
    return 0


def _first_clause(text: str) -> str:
    """The head of a long constraint message: 'no candidate meets X (Y excludes n of m)'."""
    return text.split("; nearest:", 1)[0]


def _run_publish(args: argparse.Namespace) -> int:
    from hf_spider.recommend._hub import publish_space

    url = publish_space(
        args.space, private=args.private, token=args.token, endpoint=args.endpoint, dataset_repo=args.dataset
    )
    print(f"space: {url}", file=sys.stderr if args.json_out == "-" else sys.stdout)
    if args.json_out:
        _write_json(args.json_out, {"url": url})
    return 0
