"""Device cost of the embedded catalog from configs alone, and the accuracy of the cost model.

    python -m benchmarks.device_cost                      # measure what is missing, then evaluate
    python -m benchmarks.device_cost --evaluate-only      # evaluate on the recorded measurements
    python -m benchmarks.device_cost --max-minutes 30 --limit 20

1. Every catalog entry gets a config reconstructed from its card facts (`_cardconfig`); entries
   whose parameter count is matched within 2% are kept, de-duplicated by config hash.
2. Each architecture is built with random weights, exported, quantized (fp32, int8-dynamic) and
   measured on `local` (`measure_from_config`; no weights downloaded). Measurements are appended
   to `benchmarks/results/device_cost_runs.jsonl`, so an interrupted run resumes.
3. The cost model is evaluated by grouped K-fold: architectures (config hashes) held out from
   training; the share of held-out predictions within +-10% / +-5% and Spearman's rho.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import platform
import shutil
import sys
import time
from pathlib import Path

from hf_spider import _paths

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "device_cost_runs.jsonl"
SUMMARY = RESULTS / "device_cost.json"
REPEATS = RESULTS / "device_cost_repeats.jsonl"
SECOND = RESULTS / "device_cost_second_pass.jsonl"
THIRD = RESULTS / "device_cost_third_pass.jsonl"
# published sizes of the families the catalog holds in one compute shape: trained on, never scored
SIBLING_CONFIGS = Path(__file__).resolve().parent / "sibling_configs.json"
SIBLINGS = RESULTS / "device_cost_siblings.jsonl"
# every architecture measured again, each pass a fresh build under its own cache key (the rows of
# the timing sample differ): the pass and its row count
PASS_ROWS = {"second": 10, "third": 11}

PLOT = Path(__file__).resolve().parent / "device_cost.png"
logger = logging.getLogger("benchmarks.device_cost")


def _pass_file(name: str) -> Path:
    return {"second": SECOND, "third": THIRD}[name]


ARCHS = RESULTS / "device_cost_architectures.json"


def catalog_architectures(max_rel_error: float = 0.02) -> tuple[list[dict], list[dict]]:
    """(architectures, rejected): one entry per distinct reconstructed config, smallest first.

    Cached in `results/device_cost_architectures.json` with the catalog's hash.
    """
    import hashlib

    catalog = (_paths.EMBEDDED_CATALOG_DIR / "catalog.jsonl").read_bytes()
    digest = hashlib.sha256(catalog).hexdigest()[:16]
    if ARCHS.exists():
        cached = json.loads(ARCHS.read_text())
        if cached.get("catalog_sha") == digest and cached.get("max_rel_error") == max_rel_error:
            return cached["architectures"], cached["rejected"]
    archs, rejected = _reconstruct(max_rel_error)
    ARCHS.write_text(
        json.dumps(
            {
                "catalog_sha": digest,
                "max_rel_error": max_rel_error,
                "architectures": archs,
                "rejected": rejected,
            },
            indent=1,
        )
    )
    return archs, rejected


def _reconstruct(max_rel_error: float) -> tuple[list[dict], list[dict]]:
    from hf_spider.hardware._cardconfig import config_from_card
    from hf_spider.hardware._configonly import config_hash

    lines = (_paths.EMBEDDED_CATALOG_DIR / "catalog.jsonl").read_text().splitlines()[1:]
    cards = [json.loads(line) for line in lines if line.strip()]
    archs: dict[str, dict] = {}
    rejected = []
    for card in cards:
        config, match = config_from_card(card)
        if config is None or match.get("rel_error", 1.0) > max_rel_error:
            rejected.append({"model": card["model_id"], **match})
            continue
        key = config_hash(config)
        entry = archs.setdefault(
            key,
            {"config_hash": key, "config": config, "match": match, "models": [], "params": match["params"]},
        )
        entry["models"].append(card["model_id"])
    ordered = sorted(archs.values(), key=lambda a: (a["params"], a["config_hash"]))
    return ordered, rejected


def shape_key(arch: dict) -> tuple:
    """Architectures that differ only in vocabulary or label count share a shape (same compute)."""
    config = arch["config"]
    return (
        config["model_type"],
        arch["match"]["size"],
        config.get("image_size"),
        tuple(config.get("architectures", [])),
    )


def shapes_first(archs: list[dict]) -> list[dict]:
    """One architecture per distinct shape first (smallest first), then the others."""
    seen, first, rest = set(), [], []
    for arch in archs:
        key = shape_key(arch)
        (rest if key in seen else first).append(arch)
        seen.add(key)
    return first + rest


def _done(path: Path) -> set[tuple[str, str]]:
    done = set()
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done.add((rec["config_hash"], rec["variant"]))
    return done


def _protocol(args, **sample):
    """The command line's measurement protocol on `local` (batch-1 timing and memory only: the cost
    model reads nothing else, see ConfigMeasureConfig); `sample`: the input's rows or repeats,
    which also set the cache key, so each pass builds and times anew. Returns (config, target)."""
    from hf_spider.hardware._configonly import ConfigMeasureConfig
    from hf_spider.hardware.config import MeasureConfig
    from hf_spider.hardware.targets import DeviceTarget

    protocol = MeasureConfig(
        threads=args.threads,
        batch=args.batch,
        warmup=args.warmup,
        iterations=args.iterations,
        min_seconds=args.min_seconds,
    )
    mc = ConfigMeasureConfig(measure=protocol, seq_len=args.seq_len, throughput=False, **sample)
    return mc, DeviceTarget.resolve("local", threads=args.threads)


def collect(args) -> None:
    archs, rejected = catalog_architectures()
    print(f"{len(archs)} distinct architectures reconstructed; {len(rejected)} catalog entries not matched")
    variants = args.variants.split(",")
    mc, target = _protocol(args, repeats=args.repeats)
    archs = shapes_first(archs)
    done = _done(RUNS)
    started = time.perf_counter()
    measured = 0
    for index, arch in enumerate(archs[: args.limit or None]):
        if all((arch["config_hash"], v) in done for v in variants):
            continue
        if args.max_params and arch["params"] > args.max_params:
            continue
        if time.perf_counter() - started > args.max_minutes * 60:
            print(f"time budget of {args.max_minutes} min reached after {measured} architectures")
            break
        t0 = time.perf_counter()
        results = _measure(arch, variants, target, mc, f"[{index}]")
        if results is None:
            continue
        _append(RUNS, arch, results, seconds=time.perf_counter() - t0)
        measured += 1
        lat = {
            r["variant"]: round(r["figures"]["latency_p50_ms"]["value"], 1) for r in results if "figures" in r
        }
        print(
            f"[{index}] {arch['models'][0]} ({arch['params'] / 1e6:.1f}M): {lat} ms in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        if not args.keep_exports:
            for folder in _paths.cache_dir("config_cost").glob(f"build-{arch['config_hash']}-*"):
                shutil.rmtree(folder, ignore_errors=True)
    print(f"measured {measured} architectures in {(time.perf_counter() - started) / 60:.1f} min")


def _measure(arch: dict, variants: list[str], target, mc, label: str) -> list[dict] | None:
    """One architecture built from its config and measured (`measure_from_config`, nothing
    stored); None when it fails, which must not stop a sweep."""
    from hf_spider.hardware._configonly import measure_from_config

    try:
        return measure_from_config(
            arch["config"], variants, target, model_id=arch["models"][0], measure_config=mc, store=False
        )
    except Exception as exc:
        print(f"{label} {arch['models'][0]}: FAILED {type(exc).__name__}: {str(exc)[:200]}")
        return None


def _append(path: Path, arch: dict, results: list[dict], seconds: float | None = None) -> None:
    """One line per variant; `arch_s`: the wall time of the whole architecture (build, export,
    quantization, both variants' measurements)."""
    with open(path, "a") as handle:
        for res in results:
            if "figures" not in res:
                continue
            fig = res["figures"]
            line = {
                "config_hash": arch["config_hash"],
                "model": arch["models"][0],
                "models": arch["models"],
                "variant": res["variant"],
                "config": arch["config"],
                "match": arch["match"],
                "input": res.get("input"),
                "target": res["target"]["name"],
                "target_info": {
                    k: res["target"]["info"].get(k) for k in ("cpu_model", "isa", "cores", "threads")
                },
                "threads": res["protocol"]["threads"],
                "iterations": res["protocol"]["iterations"],
                "latency_ms": fig["latency_p50_ms"]["value"],
                "latency_p90_ms": fig["latency_p90_ms"]["value"],
                "cpu_ms": fig["cpu_time_p50_ms"]["value"],
                "memory_mb": fig["peak_memory_mb"]["value"],
                "size_mb": fig["file_size_mb"]["value"],
                "build_s": fig["build_s"]["value"],
                "arch_s": seconds,
                "throughput_measured": fig["throughput_batch_per_s"]["value"] is not None,
                "label": fig["latency_p50_ms"]["label"],
                "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            handle.write(json.dumps(line) + "\n")


def siblings(args) -> None:
    """Measure the sibling configs (`sibling_configs.json`) not yet in `SIBLINGS`, with the protocol
    of the reference runs (the third pass: 11 input rows)."""
    from hf_spider.hardware._configonly import config_hash

    configs = json.loads(SIBLING_CONFIGS.read_text())["configs"]
    archs = [
        {"config_hash": config_hash(config), "config": config, "models": [model], "match": {"sibling": True}}
        for model, config in configs.items()
    ]
    _measure_into(args, archs, SIBLINGS, PASS_ROWS["third"], "sibling")


def repeat(args, path: Path, count: int | None, rows: int) -> None:
    """Measure the first `count` measured architectures (None: all) again into `path` (a fresh
    build, minutes or hours later, the same protocol): the noise floor (`--repeat N`), and with
    `--second-pass` every architecture, a second label per configuration."""
    runs = _lines(RUNS)
    if not runs:
        print(f"nothing to measure again: no measurements recorded in {RUNS}")
        return
    seen: dict[str, dict] = {}
    for run in runs:
        seen.setdefault(
            run["config_hash"],
            {
                "config_hash": run["config_hash"],
                "config": run["config"],
                "match": run["match"],
                "models": run["models"],
            },
        )
    _measure_into(args, shapes_first(list(seen.values())[:count]), path, rows, "again")


def _measure_into(args, archs: list[dict], path: Path, rows: int, what: str) -> None:
    """Build and measure each of `archs` not yet in `path` (in their order, within
    `--max-minutes`), append its lines there and remove its exports."""
    mc, target = _protocol(args, rows=rows)
    done = {h for h, _ in _done(path)}
    todo = [a for a in archs if a["config_hash"] not in done]
    if not todo:
        print(f"nothing left to measure: all {len(archs)} architectures are in {path.name}")
    started = time.perf_counter()
    for index, arch in enumerate(todo):
        if time.perf_counter() - started > args.max_minutes * 60:
            print(f"time budget of {args.max_minutes} min reached, {len(todo) - index} left")
            break
        t0 = time.perf_counter()
        results = _measure(arch, args.variants.split(","), target, mc, f"[{index + 1}/{len(todo)}]")
        if results is None:
            continue
        _append(path, arch, results, seconds=time.perf_counter() - t0)
        print(
            f"[{index + 1}/{len(todo)}] {what}: {arch['models'][0]} in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        for folder in _paths.cache_dir("config_cost").glob(f"build-{arch['config_hash']}-*"):
            shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="fp32,int8-dynamic")
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    # the product's config-only protocol (`_configonly.QUICK`), the third pass's; the first and
    # second passes ran 2 / 10 / 1.0, which timed a 20 ms model for 0.2 s (device_cost.md)
    from hf_spider.hardware._configonly import QUICK

    parser.add_argument("--warmup", type=int, default=QUICK.warmup)
    parser.add_argument(
        "--iterations", type=int, default=QUICK.iterations, help="timed runs, or --min-seconds"
    )
    parser.add_argument("--min-seconds", type=float, default=QUICK.min_seconds)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2, help="the larger batch (throughput, memory probe)")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--max-params", type=float, default=0)
    parser.add_argument("--max-minutes", type=float, default=60)
    parser.add_argument("--keep-exports", action="store_true")
    parser.add_argument("--evaluate-only", action="store_true")
    parser.add_argument("--collect-only", action="store_true")
    parser.add_argument(
        "--repeat", type=int, default=0, help="measure the first N architectures again (noise)"
    )
    parser.add_argument(
        "--second-pass",
        action="store_true",
        help=f"measure every recorded architecture again into {SECOND.name} (then --labels second or both)",
    )
    parser.add_argument(
        "--third-pass",
        action="store_true",
        help=f"measure every recorded architecture again into {THIRD.name} (then --labels third)",
    )
    parser.add_argument(
        "--siblings",
        action="store_true",
        help=f"measure the sibling configs of {SIBLING_CONFIGS.name} into {SIBLINGS.name} (trained on, never scored)",
    )
    parser.add_argument(
        "--labels",
        choices=list(LABELS),
        default="first",
        help="which measurements the evaluation reads: " + "; ".join(f"{k}: {v}" for k, v in LABELS.items()),
    )
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    RESULTS.mkdir(exist_ok=True)
    if not (args.evaluate_only or args.second_pass or args.third_pass or args.siblings):
        collect(args)
    if args.siblings:
        siblings(args)
    # more input rows than the sweep's 8 give another cache key: each pass builds and times anew
    if args.repeat:
        repeat(args, REPEATS, count=args.repeat, rows=9)
    for name, wanted in (("second", args.second_pass), ("third", args.third_pass)):
        if wanted:
            repeat(args, _pass_file(name), count=None, rows=PASS_ROWS[name])
    if not args.collect_only:
        evaluate(args)
    return 0


TIMED = ("latency_ms", "latency_p90_ms", "cpu_ms", "memory_mb")
LABELS = {
    "first": "the sweep's measurement (first pass)",
    "second": "the second pass alone",
    "third": "the third pass alone (5 warm-up runs, 2 s of timed runs)",
    "both": "geometric mean of both passes",
}


def _lines(path: Path) -> list[dict]:
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    )


