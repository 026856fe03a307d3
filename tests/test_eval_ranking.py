"""`hf-spider eval ranking`: protocols, baselines, metrics, JSON and predictions, nested selection
and its fallback, determinism, cold start, user errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import weightedtau

from hf_spider.cli import main
from hf_spider.errors import UserInputError
from hf_spider.ranker.evaluation import METRICS, evaluate_ranking, ranking_metrics
from hf_spider.ranker.model import RankerConfig
from hf_spider.ranker.records import load_records

FAST = RankerConfig(steps=10, ensemble=1, step_grid=(5, 10), inner_folds=2, min_residual_datasets=3)


def make_records(
    folder: Path, *, modality: str = "image", n_models: int = 16, n_targets: int = 5, seed: int = 0
) -> Path:
    """Synthetic records of the shared schema: accuracy grows with model size, plus noise."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arch = "ViTForImageClassification" if modality == "image" else "BertForSequenceClassification"
    models = [f"org/{modality}-{i}" for i in range(n_models)]
    params = np.geomspace(5e6, 3e8, n_models)
    quality = (np.log(params) - np.log(params).mean()) / np.log(params).std()
    cfg = pd.DataFrame(
        {
            "model": models,
            "architectures": [f"['{arch}']"] * n_models,
            "model_type": ["vit" if modality == "image" else "bert"] * n_models,
            "number_of_parameters": params,
            "dataset": ["imagenet-21k" if i % 2 else "beans" for i in range(n_models)],
        }
    )
    cfg.to_csv(folder / "model_config.csv", index=False)
    rows, scores, targets = [], [], []
    for t in range(n_targets):
        name = f"{modality}_target_{t}"
        targets.append({"target_dataset": name, "size": 1000 * (t + 1), "number_of_classes": 2 + 3 * t})
        acc = np.clip(0.7 + 0.08 * quality + 0.03 * rng.standard_normal(n_models), 0.01, 0.999)
        for m, a in zip(models, acc, strict=True):
            rows.append({"model": m, "finetuned_dataset": name, "eval_accuracy": a, "test_accuracy": a})
            if t < 2:
                scores.append(
                    {
                        "model": m,
                        "target_dataset": name,
                        "metric": "TransferabilityMethod.LOG_ME",
                        "score": a + 0.05 * rng.standard_normal(),
                    }
                )
    pd.DataFrame(rows).to_csv(folder / "records.csv", index=False)
    pd.DataFrame(scores).to_csv(folder / "transferability_scores.csv", index=False)
    pd.DataFrame(targets).to_csv(folder / "target_datasets.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    return make_records(root / "image", modality="image"), make_records(
        root / "text", modality="text", n_models=12, n_targets=4
    )


def test_ranking_metrics_follow_the_definitions():
    gt = np.array([0.9, 0.8, 0.7, 0.6])
    perfect = ranking_metrics(gt, np.array([4.0, 3.0, 2.0, 1.0]))
    assert perfect["tau_w_rank_true"] == pytest.approx(1.0) and perfect["top1_regret"] == 0.0
    worst = ranking_metrics(gt, np.array([1.0, 2.0, 3.0, 4.0]))
    assert worst["tau_w_rank_true"] == pytest.approx(-1.0)
    assert worst["top1_regret"] == pytest.approx(30.0)  # accuracy points
    assert worst["hit_at_3"] == 0.0 and perfect["hit_at_3"] == 1.0
    s = np.array([2.0, 4.0, 1.0, 3.0])
    assert ranking_metrics(gt, s)["tau_w_rank_none"] == pytest.approx(weightedtau(gt, s, rank=None).statistic)
    assert set(perfect) == set(METRICS)


