"""The `Recommendations` results object: tables, files, report, plot. Rows are built by hand here;
the pipeline that produces them is tested in test_recommend_pipeline.py."""

from __future__ import annotations

import json
import random

import pytest

from hf_spider.recommend._plot import pareto_mask
from hf_spider.recommend._results import Recommendations


def make_recs(n_models: int = 3, *, estimated_model: int | None = None) -> Recommendations:
    rows = []
    for i in range(n_models):
        model = f"org/model-{i}"
        status = "estimated" if i == estimated_model else "measured"
        for variant, lat, size in (("fp32", 10.0 * (i + 1), 90.0), ("int8-dynamic", 4.0 * (i + 1), 24.0)):
            rows.append(
                {
                    "rank": i + 1,
                    "model_id": model,
                    "variant": variant,
                    "stage": "bench",
                    "transfer_score": 0.9 - 0.1 * i - (0.01 if variant != "fp32" else 0.0),
                    "transfer_source": "probe",
                    "rank_score": 0.5 - 0.1 * i,
                    "probe_score": 0.9 - 0.1 * i,
                    "score_logme": -0.3 - 0.1 * i,
                    "target": "local",
                    "device_status": status,
                    "device_method": "ORT 1 thread, 50 iterations"
                    if status == "measured"
                    else "rpi5 profile",
                    "latency_p50_ms": lat,
                    "latency_p90_ms": lat * 1.1,
                    "peak_memory_mb": 120.0,
                    "file_size_mb": size,
                    "fidelity": 1.0 if variant == "fp32" else 0.97,
                    "meets_constraints": lat <= 20,
                    "violations": None if lat <= 20 else f"latency {lat} ms > 20 ms",
                    "recommended": i == 0 and variant == "int8-dynamic",
                }
            )
    rows.append(
        {
            "rank": n_models + 1,
            "model_id": "org/unprobed",
            "variant": None,
            "stage": "rank",
            "transfer_score": 0.1,
            "transfer_source": "rank",
            "rank_score": 0.1,
            "rank_basis": "card",
            "device_status": "skipped",
            "device_reason": "not in the top-3 benchmarked",
        }
    )
    meta = {
        "dataset": "rotten_tomatoes",
        "task": {"modality": "text", "num_classes": 2, "label_names": ["rotten", "fresh"]},
        "protocol": {
            "stages": ["rank", "probe", "bench"],
            "top_k": 3,
            "sample": 128,
            "estimators": ["logme"],
        },
        "target": {"name": "local", "description": "local CPU"},
        "constraints": {"max_latency_ms": 20.0, "max_memory_mb": None},
        "catalog": {"source": "embedded", "num_models": 10},
        "pick": {
            "model_id": "org/model-0",
            "variant": "int8-dynamic",
            "reason": "best transfer within 20 ms",
        },
    }
    return Recommendations(rows, meta)


def test_rows_normalised_and_ranking_one_entry_per_model():
    recs = make_recs()
    assert len(recs) == 7
    assert all(list(r) == recs.columns for r in recs.rows)
    ranking = recs.ranking()
    assert [r["model_id"] for r in ranking] == ["org/model-0", "org/model-1", "org/model-2", "org/unprobed"]
    assert ranking[0]["score"] == pytest.approx(0.9)
    assert recs.best["variant"] == "int8-dynamic"


def test_bad_device_status_refused():
    with pytest.raises(ValueError, match="device_status"):
        Recommendations([{"rank": 1, "model_id": "a", "device_status": "guessed"}])


def test_pandas_and_dataset_views_agree():
    recs = make_recs()
    df = recs.to_pandas()
    ds = recs.to_dataset()
    assert list(df.columns) == recs.columns == ds.column_names
    assert ds.num_rows == len(df)
    assert ds["model_id"] == df["model_id"].tolist()
    assert ds.features["latency_p50_ms"].dtype == "float64"
    assert ds.features["recommended"].dtype == "bool"
    assert json.loads(ds.info.description)["dataset"] == "rotten_tomatoes"


