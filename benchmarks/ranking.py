"""Ranking benchmark: LODO and cold start on the shared image and text records (and the zoo's).

    python -m benchmarks.ranking [--modality image text] [--protocol lodo cold] [--seed 0]

For each (modality, protocol) every usable target is a test target in turn (targets whose runs
failed as a whole, e.g. food101, are listed and left out); the ranker is trained on the other
targets only; all baselines are scored in the same run. Prints a table per run and writes
`benchmarks/results/ranking_<source>_<modality>_<protocol>.json`.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from hf_spider.errors import HfSpiderError

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "transfergraph"
ZOO_RECORDS = REPO / "benchmarks" / "zoo_records"
RESULTS = REPO / "benchmarks" / "results"
ANCHORS = {
    "image": {
        "TransferGraph (paper, 8 targets)": 0.663,
        "Reg-H-Score (paper)": 0.369,
        "LogME (paper)": 0.310,
    },
    "text": {"TransferGraph (paper, 8 targets)": 0.583, "LogME (paper)": 0.554, "Reg-H-Score (paper)": 0.548},
}


def run(source: str, folder: Path, modality: str, protocol: str, seed: int, ensemble: int | None) -> dict:
    import torch

    from hf_spider.errors import UserInputError
    from hf_spider.ranker.evaluation import evaluate_ranking
    from hf_spider.ranker.model import RankerConfig
    from hf_spider.ranker.records import load_records

    torch.set_num_threads(1)
    records = load_records([folder])
    targets = records.targets[(records.targets["modality"] == modality)]
    usable = sorted(targets[~targets["failed"]]["target"])
    left_out = sorted(targets[targets["failed"]]["target"])
    if len(usable) < 3:
        raise UserInputError(
            f"{len(usable)} usable {modality} target(s) in {folder}", hint="LODO needs at least 3"
        )
    config = RankerConfig() if ensemble is None else RankerConfig(ensemble=ensemble)
    started = time.perf_counter()
    cpu = time.process_time()
    result = evaluate_ranking(records, usable, cold_start=protocol == "cold", seed=seed, config=config)
    result["benchmark"] = {
        "source": source,
        "data": str(folder),
        "modality": modality,
        "protocol": protocol,
        "targets_left_out": left_out,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu, 1),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} torch thread(s), shared 2-core VM".strip(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "anchors_rank_true": ANCHORS.get(modality, {}),
    }
    return result


def print_table(result: dict) -> None:
    b = result["benchmark"]
    print(
        f"\n{b['source']} {b['modality']} {b['protocol']} ({len(result['targets'])} targets, {b['wall_s']} s)"
    )
    methods = list(result["mean"])
    print(f"{'target':32s} " + " ".join(f"{m:>13s}" for m in methods))
    for target, row in [*result["targets"].items(), ("MEAN rank=True", result["mean"])]:
        print(
            f"{target[:32]:32s} "
            + " ".join(f"{row[m]['tau_w_rank_true']:13.3f}" if m in row else " " * 13 for m in methods)
        )
    for key, label in (
        ("tau_w_rank_none", "MEAN rank=None"),
        ("top1_regret", "MEAN regret"),
        ("hit_at_3", "MEAN hit@3"),
    ):
        print(f"{label:32s} " + " ".join(f"{result['mean'][m][key]:13.3f}" for m in methods))
    common = result.get("mean_common", {})
    if common.get("targets"):
        label = f"MEAN on {len(common['targets'])} common"
        print(
            f"{label:32s} "
            + " ".join(
                f"{common['mean'][m]['tau_w_rank_true']:13.3f}" if m in common["mean"] else " " * 13
                for m in methods
            )
        )


def markdown(result: dict) -> str:
    """Markdown tables (tau_w rank=True per target, then the means of every metric) of one run."""
    b = result["benchmark"]
    methods = list(result["mean"])
    lines = [
        f"#### {b['source']} {b['modality']}, {'cold start' if b['protocol'] == 'cold' else 'LODO'}"
        f" ({len(result['targets'])} targets; {b['wall_s']} s wall, {b['cpu_s']} s CPU; {b['date']})",
        "",
        "| target | " + " | ".join(methods) + " |",
        "| --- | " + " | ".join("---:" for _ in methods) + " |",
    ]
    for target, row in result["targets"].items():
        cells = [f"{row[m]['tau_w_rank_true']:.3f}" if m in row else "" for m in methods]
        lines.append(f"| {target} | " + " | ".join(cells) + " |")
    for key, label in (
        ("tau_w_rank_true", "**mean tau_w rank=True**"),
        ("tau_w_rank_none", "mean tau_w rank=None"),
        ("top1_regret", "mean top-1 regret (points)"),
        ("hit_at_3", "mean hit@3"),
        ("n_targets", "targets with this method"),
    ):
        fmt = "{:.0f}" if key == "n_targets" else "{:.3f}" if key != "top1_regret" else "{:.2f}"
        lines.append(f"| {label} | " + " | ".join(fmt.format(result["mean"][m][key]) for m in methods) + " |")
    common = result.get("mean_common", {})
    if common.get("targets") and len(common["targets"]) < len(result["targets"]):
        lines.append(
            f"| mean tau_w rank=True on the {len(common['targets'])} targets with every method | "
            + " | ".join(
                f"{common['mean'][m]['tau_w_rank_true']:.3f}" if m in common["mean"] else "" for m in methods
            )
            + " |"
        )
    if b["targets_left_out"]:
        lines += ["", f"Left out (runs failed as a whole): {', '.join(b['targets_left_out'])}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", nargs="+", default=["image", "text"])
    parser.add_argument("--protocol", nargs="+", default=["lodo", "cold"], choices=["lodo", "cold"])
    parser.add_argument(
        "--source", nargs="+", default=["transfergraph", "zoo"], choices=["transfergraph", "zoo"]
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ensemble", type=int, default=None, help="ensemble members (default: the config's)")
    parser.add_argument(
        "--markdown", action="store_true", help="print the markdown of the saved results and exit"
    )
    args = parser.parse_args(argv)
    if args.markdown:
        for path in sorted(RESULTS.glob("ranking_*.json")):
            print(markdown(json.loads(path.read_text())))
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
                    result = run(source, folder, modality, protocol, args.seed, args.ensemble)
                except HfSpiderError as exc:  # e.g. zoo records still too few to train on
                    print(f"skip {source} {modality} {protocol}: {exc.one_line()}")
                    continue
                print_table(result)
                out = RESULTS / f"ranking_{source}_{modality}_{protocol}.json"
                out.write_text(json.dumps(result, indent=1, default=float))
                print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