def test_lodo_shape_and_determinism(data_dirs):
    recs = load_records(list(data_dirs))
    datasets = ["image_target_0"]
    first = evaluate_ranking(recs, datasets, config=FAST, tune=True, seed=3, catalog=False)
    again = evaluate_ranking(recs, datasets, config=FAST, tune=True, seed=3, catalog=False, workers=2)
    chosen = first["protocol"]["chosen"]["image_target_0"]
    assert chosen["steps"] in (0, *FAST.step_grid) and chosen["learned_residual"] == (chosen["steps"] > 0)
    assert first["datasets"] == again["datasets"]  # deterministic for a seed, whatever the workers
    assert set(first["datasets"]) == set(datasets)
    img = first["datasets"]["image_target_0"]
    assert {
        "spider",
        "spider_fused",
        "spider_rerank",
        "static",
        "random",
        "params",
        "collaborative",
        "logme",
    } <= set(img)
    text = evaluate_ranking(recs, ["text_target_3"], config=FAST, tune=False, catalog=False)
    assert "logme" not in text["datasets"]["text_target_3"]  # no scores there
    for metrics in img.values():
        assert set(metrics) == set(METRICS)
        assert metrics["n_models"] == 16
    # size drives accuracy in this data: the learned ranker and the size baseline must see it
    assert img["params"]["tau_w_rank_true"] > 0.5
    assert first["mean"]["spider"]["tau_w_rank_true"] > 0.3
    assert first["mean"]["spider"]["n_datasets"] == 1
    assert first["parts"]["folds"] == 1 and sum(first["parts"]["prior"].values()) == 1


def test_a_dataset_with_nothing_to_rank_is_left_out_and_said(data_dirs, tmp_path):
    """A held-out dataset whose models all have one accuracy has no order to score: it is left out
    with a note instead of turning every mean into NaN; with no other dataset, one clear error."""
    folder = tmp_path / "tied"
    shutil.copytree(data_dirs[1], folder)
    rows = pd.read_csv(folder / "records.csv")
    tied = rows["finetuned_dataset"] == "text_target_3"
    rows.loc[tied, ["eval_accuracy", "test_accuracy"]] = 0.61
    rows.to_csv(folder / "records.csv", index=False)
    recs = load_records([folder])
    result = evaluate_ranking(
        recs, ["text_target_2", "text_target_3"], config=FAST, tune=False, catalog=False
    )
    assert list(result["datasets"]) == ["text_target_2"]
    assert np.isfinite(result["mean"]["spider"]["tau_w_rank_true"])
    assert any(
        n.startswith("text_target_3: left out, nothing to rank (all 12 models")
        for n in result["protocol"]["notes"]
    )
    with pytest.raises(UserInputError, match="nothing to rank"):
        evaluate_ranking(recs, ["text_target_3"], config=FAST, tune=False, catalog=False)


def test_a_dataset_with_few_models_is_scored_and_said_to_be_coarse(data_dirs, tmp_path):
    """With 3 models a tau_w moves in big steps and hit@3 is certain: the dataset is kept in the
    means (the protocol does not change with the data), and the notes say so."""
    folder = tmp_path / "few"
    shutil.copytree(data_dirs[1], folder)
    rows = pd.read_csv(folder / "records.csv")
    few = rows["finetuned_dataset"] == "text_target_3"
    rows = rows[~few | rows["model"].isin(sorted(set(rows.loc[few, "model"]))[:3])]
    rows.to_csv(folder / "records.csv", index=False)
    result = evaluate_ranking(
        load_records([folder]), ["text_target_2", "text_target_3"], config=FAST, tune=False, catalog=False
    )
    assert list(result["datasets"]) == ["text_target_2", "text_target_3"]
    notes = result["protocol"]["notes"]
    assert any(n.startswith("text_target_3: only 3 models to rank") for n in notes)
    assert not any(n.startswith("text_target_2: only") for n in notes)


def test_test_dataset_never_in_training(data_dirs, monkeypatch):
    """Every context the ranker trains on (inner CV included) comes from other datasets."""
    from hf_spider.ranker import training

    seen: list[str] = []
    real = training.build_context

    def spy(task, *args, **kwargs):
        if kwargs.get("y", args[4] if len(args) > 4 else None) is not None:
            seen.append(task["name"])
        return real(task, *args, **kwargs)

    monkeypatch.setattr(training, "build_context", spy)
    recs = load_records([data_dirs[0]])
    evaluate_ranking(recs, ["image_target_1"], config=FAST, tune=True, catalog=False)
    assert seen and "image_target_1" not in seen


