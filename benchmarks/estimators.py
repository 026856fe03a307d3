"""Transferability estimators against fine-tuning ground truth: tau_w, top-1 regret, time.

Run: `python -m benchmarks.estimators [--part transfergraph zoo timing] [--sample 1000]`.
Prints tables and writes `benchmarks/results/estimators.json`. Figures: `benchmarks/estimators.md`.

Parts (metrics per `../shared/BENCHMARKS.md`: weighted Kendall tau with `rank=True` and
`rank=None`, top-1 regret in accuracy points, hit@3; means over targets, each weighted equally):
- `transfergraph`: the published LogME and regularised H-score of the shared TransferGraph records
  (`transferability_scores.csv`) against the fine-tuned accuracy of the same records
  (`records.csv`), per target. A sanity check of the metric code and of the data against the
  published anchors; the scores are theirs, not computed here. Runtimes are theirs too.
- `zoo`: every estimator of `hf_spider.estimators` run here on the frozen features of the offline
  zoo (`zoo_dir()/features/<org>--<name>/<task>.npz`, written by `hf-spider build-records`) against
  the zoo's committed records; wall time of each call measured here. LEEP and NCE need the source
  head's probabilities: they run where the features file holds `train_probs`.
- `timing`: every estimator on synthetic features of N x D = 1000 x 384 and 5000 x 1280 (10
  classes), one call each, wall seconds.
Baselines in the same tables: random (expected value), #parameters, and the collaborative prior
(each model's mean percentile on the other targets of the same records).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hf_spider import _paths, estimators
from hf_spider.errors import HfSpiderError
from hf_spider.ranker.evaluation import ranking_metrics
from hf_spider.ranker.records import Records, load_records

RESULTS = Path(__file__).resolve().parent / "results"
TRANSFERGRAPH = Path(os.environ.get("HF_SPIDER_SHARED", "/work/shared")) / "data" / "transfergraph"
METRICS = ("tau_w_rank_true", "tau_w_rank_none", "top1_regret", "hit_at_3")
# Published anchors (../shared/BENCHMARKS.md): mean tau_w, rank=True, over their 8 targets.
ANCHORS = {
    ("image", "logme"): 0.310,
    ("image", "reg_hscore"): 0.369,
    ("text", "logme"): 0.554,
    ("text", "reg_hscore"): 0.548,
}
_RECORD_METRIC = {"log_me": "logme", "logme": "logme", "reg_h_score": "reg_hscore"}


# ---------------------------------------------------------------- shared helpers


def random_baseline(gt: np.ndarray, draws: int = 200) -> dict[str, float]:
    """Expected metrics of a random ranking: regret and hit@3 exactly, tau_w by sampling."""
    rng = np.random.default_rng(0)
    taus = [ranking_metrics(gt, rng.permutation(len(gt))) for _ in range(draws)]
    return {
        "tau_w_rank_true": float(np.mean([t["tau_w_rank_true"] for t in taus])),
        "tau_w_rank_none": float(np.mean([t["tau_w_rank_none"] for t in taus])),
        "top1_regret": float(100.0 * (gt.max() - gt.mean())),
        "hit_at_3": float(min(3, len(gt)) / len(gt)),
        "n_models": len(gt),
    }


def collaborative_prior(perf: pd.DataFrame, target: str) -> pd.Series:
    """Each model's mean percentile rank of accuracy on the other targets."""
    other = perf[perf["dataset"] != target].copy()
    other["pct"] = other.groupby("dataset")["accuracy"].rank(pct=True)
    return other.groupby("model")["pct"].mean()


def _nanmean(values: list[float]) -> float:
    """Mean of the finite values (tau_w is NaN on a target where every model got the same score)."""
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def mean_over_targets(per_target: dict[str, dict[str, dict]]) -> dict[str, dict[str, float]]:
    methods: dict[str, list[dict]] = {}
    for rows in per_target.values():
        for method, m in rows.items():
            methods.setdefault(method, []).append(m)
    out = {}
    for method, rows in methods.items():
        out[method] = {k: _nanmean([r[k] for r in rows]) for k in METRICS}
        out[method]["n_targets"] = len(rows)
        seconds = [r["seconds"] for r in rows if np.isfinite(r.get("seconds", np.nan))]
        if seconds:
            out[method]["median_seconds"] = float(np.median(seconds))
    return out


