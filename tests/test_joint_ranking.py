"""Stage 1 under device budgets (`hf_spider.hardware.joint`): the joint orders' properties, the
drop rule, the learned score (its shipped weights, how they are fitted, what it prefers on real
cost-model predictions), the flags, and a constrained `recommend` on real zoo models that drops a
candidate for its predicted cost and says so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_zoo

from hf_spider import _paths
from hf_spider.cli import main
from hf_spider.errors import UserInputError
from hf_spider.hardware.constraints import Constraints
from hf_spider.hardware.joint import (
    DEFAULT_JOINT,
    LEARNED_FEATURES,
    LEARNED_NONNEGATIVE,
    LEARNED_NONPOSITIVE,
    Prediction,
    check_joint,
    fit_learned,
    fit_probability,
    learned_order,
    learned_weights,
    rank_jointly,
)

REPO = Path(__file__).resolve().parent.parent

STAGE1 = [("big-best", 0.9), ("mid", 0.8), ("small", 0.5), ("tiny-worst", 0.1)]
# predicted p50 (ms) and a 90% band of x0.8..x1.25
LATENCY = {"big-best": 100.0, "mid": 20.0, "small": 8.0, "tiny-worst": 1.0}


def _predictions(latency=LATENCY, band=(0.8, 1.25)):
    return {
        m: [
            Prediction(m, "fp32", {"latency_ms": v, "memory_mb": None, "size_mb": None}, {"latency_ms": band})
        ]
        for m, v in latency.items()
    }


@pytest.mark.parametrize("method", ["fused", "learned", "copeland", "off"])
def test_without_a_device_budget_the_order_is_stage_1(method):
    for cons in (Constraints(), Constraints(min_fidelity=0.9)):
        joint = rank_jointly(STAGE1, _predictions(), cons, method)
        assert joint.order == [m for m, _ in STAGE1] and joint.dropped == []


@pytest.mark.parametrize("method", ["fused", "learned", "copeland"])
def test_a_model_that_cannot_fit_is_never_in_the_top_k(method):
    cons = Constraints(max_latency_ms=30)  # big-best: even x0.8 of 100 ms breaks it
    joint = rank_jointly(STAGE1, _predictions(), cons, method)
    assert joint.dropped == ["big-best"]
    for k in range(1, 4):
        assert "big-best" not in joint.order[:k]
    assert set(joint.order) == {"mid", "small", "tiny-worst"}
    assert "optimistic end" in joint.dropped_reason("big-best", cons) and "100" in joint.dropped_reason(
        "big-best", cons
    )


@pytest.mark.parametrize("method", ["fused", "learned", "copeland"])
def test_when_nothing_is_predicted_to_fit_the_nearest_are_measured(method):
    """A budget under every prediction: nothing is dropped out of sight; the candidates go to the
    measurement nearest first, so "nothing fits" rests on measured figures."""
    joint = rank_jointly(STAGE1, _predictions(), Constraints(max_latency_ms=0.1), method)
    assert joint.none_predicted_to_fit and joint.dropped == []
    assert joint.order == ["tiny-worst", "small", "mid", "big-best"]
    assert joint.to_dict(Constraints(max_latency_ms=0.1))["none_predicted_to_fit"] is True
    assert not rank_jointly(
        STAGE1, _predictions(), Constraints(max_latency_ms=30), method
    ).none_predicted_to_fit


def test_off_keeps_every_model_in_stage_1_order_even_under_a_budget():
    joint = rank_jointly(STAGE1, _predictions(), Constraints(max_latency_ms=30), "off")
    assert joint.order == [m for m, _ in STAGE1] and joint.dropped == []


def test_fused_ranks_by_percentile_times_chance_of_fitting():
    # mid (20 ms predicted, band 16-25) is 2/3 by stage-1 percentile, small (surely fits) 1/3:
    # mid stays ahead while its chance of fitting is over 1/2, and falls behind below it
    loose = rank_jointly(STAGE1, _predictions(), Constraints(max_latency_ms=21), "fused")
    tight = rank_jointly(STAGE1, _predictions(), Constraints(max_latency_ms=19), "fused")
    assert loose.best("mid").fit_probability > 0.5 > tight.best("mid").fit_probability
    assert loose.best("small").fit_probability > 0.999
    assert loose.order == ["mid", "small", "tiny-worst"]
    assert tight.order == ["small", "mid", "tiny-worst"]


def test_copeland_lifts_a_model_that_both_rankings_put_ahead():
    # every model fits a generous budget; predicted device order: mid, tiny, small, big. mid beats
    # small and tiny in both rankings, ties big (first in transfer, last on the device): first
    latency = {"big-best": 100.0, "mid": 1.0, "small": 8.0, "tiny-worst": 1.5}
    joint = rank_jointly(STAGE1, _predictions(latency), Constraints(max_latency_ms=1000), "copeland")
    assert joint.dropped == []
    assert joint.order == ["mid", "big-best", "small", "tiny-worst"]


def test_a_model_without_a_prediction_is_kept_for_the_measurement_to_decide():
    preds = _predictions()
    del preds["mid"]
    joint = rank_jointly(STAGE1, preds, Constraints(max_latency_ms=30), "fused")
    assert "mid" in joint.order and joint.unpredicted == ["mid"]


def test_fit_probability_reads_the_band():
    cons = Constraints(max_latency_ms=10)
    sure = Prediction("a", "fp32", {"latency_ms": 5.0}, {"latency_ms": (0.8, 1.25)})
    never = Prediction("b", "fp32", {"latency_ms": 50.0}, {"latency_ms": (0.8, 1.25)})
    exact = Prediction("c", "fp32", {"latency_ms": 11.0}, {"latency_ms": None})
    assert fit_probability(sure, cons) == (pytest.approx(1.0, abs=1e-6), True)
    p, optimistic = fit_probability(never, cons)
    assert p < 1e-6 and optimistic is False
    assert fit_probability(exact, cons) == (0.0, False)


def test_joint_method_is_checked():
    assert check_joint(None) == DEFAULT_JOINT
    assert check_joint("Copeland") == "copeland" and check_joint(" learned ") == "learned"
    with pytest.raises(UserInputError, match="--joint") as info:
        check_joint("borda")
    assert "learned" in info.value.hint and "fused" in info.value.hint


def _real_predictions(budget_ms: float):
    """Stage 1 puts bert-base first, distilbert-base second, a 62k-parameter distilbert last; each
    gets the cost model's CPU-time predictions and 90% bands (fitted on the project's reference runs,
    as `recommend` does on a machine that measured too little)."""
    from hf_spider.hardware import cost

    records = cost._reference_records()
    model = cost.fit_with_intervals(records)
    names = {
        "bert-base-uncased": 0.9,
        "distilbert-base-uncased": 0.8,
        "philschmid/tiny-distilbert-classification": 0.1,
    }
    preds: dict[str, list[Prediction]] = {}
    for r in records:
        if r["model"] in names:
            value = model.predict(r["facts"], r["variant"])["cpu_ms"]
            band = model.interval("cpu_ms", r["variant"])
            preds.setdefault(r["model"], []).append(
                Prediction(r["model"], r["variant"], {"latency_ms": value}, {"latency_ms": band})
            )
    assert set(preds) == set(names) and all(len(v) == 2 for v in preds.values())
    stage1 = sorted(names.items(), key=lambda t: -t[1])
    return stage1, preds, Constraints(max_latency_ms=budget_ms)


def test_learned_prefers_a_fitting_high_transfer_model_over_one_that_may_not_fit():
    """bert-base int8 is predicted ~39 ms (band ~36-44): a 38 ms budget keeps it (its optimistic end
    fits) but it probably breaks it; distilbert-base int8 (~19 ms) surely fits and is second in stage
    1. The shipped learned score measures distilbert first, bert-base as its backup, and the tiny
    model (which fits, but last in stage 1) last. Under 100 ms both fit: stage 1's order stands."""
    stage1, preds, tight = _real_predictions(38.0)
    joint = rank_jointly(stage1, preds, tight, "learned")
    assert joint.dropped == [] and 0.02 < joint.best("bert-base-uncased").fit_probability < 0.5
    assert joint.best("distilbert-base-uncased").fit_probability > 0.99
    assert joint.order == [
        "distilbert-base-uncased",
        "bert-base-uncased",
        "philschmid/tiny-distilbert-classification",
    ]
    stage1, preds, loose = _real_predictions(100.0)
    assert rank_jointly(stage1, preds, loose, "learned").order == [m for m, _ in stage1]