def test_cold_start_hides_models(data_dirs):
    recs = load_records([data_dirs[0]])
    out = evaluate_ranking(recs, ["image_target_2"], cold_start=True, config=FAST, tune=False, catalog=False)
    assert out["protocol"]["cold_folds"] == 5
    row = out["datasets"]["image_target_2"]
    assert set(row) >= {"spider", "collaborative", "params", "static"}
    assert row["spider"]["n_models"] == 16
    # every model is cold in exactly one fold
    cold = pd.DataFrame(out["predictions"]).query("method == 'spider' and cold")
    assert sorted(cold["model"]) == sorted(set(cold["model"])) and cold["model"].nunique() == 16
    # 13 or more models keep history in every fold: the card prior places the hidden ones
    assert out["parts"]["cold_placement"] == {"card prior": 5}


def test_cold_start_by_families_hides_whole_families(data_dirs, tmp_path):
    """`cold_start="families"`: every fold hides whole model families (a catalog of architectures
    the records never saw), including the family's models that are not evaluated on the dataset;
    every evaluated model is hidden in exactly one fold."""
    from hf_spider.ranker.evaluation import _cold_folds, model_family
    from hf_spider.ranker.tokens import tokens_for

    folder = tmp_path / "families"
    shutil.copytree(data_dirs[0], folder)
    cfg = pd.read_csv(folder / "model_config.csv")
    types = ["vit", "swin", "convnext", "beit", "deit", "vit", "swin", "vit"]
    cfg["model_type"] = [types[i % len(types)] for i in range(len(cfg))]
    extra = {"model": "org/swin-extra", "model_type": "swin", "number_of_parameters": 3e7}
    pd.concat([cfg, pd.DataFrame([extra])]).to_csv(folder / "model_config.csv", index=False)
    records = pd.read_csv(folder / "records.csv")
    more = [{"model": "org/swin-extra", "finetuned_dataset": "image_target_0", "eval_accuracy": 0.8}]
    pd.concat([records, pd.DataFrame(more)]).to_csv(folder / "records.csv", index=False)
    recs = load_records([folder])
    tokens, _ = tokens_for(recs, catalog=False)
    family = {m: model_family(m, tokens) for m in tokens}
    assert family["org/swin-extra"] == "swin" and len(set(family.values())) == 5

    out = evaluate_ranking(
        recs, ["image_target_2"], cold_start="families", config=FAST, tune=False, catalog=False
    )
    assert out["protocol"]["cold_by"] == "families" and out["protocol"]["cold_start"] is True
    pred = pd.DataFrame(out["predictions"]).query("method == 'spider'")
    cold = pred[pred["cold"]]
    assert sorted(cold["model"]) == sorted(set(cold["model"])) and cold["model"].nunique() == 16
    by_fold = cold.groupby("fold")["model"].apply(lambda ms: {family[m] for m in ms})
    seen: set[str] = set()
    for families in by_fold:  # no family is split across two folds
        assert not families & seen
        seen |= families
    assert seen == set(family.values())

    evaluated = sorted(m for m in family if m != "org/swin-extra")
    folds = _cold_folds(evaluated, 0, "families", tokens, set(family))
    swin = next(f for f in folds if "org/swin-extra" in f)
    assert {m for m in swin if family[m] == "swin"} == {m for m in family if family[m] == "swin"}
    # the largest family (vit: 6 models) fills a fold of its own; the folds hide 16 models in all
    sizes = sorted(len([m for m in f if m in evaluated]) for f in folds)
    assert sum(sizes) == 16 and sizes[-1] == 6
    assert _cold_folds(evaluated, 0, "families", tokens) == _cold_folds(evaluated, 0, "families", tokens)
    # records of one family (every model a vit): hiding it leaves nothing to rank from
    with pytest.raises(UserInputError, match="leaves 0 model"):
        evaluate_ranking(
            load_records([data_dirs[0]]), ["image_target_2"], cold_start="families", catalog=False
        )


