"""Out-of-distribution check, cards only: classic ImageNet CNNs against published fine-tuning results.

    python -m benchmarks.ood [--cards DIR] [--ranker DIR] [--json PATH] [--markdown]
    python -m benchmarks.ood --compute   # does compute track the training records beside parameters?

`--cards DIR` runs the same check on another set: `DIR/models/<org>/<name>/` (Hub-layout model
repos: README.md and config.json), `DIR/targets/<target>/README.md` (dataset cards) and
`DIR/ground_truth.csv` (columns `target`, `model`, `finetune_accuracy` in %; a table of fractions,
every value within 0..1, is read as such).

Ten ImageNet CNNs are given as timm-style Hub model cards (`benchmarks/ood_cards/models/`: README
with YAML metadata and a `model-index` ImageNet top-1, `config.json`), eight well-known targets as
dataset cards (`benchmarks/ood_cards/targets/`). Each target is ranked through the product path
(`hf_spider.recommend.recommend(TARGET, catalog=MODELS, stages=("rank",))`, what
`hf-spider recommend TARGET --catalog MODELS --stages rank` runs) and compared with the published
fine-tuning accuracies of `benchmarks/ood_cards/ground_truth.csv` (sources in
`benchmarks/ood_cards/SOURCES.md`). Baselines read the same parsed cards: `params` (parameter
count), `upstream` (the card's best reported accuracy, here ImageNet top-1). None of these models,
targets or results is in the ranker's training data.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from hf_spider._cli_utils import json_safe
from hf_spider.errors import HfSpiderError

REPO = Path(__file__).resolve().parents[1]
CARDS = REPO / "benchmarks" / "ood_cards"
RESULTS = REPO / "benchmarks" / "results"
METHODS = ("spider", "params", "upstream", "params+upstream", "gmacs", "history", "random")
# `params+upstream`: the two card facts with equal weight (z-scores among the ranked models), the
# simplest cards-only combination. `gmacs`: the compute the card states (timm cards' "GMACs" under
# Model Stats), a fact the ranker does not read (`compute_check`). A card that does not state a
# fact sits at the median of the others in its row; a row no card has a fact for is not scored. `history` is not cards-only: the static baseline (each model's
# mean z-scored fine-tuning accuracy) over the table's *other* targets, what the ranker's prior
# would read once these models had fine-tuning records; a reference for what cards alone miss.
# Published means on the same 10 models x 8 targets, tau_w rank=None (Model Spider's README table)
ANCHORS = {
    "Model Spider (paper)": 0.800,
    "LogME (paper)": 0.676,
    "NCE (paper)": 0.666,
    "H-Score (paper)": 0.648,
}


def check_cards(folder: Path, truth: str = "ground_truth.csv") -> None:
    """ValueError (one line) when `folder` is not a cards set laid out as the module docstring says."""
    import pandas as pd

    if not folder.is_dir():
        raise ValueError(
            f"--cards {folder} is not a folder — pass a folder with models/, targets/ and {truth} "
            "(see python -m benchmarks.ood --help)"
        )
    for part in ("models", "targets"):
        if not (folder / part).is_dir():
            raise ValueError(f"--cards {folder} has no {part}/ folder (see python -m benchmarks.ood --help)")
    try:
        table = pd.read_csv(folder / truth)
    except (OSError, ValueError) as exc:
        raise ValueError(f"--cards {folder}: {truth} unreadable ({exc})") from exc
    missing = {"target", "model", "finetune_accuracy"} - set(table.columns)
    if missing:
        raise ValueError(f"--cards {folder}: {truth} lacks column(s) {sorted(missing)}")
    cardless = sorted(t for t in set(table["target"].astype(str)) if not (folder / "targets" / t).is_dir())
    if cardless:
        raise ValueError(f"--cards {folder}: no dataset card for target(s) {cardless} under targets/")
    modelless = sorted(m for m in set(table["model"].astype(str)) if not (folder / "models" / m).is_dir())
    if modelless:
        raise ValueError(f"--cards {folder}: no model card for {modelless} under models/")
    twice = table[table.duplicated(["target", "model"], keep=False)]
    if len(twice):
        pairs = sorted({(str(t), str(m)) for t, m in zip(twice["target"], twice["model"], strict=True)})
        raise ValueError(
            f"--cards {folder}: {truth} lists {len(pairs)} (target, model) pair(s) more than once, "
            f"e.g. {pairs[0]} — keep one accuracy per pair"
        )


def ground_truth(folder: Path = CARDS, truth: str = "ground_truth.csv") -> dict[str, dict[str, float]]:
    """`{target: {model id: fine-tuning accuracy (%)}}` from `truth` (a CSV in `folder`); a table
    target given as fractions (every accuracy within 0..1) is read in %, so that regret is in
    points, whatever the other targets use."""
    import pandas as pd

    table = pd.read_csv(folder / truth)
    given = table["finetune_accuracy"]
    table["finetune_accuracy"] = pd.to_numeric(given, errors="coerce")
    unread = given.notna() & given.astype(str).str.strip().ne("") & table["finetune_accuracy"].isna()
    if unread.any():
        print(
            f"{truth}: {int(unread.sum())} accuracy cell(s) not a number (e.g. {given[unread].iloc[0]!r}): "
            "those pairs count as not measured",
            file=sys.stderr,
        )
    table = table[np.isfinite(table["finetune_accuracy"])]  # a blank cell: that pair was not measured
    out = {}
    for t, g in table.groupby("target", sort=True):
        acc = g["finetune_accuracy"].astype(float)
        if acc.between(0.0, 1.0).all():  # this target in fractions: in % like the rest
            acc = acc * 100.0
        out[str(t)] = dict(zip(g["model"].astype(str), acc, strict=True))
    return out


def run(ranker=None, folder: Path = CARDS, seed: int = 0, truth_file: str = "ground_truth.csv") -> dict:
    """Rank every target's models through `recommend` (stage 1 only) and score all methods."""
    import pandas as pd

    from hf_spider.catalog import Catalog, crawl
    from hf_spider.ranker.evaluation import ranking_metrics
    from hf_spider.ranker.priors import static_scores
    from hf_spider.recommend import recommend

    truth = ground_truth(folder, truth_file)
    started, cpu = time.perf_counter(), time.process_time()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hf-spider-ood-") as tmp:
        crawl(Path(tmp) / "catalog", from_dir=folder / "models")
        wanted = {m for row in truth.values() for m in row}  # the ground truth's models, not every card
        catalog = Catalog([t for t in Catalog.load(Path(tmp) / "catalog") if t.model_id in wanted])
    tokens = {t.model_id: t for t in catalog}
    missing = sorted(wanted - set(tokens))
    if missing:
        raise ValueError(f"no readable model card for {missing} (see the crawl's warnings above)")
    rng = np.random.default_rng(seed)
    accuracy = pd.DataFrame(truth)  # models x targets
    per_target: dict[str, dict[str, dict[str, float]]] = {}
    rankings: dict[str, list[str]] = {}
    left_out: dict[str, str] = {}
    for target, row in truth.items():
        models = sorted(row)
        gt = np.array([row[m] for m in models]) / 100.0
        if len(models) < 2 or np.ptp(gt) == 0:  # no order to recover: tau_w is undefined there
            left_out[target] = (
                "fewer than two models" if len(models) < 2 else "every model has the same accuracy"
            )
            continue
        recs = recommend(folder / "targets" / target, catalog=catalog, stages=("rank",), ranker=ranker)
        spider = {r["model_id"]: float(r["score"]) for r in recs.ranking()}
        unranked = [m for m in models if m not in spider]
        if unranked:  # a card the ranker cannot take as a model for this target
            raise ValueError(
                f"target {target}: the ranker left out {', '.join(unranked[:3])}"
                + (f" and {len(unranked) - 3} more" if len(unranked) > 3 else "")
                + f" (not {recs.meta.get('task', {}).get('modality', 'a')} models by their cards, or cards "
                "that say nothing of their task); add a pipeline_tag to those cards"
            )
        rankings[target] = [r["model_id"] for r in recs.ranking()]
        params = _filled([tokens[m].num_parameters for m in models], np.log)
        upstream = _filled([tokens[m].best_eval_accuracy() for m in models])
        gmacs = _filled([stated_gmacs(folder / "models" / m / "README.md") for m in models], np.log)
        scores = {
            "spider": [spider[m] for m in models],
            "params": params,
            "upstream": upstream,
            "params+upstream": None if params is None or upstream is None else _z(params) + _z(upstream),
            # the project's static baseline over the other targets; a model with none: neutral
            "history": None
            if accuracy.shape[1] < 2  # no other target to have a history on
            else np.nan_to_num(static_scores(accuracy.drop(columns=[target]), models), nan=0.0),
            "random": list(rng.random(len(models))),
        }
        if gmacs is not None:
            scores["gmacs"] = gmacs
        scores = {k: v for k, v in scores.items() if v is not None}
        per_target[target] = {
            k: ranking_metrics(gt, np.asarray(scores[k], dtype=float)) for k in METHODS if k in scores
        }
    if not per_target:
        raise ValueError(f"no target of {truth_file} has two models with different accuracies")
    first = per_target[next(iter(per_target))]
    mean = {
        k: {m: float(np.mean([per_target[t][k][m] for t in per_target])) for m in first[k]}
        for k in METHODS
        if all(k in per_target[t] for t in per_target)
    }
    return {
        "targets": per_target,
        "mean": mean,
        "left_out": left_out,
        # what the crawl could not read on a card (a fact the ranker then lacks)
        "card_warnings": {m: list(t.warnings) for m, t in sorted(tokens.items()) if t.warnings},
        "rankings": rankings,
        # the published figures are for the project's 10 x 8 set
        "anchors_rank_none": ANCHORS
        if folder.resolve() == CARDS.resolve() and truth_file == "ground_truth.csv"
        else {},
        "benchmark": {
            "cards": str(folder.relative_to(REPO)) if folder.is_relative_to(REPO) else str(folder),
            "ground_truth": truth_file,
            "models": len(tokens),
            "targets": len(truth),
            "ranker": str(ranker) if ranker is not None else "shipped weights",
            "seconds": round(time.perf_counter() - started, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        },
    }


def _filled(values: list, transform=None) -> np.ndarray | None:
    """A card fact per model as floats (`transform`ed), a model whose card does not state it at
    the median of the others (as the ranker places a card without facts); None when no card
    states it (the row is then not scored)."""
    x = np.array([np.nan if v is None else float(v) for v in values])
    if not np.isfinite(x).any():
        return None
    if transform is not None:
        x = transform(x)
    return np.where(np.isfinite(x), x, np.nanmedian(x))


def stated_gmacs(readme: Path) -> float | None:
    """The compute a card states ("GMACs: 2.83", timm's Model Stats), None where it states none."""
    import re

    try:
        found = re.search(r"GMACs:\s*([0-9.]+)", readme.read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return float(found.group(1)) if found else None


def compute_check() -> dict[str, dict[str, float]]:
    """Does compute earn a place beside the parameter count on the training records?

    For each TransferGraph model of the shared records, the FLOPs of one forward pass at the task's
    input, counted from its config as the cost model counts them (`hardware.cost.card_config`,
    `facts_of`), against its mean percentile over the usable datasets: Spearman correlations of
    log parameters and log FLOPs with it, and R^2 of least squares on each and on both.
    """
    from scipy.stats import spearmanr

    from hf_spider.hardware.cost import card_config, default_input, facts_of
    from hf_spider.ranker import training as T
    from hf_spider.ranker.records import load_records
    from hf_spider.ranker.tokens import record_tokens

    out: dict[str, dict[str, float]] = {}
    for modality in ("image", "text"):
        records = load_records([REPO.parent / "shared" / "data" / "transfergraph" / modality])
        tokens, _ = record_tokens(records.models)
        usable = set(records.datasets[~records.datasets["failed"]]["dataset"])
        ok = records.perf[
            ~records.perf["failed"]
            & records.perf["model"].isin(set(tokens))
            & records.perf["dataset"].isin(usable)
        ]
        mean = T.percentiles(ok.pivot_table(index="model", columns="dataset", values="accuracy")).mean(axis=1)
        rows = []
        for model, y in mean.dropna().items():
            config, match = card_config(tokens[model].to_dict())
            if config is None or match.get("rel_error", 1.0) > 0.02 or not tokens[model].num_parameters:
                continue
            flops = facts_of(config, default_input(config))["flops"]
            rows.append((float(y), np.log10(tokens[model].num_parameters), np.log10(flops)))
        y, p, f = (np.array(c) for c in zip(*rows, strict=True))
        zp, zf = _z(p), _z(f)
        both = np.linalg.lstsq(np.column_stack([np.ones_like(y), zp, zf]), y, rcond=None)[0]
        out[modality] = {
            "models": len(rows),
            "models_in_records": int(mean.notna().sum()),
            "spearman_params": round(float(spearmanr(y, p)[0]), 3),
            "spearman_flops": round(float(spearmanr(y, f)[0]), 3),
            "r2_params": round(_r2(y, p), 3),
            "r2_flops": round(_r2(y, f), 3),
            "r2_both": round(_r2(y, p, f), 3),
            "coef_params_per_sd": round(float(both[1]), 3),
            "coef_flops_per_sd": round(float(both[2]), 3),
            "corr_params_flops": round(float(np.corrcoef(p, f)[0, 1]), 3),
        }
    return out


def _r2(y: np.ndarray, *cols: np.ndarray) -> float:
    """R^2 of least squares of `y` on `cols` and an intercept."""
    x = np.column_stack([np.ones_like(y), *cols])
    fitted = x @ np.linalg.lstsq(x, y, rcond=None)[0]
    return float(1.0 - np.sum((y - fitted) ** 2) / np.sum((y - y.mean()) ** 2))


def _z(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    spread = values.std()
    return (values - values.mean()) / spread if spread > 0 else np.zeros_like(values)


def ablation(folds: int = 5, seed: int = 0) -> dict[str, dict[str, float]]:
    """Which card facts earn their place in the cold prior, on the shared TransferGraph records.

    The cross-validation `cold.select_cold_prior` runs (each fold of models hidden, the prior fitted
    on the others ranks them on every target; mean tau_w rank=True), over all usable targets of each
    modality, for the product's choices and for the facts prior without each fact.
    """
    from scipy.stats import weightedtau

    from hf_spider.ranker import cold as C
    from hf_spider.ranker import training as T
    from hf_spider.ranker.records import load_records
    from hf_spider.ranker.tokens import record_tokens

    variants = {C.choice_label(c): (lambda p, t, c=c: C.fit_for_choice(p, t, c)) for c in C.COLD_CHOICES}
    variants.update(
        {
            "facts1 - narrow (label count)": lambda p, t: C.fit_facts_prior(p, t, drop=("narrow",)),
            "facts1 - family": lambda p, t: C.fit_facts_prior(p, t, drop=("family",)),
            "facts1 - upstream - family": lambda p, t: C.fit_facts_prior(p, t, drop=("upstream", "family")),
            "ridge alone (before)": T.fit_ridge_card_prior,
        }
    )
    out: dict[str, dict[str, float]] = {}
    for modality in ("image", "text"):
        records = load_records([REPO.parent / "shared" / "data" / "transfergraph" / modality])
        tokens, _ = record_tokens(records.models)
        usable = sorted(records.datasets[~records.datasets["failed"]]["dataset"])
        ok = records.perf[~records.perf["failed"] & records.perf["model"].isin(set(tokens))]
        pct = T.percentiles(
            ok[ok["dataset"].isin(usable)].pivot_table(index="model", columns="dataset", values="accuracy")
        )
        models = [m for m in pct.index if pct.loc[m].notna().any()]
        order = np.random.default_rng(seed).permutation(len(models))
        taus: dict[str, list[float]] = {k: [] for k in variants}
        for k in range(folds):
            held = [models[i] for i in order[k::folds]]
            for label, fit in variants.items():
                pred = fit(pct.drop(index=held), tokens).predict([tokens[m] for m in held])
                for target in pct.columns:
                    truth = pct.loc[held, target].to_numpy(dtype=np.float64)
                    good = np.isfinite(truth)
                    if good.sum() >= 3 and np.ptp(truth[good]) > 0:
                        taus[label].append(float(weightedtau(truth[good], pred[good]).statistic))
        out[modality] = {k: round(float(np.mean(v)), 3) for k, v in taus.items()}
    return out


def markdown(result: dict) -> str:
    """A per-target table of tau_w rank=None (means in both conventions, regret, hit@3 last)."""
    shown = [m for m in METHODS if m in result["mean"]]
    lines = ["| target | " + " | ".join(shown) + " |", "| --- |" + " ---: |" * len(shown)]
    for target, methods in result["targets"].items():
        lines.append(
            f"| {target} | " + " | ".join(f"{methods[m]['tau_w_rank_none']:.3f}" for m in shown) + " |"
        )
    labels = {
        "tau_w_rank_none": "**mean tau_w rank=None**",
        "tau_w_rank_true": "mean tau_w rank=True",
        "top1_regret": "mean top-1 regret (points)",
        "hit_at_3": "mean hit@3",
    }
    for key, label in labels.items():
        lines.append(f"| {label} | " + " | ".join(f"{result['mean'][m][key]:.3f}" for m in shown) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cards",
        default=None,
        help="another cards set: models/, targets/, ground_truth.csv (default: the project's)",
    )
    parser.add_argument(
        "--truth",
        default="ground_truth.csv",
        help="ground-truth CSV inside the cards folder (the project's: ground_truth.csv, Model Spider's "
        "10 x 8; ground_truth_extended.csv, the whole SFDA table: 11 x 11)",
    )
    parser.add_argument("--ranker", default=None, help="ranker weights folder (default: the shipped ones)")
    parser.add_argument(
        "--json",
        default=None,
        help="where to write the result (default: results/ood_cards.json for the project's set, nowhere for --cards)",
    )
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument(
        "--ablation", action="store_true", help="cold-prior ablation on the shared records instead"
    )
    parser.add_argument(
        "--compute",
        action="store_true",
        help="instead: does compute (FLOPs from each config) track the shared records beside the "
        "parameter count? (results/ood_compute_records.json)",
    )
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    if args.ablation:
        table = ablation()
        print("| cold prior | " + " | ".join(table) + " |\n| --- |" + " ---: |" * len(table))
        for label in next(iter(table.values())):
            print(f"| {label} | " + " | ".join(f"{table[m][label]:.3f}" for m in table) + " |")
        return 0
    if args.compute:
        checked = compute_check()
        for modality, figures in checked.items():
            print(modality, " ".join(f"{k} {v}" for k, v in figures.items()))
        out = Path(args.json) if args.json else RESULTS / "ood_compute_records.json"
        out.write_text(json.dumps(checked, indent=1) + "\n")
        return 0
    folder = Path(args.cards).expanduser() if args.cards else CARDS
    try:
        check_cards(folder, args.truth)
    except ValueError as exc:  # one line and exit 2, as the product's commands do
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        result = run(args.ranker, folder=folder, truth_file=args.truth)
    except HfSpiderError as exc:  # a card the product cannot read: its own one line
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for model_id, warnings in result["card_warnings"].items():
        for warning in warnings:
            print(f"{model_id}: {warning}", file=sys.stderr)
    for target, why in result["left_out"].items():
        print(f"{target}: left out ({why})", file=sys.stderr)
    if args.markdown:
        print(markdown(result))
    else:
        for method in (m for m in METHODS if m in result["mean"]):
            m = result["mean"][method]
            print(
                f"{method:16s} tau_w rank=None {m['tau_w_rank_none']:.3f}  rank=True {m['tau_w_rank_true']:.3f}"
                f"  regret {m['top1_regret']:.2f}  hit@3 {m['hit_at_3']:.2f}"
            )
    if args.json or not args.cards:
        stem = Path(args.truth).stem.removeprefix("ground_truth")
        out = Path(args.json) if args.json else RESULTS / f"ood_cards{stem}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(json_safe(result), indent=1, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
