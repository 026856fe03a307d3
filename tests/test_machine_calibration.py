"""The cost model on a machine that measured too little itself: the project's reference runs,
scaled by config-only measurements of a few reference architectures taken here (real exports,
real ONNX Runtime, random weights)."""

from __future__ import annotations

import pytest

from hf_spider.hardware import cost
from hf_spider.hardware.measurements import load_records


@pytest.fixture
def a_new_machine(monkeypatch):
    """This machine as if it had measured nothing: its own runs no longer count as enough."""
    monkeypatch.setattr(cost, "OWN_MIN_ARCHITECTURES", 10**6)


@pytest.mark.slow
def test_reference_runs_are_scaled_by_measurements_taken_here(a_new_machine):
    reference = cost._reference_records()
    assert reference, "benchmarks/results/device_cost_third_pass.jsonl holds the reference runs"
    seen = []
    fit = cost.local_cost_model(progress=lambda done, total, note: seen.append((done, total)))
    assert fit is not None and fit.threads == 1
    assert {p["variant"] for p in fit.pairs} == {"fp32", "int8-dynamic"}
    assert len({p["model"] for p in fit.pairs}) == cost.CALIBRATION_ARCHITECTURES
    # every pair was measured here, at 1 thread, and kept in the store
    here = [r for r in load_records() if r["source"] == "calibration"]
    assert len(here) == len(fit.pairs) and all(r["target"]["info"]["threads"] == 1 for r in here)
    for variant, factor in fit.scale.items():
        assert 0.2 < factor < 5.0, (variant, factor)  # another CPU of this decade, or this one loaded
    assert fit.band[0] <= 1.0 <= fit.band[1]
    assert seen[-1] == (cost.CALIBRATION_ARCHITECTURES, cost.CALIBRATION_ARCHITECTURES)
    assert "reference runs" in fit.method and "measured here" in fit.method

    again = cost.local_cost_model()  # the store answers: nothing is measured twice
    assert len([r for r in load_records() if r["source"] == "calibration"]) == len(here)
    assert again.scale == fit.scale

    card = {"model_id": "a", "model_type": "bert", "num_parameters": 4_386_178, "num_labels": 2}
    rows = cost.predict_catalog([card], "local", ("fp32",), model=fit)
    assert rows[0]["latency_figure"] == "cpu_ms" and "for this machine" in rows[0]["method"]
    base = cost.predict_catalog([card], "local", ("fp32",), model=fit.model, threads=1)
    assert rows[0]["latency_ms"] == pytest.approx(base[0]["latency_ms"] * fit.scale["fp32"])


def test_without_reference_runs_or_calibration_there_is_no_model(a_new_machine, monkeypatch, tmp_path):
    assert cost.local_cost_model(calibrate=False) is None
    monkeypatch.setattr(cost, "BENCHMARK_RUNS", tmp_path / "none.jsonl")
    assert cost.local_cost_model() is None


@pytest.mark.slow
def test_a_one_thread_fit_is_scaled_to_the_threads_a_run_measures_with():
    """This machine's own 1-thread runs, scaled to 2 threads by wall-clock measurements taken here
    at 2 threads: the factor carries how much a second thread speeds a model up (between no
    speed-up, x1, and a perfect one, x0.5, up to the noise of a shared machine)."""
    fit = cost.local_cost_model(2)
    assert fit is not None and fit.threads == 1 and fit.scale
    assert {p["threads"] for p in fit.pairs} == {2} and {p["here_figure"] for p in fit.pairs} == {
        "latency_ms"
    }
    assert "at 2 thread(s)" in fit.method
    for variant, factor in fit.scale.items():
        assert 0.2 < factor < 5.0, (variant, factor)


def test_a_first_run_reads_the_projects_counted_facts_instead_of_recounting(monkeypatch, tmp_path):
    """A fresh cache (each test has its own home): the catalog's card configs and the FLOP counts
    of their configs come from the project's seeds, nothing is counted on the meta device; without
    the seeds the same calls count."""
    from hf_spider import _paths
    from hf_spider.catalog import Catalog

    cards = [token.to_dict() for token in Catalog.load(None)][:20]

    def counts() -> int:
        monkeypatch.setattr(cost, "_facts_cache", None)
        cost._count_flops.cache_clear()
        configs = [cost.card_config(card)[0] for card in cards]
        assert sum(c is not None for c in configs) >= 15
        for config in filter(None, configs):
            assert cost.facts_of(config)["flops"] > 0
        return cost._count_flops.cache_info().misses

    assert counts() == 0
    monkeypatch.setattr(_paths, "REFERENCE_DIR", tmp_path)  # no seeds
    cost._seed.cache_clear()
    try:
        assert counts() > 0
    finally:
        cost._seed.cache_clear()