def test_cold_models_sit_at_the_median_where_too_few_models_check_the_card_prior(data_dirs):
    """12 models in 5 cold folds of 3, 3, 2, 2, 2: the folds left with 9 models with history
    cannot cross-validate the card prior, and say so."""
    recs = load_records([data_dirs[1]])
    prior_only = RankerConfig(steps=0, ensemble=1)
    out = evaluate_ranking(
        recs, ["text_target_1"], cold_start=True, config=prior_only, tune=False, catalog=False
    )
    assert out["parts"]["cold_placement"] == {"card prior": 3, "median": 2}
    pred = pd.DataFrame(out["predictions"]).query("method == 'spider'")
    spreads = {}
    for _, fold in pred.groupby("fold"):
        cold, warm = fold[fold["cold"]], fold[~fold["cold"]]
        spreads[len(cold)] = np.ptp(cold["score"].to_numpy())
        if len(cold) == 3:  # at the median of the others: one score for every hidden model
            assert cold["score"].iloc[0] == pytest.approx(float(np.median(warm["score"])), abs=1e-6)
    assert spreads[3] < 1e-9 < spreads[2]  # the card prior tells the hidden models apart


class _FakeResidual(torch.nn.Module):
    """A stand-in for the network: the prior at step 0, then `sign` times it (a residual that helps
    or hurts by construction)."""

    def __init__(self, sign: float):
        super().__init__()
        self.sign = sign
        self.step = 0
        self.config = {}  # the network's configuration, as inference reads it (no task data token)

    def forward(self, model_x, summary, *rest):
        return (1.0 if self.step == 0 else self.sign) * summary[:, 0]


@pytest.mark.parametrize("sign, residual", [(-1.0, False), (1.0, False)])
def test_learned_part_falls_back_to_the_prior_unless_it_beats_it(data_dirs, monkeypatch, sign, residual):
    """Nested selection: a learned part worse than the prior (or merely as good) is not used; the
    ranker falls back to its prior, and the result says so."""
    from hf_spider.ranker import selection, training

    def fake_fit(contexts, config, *, seed=0, meta=None, checkpoints=None):
        model = _FakeResidual(sign)
        for step in sorted(checkpoints or {}):
            model.step = step
            checkpoints[step](model)
        return model

    monkeypatch.setattr(training, "fit", fake_fit)
    recs = load_records([data_dirs[0]])
    steps, means = selection.select_steps(recs, recs.dataset_names[1:], _tokens(recs), FAST)
    assert set(means) == {0, 5, 10}
    assert steps == 0
    if sign < 0:
        assert means[10] < means[0] - 0.5
    out = evaluate_ranking(recs, ["image_target_0"], config=FAST, catalog=False, methods=["spider"])
    chosen = out["protocol"]["chosen"]["image_target_0"]
    assert chosen["learned_residual"] is residual and chosen["steps"] == 0
    assert out["parts"]["learned_residual_used"] == 0


def test_learned_part_is_kept_when_it_beats_the_prior(data_dirs, monkeypatch):
    from hf_spider.ranker import selection, training

    recs = load_records([data_dirs[0]])
    truth = recs.perf.set_index(["dataset", "model"])["accuracy"]

    class Oracle(_FakeResidual):
        def forward(self, model_x, summary, *rest):
            return summary[:, 0] if self.step == 0 else self.gt

    def fake_fit(contexts, config, *, seed=0, meta=None, checkpoints=None):
        model = Oracle(1.0)
        for step in sorted(checkpoints or {}):
            model.step = step
            checkpoints[step](model)
        return model

    real_record = selection.score_context

    def score_with_truth(model, ctx, use_features=True):
        if isinstance(model, Oracle):
            model.gt = torch.tensor([truth[(ctx.task["name"], m)] for m in ctx.models])
        return real_record(model, ctx, use_features=use_features)

    monkeypatch.setattr(training, "fit", fake_fit)
    monkeypatch.setattr(selection, "score_context", score_with_truth)
    steps, means = selection.select_steps(recs, recs.dataset_names, _tokens(recs), FAST)
    assert steps == 5 and means[5] == pytest.approx(1.0)  # the fewest steps among equals


def _tokens(recs):
    from hf_spider.ranker.tokens import tokens_for

    return tokens_for(recs, catalog=False)[0]