def labelled_runs(labels: str = "first") -> list[dict]:
    """The run lines whose measured figures the evaluation reads: `first` the sweep's, `second`
    or `third` that pass's (`--second-pass`, `--third-pass`), `both` each measured figure the
    geometric mean of the first two passes (configurations measured in both only); file size is
    the same in every pass. A pass keeps the first pass's order and its configurations only."""
    first = _lines(RUNS)
    if labels == "first":
        return first
    again = {
        (r["config_hash"], r["variant"]): r
        for r in _lines(_pass_file("third" if labels == "third" else "second"))
    }
    out = []
    for run in first:
        other = again.get((run["config_hash"], run["variant"]))
        if other is None:
            continue
        if labels in PASS_ROWS:
            out.append(other)
            continue
        merged = dict(run)
        for figure in TIMED:
            if run.get(figure) and other.get(figure):
                merged[figure] = math.sqrt(run[figure] * other[figure])
        out.append(merged)
    return out


def evaluate(args) -> None:
    from hf_spider.hardware.cost import CostModel, evaluate_heldout, records_from_runs

    runs = labelled_runs(args.labels)
    if not runs:
        print("no measurements recorded yet")
        return
    records = records_from_runs(runs)
    extra = records_from_runs(_lines(SIBLINGS))
    report = evaluate_heldout(records, folds=args.folds, baseline=True, extra_train=extra)
    report["siblings"] = sorted({r["model"] for r in extra})
    report["labels"] = {"name": args.labels, "meaning": LABELS[args.labels]}
    report["noise"] = noise_floor(runs)
    # what a perfect predictor would reach against the same labels (`_ceiling`), beside each row
    ceilings = {(n["figure"], n["variant"]): n for n in report["noise"] if n["source"] == "same shape"}
    for row in report["rows"]:
        floor = ceilings.get((row["figure"], row["variant"]))
        row["ceiling_10"] = floor["ceiling_10"] if floor else None
        row["ceiling_5"] = floor["ceiling_5"] if floor else None
    report["extrapolation"] = extrapolation(records)
    report["coverage"] = coverage(runs)
    report["chosen"] = {key: fit.spec or "base" for key, fit in CostModel.fit(records + extra).fits.items()}
    report["families"] = sorted({r["config"]["model_type"] for r in runs})
    report["variants"] = sorted({r["variant"] for r in runs})
    report["machine"] = f"{platform.processor() or platform.machine()}; {sys.platform}"
    report["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    report["architectures"] = len({r["config_hash"] for r in runs})
    summary, plot_path = SUMMARY, PLOT
    if args.labels != "first":
        summary = SUMMARY.with_name(f"device_cost_{args.labels}.json")
        plot_path = PLOT.with_name(f"device_cost_{args.labels}.png")
    summary.write_text(json.dumps(report, indent=1))
    plot(report, plot_path)
    print(format_report(report))
    print(f"plot: {plot_path}")


def extrapolation(records: list[dict], limit: float = 150e6) -> list[dict]:
    """Fitted on the configs up to `limit` parameters only, predicting the larger ones: how the
    cost model does out of the size range it was trained on."""
    from hf_spider.hardware.cost import TARGETS, CostModel

    small = [r for r in records if r["facts"]["params"] <= limit]
    large = [r for r in records if r["facts"]["params"] > limit]
    if not large or not small:
        return []
    model = CostModel.fit(small)
    rows = []
    for figure in TARGETS:
        for variant in sorted({r["variant"] for r in large}):
            pairs = [
                (model.predict(r["facts"], variant)[figure], r[figure])
                for r in large
                if r["variant"] == variant and r.get(figure)
            ]
            pairs = [(p, t) for p, t in pairs if p is not None]
            if pairs:
                rel = sorted(abs(p - t) / t for p, t in pairs)
                rows.append(
                    {
                        "figure": figure,
                        "variant": variant,
                        "n": len(pairs),
                        "within_10": sum(x <= 0.10 for x in rel) / len(rel),
                        "median_abs_error": rel[len(rel) // 2],
                        "pairs": pairs,
                    }
                )
    return rows


def coverage(runs: list[dict]) -> dict:
    """How many distinct configs, compute shapes and catalog cards the runs stand for."""
    from hf_spider.hardware.cost import shape_key as compute_shape

    configs = {r["config_hash"]: r for r in runs}
    seconds = [r["arch_s"] for r in configs.values() if r.get("arch_s")]
    return {
        "configs": len(configs),
        # configs differing only in vocabulary, labels or head are one compute shape
        "shapes": len({compute_shape(r["config"]) for r in configs.values()}),
        "shapes_with_head": len({shape_key(r) for r in configs.values()}),
        "cards": len({m for r in configs.values() for m in r["models"]}),
        "families": len({r["config"]["model_type"] for r in configs.values()}),
        "params_range_m": [
            min(r["match"]["params"] for r in configs.values()) / 1e6,
            max(r["match"]["params"] for r in configs.values()) / 1e6,
        ],
        "arch_s_median": sorted(seconds)[len(seconds) // 2] if seconds else None,
        "arch_s_timed": len(seconds),
    }


def _changes(pairs: list[tuple[float, float]]) -> dict:
    rel = sorted(abs(b - a) / a for a, b in pairs)
    return {
        "n": len(rel),
        "within_10": sum(x <= 0.10 for x in rel) / len(rel),
        "within_5": sum(x <= 0.05 for x in rel) / len(rel),
        "median_abs_change": rel[len(rel) // 2],
        "ceiling_10": _ceiling(pairs, 0.10),
        "ceiling_5": _ceiling(pairs, 0.05),
    }


def _ceiling(pairs: list[tuple[float, float]], tolerance: float) -> float:
    """The share within +-`tolerance` that a perfect predictor (one that knows each graph's true
    cost) would reach against these labels.

    Assumption: a measurement is the true cost times exp(e), e independent, identically and
    normally distributed (same spread for every graph). A pair's log ratio is then e1 - e2, whose
    spread is sqrt(2) times one measurement's; so one measurement's error is distributed like a
    pair's log ratio divided by sqrt(2) (both signs: the pair's order is arbitrary). A perfect
    prediction p = true is within tolerance of a measurement m when p/m lies in
    [1 - tol, 1 + tol], i.e. -log(1 + tol) <= e <= -log(1 - tol). The empirical pairs are
    rescaled (not a fitted normal), so heavier tails than normal carry over."""
    errors = [s * math.log(b / a) / math.sqrt(2.0) for a, b in pairs for s in (1.0, -1.0)]
    low, high = -math.log(1.0 + tolerance), -math.log(1.0 - tolerance)
    return sum(low <= e <= high for e in errors) / len(errors)


def noise_floor(runs: list[dict]) -> list[dict]:
    """How often a second measurement lands within +-10% / +-5% of the first: `repeat`, the same
    config built and measured again minutes later (`--repeat`); `first vs second pass`, every
    config measured again hours later, at another load (`--second-pass`); `second vs third pass`,
    the two quiet passes, the short and the long timing protocol (`--third-pass`); `same shape`, two
    configs of `runs` (the labels evaluated) that differ only in vocabulary, label count or head
    (the same compute up to a classifier row), measured at different times. No predictor can
    agree with a label more often than two labels of the same graph agree with each other."""
    from hf_spider.hardware.cost import shape_key as compute_shape

    # repeats compare single measurements: the sweep's own, whichever labels `runs` carry
    first = {(r["config_hash"], r["variant"]): r for r in _lines(RUNS) or runs}
    again = _lines(REPEATS)
    second = {(r["config_hash"], r["variant"]): r for r in _lines(SECOND)}
    passes = [(first[key], r) for key, r in second.items() if key in first]
    # the third pass against the second: two quiet passes, the short and the long timing protocol
    later = [(second[key], r) for r in _lines(THIRD) if (key := (r["config_hash"], r["variant"])) in second]
    by_shape: dict[tuple, list[dict]] = {}
    for run in runs:
        by_shape.setdefault((compute_shape(run["config"]), run["variant"]), []).append(run)
    rows = []
    for figure in ("latency_ms", "cpu_ms", "memory_mb", "size_mb"):
        for variant in sorted({r["variant"] for r in runs}):
            repeats = [
                (first[(r["config_hash"], variant)][figure], r[figure])
                for r in again
                if r["variant"] == variant and (r["config_hash"], variant) in first and r.get(figure)
            ]
            # every pair within each shape, per shape: pooled, and each shape weighing the same below
            pairs_by_shape = [
                [
                    (group[i][figure], group[j][figure])
                    for i in range(len(group))
                    for j in range(i + 1, len(group))
                    if group[i].get(figure) and group[j].get(figure)
                ]
                for (_, v), group in by_shape.items()
                if v == variant
            ]
            same_shape = [pair for pairs in pairs_by_shape for pair in pairs]
            two_passes, last_passes = (
                [
                    (a[figure], b[figure])
                    for a, b in which
                    if b["variant"] == variant and a.get(figure) and b.get(figure)
                ]
                for which in (passes, later)
            )
            for source, pairs in (
                ("repeat", repeats),
                ("first vs second pass", two_passes),
                ("second vs third pass", last_passes),
                ("same shape", same_shape),
            ):
                if pairs:
                    rows.append({"figure": figure, "variant": variant, "source": source, **_changes(pairs)})
            # the pairs are dominated by the shapes with many near-duplicates (BERT-base, ViT-base):
            # the ceiling again with every shape weighing the same
            per_shape = [_ceiling(pairs, 0.10) for pairs in pairs_by_shape if pairs]
            if per_shape and same_shape:
                rows[-1]["ceiling_10_by_shape"] = sum(per_shape) / len(per_shape)
                rows[-1]["shapes"] = len(per_shape)
    return rows


def plot(report: dict, path: Path) -> None:
    """Held-out predictions against measurements, log-log, one panel per figure and variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (figure, variant)
        for figure in ("cpu_ms", "latency_ms", "memory_mb", "size_mb")
        for variant in report["variants"]
    ]
    cols = len(report["variants"])
    fig, axes = plt.subplots(len(panels) // cols, cols, figsize=(5 * cols, 4.2 * len(panels) // cols))
    families = sorted({p["family"] for p in report["heldout"]})
    colors = {f: plt.cm.tab20(i % 20) for i, f in enumerate(families)}
    rows = {(r["figure"], r["variant"]): r for r in report["rows"] if r["method"] == "cost model"}
    for ax, (figure, variant) in zip(axes.flat, panels, strict=True):
        points = [p for p in report["heldout"] if p["figure"] == figure and p["variant"] == variant]
        if not points:
            ax.set_visible(False)
            continue
        for family in families:
            mine = [p for p in points if p["family"] == family]
            if mine:
                ax.scatter(
                    [p["measured"] for p in mine],
                    [p["predicted"] for p in mine],
                    s=14,
                    color=colors[family],
                    label=family,
                )
        low = min(min(p["measured"], p["predicted"]) for p in points) * 0.8
        high = max(max(p["measured"], p["predicted"]) for p in points) * 1.25
        ax.plot([low, high], [low, high], color="black", lw=0.8)
        ax.fill_between(
            [low, high], [low * 0.9, high * 0.9], [low * 1.1, high * 1.1], color="grey", alpha=0.2
        )
        ax.set_xscale("log")
        ax.set_yscale("log")
        row = rows.get((figure, variant))
        title = f"{figure} {variant}"
        if row:
            title += f"\n{row['within_10']:.0%} within ±10% (band), rho {row['spearman']:.3f}, n={row['n']}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("measured")
        ax.set_ylabel("predicted (held out)")
    axes.flat[0].legend(fontsize=6, ncol=2)
    fig.suptitle(
        f"cost model on held-out shapes, {report['coverage']['configs']} configs / "
        f"{report['coverage']['shapes']} shapes, local ({report['date']})",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def format_report(report: dict) -> str:
    cov = report["coverage"]
    lines = [
        f"{cov['configs']} configs ({cov['shapes']} compute shapes, {cov['shapes_with_head']} counting the "
        f"head; {cov['families']} families; {cov['cards']} catalog cards), {report['records']} measurements, "
        f"{report['folds']}-fold grouped by shape",
        "| figure | variant | method | n | within +-10% | within +-5% | Spearman rho | median abs error "
        "| perfect predictor +-10% / +-5% |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in report["rows"]:
        ceiling = (
            f"{row['ceiling_10']:.0%} / {row['ceiling_5']:.0%}" if row.get("ceiling_10") is not None else "-"
        )
        lines.append(
            f"| {row['figure']} | {row['variant']} | {row['method']} | {row['n']} | {row['within_10']:.0%} | "
            f"{row['within_5']:.0%} | {row['spearman']:.3f} | {row['median_abs_error']:.1%} | {ceiling} |"
        )
    lines.append(f"chosen by the inner cross-validation (all data): {report['chosen']}")
    if report.get("noise"):
        lines += [
            "",
            "noise floor: two measurements of the same graph",
            "| figure | variant | pairs | n | within +-10% | within +-5% | median abs change "
            "| perfect predictor +-10% / +-5% | same, each shape weighing the same +-10% |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in report["noise"]:
            by_shape = row.get("ceiling_10_by_shape")
            lines.append(
                f"| {row['figure']} | {row['variant']} | {row['source']} | {row['n']} | {row['within_10']:.0%} | "
                f"{row['within_5']:.0%} | {row['median_abs_change']:.1%} | "
                f"{row['ceiling_10']:.0%} / {row['ceiling_5']:.0%} | "
                + (f"{by_shape:.0%} ({row['shapes']} shapes) |" if by_shape is not None else "- |")
            )
    if report.get("extrapolation"):
        lines += [
            "",
            "fitted on configs up to 150M parameters, predicting the larger ones",
            "| figure | variant | n | within +-10% | median abs error |",
            "| --- | --- | ---: | ---: | ---: |",
        ]
        for row in report["extrapolation"]:
            lines.append(
                f"| {row['figure']} | {row['variant']} | {row['n']} | {row['within_10']:.0%} | "
                f"{row['median_abs_error']:.1%} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
