"""Ranking benchmark: LODO, cold start and TransferGraph's protocol on the shared records (and the zoo's).

    python -m benchmarks.ranking [--source transfergraph zoo] [--modality image text]
        [--protocol lodo cold family transfergraph transfergraph_cold transfergraph_family]
        [--seed 0] [--workers 2]
    python -m benchmarks.ranking --markdown      # the tables of the saved results
    python -m benchmarks.ranking --summary       # the headline table (README, benchmarks/ranking.md)
    python -m benchmarks.ranking --differences   # spider minus each baseline, dataset by dataset
    python -m benchmarks.ranking --plot          # both as a figure: benchmarks/ranking.png

For each (source, modality, protocol) every usable fine-tuning dataset is held out in turn
(`transfergraph*`: those with TransferGraph predictions; datasets whose runs failed as a whole,
e.g. food101, are listed and left out); the ranker is built from the other datasets only, its
parts chosen by cross-validation over those alone; every baseline is scored in the same run.
Prints a table per run and writes `benchmarks/results/ranking_<source>_<modality>_<protocol>.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hf_spider.errors import HfSpiderError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "transfergraph"
ZOO_RECORDS = REPO / "benchmarks" / "zoo_records"
RESULTS = REPO / "benchmarks" / "results"
PROTOCOLS = {  # name -> (evaluation protocol, cold start: hidden models or whole families)
    "lodo": ("lodo", False),
    "cold": ("lodo", "models"),
    "family": ("lodo", "families"),
    "transfergraph": ("transfergraph", False),
    "transfergraph_cold": ("transfergraph", "models"),
    "transfergraph_family": ("transfergraph", "families"),
}
ANCHORS = {
    "image": {
        "TransferGraph (paper, 8 targets)": 0.663,
        "Reg-H-Score (paper)": 0.369,
        "LogME (paper)": 0.310,
    },
    "text": {"TransferGraph (paper, 8 targets)": 0.583, "LogME (paper)": 0.554, "Reg-H-Score (paper)": 0.548},
}
SUMMARY_METHODS = (
    "spider",
    "spider_fused",
    "spider_rerank",
    "transfergraph",
    "static",
    "collaborative",
    "params",
    "upstream",
    "logme",
    "reg_h_score",
)


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run(source: str, folder: Path, modality: str, protocol: str, seed: int, workers: int) -> dict:
    import torch

    from hf_spider.errors import UserInputError
    from hf_spider.ranker.evaluation import evaluate_ranking
    from hf_spider.ranker.records import load_records

    torch.set_num_threads(1)
    name, cold = PROTOCOLS[protocol]
    records = load_records([folder])
    datasets = records.datasets[records.datasets["modality"] == modality]
    left_out = sorted(datasets[datasets["failed"]]["dataset"])
    test = None
    if name == "transfergraph":
        if records.predictions.empty:
            raise UserInputError(f"no TransferGraph predictions in {folder}", hint="the protocol needs them")
    else:
        test = sorted(datasets[~datasets["failed"]]["dataset"])
        if len(test) < 3:
            raise UserInputError(f"{len(test)} usable {modality} dataset(s) in {folder}", hint="LODO needs 3")
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = evaluate_ranking(records, test, protocol=name, cold_start=cold, seed=seed, workers=workers)
    result.pop("predictions", None)
    result["benchmark"] = {
        "source": source,
        "data": str(folder.relative_to(REPO.parent)) if folder.is_relative_to(REPO.parent) else str(folder),
        "modality": modality,
        "protocol": protocol,
        "datasets_left_out": left_out,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(_cpu_seconds() - cpu, 1),
        "workers": workers,
        "machine": f"{platform.machine()} {platform.processor() or ''}, {os.cpu_count()} CPUs".strip(),
        "load_average_1min": round(os.getloadavg()[0], 1),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "anchors_rank_true": ANCHORS.get(modality, {}) if source == "transfergraph" else {},
    }
    return result


def _label(b: dict) -> str:
    return {
        "lodo": "LODO",
        "cold": "cold start",
        "family": "cold start by families",
        "transfergraph": "TransferGraph protocol",
        "transfergraph_cold": "TransferGraph protocol, cold start",
        "transfergraph_family": "TransferGraph protocol, cold start by families",
    }[b["protocol"]]


def print_table(result: dict) -> None:
    b = result["benchmark"]
    print(
        f"\n{b['source']} {b['modality']} {_label(b)} ({len(result['datasets'])} datasets, {b['wall_s']} s)"
    )
    methods = list(result["mean"])
    print(f"{'dataset':32s} " + " ".join(f"{m[:13]:>13s}" for m in methods))
    for dataset, row in [*result["datasets"].items(), ("MEAN rank=True", result["mean"])]:
        print(
            f"{dataset[:32]:32s} "
            + " ".join(f"{row[m]['tau_w_rank_true']:13.3f}" if m in row else " " * 13 for m in methods)
        )
    for source, key, label in (
        ("mean_weighted", "tau_w_rank_true", "MEAN gap-weighted"),
        ("mean", "tau_w_rank_none", "MEAN rank=None"),
        ("mean", "top1_regret", "MEAN regret"),
        ("mean", "max_top1_regret", "MAX regret"),
        ("mean", "hit_at_3", "MEAN hit@3"),
    ):
        row = result[source]
        print(f"{label:32s} " + " ".join(f"{row[m][key]:13.3f}" if m in row else " " * 13 for m in methods))
    parts = result["parts"]
    print(
        f"spider parts over {parts['folds']} folds: prior {parts['prior']}; learned residual used in "
        f"{parts['learned_residual_used']}; stage-2 weights {parts['stage2_weights']}"
    )


def markdown(result: dict) -> str:
    """Markdown tables (tau_w rank=True per dataset, then the means of every metric) of one run."""
    from hf_spider.ranker.evaluation import placement_note

    b = result["benchmark"]
    methods = list(result["mean"])
    lines = [
        f"#### {b['source']} {b['modality']}, {_label(b)} ({len(result['datasets'])} datasets; "
        f"{b['wall_s']} s wall, {b['cpu_s']} s CPU, {b.get('workers', 1)} worker(s), load {b.get('load_average_1min', '?')}; {b['date']})",
        "",
        "| dataset | " + " | ".join(methods) + " |",
        "| --- | " + " | ".join("---:" for _ in methods) + " |",
    ]
    for dataset, row in result["datasets"].items():
        cells = [f"{row[m]['tau_w_rank_true']:.3f}" if m in row else "" for m in methods]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    for source, key, label in (
        ("mean", "tau_w_rank_true", "**mean tau_w rank=True**"),
        ("mean_weighted", "tau_w_rank_true", "gap-weighted mean tau_w rank=True"),
        ("mean", "tau_w_rank_none", "mean tau_w rank=None"),
        ("mean", "top1_regret", "mean top-1 regret (points)"),
        ("mean", "max_top1_regret", "max top-1 regret (points)"),
        ("mean", "hit_at_3", "mean hit@3"),
        ("mean", "n_datasets", "datasets with this method"),
    ):
        row = result[source]
        fmt = "{:.0f}" if key == "n_datasets" else "{:.2f}" if "regret" in key else "{:.3f}"
        lines.append(
            f"| {label} | " + " | ".join(fmt.format(row[m][key]) if m in row else "" for m in methods) + " |"
        )
    common = result.get("mean_common", {})
    if common.get("datasets") and len(common["datasets"]) < len(result["datasets"]):
        lines.append(
            f"| mean tau_w rank=True on the {len(common['datasets'])} datasets with every method | "
            + " | ".join(
                f"{common['mean'][m]['tau_w_rank_true']:.3f}" if m in common["mean"] else "" for m in methods
            )
            + " |"
        )
    parts = result["parts"]
    lines += [
        "",
        f"Spider's parts, chosen in each of the {parts['folds']} outer folds by cross-validation over its "
        f"training datasets: prior {_fmt_counts(parts['prior'])}; learned residual kept in "
        f"{parts['learned_residual_used']} (else the prior alone); stage-2 weights {parts['stage2_weights']}."
        + (f" {note}" if (note := placement_note(parts)) else ""),
    ]
    if b["datasets_left_out"]:
        lines.append(f"Left out (runs failed as a whole): {', '.join(b['datasets_left_out'])}.")
    return "\n".join(lines) + "\n"


def _fmt_counts(counts: dict) -> str:
    return ", ".join(f"`{k}` x{v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))


def summary(results: list[dict]) -> str:
    """The headline table: plain mean tau_w (rank=True) of every method, spider's regret; a method
    with figures on fewer datasets than the run has shows their count in brackets."""
    lines = [
        "| data | protocol | datasets | " + " | ".join(SUMMARY_METHODS) + " | spider regret mean / max |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in SUMMARY_METHODS) + " | ---: |",
    ]
    for r in results:
        b, mean = r["benchmark"], r["mean"]
        n = len(r["datasets"])
        # the best stage-1 figure among the methods that have one on every dataset (bold)
        best = max(
            (
                m
                for m in SUMMARY_METHODS
                if m in mean and m not in ("spider_fused", "spider_rerank") and mean[m]["n_datasets"] == n
            ),
            key=lambda m: mean[m]["tau_w_rank_true"],
        )
        cells = []
        for m in SUMMARY_METHODS:
            if m not in mean:
                cells.append("")
                continue
            v = f"{mean[m]['tau_w_rank_true']:.3f}"
            if mean[m]["n_datasets"] < n:  # a mean over fewer datasets: not comparable, say so
                v += f" ({mean[m]['n_datasets']})"
            cells.append(f"**{v}**" if m == best else v)
        s = mean.get("spider", {})
        regret = f"{s.get('top1_regret', float('nan')):.2f} / {s.get('max_top1_regret', float('nan')):.2f}"
        lines.append(
            f"| {b['source']} {b['modality']} | {_label(b)} | {len(r['datasets'])} | "
            + " | ".join(cells)
            + f" | {regret} |"
        )
    return "\n".join(lines) + "\n"


DIFFERENCE_BASELINES = ("static", "collaborative", "transfergraph", "params", "logme")
BOOTSTRAP_DRAWS = 10_000


def paired_differences(result: dict, baseline: str, *, method: str = "spider", seed: int = 0) -> dict | None:
    """`method` minus `baseline` in tau_w (rank=True) on the datasets where both have a figure:
    the mean difference, the wins / ties / losses (ties: within 0.005) and a 90% interval of the
    mean from resampling those datasets with replacement (percentile bootstrap, `seed`). With 5-9
    datasets the interval is wide: it says how much of a gap the datasets at hand can carry, not
    what another set of datasets would show. None where fewer than 2 datasets have both."""
    diffs = np.array(
        [
            row[method]["tau_w_rank_true"] - row[baseline]["tau_w_rank_true"]
            for row in result["datasets"].values()
            if method in row and baseline in row
        ]
    )
    if len(diffs) < 2:
        return None
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(BOOTSTRAP_DRAWS, len(diffs)))].mean(axis=1)
    low, high = np.quantile(means, [0.05, 0.95])
    return {
        "n": len(diffs),
        "mean": float(diffs.mean()),
        "low": float(low),
        "high": float(high),
        "wins": int((diffs > 0.005).sum()),
        "ties": int((np.abs(diffs) <= 0.005).sum()),
        "losses": int((diffs < -0.005).sum()),
    }


def differences(results: list[dict]) -> str:
    """Spider minus each baseline of `DIFFERENCE_BASELINES`, per run: mean difference [90% bootstrap
    interval over datasets], wins-ties-losses."""
    lines = [
        "| data | protocol | " + " | ".join(f"spider - {b}" for b in DIFFERENCE_BASELINES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in DIFFERENCE_BASELINES) + " |",
    ]
    for r in results:
        b = r["benchmark"]
        cells = []
        for base in DIFFERENCE_BASELINES:
            d = paired_differences(r, base)
            cells.append(
                ""
                if d is None
                else f"{d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] {d['wins']}-{d['ties']}-{d['losses']}"
            )
        lines.append(f"| {b['source']} {b['modality']} | {_label(b)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


PLOT_METHODS = {  # method -> (colour, marker); spider drawn last, on top
    "static": ("tab:orange", "s"),
    "collaborative": ("tab:green", "^"),
    "params": ("tab:purple", "v"),
    "transfergraph": ("tab:red", "D"),
    "logme": ("tab:gray", "x"),
    "spider": ("black", "o"),
}
PLOT_PATH = REPO / "benchmarks" / "ranking.png"


def plot(results: list[dict], path: str | Path = PLOT_PATH) -> Path:
    """The summary and the margins as one figure: left, each run's mean tau_w (rank=True) of
    spider and the baselines (a hollow marker: a mean over only some of the run's datasets);
    right, spider minus `static` with its 90% bootstrap interval over datasets, beside the
    "never below static by more than 0.01" line."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not results:
        raise ValueError("no saved results to plot: run python -m benchmarks.ranking first")
    labels = [
        f"{r['benchmark']['source']} {r['benchmark']['modality']}, {_label(r['benchmark'])}" for r in results
    ]
    fig = Figure(figsize=(13, 0.42 * len(results) + 1.8), dpi=110)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    ys = np.arange(len(results))[::-1]
    for method, (colour, marker) in PLOT_METHODS.items():
        for y, r in zip(ys, results, strict=True):
            m = r["mean"].get(method)
            if m is None:
                continue
            partial = m["n_datasets"] < len(r["datasets"])
            left.scatter(
                m["tau_w_rank_true"],
                y,
                marker=marker,
                s=70 if method == "spider" else 40,
                color=colour,
                facecolors="none" if partial and marker != "x" else colour,
                zorder=3 if method == "spider" else 2,
            )
    from matplotlib.lines import Line2D

    proxies = [
        Line2D([], [], ls="", marker=marker, color=colour, markersize=8 if m == "spider" else 6, label=m)
        for m, (colour, marker) in PLOT_METHODS.items()
    ]
    left.legend(
        handles=proxies, loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=3, frameon=False
    )
    left.set_yticks(ys, labels, fontsize=8)
    left.set_xlabel("mean weighted Kendall tau (rank=True); hollow: fewer datasets")
    left.grid(axis="x", alpha=0.3)
    for y, r in zip(ys, results, strict=True):
        d = paired_differences(r, "static")
        if d is None:
            continue
        below = d["mean"] < -0.01
        right.errorbar(
            d["mean"],
            y,
            xerr=[[d["mean"] - d["low"]], [d["high"] - d["mean"]]],
            fmt="o",
            color="tab:red" if below else "black",
            capsize=3,
        )
    right.axvline(0.0, color="gray", lw=1)
    right.axvline(-0.01, color="tab:red", lw=1, ls="--", label="goal: never below static by > 0.01")
    right.set_xlabel("spider - static: mean, 90% bootstrap interval")
    right.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    right.grid(axis="x", alpha=0.3)
    fig.suptitle(
        "Stage-1 ranking: spider against its floors (python -m benchmarks.ranking --plot)", fontsize=10
    )
    fig.tight_layout()
    path = Path(path)
    if path.is_dir():  # a folder: the default file name inside it
        path = path / PLOT_PATH.name
    elif not path.suffix:  # matplotlib would add .png itself; say the file it writes
        path = path.with_suffix(".png")
    fig.savefig(path)
    return path


def _saved() -> list[dict]:
    order = {p: i for i, p in enumerate(PROTOCOLS)}
    found = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("ranking_*.json"))]
    found = [r for r in found if "benchmark" in r and "datasets" in r]
    return sorted(
        found,
        key=lambda r: (
            r["benchmark"]["source"] != "transfergraph",
            r["benchmark"]["modality"],
            order.get(r["benchmark"]["protocol"], 9),
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", nargs="+", default=["image", "text"])
    parser.add_argument("--protocol", nargs="+", default=list(PROTOCOLS), choices=list(PROTOCOLS))
    parser.add_argument(
        "--source", nargs="+", default=["transfergraph", "zoo"], choices=["transfergraph", "zoo"]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    parser.add_argument("--markdown", action="store_true", help="print the markdown of the saved results")
    parser.add_argument(
        "--summary", action="store_true", help="print the headline table of the saved results"
    )
    parser.add_argument(
        "--differences",
        action="store_true",
        help="print spider minus each baseline of the saved results, with 90%% bootstrap intervals over datasets",
    )
    parser.add_argument(
        "--plot",
        nargs="?",
        const=str(PLOT_PATH),
        default=None,
        metavar="PATH",
        help="draw the saved results (means and spider - static) to PATH (default benchmarks/ranking.png)",
    )
    args = parser.parse_args(argv)
    if args.markdown or args.summary or args.differences or args.plot:
        saved = _saved()
        if args.plot:
            try:
                print(f"wrote {plot(saved, args.plot)}")
            except (OSError, ValueError) as exc:
                print(f"error: --plot {args.plot}: {exc}", file=sys.stderr)
                return 2
        if args.summary:
            print(summary(saved))
        if args.differences:
            print(differences(saved))
        if args.markdown:
            for r in saved:
                print(markdown(r))
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    sources = [("transfergraph", SHARED)]
    if ZOO_RECORDS.is_dir():
        sources.append(("zoo", ZOO_RECORDS))
    sources = [(name, root) for name, root in sources if name in args.source]
    for source, root in sources:
        for modality in args.modality:
            folder = root / modality
            if not (folder / "records.csv").is_file():
                print(f"skip {source} {modality}: no records at {folder}")
                continue
            for protocol in args.protocol:
                try:
                    result = run(source, folder, modality, protocol, args.seed, args.workers)
                except HfSpiderError as exc:  # e.g. no predictions for the zoo, too few datasets
                    print(f"skip {source} {modality} {protocol}: {exc.one_line()}")
                    continue
                print_table(result)
                out = RESULTS / f"ranking_{source}_{modality}_{protocol}.json"
                out.write_text(json.dumps(result, indent=1, default=float))
                print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