def _protocol_records(folder: Path) -> Path:
    """Synthetic records in the shared text schema with LoRA rows that beat the full fine-tunes, a
    repeated full fine-tune, and TransferGraph predictions for a subset of the models."""
    folder = make_records(folder, modality="text", n_models=10, n_targets=4)
    records = pd.read_csv(folder / "records.csv").drop(columns="test_accuracy")
    records["peft_method"] = ""
    lora = records.copy()
    lora["eval_accuracy"] = 1.0 - 0.01 * np.arange(len(lora))  # far better, and in reverse order
    lora["peft_method"] = "lora"
    again = records.iloc[:1].copy()
    again["eval_accuracy"] = 0.995  # a repeat of the first run: its best counts
    pd.concat([records, lora, again]).to_csv(folder / "records.csv", index=False)
    wanted = [f"org/text-{i}" for i in (1, 0, 3, 5, 7, 9)] + ["org/not-fine-tuned"]
    pd.DataFrame(
        {
            "target_dataset": "text_target_0",
            "model": [*wanted, "org/text-1"],  # a repeated row: the first counts
            "score": [float(i) for i in range(len(wanted))] + [-100.0],
            "method": "xgb",
        }
    ).to_csv(folder / "transfergraph_predictions.csv", index=False)
    return folder


def test_transfergraph_protocol_uses_best_full_finetune_and_the_predicted_models(tmp_path):
    folder = _protocol_records(tmp_path / "text")
    recs = load_records([folder])
    out = evaluate_ranking(
        recs, protocol="transfergraph", methods=["static", "transfergraph", "params"], catalog=False
    )
    assert list(out["datasets"]) == ["text_target_0"]  # the datasets with predictions
    row = out["datasets"]["text_target_0"]
    assert row["static"]["n_models"] == 6  # the prediction file's models that have a record
    assert any("1 predicted models have no full fine-tune record" in n for n in out["protocol"]["notes"])
    preds = pd.DataFrame(out["predictions"])
    assert set(preds["model"]) == {f"org/text-{i}" for i in (1, 0, 3, 5, 7, 9)}
    # ground truth: the best full fine-tune (the repeat at 0.995 of org/text-0), never a LoRA run
    rows = pd.read_csv(folder / "records.csv")
    full = (
        rows[rows["peft_method"].fillna("") != "lora"]
        .groupby(["finetuned_dataset", "model"])["eval_accuracy"]
        .max()
    )
    gt = full["text_target_0"].reindex([f"org/text-{i}" for i in (1, 0, 3, 5, 7, 9)]).to_numpy()
    assert gt.max() == pytest.approx(0.995)
    tg = preds[preds["method"] == "transfergraph"].set_index("model")["score"]
    assert tg["org/text-1"] == 0.0  # the first of the repeated rows
    expected = ranking_metrics(gt, tg.reindex([f"org/text-{i}" for i in (1, 0, 3, 5, 7, 9)]).to_numpy())
    assert row["transfergraph"] == pytest.approx(expected)
    weights = out["protocol"]["gap_weights"]
    assert weights["text_target_0"] == pytest.approx(gt.max() - gt.mean(), abs=1e-4)


SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "transfergraph"


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared records absent")
@pytest.mark.parametrize(
    "modality, static, transfergraph",
    [("image", (0.558, 0.578), (0.596, 0.615)), ("text", (0.377, 0.422), (0.437, 0.480))],
)
def test_static_and_transfergraph_reproduce_the_published_protocol_figures(modality, static, transfergraph):
    """`../shared/data/README.md`: TransferGraph's protocol on the targets here, plain / gap-weighted."""
    recs = load_records([SHARED / modality])
    out = evaluate_ranking(recs, protocol="transfergraph", methods=["static", "transfergraph"])
    for method, (plain, weighted) in (("static", static), ("transfergraph", transfergraph)):
        assert out["mean"][method]["tau_w_rank_true"] == pytest.approx(plain, abs=0.0015), method
        assert out["mean_weighted"][method]["tau_w_rank_true"] == pytest.approx(weighted, abs=0.0015), method