def test_save_writes_parquet_json_plot_report_and_loads_back(tmp_path):
    import pandas as pd

    recs = make_recs(estimated_model=2)
    paths = recs.save(tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "pareto.png",
        "recommendations.json",
        "recommendations.parquet",
        "report.md",
    ]
    df = pd.read_parquet(paths["parquet"])
    assert df["model_id"].tolist() == [r["model_id"] for r in recs.rows]
    assert Recommendations.load(tmp_path / "out").rows == recs.rows
    payload = json.loads(paths["json"].read_text())
    assert payload["ranking"][0]["model_id"] == "org/model-0"
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_says_how_every_figure_was_obtained():
    recs = make_recs(estimated_model=1)
    report = recs.report(plot_path="pareto.png")
    assert "**Recommended:** `org/model-0`, variant **int8-dynamic**" in report
    assert "4 rows measured, 2 estimated, 1 skipped" in report
    section = report.split("## How each figure was obtained", 1)[1]
    lines = [ln for ln in section.splitlines() if ln.startswith("| `")]
    assert len(lines) == len(recs)
    for line, row in zip(lines, recs.rows, strict=True):
        assert row["device_status"] in line
    assert "not in the top-3 benchmarked" in section
    assert "rpi5 profile" in section
    assert (
        "estimated (no forward pass): the ranker, from the model card alone" in section
        and "measured: forward pass on a 128-example sample" in section
    )
    assert "latency 30.0 ms > 20 ms" in section
    assert "![Pareto plot](pareto.png)" in report


def test_pareto_mask_matches_brute_force():
    rng = random.Random(0)
    for _ in range(30):
        pts = [(rng.randint(0, 5) / 5, float(rng.randint(1, 6))) for _ in range(8)]
        mask = pareto_mask([p[0] for p in pts], [p[1] for p in pts])
        for (s, lat), on_front in zip(pts, mask, strict=True):
            better = [(s2, l2) for s2, l2 in pts if s2 >= s and l2 <= lat and (s2, l2) != (s, lat)]
            assert on_front == (not better)


def test_plot_draws_points_front_and_pick():
    import matplotlib.pyplot as plt

    recs = make_recs()
    before = set(plt.get_fignums())
    fig = recs.plot()
    # pyplot does not keep it: a Space serving many requests does not pile figures up
    assert set(plt.get_fignums()) == before
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert {
        "fp32, measured (3)",
        "int8-dynamic, measured (3)",
        "Pareto front (score, latency)",
        "recommended",
    } <= set(labels)
    front_line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("best score for its latency"))
    # model-0's int8 variant (4 ms, 0.89) and fp32 (10 ms, 0.9) make the front; nothing else does
    assert set(front_line.get_xdata()) == {4.0, 10.0}
    # rows on the 5-D front (score, latency, memory, size, fidelity) are ringed, but the line
    # joins only the front on the plot's two axes (a probe saw every point joined in a zigzag)
    rows = [{**r, "pareto": r["variant"] is not None} for r in recs.rows]
    ax = Recommendations(rows, recs.meta).plot().axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Pareto front (score, latency, memory, size, fidelity)" in labels
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("best score for its latency"))
    assert set(line.get_xdata()) == {4.0, 10.0}


def test_plot_without_device_figures_shows_scores():
    rows = [r for r in make_recs().rows if r["variant"] is None]
    fig = Recommendations(rows, {"dataset": "x"}).plot()
    assert "bench stage not run" in fig.axes[0].get_xlabel()


def test_transfer_score_has_one_meaning_for_every_row():
    """Issue 12 item 8: probed and stage-1-only rows share one scale, the percentile of the final
    order; the stage that placed each model is its own column; raw scores keep their own columns."""
    from hf_spider.hardware.record import DeviceRecord
    from hf_spider.probe import ProbeResult, rerank
    from hf_spider.recommend._columns import LEGEND
    from hf_spider.recommend._results import build_rows

    # one probed model with a low fused value, and stage-1 models with large raw ranker scores
    stage1 = [("a", 1.888), ("b", 1.5), ("probed", 0.2), ("c", -0.3)]
    probed = ProbeResult(scores={"probed": {"logme": -0.7}})
    fused = {"probed": 0.0}
    order = rerank(stage1, fused)
    assert order == ["probed", "a", "b", "c"]
    record = DeviceRecord(model_id="probed", variant="fp32", device_status="measured", latency_p50_ms=3.0)
    rows = build_rows(order, stage1, probed, fused, [record], top_k=1, benched=True, target="local")
    by_model = {r["model_id"]: r for r in rows}
    scores = [by_model[m]["transfer_score"] for m in order]
    assert scores == [1.0, pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0]  # follows the order
    assert by_model["probed"]["transfer_source"] == "probe" and by_model["a"]["transfer_source"] == "rank"
    assert by_model["a"]["rank_score"] == 1.888 and by_model["probed"]["probe_score"] == 0.0
    assert by_model["probed"]["score_logme"] == -0.7 and by_model["probed"]["stage"] == "bench"
    assert by_model["c"]["device_reason"] == "not among the top-1 benchmarked"
    assert all(r["target"] == "local" for r in rows)
    recs = Recommendations(rows, {"dataset": "d"})
    assert [r["model_id"] for r in recs.ranking()] == order
    assert "percentile" in LEGEND["transfer_score"] and "ms" in LEGEND["latency_p50_ms"]
    assert "percentile" in recs.report() and "`latency_p50_ms`" in recs.report()


