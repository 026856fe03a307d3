"""Stage 1 under device budgets (`hf_spider.hardware.joint`): the joint orders' properties, the
drop rule, the flags, and a constrained `recommend` on real zoo models that drops a candidate for
its predicted cost and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import needs_zoo

from hf_spider import _paths
from hf_spider.cli import main
from hf_spider.errors import UserInputError
from hf_spider.hardware.constraints import Constraints
from hf_spider.hardware.joint import Prediction, check_joint, fit_probability, rank_jointly

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


@pytest.mark.parametrize("method", ["fused", "copeland", "off"])
def test_without_a_device_budget_the_order_is_stage_1(method):
    for cons in (Constraints(), Constraints(min_fidelity=0.9)):
        joint = rank_jointly(STAGE1, _predictions(), cons, method)
        assert joint.order == [m for m, _ in STAGE1] and joint.dropped == []


@pytest.mark.parametrize("method", ["fused", "copeland"])
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


@pytest.mark.parametrize("method", ["fused", "copeland"])
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
    assert check_joint(None) in ("fused", "copeland")
    assert check_joint("Copeland") == "copeland"
    with pytest.raises(UserInputError, match="--joint"):
        check_joint("borda")


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
    assert joint["method"] == "fused"
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
