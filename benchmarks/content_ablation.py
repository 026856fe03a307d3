"""Issue 11, items 4 and 5: task and model content as ablations, and a first-pick rule for top-1 regret.

`python -m benchmarks.content_ablation [--modality image text] [--cold] [--markdown]`

On TransferGraph's protocol (`hf-spider eval ranking --protocol transfergraph`), each evaluation
dataset held out in turn (and, with `--cold`, also every record of 20% of its models, 5 folds):

- `spider`: the shipped ranker as `eval ranking` builds it per fold (`selection.select_parts`; the
  learned residual is not tried: nested CV kept it in no fold of any run, benchmarks/ranking.md,
  so spider is its cross-validated prior);
- `spider+F`, one content feature F at a time: `prior + b * F(model, dataset)`, the bonus `b` chosen
  from `BONUSES` (or 0: the feature left out) by `selection.nested_choice` over the fold's TRAINING
  datasets only, floor = spider's own prior, the product's margin (0.005 tau_w and one standard
  error). The held-out dataset never takes part. "accepted" counts the outer folds where it was kept;
- `spider+first-pick`: the same ranking, but the first pick is the candidate with the best
  `score - c * se` (se: standard error of its percentiles on the training datasets; 0.5 with fewer
  than 2), `c` chosen the same way with the figure = minus the top-1 regret (margin 0.25 points);
- `spider+static_pick`: the first pick from `(1 - a) * rank(score) + a * rank(static)` (`static`:
  mean z-scored accuracy on the training datasets), `a` in 0 / 0.5 / 1 chosen the same way;
- `spider+name_match`: a control, the name match the prior family already has, offered once more.

Content comes from the project's dataset cards (`benchmarks/task_cards`, `--task-cards` in `eval
ranking`) and from `model_config.csv` (the models' `labels` = their config's id2label, `dataset`).
Label names are embedded with the zoo's real sentence-transformers/all-MiniLM-L6-v2. Results:
`benchmarks/results/content_ablation_<modality>_<setting>.json`; `--markdown` prints the table.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata, weightedtau

# the encoder comes from the zoo's Hub-layout cache; huggingface_hub reads this when imported
os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "transfergraph"
CARDS = ROOT / "benchmarks" / "task_cards"
RESULTS = ROOT / "benchmarks" / "results"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
BONUSES = (0.05, 0.1, 0.2)
FIRST_PICK_C = (0.5, 1.0, 2.0)
STATIC_SHARES = (0.5, 1.0)
REGRET_MARGIN = 0.25  # accuracy points
FEATURES = (
    "id2label",
    "source_labels",
    "label_embedding",
    "card_text",
    "lineage",
    "model_index",
    "name_match",
)


# ---------------------------------------------------------------- content of tasks and models
def _norm(label: str) -> str:
    text = re.sub(r"[^a-z0-9]+", " ", str(label).lower()).strip()
    return text[:-1] if text.endswith("s") and len(text) > 3 else text


def informative(labels: list[str] | None) -> list[str] | None:
    """Label names that say something: not `LABEL_0`-style placeholders, not bare indices."""
    if not labels:
        return None
    if all(re.fullmatch(r"(label[ _-]?)?\d+", str(x).strip().lower()) for x in labels):
        return None
    return [str(x) for x in labels]


class Content:
    """What the cards and `model_config.csv` say about datasets and models, and the features."""

    def __init__(self, records, tokens, cards: Mapping[str, dict]):
        from hf_spider.ranker.features import name_key

        self.tokens = tokens
        self.cards = dict(cards)
        keys: dict[str, list[str]] = {}
        for name in self.cards:
            keys.setdefault(name_key(name), []).append(name)
        self._by_key = {k: v[0] for k, v in keys.items() if len(v) == 1}  # unambiguous spellings only
        self.id2label: dict[str, list[str]] = {}
        self.label_source: dict[str, str] = {}
        for _, row in records.models.iterrows():
            raw = row.get("labels")
            if not isinstance(raw, str) or not raw.strip():
                continue
            if raw.strip().startswith("["):
                try:
                    names = informative([str(x) for x in ast.literal_eval(raw)])
                except (ValueError, SyntaxError):
                    names = None
                if names:
                    self.id2label[row["model"]] = names
            else:  # the image file names the label set by its dataset (`imagenet`, `eurosat`, ...)
                self.label_source[row["model"]] = raw.strip()
        self.base = {
            row["model"]: str(row["base_model"])
            for _, row in records.models.iterrows()
            if isinstance(row.get("base_model"), str) and row["base_model"].strip()
        }
        self._encoder = None
        self._emb: dict[str, np.ndarray] = {}

    def card_of(self, dataset: str | None) -> dict | None:
        from hf_spider.ranker.features import name_key

        if not dataset:
            return None
        if dataset in self.cards:
            return self.cards[dataset]
        name = self._by_key.get(name_key(dataset))
        return self.cards.get(name) if name else None

    def source_labels(self, model: str) -> list[str] | None:
        names: list[str] = []
        sources = list(self.tokens[model].datasets) + (
            [self.label_source[model]] if model in self.label_source else []
        )
        for ds in sources:
            card = self.card_of(ds)
            if card:
                names += informative(card.get("label_names")) or []
        return list(dict.fromkeys(names)) or None

    def source_description(self, model: str) -> str | None:
        for ds in self.tokens[model].datasets:
            card = self.card_of(ds)
            if card and card.get("description"):
                return card["description"]
        return None

    def embed(self, texts: list[str]) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._emb]
        if todo:
            if self._encoder is None:
                from sentence_transformers import SentenceTransformer

                from hf_spider._paths import zoo_dir

                self._encoder = SentenceTransformer(MINILM, cache_folder=str(zoo_dir() / "hub"), device="cpu")
            vecs = self._encoder.encode(todo, normalize_embeddings=True, batch_size=64)
            self._emb.update(zip(todo, np.asarray(vecs, dtype=np.float64), strict=True))
        return np.stack([self._emb[t] for t in texts]) if texts else np.zeros((0, 384))

    def feature(self, name: str, meta: Mapping[str, Any], models: list[str]) -> np.ndarray:
        """One feature of `models` for the dataset of `meta`; NaN where it cannot be computed."""
        out = np.full(len(models), np.nan)
        target = informative(meta.get("label_names"))
        if name in ("id2label", "source_labels"):
            if not target:
                return out
            wanted = {_norm(x) for x in target}
            for i, m in enumerate(models):
                have = self.id2label.get(m) if name == "id2label" else self.source_labels(m)
                if have:
                    # coverage: the share of the dataset's classes the model's label set names
                    out[i] = len(wanted & {_norm(x) for x in have}) / len(wanted)
            return out
        if name == "label_embedding":
            if not target:
                return out
            t = self.embed(target)
            for i, m in enumerate(models):
                have = list(dict.fromkeys((self.id2label.get(m) or []) + (self.source_labels(m) or [])))
                if have:
                    # each class of the dataset by its closest label of the model, averaged
                    out[i] = float((t @ self.embed(have).T).max(axis=1).mean())
            return _centred(out)
        if name == "card_text":
            text = meta.get("description")
            if not text:
                return out
            t = self.embed([text])[0]
            for i, m in enumerate(models):
                src = self.source_description(m)
                if src:
                    out[i] = float(self.embed([src])[0] @ t)
            return _centred(out)
        if name == "lineage":
            # models fine-tuned from a base model that also appears among the candidates
            for i, m in enumerate(models):
                base = self.base.get(m) or next(iter(self.tokens[m].base_models), None)
                if base:
                    out[i] = float(base in set(models))
            return out
        if name == "model_index":
            acc = np.array(
                [
                    next(
                        (r.get("value") for r in self.tokens[m].eval_results if r.get("value") is not None),
                        np.nan,
                    )
                    for m in models
                ],
                dtype=np.float64,
            )
            have = np.isfinite(acc)
            if have.sum() >= 2:
                out[have] = rankdata(acc[have]) / have.sum() - 0.5
            return out
        if name == "name_match":
            # control: the name match the prior family already has (`+match0.1`), once more
            from hf_spider.ranker.features import source_match

            return np.array([source_match(self.tokens[m], meta) for m in models])
        raise ValueError(name)


def _centred(values: np.ndarray) -> np.ndarray:
    have = np.isfinite(values)
    if have.any():
        values = values.copy()
        values[have] -= np.median(values[have])
    return values


# ---------------------------------------------------------------- evaluation
def _tau(gt, scores) -> float:
    return float(weightedtau(gt, scores).statistic)


def _regret(gt, scores) -> float:
    gt = np.asarray(gt, dtype=np.float64)
    return float(100.0 * (gt.max() - gt[int(np.argmax(scores))]))


def _first_pick(scores: np.ndarray, se: np.ndarray, c: float) -> np.ndarray:
    """The ranking of `scores` with the candidate of the best `score - c * se` moved to the top."""
    if c <= 0:
        return scores
    out = np.asarray(scores, dtype=np.float64).copy()
    pick = int(np.argmax(out - c * se))
    out[pick] = out.max() + 1e-6
    return out


def _toward(scores: np.ndarray, other: np.ndarray, share: float) -> np.ndarray:
    """The ranking of `scores` with the first pick taken from `(1 - share) * rank(scores) + share *
    rank(other)` (ranks as fractions; a model without `other` counts as the lowest)."""
    if share <= 0:
        return scores
    n = len(scores)
    other = np.where(np.isfinite(other), other, -np.inf)
    mixed = (1.0 - share) * rankdata(scores) / n + share * rankdata(other) / n + 1e-9 * rankdata(scores)
    out = np.asarray(scores, dtype=np.float64).copy()
    out[int(np.argmax(mixed))] = out.max() + 1e-6
    return out


def _standard_errors(pct: np.ndarray) -> np.ndarray:
    have = np.isfinite(pct)
    n = have.sum(axis=1)
    x = np.where(have, pct, 0.0)
    mean = x.sum(axis=1) / np.maximum(n, 1)
    sd = np.sqrt(((x - mean[:, None]) ** 2 * have).sum(axis=1) / np.maximum(n - 1, 1))
    return np.where(n >= 2, sd / np.sqrt(np.maximum(n, 1)), 0.5)


_STATE: dict[str, Any] = {}


def _job(args: tuple[str, list[str], np.ndarray, list[str], list[str], int]) -> dict[str, Any]:
    import torch
    from threadpoolctl import threadpool_limits

    from hf_spider.ranker import cold as C
    from hf_spider.ranker import priors as P
    from hf_spider.ranker.evaluation import ranking_metrics
    from hf_spider.ranker.inference import dataset_context, history_percentiles, score_context
    from hf_spider.ranker.model import RankerConfig
    from hf_spider.ranker.selection import nested_choice, prior_folds, select_parts

    dataset, models, gt, train, hidden, seed = args
    records, tokens, content = _STATE["records"], _STATE["tokens"], _STATE["content"]
    torch.set_num_threads(1)
    modality = records.modality_of(dataset)
    out: dict[str, Any] = {"metrics": {}, "accepted": {}}
    with threadpool_limits(1), C.chosen_for(records, {modality: train}, tokens, exclude_models=set(hidden)):
        config, parts = select_parts(
            records, train, tokens, RankerConfig(), seed=seed, exclude_models=set(hidden), step_grid=(0,)
        )
        choice = P.PriorChoice.from_config(config)
        ctx = dataset_context(
            records,
            dataset,
            models,
            train,
            tokens,
            exclude_models=set(hidden),
            prior=config.prior,
            card_shrink=config.card_shrink,
            match_bonus=config.match_bonus,
        )
        base = score_context(None, ctx)
        out["prior"] = parts["prior"]
        out["metrics"]["spider"] = ranking_metrics(gt, base)
        folds = list(prior_folds(records, train, exclude_models=set(hidden), tokens=tokens, with_card=True))
        gts = [f.gt.to_numpy() for f in folds]
        priors: dict[tuple[int, int | None], np.ndarray] = {}

        def prior(i: int, h: int | None) -> np.ndarray:
            if (i, h) not in priors:
                priors[(i, h)] = folds[i].prior(choice, None if h is None else folds[h].dataset)
            return priors[(i, h)]

        meta = records.dataset_meta(dataset)
        for name in FEATURES:
            per_fold = [
                np.nan_to_num(content.feature(name, records.dataset_meta(f.dataset), list(f.gt.index)))
                for f in folds
            ]
            test = np.nan_to_num(content.feature(name, meta, models))
            if not any(v.any() for v in per_fold) and not test.any():
                out["accepted"][name] = None  # nothing to learn from: the feature is absent
                continue

            def score(i, h, b, per_fold=per_fold):
                return _tau(gts[i], prior(i, h) + b * per_fold[i])

            b, info = nested_choice(score, len(folds), [0.0, *BONUSES], 0.0, config.residual_margin)
            out["accepted"][name] = {"bonus": b, **_plain(info)}
            out["metrics"][f"spider+{name}"] = ranking_metrics(gt, base + b * test)
        # item 5: a first pick with stronger evidence
        se_folds = [_standard_errors(f.pct) for f in folds]

        def pick_score(i, h, c):
            if h is None:
                se = se_folds[i]
            else:  # the second held-out dataset leaves the evidence too
                keep = np.array([col != folds[h].dataset for col in folds[i].columns])
                se = _standard_errors(folds[i].pct[:, keep])
            return -_regret(gts[i], _first_pick(prior(i, h), se, c))

        c, info = nested_choice(pick_score, len(folds), [0.0, *FIRST_PICK_C], 0.0, REGRET_MARGIN)
        pct = history_percentiles(records, modality, train, set(hidden)).reindex(models)
        se = _standard_errors(pct.to_numpy(dtype=np.float64))
        out["accepted"]["first_pick"] = {"c": c, **_plain(info)}
        out["metrics"]["spider+first_pick"] = ranking_metrics(gt, _first_pick(base, se, c))
        # item 5: the first pick shrunk toward `static` (mean z-scored accuracy, failed runs in)
        runs = records.perf[
            records.perf["dataset"].isin(set(train)) & ~records.perf["model"].isin(set(hidden))
        ]
        acc = runs.pivot_table(index="model", columns="dataset", values="accuracy")

        def static_pick(scores, models_, drop, share):
            static = P.static_scores(acc.drop(columns=[d for d in drop if d in acc.columns]), models_)
            return _toward(scores, static, share)

        def static_score(i, h, share):
            drop = [folds[i].dataset] + ([] if h is None else [folds[h].dataset])
            return -_regret(gts[i], static_pick(prior(i, h), list(folds[i].gt.index), drop, share))

        share, info = nested_choice(static_score, len(folds), [0.0, *STATIC_SHARES], 0.0, REGRET_MARGIN)
        out["accepted"]["static_pick"] = {"share": share, **_plain(info)}
        out["metrics"]["spider+static_pick"] = ranking_metrics(gt, static_pick(base, models, [], share))
    return out


def shipped_decision(modality: str) -> dict[str, Any]:
    """What nested CV decides for each feature on the shipped ranker's own training data (every
    usable dataset of the shared and zoo records of `modality`, the records' accuracy, as
    `hf-spider train` reads them): the decision that puts a feature in the product or not."""
    from hf_spider.ranker import cold as C
    from hf_spider.ranker import priors as P
    from hf_spider.ranker.model import RankerConfig
    from hf_spider.ranker.records import load_records
    from hf_spider.ranker.selection import nested_choice, prior_folds, select_parts
    from hf_spider.ranker.task_cards import card_meta, read_task_cards
    from hf_spider.ranker.tokens import tokens_for

    records = load_records([SHARED / modality, ROOT / "benchmarks" / "zoo_records" / modality])
    cards, _ = read_task_cards(CARDS, records.dataset_names)
    records = records.with_task_cards(cards)
    tokens, _ = tokens_for(records)
    every = {p.parent.name.replace("__", "/"): p for p in CARDS.glob("*/README.md")}
    content = Content(records, tokens, {name: card_meta(p) for name, p in every.items()})
    usable = records.datasets[(records.datasets["modality"] == modality) & ~records.datasets["failed"]]
    train = list(usable["dataset"])
    out: dict[str, Any] = {}
    with C.chosen_for(records, {modality: train}, tokens):
        config, parts = select_parts(records, train, tokens, RankerConfig(), step_grid=(0,))
        choice = P.PriorChoice.from_config(config)
        folds = list(prior_folds(records, train, tokens=tokens, with_card=True))
        out["prior"] = parts["prior"]
        for name in FEATURES:
            per_fold = [
                np.nan_to_num(content.feature(name, records.dataset_meta(f.dataset), list(f.gt.index)))
                for f in folds
            ]
            if not any(v.any() for v in per_fold):
                out[name] = None
                continue

            def score(i, h, b, per_fold=per_fold):
                drop = None if h is None else folds[h].dataset
                return _tau(folds[i].gt.to_numpy(), folds[i].prior(choice, drop) + b * per_fold[i])

            b, info = nested_choice(score, len(folds), [0.0, *BONUSES], 0.0, config.residual_margin)
            gains = [score(i, None, info["best"]) - score(i, None, 0.0) for i in range(len(folds))]
            out[name] = {
                "bonus": b,
                **_plain(info),
                "gain_by_dataset": {f.dataset: round(g, 4) for f, g in zip(folds, gains, strict=True) if g},
            }
    return out


def _plain(info: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in info.items()}


def run(modality: str, cold: bool, workers: int, progress: Callable[[str], None] = print) -> dict:
    from hf_spider.ranker.evaluation import _cold_folds, _ground_truth
    from hf_spider.ranker.records import load_records
    from hf_spider.ranker.task_cards import read_task_cards
    from hf_spider.ranker.tokens import tokens_for

    started = time.perf_counter()
    records = load_records([SHARED / modality]).with_ground_truth("best_eval")
    cards, missing = read_task_cards(CARDS, records.dataset_names)
    records = records.with_task_cards(cards)
    tokens, _ = tokens_for(records)
    # cards of every dataset the project has one for: the models' source datasets too
    every = {p.parent.name.replace("__", "/"): p for p in CARDS.glob("*/README.md")}
    from hf_spider.ranker.task_cards import card_meta

    content = Content(records, tokens, {name: card_meta(p) for name, p in every.items()})
    _STATE.update(records=records, tokens=tokens, content=content)
    predictions = records.predictions
    tests = sorted(set(predictions["dataset"]) & set(records.perf["dataset"]))
    usable = records.datasets[(records.datasets["modality"] == modality) & ~records.datasets["failed"]]
    jobs = []
    for dataset in tests:
        models, gt = _ground_truth(records, dataset, "transfergraph", predictions, [])
        train = [t for t in usable["dataset"] if t != dataset]
        folds = _cold_folds(models, 0) if cold else [[]]
        jobs += [(dataset, models, gt, train, hidden, i) for i, hidden in enumerate(folds)]
    if workers > 1:
        import multiprocessing

        # the encoder is loaded once, before forking
        for name in ("label_embedding", "card_text"):
            content.feature(name, records.dataset_meta(tests[0]), list(tokens)[:2])
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            outcomes = list(pool.map(_job, jobs))
    else:
        outcomes = [_job(j) for j in jobs]
    per_dataset: dict[str, dict] = {}
    for dataset in tests:
        mine = [o for j, o in zip(jobs, outcomes, strict=True) if j[0] == dataset]
        methods = [m for m in mine[0]["metrics"] if all(m in o["metrics"] for o in mine)]
        per_dataset[dataset] = {
            "metrics": {
                m: {
                    k: float(np.mean([o["metrics"][m][k] for o in mine]))
                    for k in ("tau_w_rank_true", "top1_regret")
                }
                for m in methods
            },
            "accepted": [o["accepted"] for o in mine],
            "prior": [o["prior"] for o in mine],
        }
    methods = sorted({m for d in per_dataset.values() for m in d["metrics"]}, key=_order)
    summary = {}
    for m in methods:
        have = [d for d in per_dataset.values() if m in d["metrics"]]
        key = m.split("+", 1)[1] if "+" in m else None
        folds = [a.get(key) for d in have for a in d["accepted"]] if key else []
        summary[m] = {
            "tau_w": float(np.mean([d["metrics"][m]["tau_w_rank_true"] for d in have])),
            "regret_mean": float(np.mean([d["metrics"][m]["top1_regret"] for d in have])),
            "regret_max": float(max(d["metrics"][m]["top1_regret"] for d in have)),
            "datasets": len(have),
            "accepted_folds": sum(
                bool(f and f.get("kept") and (f.get("bonus") or f.get("c") or f.get("share"))) for f in folds
            )
            if key
            else None,
            "folds": len(folds) if key else None,
        }
    absent = [f for f in FEATURES if f"spider+{f}" not in summary]
    return {
        "modality": modality,
        "setting": "TransferGraph protocol, cold start" if cold else "TransferGraph protocol, LODO",
        "summary": summary,
        "absent_features": absent,
        "datasets": per_dataset,
        "cards_missing": missing,
        "seconds": round(time.perf_counter() - started, 1),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "load": os.getloadavg()[0],
    }


def _order(method: str) -> tuple[int, str]:
    if "+" not in method:
        return (0, "")
    key = method.split("+", 1)[1]
    return (1 + (FEATURES.index(key) if key in FEATURES else len(FEATURES)), key)


def markdown(results: list[dict]) -> str:
    """One row per method, one column per (modality, setting): mean tau_w (rank=True), top-1
    regret mean / max (points), and in how many outer folds nested CV kept the feature."""
    results = sorted(results, key=lambda r: (r["modality"], "cold" in r["setting"]))
    columns = [(r["modality"], r["setting"].split(", ", 1)[1], r) for r in results]
    methods = sorted({m for r in results for m in r["summary"]}, key=_order)
    head = "| method | " + " | ".join(f"{m} {s}" for m, s, _ in columns) + " |"
    lines = [head, "| --- |" + " ---: |" * len(columns)]
    for method in methods:
        cells = []
        for _, _, r in columns:
            s = r["summary"].get(method)
            if s is None:
                cells.append("absent")
                continue
            kept = "" if s["accepted_folds"] is None else f" (kept {s['accepted_folds']}/{s['folds']})"
            cells.append(f"{s['tau_w']:.3f}, {s['regret_mean']:.2f} / {s['regret_max']:.2f}{kept}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    absent = sorted(set.intersection(*(set(r["absent_features"]) for r in results))) if results else []
    if absent:
        lines.append(f"\nAbsent from every run (no model or dataset has it): {', '.join(absent)}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modality", nargs="+", default=["image", "text"])
    parser.add_argument("--cold", action="store_true", help="cold start (else LODO)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--markdown", action="store_true", help="print the table of the saved results")
    parser.add_argument(
        "--shipped", action="store_true", help="the decision on the shipped ranker's training data"
    )
    args = parser.parse_args()
    if args.shipped:
        result = {m: shipped_decision(m) for m in args.modality}
        (RESULTS / "content_ablation_shipped.json").write_text(json.dumps(result, indent=1) + "\n")
        print(json.dumps(result, indent=1))
        return
    if args.markdown:
        saved = sorted(RESULTS.glob("content_ablation_*_*.json"))
        print(markdown([json.loads(p.read_text()) for p in saved]))
        return
    for modality in args.modality:
        result = run(modality, args.cold, args.workers)
        path = RESULTS / f"content_ablation_{modality}_{'cold' if args.cold else 'lodo'}.json"
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(markdown([result]))
        print(f"{path} ({result['seconds']} s)")


if __name__ == "__main__":
    main()