def test_cli_json_predictions_and_errors(data_dirs, tmp_path, capsys):
    out = tmp_path / "res.json"
    preds = tmp_path / "preds.csv"
    code = main(
        [
            "eval",
            "ranking",
            "--data",
            str(data_dirs[0]),
            "--test-datasets",
            "image_target_0,image_target_4",
            "--no-tune",
            "--steps",
            "10",
            "--ensemble",
            "1",
            "--json",
            str(out),
            "--predictions",
            str(preds),
        ]
    )
    assert code == 0
    payload = json.loads(out.read_text())
    assert set(payload) >= {"datasets", "mean", "mean_weighted", "parts", "protocol"}
    assert "predictions" not in payload  # they go to the CSV
    assert set(payload["mean"]["spider"]) >= set(METRICS)
    table = pd.read_csv(preds)
    assert list(table.columns) == ["target", "model", "method", "score"]
    methods = set(payload["datasets"]["image_target_0"])
    assert set(table["method"]) == methods and set(table["target"]) == {"image_target_0", "image_target_4"}
    assert len(table) == sum(16 * len(ms) for ms in payload["datasets"].values())
    assert table["score"].notna().all() and not table.duplicated(["target", "model", "method"]).any()
    # the old spelling of the flag still works
    code = main(
        [
            "eval",
            "ranking",
            "--data",
            str(data_dirs[0]),
            "--test-targets",
            "image_target_1",
            "--methods",
            "static",
        ]
    )
    assert code == 0
    capsys.readouterr()
    bad = [
        (["--test-datasets", "no_such_target"], "no_such_target"),
        (["--test-datasets", "image_target_0", "--steps", "0"], "--steps"),
        (["--test-datasets", "image_target_0", "--steps", "5"], "only with --no-tune"),
        (["--protocol", "bogus"], "--protocol"),
        (["--cold-start", "bogus"], "cold start"),
        (["--protocol", "transfergraph"], "transfergraph_predictions.csv"),
        (["--methods", "static,bogus"], "--methods"),
        (["--workers", "0"], "--workers"),
        (["--test-datasets", " , "], "--test-datasets"),
        (["--predictions", str(tmp_path / "missing" / "p.csv")], "--predictions"),
    ]
    for extra, needle in bad:
        code = main(["eval", "ranking", "--data", str(data_dirs[0]), *extra])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0] and "Traceback" not in err[0], extra
    code = main(["eval", "ranking", "--data", str(tmp_path / "nope")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1


def test_catalog_flag_none_reads_model_config_and_a_wrong_path_is_refused(data_dirs, tmp_path, capsys):
    """`--catalog none` ranks models as a catalog that never saw them would (tokens from their
    model_config.csv rows); a --catalog that is not a readable catalog folder stops with one line
    instead of silently falling back to model_config.csv."""
    base = ["eval", "ranking", "--data", str(data_dirs[0]), "--test-datasets", "image_target_1"]
    base += ["--methods", "static,params", "--json"]
    out = tmp_path / "none.json"
    assert main([*base, str(out), "--catalog", "none"]) == 0
    sources = json.loads(out.read_text())["protocol"]["token_sources"]
    assert sources["catalog"] == 0 and sources["model_config"] == 16
    capsys.readouterr()
    empty = tmp_path / "empty_catalog"
    empty.mkdir()
    for value, needle in ((str(tmp_path / "typo"), "not a folder"), (str(empty), "holds no model")):
        code = main([*base, str(tmp_path / "x.json"), "--catalog", value])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and needle in err[0] and "Traceback" not in err[0], value
        assert not (tmp_path / "x.json").exists()


def test_rerank_orders_like_recommend():
    """`spider_rerank`: stage 1's first k re-ranked by the fused score, the rest in stage-1 order
    below them — `probe.rerank`'s order, the one `hf-spider recommend` shows."""
    from hf_spider.probe._probe import rerank
    from hf_spider.ranker.evaluation import rerank_scores
    from hf_spider.ranker.inference import fuse

    rng = np.random.default_rng(0)
    stage1, consensus = rng.normal(size=12), rng.normal(size=12)
    ids = [f"m{i}" for i in range(12)]
    for weight in (0.0, 0.5, 1.0):
        got = [ids[i] for i in np.argsort(-rerank_scores(stage1, consensus, weight, 5), kind="stable")]
        top = np.argsort(-stage1, kind="stable")[:5]
        fused = fuse(stage1[top], consensus[top], weight)
        want = rerank(
            [(ids[i], stage1[i]) for i in np.argsort(-stage1)],
            {ids[i]: f for i, f in zip(top, fused, strict=True)},
        )
        assert got == want
    # weight 0: stage 1's order; weight 1: the first five by the consensus alone
    assert np.array_equal(np.argsort(-rerank_scores(stage1, consensus, 0.0, 5)), np.argsort(-stage1))
    by_consensus = sorted(np.argsort(-stage1)[:5], key=lambda i: -consensus[i])
    assert list(np.argsort(-rerank_scores(stage1, consensus, 1.0, 5))[:5]) == by_consensus


def test_a_cold_start_by_fewer_families_than_folds_says_how_many_folds_ran(data_dirs, tmp_path):
    """Records of 4 families give 4 family folds, not 5: the JSON says 4 and a note says why; the
    cold-start name is read in any case."""
    folder = tmp_path / "four"
    shutil.copytree(data_dirs[0], folder)
    cfg = pd.read_csv(folder / "model_config.csv")
    types = ["vit", "swin", "convnext", "beit"]
    cfg["model_type"] = [types[i % len(types)] for i in range(len(cfg))]
    cfg.to_csv(folder / "model_config.csv", index=False)
    out = evaluate_ranking(
        load_records([folder]),
        ["image_target_2"],
        cold_start="Families ",
        config=FAST,
        tune=False,
        catalog=False,
    )
    assert out["protocol"]["cold_by"] == "families" and out["protocol"]["cold_folds"] == 4
    assert pd.DataFrame(out["predictions"])["fold"].nunique() == 4
    assert any("4 cold fold(s)" in note for note in out["protocol"]["notes"])


def test_a_method_without_a_figure_is_said_and_a_folder_of_dropped_rows_is_refused(
    data_dirs, tmp_path, capsys
):
    """A method asked for that scores no dataset (LogME without transferability scores) is named in
    the notes instead of vanishing from the table; records whose every row was dropped stop with one
    line that says why, not "no records for test dataset(s) []"; `--json` holds no bare NaN."""
    from hf_spider.cli import main

    folder = tmp_path / "noscores"
    shutil.copytree(data_dirs[0], folder)
    (folder / "transferability_scores.csv").unlink(missing_ok=True)
    out = evaluate_ranking(
        load_records([folder]), ["image_target_2"], methods=("static", "logme"), tune=False, catalog=False
    )
    assert set(out["mean"]) == {"static"}
    assert any(n.startswith("logme: no figure on any test dataset") for n in out["protocol"]["notes"])
    one = tmp_path / "one"
    one.mkdir()
    rows = pd.read_csv(data_dirs[0] / "records.csv")
    rows[rows["finetuned_dataset"] == "image_target_2"].to_csv(one / "records.csv", index=False)
    dest = tmp_path / "one.json"
    assert (
        main(
            [
                "eval",
                "ranking",
                "--data",
                str(one),
                "--methods",
                "spider,static",
                "--json",
                str(dest),
            ]
        )
        == 0
    )
    notes = json.loads(dest.read_text())["protocol"]["notes"]
    assert "NaN" not in dest.read_text() and any("no other image dataset to learn from" in n for n in notes)
    capsys.readouterr()
    assert main(["eval", "ranking", "--data", str(one), "--predictions", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    bad = tmp_path / "bad"
    bad.mkdir()
    rows.assign(eval_accuracy="n/a", test_accuracy="n/a").to_csv(bad / "records.csv", index=False)
    capsys.readouterr()
    assert main(["eval", "ranking", "--data", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no usable record rows" in err[0] and "without an accuracy" in err[0], err


def test_families_need_family_names_and_flags_are_read_where_a_user_puts_them(data_dirs, tmp_path, capsys):
    """Records whose models name no family nor model type cannot be split by families (each model
    would be its own); `-v` after the subcommand is read; `--json` naming a folder is refused before
    the run."""
    folder = tmp_path / "nofamily"
    shutil.copytree(data_dirs[0], folder)
    cfg = pd.read_csv(folder / "model_config.csv")
    cfg.drop(columns=[c for c in ("model_type", "architectures") if c in cfg]).to_csv(
        folder / "model_config.csv", index=False
    )
    base = [
        "eval",
        "ranking",
        "--data",
        str(folder),
        "--test-datasets",
        "image_target_1",
        "--methods",
        "static",
    ]
    capsys.readouterr()
    assert main([*base, "--cold-start", "families", "--catalog", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "name no family nor model type" in err[0], err
    assert main([*base, "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main([*base, "-v"]) == 0
