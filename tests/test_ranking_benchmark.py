"""`benchmarks.ranking --differences`: spider minus a baseline, dataset by dataset."""

from __future__ import annotations

import pytest

from benchmarks import ranking as bench


def _result(pairs: dict[str, tuple[float, float | None]]) -> dict:
    rows = {}
    for dataset, (spider, static) in pairs.items():
        row = {"spider": {"tau_w_rank_true": spider}}
        if static is not None:
            row["static"] = {"tau_w_rank_true": static}
        rows[dataset] = row
    return {"datasets": rows, "benchmark": {"source": "s", "modality": "image", "protocol": "lodo"}}


def test_paired_differences_count_only_datasets_both_methods_have():
    result = _result({"a": (0.6, 0.5), "b": (0.4, 0.5), "c": (0.502, 0.5), "d": (0.9, None)})
    d = bench.paired_differences(result, "static")
    assert d["n"] == 3  # "d" has no static figure
    assert d["mean"] == pytest.approx((0.1 - 0.1 + 0.002) / 3)
    assert (d["wins"], d["ties"], d["losses"]) == (1, 1, 1)
    # the bootstrap interval of the mean lies within the smallest and largest difference
    assert -0.1 - 1e-12 <= d["low"] <= d["mean"] <= d["high"] <= 0.1 + 1e-12
    assert d["low"] < d["high"]
    assert bench.paired_differences(result, "static") == d  # seeded: the same interval again


def test_paired_differences_of_a_constant_gap_have_no_spread_and_need_two_datasets():
    d = bench.paired_differences(_result({"a": (0.7, 0.5), "b": (0.8, 0.6)}), "static")
    assert d["low"] == pytest.approx(0.2) and d["high"] == pytest.approx(0.2)
    assert bench.paired_differences(_result({"a": (0.7, 0.5), "b": (0.8, None)}), "static") is None
    assert bench.paired_differences(_result({"a": (0.7, 0.5)}), "collaborative") is None


def test_differences_table_has_a_row_per_run_and_blank_cells_without_a_baseline():
    table = bench.differences([_result({"a": (0.6, 0.5), "b": (0.7, 0.5)})])
    lines = table.strip().splitlines()
    assert len(lines) == 3
    assert lines[2].startswith("| s image | LODO | +0.150 [+0.100, +0.200] 2-0-0 |")
    assert lines[2].endswith("|  |  |  |  |")  # collaborative, transfergraph, params, logme: none


def test_plot_draws_the_saved_summary_and_refuses_nothing(tmp_path):
    """`--plot`: one figure of every run's means and spider - static; a method scored on fewer
    datasets and a run without `static` still draw."""
    full = _result({"a": (0.6, 0.5), "b": (0.7, 0.5)})
    full["mean"] = {
        "spider": {"tau_w_rank_true": 0.65, "n_datasets": 2},
        "static": {"tau_w_rank_true": 0.5, "n_datasets": 2},
        "logme": {"tau_w_rank_true": 0.3, "n_datasets": 1},
    }
    lone = _result({"a": (0.6, None), "b": (0.4, None)})
    lone["mean"] = {"spider": {"tau_w_rank_true": 0.5, "n_datasets": 2}}
    out = bench.plot([full, lone], tmp_path / "r.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    with pytest.raises(ValueError, match="no saved results"):
        bench.plot([], tmp_path / "none.png")
    assert not (tmp_path / "none.png").exists()
    # a folder gets the default file name inside it; a name without suffix the .png it is written as
    assert bench.plot([full], tmp_path) == tmp_path / "ranking.png" and (tmp_path / "ranking.png").is_file()
    assert bench.plot([full], tmp_path / "x") == tmp_path / "x.png" and (tmp_path / "x.png").is_file()
    # from the command line: a folder that does not exist is one line and exit 2, no traceback
    assert bench.main(["--plot", str(tmp_path / "missing" / "r.png")]) == 2