def baselines(recs: Records, target: str, gt: pd.Series) -> dict[str, dict]:
    """Random, #parameters and collaborative prior on the models of `gt` (indexed by model)."""
    out = {"random": random_baseline(gt.to_numpy())}
    if "number_of_parameters" in recs.models:
        size = recs.models.set_index("model")["number_of_parameters"]
        size = pd.to_numeric(size[~size.index.duplicated()], errors="coerce").reindex(gt.index)
        if size.notna().sum() >= 2:
            out["#params"] = ranking_metrics(gt.to_numpy(), size.fillna(size.median()).to_numpy())
    prior = collaborative_prior(recs.perf, target).reindex(gt.index)
    if prior.notna().sum() >= 2:
        out["collaborative"] = ranking_metrics(gt.to_numpy(), prior.fillna(prior.median()).to_numpy())
    return out


def print_table(title: str, means: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}")
    head = f"{'method':<16}{'tau_w rank=True':>17}{'tau_w rank=None':>17}{'regret (pts)':>14}{'hit@3':>8}{'targets':>9}"
    extra = any("median_seconds" in m for m in means.values())
    print(head + (f"{'median s':>11}" if extra else ""))
    for method, m in means.items():
        line = (
            f"{method:<16}{m['tau_w_rank_true']:>17.3f}{m['tau_w_rank_none']:>17.3f}"
            f"{m['top1_regret']:>14.2f}{m['hit_at_3']:>8.2f}{m['n_targets']:>9d}"
        )
        if extra:
            line += f"{m.get('median_seconds', float('nan')):>11.3f}"
        print(line)


# ---------------------------------------------------------------- part (a): TransferGraph records


def part_transfergraph(root: Path) -> dict:
    out: dict = {}
    for modality in ("image", "text"):
        folder = root / modality
        recs = load_records(folder)
        raw_scores = pd.read_csv(folder / "transferability_scores.csv")
        raw_scores["metric"] = (
            raw_scores["metric"].astype(str).str.split(".").str[-1].str.lower().map(_RECORD_METRIC)
        )
        runtime = raw_scores.groupby("metric")["runtime"].median().to_dict()
        for subset in ("all runs", "failed runs dropped"):
            per_target: dict[str, dict] = {}
            for target, scores in recs.scores.groupby("dataset"):
                perf = recs.perf[recs.perf["dataset"] == target]
                if subset != "all runs":
                    perf = perf[~perf["failed"]]
                gt = perf.set_index("model")["accuracy"]
                rows = {}
                common = None
                for metric, s in scores.groupby("metric"):
                    name = _RECORD_METRIC.get(metric, metric)
                    joined = pd.concat([gt, s.set_index("model")["score"]], axis=1, join="inner").dropna()
                    if len(joined) < 3:
                        continue
                    rows[name] = ranking_metrics(joined.iloc[:, 0].to_numpy(), joined.iloc[:, 1].to_numpy())
                    rows[name]["seconds"] = float(runtime.get(name, np.nan))
                    common = joined.index if common is None else common.intersection(joined.index)
                if not rows:
                    continue
                per_target[target] = {**rows, **baselines(recs, target, gt.reindex(common))}
            key = f"{modality} / {subset}"
            means = mean_over_targets(per_target)
            out[key] = {"targets": sorted(per_target), "per_target": per_target, "mean": means}
            print_table(
                f"TransferGraph {key}: published scores vs fine-tuned accuracy, {len(per_target)} targets "
                f"({', '.join(sorted(per_target))}); 'median s' = their published runtime",
                means,
            )
        for name in ("logme", "reg_hscore"):
            got = out[f"{modality} / all runs"]["mean"].get(name, {}).get("tau_w_rank_true")
            if got is not None:
                print(
                    f"  anchor {modality} {name}: published {ANCHORS[(modality, name)]:.3f} (8 targets), here {got:.3f}"
                )
    return out