def test_models_that_cannot_be_the_pick_follow_in_stage1_order():
    """Behind a model predicted to fit almost surely (log_none_above at its floor), a model is
    picked only if that prediction fails: such models come after every model that can be the pick,
    in stage-1 order, whatever their scores (the load term would otherwise order them)."""
    floor = np.log(1e-6)
    #                     percentile log_fit none_above load  band
    features = np.array(
        [
            [1.0, -2.0, 0.0, 0.3, 0.2],  # a: may not fit
            [0.7, 0.0, -0.1, -0.5, 0.2],  # b: surely fits
            [0.4, 0.0, floor, -1.0, 0.2],  # c: behind b
            [0.1, 0.0, floor, -5.0, 0.2],  # d: behind b, far lighter
        ]
    )
    load_first = np.array([0.0, 0.1, 0.1, -1.0, 0.0])  # by score alone: d, c, b, a
    assert learned_order(["a", "b", "c", "d"], features, load_first) == ["b", "a", "c", "d"]
    assert learned_order(["a", "b", "c", "d"], features, np.zeros(5)) == ["a", "b", "c", "d"]


def test_learned_weights_given_override_the_shipped_ones():
    stage1, preds, tight = _real_predictions(38.0)  # where the shipped weights reorder stage 1
    assert rank_jointly(stage1, preds, tight, "learned").order != [m for m, _ in stage1]
    only_stage1 = [1.0] + [0.0] * (len(LEARNED_FEATURES) - 1)  # percentile alone: stage 1's order
    assert rank_jointly(stage1, preds, tight, "learned", weights=only_stage1).order == [m for m, _ in stage1]