def test_each_row_says_what_its_stage1_score_was_computed_from():
    """`rank_basis`: the model's fine-tuning history, its card alone, or neither; one note counts
    them, and the report's provenance of an unprobed row says which."""
    from hf_spider.probe import ProbeResult
    from hf_spider.recommend._report import transfer_provenance
    from hf_spider.recommend._results import basis_note, build_rows

    stage1 = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    basis = {"a": "history", "b": "card", "c": "none"}
    rows = build_rows(["a", "b", "c"], stage1, ProbeResult(), {}, [], top_k=1, benched=False, basis=basis)
    assert {r["model_id"]: r["rank_basis"] for r in rows} == basis
    assert [e["basis"] for e in Recommendations(rows, {}).ranking()] == ["history", "card", "none"]
    words = {r["model_id"]: transfer_provenance(r, {}) for r in rows}
    assert "fine-tuning results on other datasets" in words["a"]
    assert "model card alone" in words["b"] and "median of the others" in words["c"]
    note = basis_note(basis)
    assert note.startswith("stage 1 scored 1 of 3 candidates from their fine-tuning history")
    assert "1 from their card alone; 1 placed at the median" in note
    assert "median" not in basis_note({"a": "history", "b": "card"})
    facts = basis_note({"a": "history", "b": "card", "c": "card_facts"})
    assert "2 from their card alone (1 of an architecture the ranker has no record of" in facts
    assert "architecture" not in basis_note({"a": "history", "b": "card"})
    row = {"transfer_source": "rank", "rank_basis": "card_facts"}
    assert "facts on the model card alone" in transfer_provenance(row, {})
    rows = build_rows(["a"], stage1[:1], ProbeResult(), {}, [], top_k=1, benched=False)
    assert rows[0]["rank_basis"] is None  # a ranker that does not say: no claim either way


def test_version_1_rows_are_read_back_under_the_one_vocabulary():
    old = {"rank": 1, "model_id": "a", "variant": "fp32", "device_status": "measured"}
    old.update(latency_ms_p50=3.0, memory_mb=100.0, size_mb=20.0, throughput_bs1=300.0)
    recs = Recommendations.from_json({"schema_version": 1, "rows": [old], "meta": {}})
    row = recs.rows[0]
    assert (row["latency_p50_ms"], row["peak_memory_mb"], row["file_size_mb"]) == (3.0, 100.0, 20.0)
    assert row["throughput_b1_per_s"] == 300.0 and "latency_ms_p50" not in recs.columns


def test_apply_constraints_marks_the_table_under_the_same_names():
    from hf_spider.errors import ConstraintError
    from hf_spider.hardware import Constraints, apply_constraints

    rows = [
        {"model_id": "a", "variant": "fp32", "device_status": "measured", "transfer_score": 1.0}
        | {"latency_p50_ms": 30.0, "peak_memory_mb": 300.0, "file_size_mb": 90.0, "fidelity": 1.0},
        {"model_id": "a", "variant": "int8-dynamic", "device_status": "measured", "transfer_score": 1.0}
        | {"latency_p50_ms": 10.0, "peak_memory_mb": 120.0, "file_size_mb": 23.0, "fidelity": 0.995},
        {"model_id": "b", "variant": "fp32", "device_status": "measured", "transfer_score": 0.5}
        | {"latency_p50_ms": 5.0, "peak_memory_mb": 90.0, "file_size_mb": 17.0, "fidelity": 1.0},
        {"model_id": "c", "variant": None, "device_status": "skipped", "transfer_score": 0.0},
    ]
    pick = apply_constraints(rows, Constraints(max_latency_ms=20), ["a", "b", "c"])
    assert (pick["model_id"], pick["variant"]) == ("a", "int8-dynamic")
    assert [r.get("meets_constraints") for r in rows] == [False, True, True, None]
    assert rows[0]["violations"] == "--max-latency-ms 20: 30" and rows[1]["recommended"]
    assert {r["copeland_rank"] for r in rows[:3]} == {1, 2, 3} and "pareto" not in rows[3]
    with pytest.raises(ConstraintError, match="no candidate meets"):
        apply_constraints(rows, Constraints(max_latency_ms=1), ["a", "b", "c"])
    assert not any(r["meets_constraints"] for r in rows[:3])  # marked before it raised


