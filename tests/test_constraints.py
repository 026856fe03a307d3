"""Constraints, Pareto front, pick and Copeland merge; constraint errors through the CLI."""

from __future__ import annotations

import math

import pytest

from hf_spider.cli import main
from hf_spider.errors import ConstraintError, UserInputError
from hf_spider.hardware.constraints import Constraints, copeland, pareto_front, pick

ROWS = [
    {
        "model_id": "big",
        "variant": "fp32",
        "transfer_score": 0.90,
        "latency_p50_ms": 80.0,
        "peak_memory_mb": 900.0,
        "file_size_mb": 400.0,
        "fidelity": 1.0,
    },
    {
        "model_id": "big",
        "variant": "int8-dynamic",
        "transfer_score": 0.90,
        "latency_p50_ms": 40.0,
        "peak_memory_mb": 500.0,
        "file_size_mb": 100.0,
        "fidelity": 0.97,
    },
    {
        "model_id": "small",
        "variant": "fp32",
        "transfer_score": 0.70,
        "latency_p50_ms": 10.0,
        "peak_memory_mb": 200.0,
        "file_size_mb": 80.0,
        "fidelity": 1.0,
    },
    {
        "model_id": "small",
        "variant": "int8-dynamic",
        "transfer_score": 0.70,
        "latency_p50_ms": 6.0,
        "peak_memory_mb": 150.0,
        "file_size_mb": 20.0,
        "fidelity": 0.99,
    },
    # dominated by small/int8-dynamic on every objective
    {
        "model_id": "worse",
        "variant": "fp32",
        "transfer_score": 0.60,
        "latency_p50_ms": 12.0,
        "peak_memory_mb": 250.0,
        "file_size_mb": 90.0,
        "fidelity": 0.98,
    },
]


def test_parse_accepts_mapping_string_and_flag_names():
    assert Constraints.parse({"max_latency_ms": "50"}).max_latency_ms == 50.0
    c = Constraints.parse("max-latency-ms=20, min_fidelity=0.95")
    assert (c.max_latency_ms, c.min_fidelity, c.max_memory_mb) == (20.0, 0.95, None)
    assert Constraints.parse(None) == Constraints()
    assert not Constraints() and Constraints(max_size_mb=1)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"max_latency_ms": -1}, "above 0"),
        ({"max_size_mb": 0}, "above 0"),
        ({"max_memory_mb": "nan"}, "finite"),
        ({"max_size_mb": "inf"}, "finite"),
        ({"max_latency_ms": "fast"}, "number"),
        ({"min_fidelity": 1.5}, "0..1"),
        ({"max_speed": 3}, "unknown constraint"),
        ("max_latency_ms", "key=value"),
    ],
)
def test_invalid_constraints_give_one_line_errors(spec, words):
    with pytest.raises(UserInputError) as info:
        Constraints.parse(spec)
    assert words in str(info.value)
    assert "\n" not in info.value.one_line()


def test_pareto_front_drops_dominated_rows_only():
    front = pareto_front(ROWS)
    names = {(r["model_id"], r["variant"]) for r in front}
    assert ("worse", "fp32") not in names
    # big/fp32 has the best fidelity at the best score; small/int8 the lowest latency
    assert {("big", "fp32"), ("big", "int8-dynamic"), ("small", "int8-dynamic")} <= names


def test_pareto_front_ignores_objectives_some_row_lacks():
    rows = [
        {"model_id": "a", "variant": "x", "latency_p50_ms": 5.0},
        {"model_id": "b", "variant": "x", "latency_p50_ms": 3.0, "transfer_score": 0.1},
    ]
    assert [r["model_id"] for r in pareto_front(rows)] == ["b"]


def test_pick_prefers_score_then_fidelity_and_explains():
    choice, reason = pick(ROWS, Constraints(max_latency_ms=50))
    assert (choice["model_id"], choice["variant"]) == ("big", "int8-dynamic")
    assert "highest transfer score" in reason and "latency <= 50 ms" in reason and "\n" not in reason
    choice, _ = pick(ROWS)
    assert (choice["model_id"], choice["variant"]) == ("big", "fp32")  # same score, better fidelity
    choice, reason = pick([{**r, "transfer_score": None} for r in ROWS], Constraints(max_memory_mb=300))
    assert (choice["model_id"], choice["variant"]) == ("small", "int8-dynamic") and "lowest latency" in reason


def test_pick_names_the_binding_constraint_and_the_gap():
    with pytest.raises(ConstraintError) as info:
        pick(ROWS, Constraints(max_latency_ms=5, min_fidelity=0.9))
    text = info.value.one_line()
    assert "\n" not in text
    assert "small [int8-dynamic]" in text  # the nearest candidate
    assert "--max-latency-ms 5: 6 ms, off by 1 ms (20%)" in text
    assert "--max-latency-ms excludes 5 of 5" in text
    assert "relax to --max-latency-ms 6" in text


def test_missing_figure_breaks_its_constraint():
    rows = [{"model_id": "m", "variant": "fp32", "latency_p50_ms": 1.0, "peak_memory_mb": None}]
    with pytest.raises(ConstraintError, match="figure missing"):
        pick(rows, Constraints(max_memory_mb=100))


def test_copeland_merges_two_rankings():
    assert copeland(["a", "b", "c"], ["c", "a", "b"]) == [("a", 1.5), ("c", 1.0), ("b", 0.5)]
    # agreement keeps the order; a full reversal ties everything, the transfer order breaks ties
    assert [x for x, _ in copeland(["a", "b", "c"], ["a", "b", "c"])] == ["a", "b", "c"]
    assert copeland(["a", "b"], ["b", "a"]) == [("a", 0.5), ("b", 0.5)]
    # an item missing from the device ranking ranks below its items there
    merged = dict(copeland(["x", "y"], ["y"]))
    assert merged["y"] > merged["x"] or math.isclose(merged["y"], merged["x"])


@pytest.mark.parametrize(
    "flags",
    [
        ["--max-latency-ms", "-5"],
        ["--max-memory-mb", "nan"],
        ["--min-fidelity", "2"],
        ["--max-size-mb", "big"],
    ],
)
def test_cli_rejects_bad_constraints_with_exit_2(flags, capsys, tmp_path):
    code = main(["bench", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