def _drawn_cases(true, n=600, rng=None):
    rng = rng or np.random.default_rng(0)
    cases = []
    for _ in range(n):
        x = rng.normal(size=(15, len(LEARNED_FEATURES)))
        p = np.exp(x @ np.asarray(true))
        cases.append((x, int(rng.choice(15, p=p / p.sum()))))
    return cases


def test_fit_learned_recovers_weights_and_holds_their_signs():
    """On cases drawn from a known conditional logit, the fit recovers its weights; weights the data
    push past their sign bounds (percentile below 0, log_band above 0) stay on the bounds."""
    true = [1.5, 1.0, 0.5, -1.0, -0.6]
    assert fit_learned(_drawn_cases(true), l2=1e-4) == pytest.approx(true, abs=0.2)
    w = dict(
        zip(LEARNED_FEATURES, fit_learned(_drawn_cases([-1.5, 1.0, 0.5, -1.0, 0.6]), l2=1e-4), strict=True)
    )
    assert w["percentile"] == 0.0 and w["log_band"] == 0.0 and w["log_fit"] > 0.3


def test_shipped_learned_weights_hold_their_signs():
    shipped = learned_weights()
    w = dict(zip(shipped["features"], shipped["weights"], strict=True))
    assert all(w[f] >= 0 for f in LEARNED_NONNEGATIVE) and all(w[f] <= 0 for f in LEARNED_NONPOSITIVE)
    assert shipped["command"] == "python -m benchmarks.constrained --train-learned"