# ---------------------------------------------------------------- part (b): the offline zoo


def zoo_records_dirs() -> list[Path]:
    """Records folders of the offline zoo: `hf_spider.zoo.RECORDS_DIRS` if the zoo package
    declares them, else `records/{text,image}` under the repository's zoo records folder."""
    try:
        from hf_spider import zoo

        declared = getattr(zoo, "RECORDS_DIRS", None)
        if declared:
            return [Path(p) for p in declared]
    except ImportError:
        pass
    found = []
    for base in (
        _paths.REPO_DIR / "hf_spider" / "zoo" / "records",
        _paths.REPO_DIR / "benchmarks" / "zoo_records",
    ):
        found += [p for p in (base / "text", base / "image", base) if (p / "records.csv").is_file()]
    return found


def features_file(model: str, target: str) -> Path:
    return _paths.zoo_dir() / "features" / model.replace("/", "--") / f"{target.replace('/', '--')}.npz"


def stratified(y: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Indices of a class-stratified sample of at most n examples."""
    if len(y) <= n:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    take = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(2, round(n * len(idx) / len(y)))
        take.append(rng.choice(idx, min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(take))


def recorded_scores(dirs: list[Path]) -> pd.DataFrame:
    """The transferability scores `build-records` wrote next to the zoo records (with runtimes)."""
    frames = [
        pd.read_csv(d / "transferability_scores.csv")
        for d in dirs
        if (d / "transferability_scores.csv").is_file()
    ]
    if not frames:
        return pd.DataFrame(columns=["model", "target_dataset", "metric", "score", "runtime"])
    out = pd.concat(frames, ignore_index=True)
    out["metric"] = out["metric"].astype(str).str.split(".").str[-1].str.lower()
    return out


def part_zoo(dirs: list[Path], sample: int, names: list[str]) -> dict:
    if not dirs:
        print("\nzoo: no zoo records found (pass --zoo-records DIR); part skipped")
        return {"skipped": "no zoo records"}
    recs = load_records(dirs)
    recorded = recorded_scores(dirs).set_index(["model", "target_dataset", "metric"]).sort_index()
    per_target: dict[str, dict] = {}
    calls = []
    from_records: set[str] = set()
    for target in recs.dataset_names:
        perf = recs.perf[recs.perf["dataset"] == target]
        gt = perf.set_index("model")["accuracy"]
        scores: dict[str, dict[str, float]] = {name: {} for name in names}
        seconds: dict[str, list[float]] = {name: [] for name in names}
        for model in gt.index:
            path = features_file(model, target)
            if not path.is_file():
                continue
            with np.load(path) as data:
                X, y = data["train_X"], data["train_y"]
                probs = data["train_probs"] if "train_probs" in data.files else None
            idx = stratified(y, sample)
            X, y = X[idx].astype(np.float64), y[idx]
            probs = probs[idx] if probs is not None else None
            for name in names:
                est = estimators.get_estimator(name)
                if est.needs_probs and probs is None:
                    # the features file has no source probabilities: use the score build-records
                    # computed with the model's head, and its runtime
                    key = (model, target, name)
                    if key in recorded.index:
                        row = recorded.loc[key].iloc[0] if recorded.loc[key].ndim > 1 else recorded.loc[key]
                        scores[name][model] = float(row["score"])
                        seconds[name].append(float(row.get("runtime", np.nan)))
                        from_records.add(name)
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                try:
                    value = est.score(X, y, probs=probs)
                except HfSpiderError as exc:
                    calls.append(
                        {"model": model, "target": target, "estimator": name, "error": exc.one_line()}
                    )
                    continue
                took, cpu = time.perf_counter() - t0, time.process_time() - c0
                scores[name][model] = value
                seconds[name].append(took)
                calls.append(
                    {
                        "model": model,
                        "target": target,
                        "estimator": name,
                        "n": len(y),
                        "d": X.shape[1],
                        "score": value,
                        "seconds": took,
                        "cpu_seconds": cpu,
                    }
                )
        rows = {}
        common = None
        for name in names:
            s = pd.Series(scores[name], dtype=float)
            if len(s) < 3:
                continue
            g = gt.reindex(s.index)
            rows[name] = ranking_metrics(g.to_numpy(), s.to_numpy())
            rows[name]["seconds"] = float(np.nanmedian(seconds[name])) if seconds[name] else float("nan")
            common = s.index if common is None or len(s.index) > len(common) else common
        if rows:
            per_target[target] = {**rows, **baselines(recs, target, gt.reindex(common))}
    if not per_target:
        print(
            "\nzoo: no target has records and features (under",
            _paths.zoo_dir() / "features",
            ") for at least 3 models; part skipped",
        )
        return {"skipped": "fewer than 3 models with features per target", "records": [str(d) for d in dirs]}
    means = mean_over_targets(per_target)
    print_table(
        f"offline zoo: estimators run here on frozen features (<= {sample} examples a task), "
        f"{len(per_target)} targets; 'median s' = wall seconds of one call"
        + (
            f" ({', '.join(sorted(from_records))}: score and runtime from build-records)"
            if from_records
            else ""
        ),
        means,
    )
    return {
        "records": [str(d) for d in dirs],
        "targets": sorted(per_target),
        "scores_from_records": sorted(from_records),
        "per_target": per_target,
        "mean": means,
        "calls": calls,
    }


# ---------------------------------------------------------------- part (c): timing


def part_timing(names: list[str], sizes: list[tuple[int, int]]) -> dict:
    out = {}
    print(
        "\nseconds of one call on synthetic features (10 classes, 1000 source classes for leep/nce), wall / CPU"
    )
    print(f"{'estimator':<14}" + "".join(f"{f'{n}x{d}':>18}" for n, d in sizes))
    rng = np.random.default_rng(0)
    data = {}
    for n, d in sizes:
        y = np.arange(n) % 10
        mix = rng.normal(size=(d, d)) * (np.arange(1, d + 1) ** -0.8)[:, None]
        X = (rng.normal(size=(n, d)) + 0.5 * np.eye(10)[y] @ rng.normal(size=(10, d))) @ mix
        data[(n, d)] = (X, y, rng.dirichlet(np.ones(1000), size=n))
    for name in names:
        row = {}
        for (n, d), (X, y, P) in data.items():
            t0, c0 = time.perf_counter(), time.process_time()
            estimators.score(name, X, y, probs=P)
            row[f"{n}x{d}"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
        out[name] = row
        print(f"{name:<14}" + "".join(f"{v['wall']:>9.2f} /{v['cpu']:>6.2f}" for v in row.values()))
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        nargs="+",
        default=["transfergraph", "zoo", "timing"],
        choices=["transfergraph", "zoo", "timing"],
    )
    parser.add_argument("--transfergraph", type=Path, default=TRANSFERGRAPH)
    parser.add_argument("--zoo-records", type=Path, nargs="+", default=None)
    parser.add_argument("--sample", type=int, default=1000, help="examples per zoo task (stratified)")
    parser.add_argument("--estimators", nargs="+", default=estimators.available())
    parser.add_argument("--sizes", nargs="+", default=["1000x384", "5000x1280"])
    parser.add_argument("--json", type=Path, default=RESULTS / "estimators.json")
    args = parser.parse_args(argv)

    result: dict = {
        "machine": f"{_cpu_model()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "load_average_at_start": os.getloadavg()[0],
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "threads": os.environ.get("OMP_NUM_THREADS", "default"),
    }
    if "transfergraph" in args.part:
        result["transfergraph"] = part_transfergraph(args.transfergraph)
    if "zoo" in args.part:
        result["zoo"] = part_zoo(args.zoo_records or zoo_records_dirs(), args.sample, args.estimators)
    if "timing" in args.part:
        sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
        result["timing"] = part_timing(args.estimators, sizes)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    os.replace(tmp, args.json)
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