def test_a_save_waits_for_another_writing_the_same_folder(tmp_path):
    """Two runs into one folder used to leave a mix (one run's json, the other's parquet): a save
    holds a lock on the folder, so the second set is written whole after the first."""
    import threading
    import time

    from hf_spider.recommend._results import _folder_lock

    out = tmp_path / "out"
    out.mkdir()
    recs = make_recs()
    done = []
    with _folder_lock(out):  # another run writing
        writer = threading.Thread(target=lambda: done.append(recs.save(out)))
        writer.start()
        time.sleep(0.3)
        assert not done and not (out / "recommendations.json").exists()
    writer.join(timeout=60)
    assert done and Recommendations.load(out).rows == recs.rows
    assert sorted(p.name for p in out.iterdir())[0] == "pareto.png"  # no lock file left behind


def test_load_and_recommend_refuse_what_they_cannot_read_with_the_librarys_errors(tmp_path):
    """Python callers got raw KeyError / JSONDecodeError / TypeError from `Recommendations.load`,
    an in-memory dataset, `top_k="3"`; `stages="rank"` was split into letters."""
    import datasets
    import pandas as pd

    from hf_spider.errors import DatasetError, UserInputError
    from hf_spider.recommend import recommend

    folder = tmp_path / "d"
    folder.mkdir()
    for text, words in (
        ('{"meta": {}}', "no list of rows"),
        ('{"rows": [', "cannot be read"),
        ('{"schema_version": 99, "rows": []}', "newer than"),
        ('{"rows": [{"model_id": "a", "device_status": "odd"}]}', "device_status"),
    ):
        (folder / "recommendations.json").write_text(text)
        with pytest.raises(DatasetError, match=words):
            Recommendations.load(folder)
    with pytest.raises(DatasetError, match="no recommendations at"):
        Recommendations.load(tmp_path / "missing")
    with pytest.raises(
        UserInputError, match=r"datasets.Dataset / DatasetDict or a pandas DataFrame, not an int"
    ):
        recommend(5, stages=("rank",))
    with pytest.raises(DatasetError, match="the DataFrame is empty"):
        recommend(pd.DataFrame(), stages=("rank",))
    streamed = datasets.Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}).to_iterable_dataset()
    with pytest.raises(UserInputError, match=r"an IterableDataset \(streamed\) cannot be sampled") as err:
        recommend(streamed, stages=("rank",))
    assert "Dataset.from_list" in err.value.hint
    with pytest.raises(UserInputError, match="empty string"):
        recommend("", stages=("rank",))
    for bad in ({"top_k": "3"}, {"top_k": 2.5}, {"sample": -1}):
        with pytest.raises(UserInputError, match="whole number"):
            recommend("x", stages=("rank",), **bad)
    with pytest.raises(UserInputError, match=r"unknown stage\(s\) \['rnak'\]"):
        recommend("x", stages="rnak,probe")


def test_arguments_of_the_wrong_kind_are_refused_by_name(tmp_path):
    """A Python caller's slips failed deep inside (`target=123`: AttributeError; `constraints=20`,
    `stages=None`, `progress=1`: TypeError) or were read letter by letter (`estimators="logme"`,
    `variants="fp32"`); each is now one hf_spider error naming the argument, and the hint shows
    under a Python traceback (a note), not only on the command line."""
    from hf_spider.errors import UserInputError
    from hf_spider.recommend import recommend

    cases = [
        ({"target": 123}, "target must be a name"),
        ({"constraints": 20}, "constraints must be a mapping"),
        ({"stages": None}, "stages must be names"),
        ({"progress": 1}, "progress must be a function"),
        ({"estimators": "logme,nope"}, r"unknown estimator\(s\): nope"),
        ({"estimators": ("nope",)}, r"unknown estimator\(s\): nope"),
        ({"variants": "fp32,int3"}, r"unknown variant\(s\): int3"),
    ]
    for kwargs, words in cases:
        with pytest.raises(UserInputError, match=words) as err:
            recommend("x", **{"stages": ("rank",), **kwargs})
        assert err.value.hint and f"hint: {err.value.hint}" in err.value.__notes__


def test_results_read_back_from_any_of_their_files_and_from_json_text(tmp_path):
    """`Recommendations.load` of the parquet `save` wrote said the file "may be truncated"; a JSON
    string to `from_json` said "no list of rows"; `save` over a file raised FileExistsError."""
    from hf_spider.errors import DatasetError, UserInputError

    recs = make_recs()
    paths = recs.save(tmp_path / "out")
    for path in (paths["parquet"], paths["report"], paths["json"], tmp_path / "out"):
        assert Recommendations.load(path).rows == recs.rows
    assert Recommendations.from_json(recs.dumps()).rows == recs.rows
    with pytest.raises(DatasetError, match="the text is not JSON"):
        Recommendations.from_json("rows: []")
    other = tmp_path / "data.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="is not recommendations written by hf-spider"):
        Recommendations.load(other)
    with pytest.raises(UserInputError, match="is a file, not a folder"):
        recs.save(other)
    assert other.read_text() == "a,b\n1,2\n"