def test_the_default_follows_the_recorded_nested_cross_validation():
    """`learned` is the default only where the benchmark's nested CV found it not worse than `fused`."""
    recorded = json.loads((REPO / "benchmarks" / "results" / "constrained.json").read_text())["learned"]
    pooled = recorded["pooled"]
    not_worse = (
        pooled["learned"]["misses"] <= pooled["fused"]["misses"]
        and pooled["learned"]["mean_vs_exhaustive"] <= pooled["fused"]["mean_vs_exhaustive"]
    )
    assert recorded["learned_not_worse"] is not_worse
    assert ("learned" if not_worse else "fused") == DEFAULT_JOINT
    assert recorded["shipped_weights"] == learned_weights()["weights"]


@pytest.mark.slow
def test_shipped_learned_weights_reproduce_from_the_documented_command():
    """What `python -m benchmarks.constrained --train-learned` computes, from the recorded device
    runs and the cached stage-1 scores it was trained on, is the shipped file (weights to 1e-4)."""
    import benchmarks.constrained as bench

    shipped = learned_weights()
    stage1 = {}
    for modality in ("image", "text"):
        scores, truth, digest = bench.cached_stage1(modality)
        assert digest == shipped["trained_on"]["stage1_digests"][modality], "stage-1 scores changed: retrain"
        # and the cache is what today's records and ranker code give (else it is stale: rerun
        # `python -m benchmarks.constrained`, then `--train-learned`)
        assert digest == bench.stage1_digest(modality), f"stale {modality} stage-1 cache"
        stage1[modality] = scores, truth
    cases = bench.training_cases(bench.measured_architectures(), stage1)
    trained = bench.train_learned(cases, shipped["trained_on"]["top_k"])
    assert trained["l2"] == shipped["l2"]
    assert trained["trained_on"]["cases"] == shipped["trained_on"]["cases"]
    assert trained["weights"] == pytest.approx(shipped["weights"], abs=1e-4)


def test_joint_learned_through_recommend(tmp_path, capsys):
    """`--joint learned` under a latency budget on the demo: the joint ranking is the learned one,
    said in the JSON with its rule, and the kept candidates come in its order."""
    out = tmp_path / "out.json"
    rc = main(
        [
            "recommend",
            "--demo",
            "--stages",
            "rank",
            "--max-latency-ms",
            "20",
            "--top-k",
            "3",
            "--joint",
            "learned",
            "--output-dir",
            str(tmp_path / "out"),
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    meta = json.loads(out.read_text())["meta"]
    joint = meta["joint"]
    assert joint["method"] == "learned" and "learned" in joint["learned_rule"]
    printed = capsys.readouterr().out
    assert joint["kept"] > 3 and "joint ranking: learned" in printed
    # nothing measured, but the costs were predicted for this machine: said, not "no device"
    assert meta["target"]["name"] == "none" and meta["target"]["predicted_for"] == "local"
    assert "costs predicted for local" in printed


@pytest.mark.parametrize(
    "flags",
    [
        ["--joint", "borda"],
        ["--max-latency-ms", "fast"],
        ["--max-memory-mb", "-5"],
        ["--max-size-mb", "nan"],
    ],
)
def test_bad_joint_or_budget_is_one_line_exit_2(flags, capsys):
    rc = main(["recommend", "--demo", "--stages", "rank", *flags])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1, err


SMALL_TEXT = ("hf-spider-zoo/splade-tiny", "sentence-transformers/all-MiniLM-L6-v2")


@needs_zoo(*SMALL_TEXT, datasets=("rotten_tomatoes",))
@pytest.mark.slow
def test_constrained_recommend_drops_a_candidate_for_its_predicted_cost(tmp_path, monkeypatch, capsys):
    """MiniLM-L6 (22.7M parameters, ~22 MiB even as int8) cannot meet a 10 MiB file budget, splade-tiny
    (4.4M) can: MiniLM is dropped before any measurement, reported with its predicted figures, and
    only splade-tiny is measured; its measured figures sit beside their predictions."""
    from hf_spider.zoo import model_path

    root = tmp_path / "models"
    for repo_id in SMALL_TEXT:
        link = root / repo_id
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(model_path(repo_id), target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    dataset = str(_paths.zoo_dir() / "datasets" / "rotten_tomatoes")
    args = ["recommend", dataset, "--catalog", str(root), "--stages", "rank,bench", "--top-k", "2"]
    rc = main([*args, "--sample", "32", "--max-size-mb", "10", "--output-dir", "out", "--json", "out.json"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "dropped for predicted cost" in printed and "all-MiniLM-L6-v2" in printed
    payload = json.loads(Path("out.json").read_text())
    joint = payload["meta"]["joint"]
    assert joint["method"] == DEFAULT_JOINT
    (dropped,) = joint["dropped"]
    assert dropped["model_id"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert dropped["predicted_size_mb_interval"][0] > 10 and dropped["predicted_latency_ms"] > 0
    rows = {(r["model_id"], r["variant"]): r for r in payload["rows"]}
    minilm = rows[("sentence-transformers/all-MiniLM-L6-v2", None)]
    assert (
        minilm["device_reason"].startswith("dropped for predicted cost") and minilm["predicted_size_mb"] > 10
    )
    measured = [r for r in payload["rows"] if r["device_status"] == "measured"]
    assert {r["model_id"] for r in measured} == {"hf-spider-zoo/splade-tiny"}
    for r in measured:
        assert r["predicted_size_mb"] > 0 and r["predicted_latency_ms"] > 0
        expected = 100 * (r["predicted_size_mb"] - r["file_size_mb"]) / r["file_size_mb"]
        assert r["size_prediction_error_pct"] == pytest.approx(expected)
        assert abs(r["size_prediction_error_pct"]) < 50  # file size is predicted to a few %
    assert payload["recommended"]["model_id"] == "hf-spider-zoo/splade-tiny"
    report = Path("out/report.md").read_text()
    assert "dropped for predicted cost" in report and "predicted" in report


@needs_zoo("sentence-transformers/all-mpnet-base-v2")
def test_a_family_the_card_reader_does_not_know_is_predicted_from_its_local_config():
    """MPNet's card facts give no config (the card reader has no MPNet sizes), but the model is in
    the offline zoo: its real config.json is read from there and it gets a prediction."""
    from hf_spider.hardware import cost
    from hf_spider.hardware.joint import _with_local_config

    card = {
        "model_id": "sentence-transformers/all-mpnet-base-v2",
        "model_type": "mpnet",
        "num_parameters": 109486978,
    }
    assert cost.card_config(card)[0] is None
    with_config = _with_local_config(card)
    assert with_config["config"]["model_type"] == "mpnet" and with_config["config"]["num_hidden_layers"] == 12
    model = cost.fit_with_intervals(cost._reference_records())
    (row,) = cost.predict_catalog([with_config], "local", ("fp32",), model=model, threads=1)
    assert row["config_match"]["source"] == "config.json"
    assert 380 < row["size_mb"] < 460  # the fp32 export of its 109.5M parameters is 416 MiB
    unknown = {"model_id": "nobody/not-cached", "model_type": "mpnet", "num_parameters": 1}
    assert "config" not in _with_local_config(unknown)


def test_a_model_without_prediction_does_not_hide_that_nothing_else_fits():
    """A budget under every prediction, and one candidate the cost model cannot predict: nothing is
    dropped out of sight and the run says none was predicted to fit (before, the unpredicted model
    stood alone and every other was dropped)."""
    preds = _predictions()
    stage1 = [*STAGE1, ("unknown", 0.1)]
    joint = rank_jointly(stage1, preds, Constraints(max_latency_ms=0.1), "learned")
    assert joint.none_predicted_to_fit and joint.dropped == [] and joint.unpredicted == ["unknown"]
    assert joint.order == ["unknown", "tiny-worst", "small", "mid", "big-best"]
