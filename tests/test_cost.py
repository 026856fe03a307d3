"""The cost model: facts counted from real configs, fitted on real config-only measurements."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hf_spider.hardware._cardconfig import config_from_card, count_parameters
from hf_spider.hardware._configonly import ConfigMeasureConfig, measure_from_config
from hf_spider.hardware.config import MeasureConfig
from hf_spider.hardware.cost import (
    CostModel,
    evaluate_heldout,
    facts_of,
    fit_with_intervals,
    predict_catalog,
    shape_key,
    with_facts,
)
from hf_spider.hardware.measurements import load_records


def _bert(layers, hidden, inter, labels=2, vocab=1000):
    return {
        "model_type": "bert",
        "architectures": ["BertForSequenceClassification"],
        "num_labels": labels,
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": 2,
        "intermediate_size": inter,
        "vocab_size": vocab,
        "max_position_embeddings": 128,
    }


def test_flops_follow_the_transformer_formula():
    config = _bert(4, 128, 512)
    seq = 32
    facts = facts_of(config, {"modality": "text", "seq_len": seq})
    h, i, layers = 128, 512, 4
    # per layer: Q, K, V, O projections, the two FFN matmuls, QK^T and AV; then pooler + classifier
    macs = layers * (seq * (4 * h * h + 2 * h * i) + 2 * seq * seq * h) + h * h + 2 * h
    assert facts["flops"] == pytest.approx(2 * macs, rel=0.02)
    assert facts["params"] == count_parameters(config, "text-classification")
    assert (facts["layers"], facts["width"], facts["tokens"]) == (4, 128, 32)
    longer = facts_of(config, {"modality": "text", "seq_len": 2 * seq})
    assert 2.0 < longer["flops"] / facts["flops"] < 2.3  # linear, plus the quadratic attention
    # split by kind: QK^T and AV are the attention matmuls, the rest are dense (weights)
    assert facts["flops_attention"] == pytest.approx(2 * layers * 2 * seq * seq * h)
    assert facts["flops_dense"] + facts["flops_attention"] == pytest.approx(facts["flops"])
    assert facts["flops_conv"] == facts["flops_grouped_conv"] == 0
    # per layer at least Q, K, V, attention scores and FFN outputs are written
    assert facts["act_written"] > layers * seq * (3 * h + i)
    assert facts["act_largest"] == seq * i  # the FFN's inner activation
    # matmuls: per layer 6 dense + 2 attention, then pooler and classifier; what int8 quantizes on
    # the fly is the activations entering them (both operands of the attention matmuls)
    assert facts["matmul_calls"] == layers * 8 + 2
    heads = config["num_attention_heads"]  # QK^T: Q and K; AV: the heads' scores and V
    attention_inputs = 3 * seq * h + heads * seq * seq
    assert facts["matmul_inputs"] == layers * (seq * (5 * h + i) + attention_inputs) + 2 * h
    assert facts["shared_matmul_params"] == 0  # every weight applied once
    # vocabulary and labels change neither the compute nor the shape; depth does
    assert shape_key(_bert(4, 128, 512, labels=7, vocab=5000)) == facts["shape"]
    assert shape_key(_bert(5, 128, 512)) != facts["shape"]


def test_work_that_reads_no_input_is_not_counted():
    """DeBERTa-v2 projects its relative-position table through each layer's query and key weights:
    the same tensors on every run, which ONNX Runtime folds into constants when the session is
    created. The count leaves out exactly those projections; a BERT's count is torch's whole."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from hf_spider.hardware._configonly import _auto_class, _hf_config
    from hf_spider.hardware.cost import _build

    layers, hidden, buckets, seq = 2, 32, 16, 8
    deberta = {
        "model_type": "deberta-v2",
        "architectures": ["DebertaV2ForSequenceClassification"],
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 100,
        "relative_attention": True,
        "position_buckets": buckets,
        "max_relative_positions": -1,
        "share_att_key": True,
        "pos_att_type": ["p2c", "c2p"],
        "norm_rel_ebd": "layer_norm",
        "position_biased_input": False,
    }

    def torch_count(config):
        model = _build(_auto_class(config, "auto")[0], _hf_config(config)).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(input_ids=torch.full((1, seq), 5))
        return counter.get_total_flops()

    text = {"modality": "text", "seq_len": seq}
    folded = layers * 2 * (2 * (2 * buckets) * hidden * hidden)  # query and key projections of the table
    assert facts_of(deberta, text)["flops"] == torch_count(deberta) - folded
    bert = _bert(2, hidden, 64)
    assert facts_of(bert, text)["flops"] == torch_count(bert)


def test_shared_layers_are_stored_twice_in_an_int8_file():
    """ALBERT applies one layer's weights at every depth: the facts say how many weights are shared,
    and the int8 file size counts their fp32 copy, which ONNX Runtime's quantizer keeps beside the
    int8 one (seen in the exported graphs: ALBERT-base int8 38.8 MiB measured, 11.4 predicted
    before; 39 after)."""
    from hf_spider.hardware.cost import _as_stored

    albert = {
        "model_type": "albert",
        "architectures": ["AlbertForSequenceClassification"],
        "num_labels": 2,
        "num_hidden_layers": 4,
        "hidden_size": 128,
        "num_attention_heads": 2,
        "intermediate_size": 512,
        "embedding_size": 64,
        "vocab_size": 1000,
    }
    facts = facts_of(albert, {"modality": "text", "seq_len": 16})
    layer = 4 * 128 * 128 + 2 * 128 * 512  # Q, K, V, O and the FFN, applied 4 times
    assert facts["shared_matmul_params"] == layer
    assert facts["matmul_calls"] >= 4 * 8
    stored = _as_stored(facts, "int8-dynamic")["stored_matmul_params"]
    assert stored == facts["matmul_params"] + 4 * layer
    assert "stored_matmul_params" not in _as_stored(facts, "fp32")


def test_grouped_convolutions_are_counted_apart():
    """ConvNeXt's depthwise 7x7 convolutions run far slower per FLOP than dense ones on a CPU."""
    config = {
        "model_type": "convnext",
        "architectures": ["ConvNextForImageClassification"],
        "num_labels": 3,
        "image_size": 64,
        "hidden_sizes": [16, 32],
        "depths": [1, 1],
        "num_stages": 2,
    }
    facts = facts_of(config)
    # stage 1 at 16x16 (stem stride 4), stage 2 at 8x8: one 7x7 depthwise convolution each
    depthwise = 2 * (16 * 16 * 16 + 8 * 8 * 32) * 49
    assert facts["flops_grouped_conv"] == pytest.approx(depthwise)
    # the stem (4x4, 3->16) and the 2x2 downsampling (16->32) are dense convolutions
    assert facts["flops_conv"] == pytest.approx(2 * (16 * 16 * 16 * 3 * 16 + 8 * 8 * 32 * 16 * 4))


def test_image_facts_count_patches():
    config = {
        "model_type": "vit",
        "num_labels": 10,
        "image_size": 64,
        "patch_size": 16,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 128,
    }
    facts = facts_of(config)
    assert facts["modality"] == "image" and facts["tokens"] == 16 and facts["flops"] > 0


def test_card_facts_recover_standard_configs():
    """Embedded-catalog cards: BERT-base with 2 labels, a ViT-base classifier, DistilBERT."""
    lines = Path("model_cards/catalog.jsonl").read_text().splitlines()[1:]
    cards = {c["model_id"]: c for c in map(json.loads, lines)}
    bert = next(c for c in cards.values() if c["num_parameters"] == 109483778)
    config, match = config_from_card(bert)
    assert match["size"] == "base" and match["rel_error"] == 0 and match["vocab_size"] == 30522
    assert config["num_hidden_layers"] == 12 and config["hidden_size"] == 768
    vit = next(c for c in cards.values() if c["model_type"] == "vit" and c["num_parameters"] == 85800194)
    config, match = config_from_card(vit)
    assert match["size"] == "base" and match["rel_error"] < 0.001 and config["image_size"] == 224
    unknown, why = config_from_card({"model_type": "no-such", "num_parameters": 10})
    assert unknown is None and "unknown model type" in why["reason"]


def test_cost_model_predicts_held_out_architectures_from_real_measurements():
    """Five tiny BERTs measured from their configs (real export, real ONNX Runtime), one held out."""
    protocol = MeasureConfig(threads=1, batch=2, warmup=2, iterations=15, min_seconds=0.0, memory=False)
    fast = ConfigMeasureConfig(protocol, seq_len=32, rows=4)
    shapes = [(1, 64, 128), (2, 64, 256), (2, 128, 256), (3, 128, 512), (4, 192, 512), (2, 96, 384)]
    for layers, hidden, inter in shapes:
        measure_from_config(_bert(layers, hidden, inter), ["fp32"], measure_config=fast)
    records = with_facts(load_records())
    assert len(records) == len(shapes) and all(r["source"] == "config-only" for r in records)
    held_out = next(r for r in records if r["config"]["num_hidden_layers"] == 3)
    model = CostModel.fit([r for r in records if r is not held_out])
    predicted = model.predict(held_out["facts"], "fp32")
    # file size is deterministic: the parameters at 4 bytes
    assert predicted["size_mb"] == pytest.approx(held_out["size_mb"], rel=0.10)
    # latency on a loaded VM is noisy: the right order of magnitude
    assert 0.33 < predicted["latency_ms"] / held_out["latency_ms"] < 3.0
    report = evaluate_heldout(records, folds=3)
    assert {row["figure"] for row in report["rows"]} == {"latency_ms", "cpu_ms", "size_mb"}
    size = next(row for row in report["rows"] if row["figure"] == "size_mb")
    assert size["n"] == len(shapes) and size["within_10"] >= 0.8
    fitted = fit_with_intervals(records, folds=3)
    assert fitted.interval("latency_ms", "fp32") is not None
    low, high = fitted.interval("size_mb", "fp32", coverage=0.8)
    assert low <= 1.0 <= high
    again = CostModel.from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again.predict(held_out["facts"], "fp32") == fitted.predict(held_out["facts"], "fp32")
    # every catalog card gets a prediction on a profile, with an interval; unknown families say why
    cards = [
        {
            "model_id": "a/bert",
            "model_type": "bert",
            "architecture": "BertForSequenceClassification",
            "num_parameters": 4387726,
            "num_labels": 2,
        },
        {"model_id": "b/perceiver", "model_type": "perceiver", "num_parameters": 206099971},
    ]
    local_rows = predict_catalog(cards, "local", ("fp32",), model=fitted, seq_len=32)
    rpi4_rows = predict_catalog(cards, "rpi4", ("fp32",), model=fitted, seq_len=32)
    for rows in (local_rows, rpi4_rows):
        bert, perceiver = rows
        assert bert["label"] == "predicted" and bert["config_match"]["size"] == "tiny"
        # measured at 1 thread: latency is the idle-core figure, CPU time per run
        assert bert["latency_figure"] == "cpu_ms" and bert["latency_wall_ms"] > 0
        assert bert["latency_interval"]["low"] <= bert["latency_ms"] <= bert["latency_interval"]["high"]
        assert "unknown model type" in perceiver["skipped"]
    assert rpi4_rows[0]["latency_ms"] > local_rows[0]["latency_ms"]  # nominally, a Pi 4 is slower
    assert "rpi4" in rpi4_rows[0]["method"]


def test_bench_grows_the_measurement_store(tmp_path):
    """Each real bench measurement (not a profile's estimate) is remembered for the cost model."""
    from test_hardware_fixtures import tiny_bert

    from hf_spider.hardware._bench import bench

    folder = tiny_bert(tmp_path / "bert")
    fast = MeasureConfig(threads=1, warmup=1, iterations=3, min_seconds=0.0, memory=False, sample_size=8)
    bench(folder, variants="fp32,int8-dynamic", config=fast)
    bench(folder, target="rpi4", variants="fp32", config=fast)
    records = load_records()
    assert sorted(r["variant"] for r in records) == ["fp32", "int8-dynamic"]
    for record in records:
        assert record["source"] == "bench" and record["target"]["kind"] == "local"
        assert record["config"]["model_type"] == "bert" and record["input"]["modality"] == "text"
        assert record["latency_ms"] > 0 and record["cpu_ms"] > 0 and record["size_mb"] > 0
    facts = with_facts(records)[0]["facts"]
    assert facts["layers"] == 2 and facts["tokens"] == records[0]["input"]["seq_len"]


def test_cost_cli_predicts_a_catalog_on_a_profile(tmp_path, capsys):
    """`hf-spider cost` on a two-card catalog (real embedded-catalog lines), fitted on real measurements."""
    from hf_spider.cli import main

    protocol = MeasureConfig(threads=1, batch=2, warmup=1, iterations=5, min_seconds=0.0, memory=False)
    for layers, hidden in ((1, 64), (2, 128), (3, 96), (2, 192), (4, 64)):
        config = _bert(layers, hidden, 2 * hidden)
        measure_from_config(
            config, ["fp32"], measure_config=ConfigMeasureConfig(protocol, seq_len=32, rows=2)
        )
    lines = Path("model_cards/catalog.jsonl").read_text().splitlines()
    tiny = next(line for line in lines[1:] if '"num_parameters": 4387726' in line)
    perceiver = next(line for line in lines[1:] if '"model_type": "perceiver"' in line)
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "catalog.jsonl").write_text("\n".join([lines[0], tiny, perceiver]) + "\n")
    args = ["cost", "--target", "rpi4", "--variants", "fp32", "--seq-len", "32", "--threads", "1"]
    assert main([*args, "--catalog", str(tmp_path / "cat"), "--json", "-"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert row["label"] == "predicted" and row["latency_ms"] > 0 and "rpi4" in row["method"]
    assert out["skipped"][0]["model"] == "warwickai/fin-perceiver"
    assert main([*args, "--catalog", str(tmp_path / "cat"), "--seq-len", "0"]) == 2
    assert "--seq-len" in capsys.readouterr().err


def test_bench_from_config_cli(tmp_path, capsys):
    from test_hardware_fixtures import tiny_bert

    from hf_spider.cli import main

    folder = tiny_bert(tmp_path / "bert")
    fast = ["--threads", "1", "--iterations", "3", "--min-seconds", "0", "--warmup", "1", "--no-memory"]
    out = tmp_path / "report.json"
    code = main(["bench", str(folder), "--from-config", "--variants", "fp32", *fast, "--json", str(out)])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["config_only"].startswith("measured from config")
    assert report["results"][0]["figures"]["latency_p50_ms"]["label"] == "measured-from-config"
    assert "measured from config" in capsys.readouterr().out
    assert main(["bench", str(folder), "--from-config", "--calibrate", "rpi4", *fast]) == 2
    assert "--from-config" in capsys.readouterr().err


def test_a_fit_is_kept_and_reused_only_for_the_same_measurements(monkeypatch):
    """The fitted cost model is cached under a digest of the measurements it read: the same
    records load it (no refit), a changed figure refits, a damaged cache file is refitted over."""
    from hf_spider.hardware import cost

    records = cost._reference_records()
    fits = []
    real_heldout = cost.evaluate_heldout

    def counting_heldout(recs, **kwargs):  # once per fit: the folds behind the intervals
        fits.append(len(recs))
        return real_heldout(recs, **kwargs)

    monkeypatch.setattr(cost, "evaluate_heldout", counting_heldout)
    first = fit_with_intervals(records)
    again = fit_with_intervals(records)
    assert len(fits) == 1
    facts = records[0]["facts"]
    assert again.predict(facts, "fp32") == first.predict(facts, "fp32")
    assert again.interval("cpu_ms", "fp32") == first.interval("cpu_ms", "fp32")
    changed = [dict(r) for r in records]
    changed[0]["cpu_ms"] = changed[0]["cpu_ms"] * 3
    fit_with_intervals(changed)
    assert len(fits) == 2
    path = cost.model_path(cost._records_digest(records, 5))
    path.write_text("{not json")
    repaired = fit_with_intervals(records)
    assert len(fits) == 3 and repaired.predict(facts, "fp32") == first.predict(facts, "fp32")
    assert json.loads(path.read_text())["target"] == first.target
    fit_with_intervals(records, cache=False)
    assert len(fits) == 4
    # the cache does not grow without bound: the oldest fits go
    for i in range(cost.KEEP_FITS + 3):
        stale = path.parent / f"stale{i}.json"
        stale.write_text("{}")
        os.utime(stale, ns=(i, i))
    changed[1]["cpu_ms"] = changed[1]["cpu_ms"] * 3  # a new fit is written, and the folder pruned
    fit_with_intervals(changed)
    left = list(path.parent.glob("*.json"))
    assert len(left) == cost.KEEP_FITS and path in left and not (path.parent / "stale0.json").exists()


def test_the_noise_ceiling_rescales_pairs_to_one_measurement():
    """A perfect predictor's share within +-10% from pairs of measurements of the same graph:
    with log-normal noise of spread s, a pair's log ratio has spread s * sqrt(2), and the ceiling
    must come out as the share of one measurement's error inside [-log 1.1, -log 0.9]."""
    import math

    import numpy as np
    from scipy.stats import norm

    from benchmarks.device_cost import _ceiling

    rng = np.random.default_rng(0)
    sigma = 0.06
    truth = rng.uniform(1.0, 100.0, 20000)
    first = truth * np.exp(rng.normal(0, sigma, truth.size))
    second = truth * np.exp(rng.normal(0, sigma, truth.size))
    pairs = list(zip(first, second, strict=True))
    expected = norm.cdf(-math.log(0.9) / sigma) - norm.cdf(-math.log(1.1) / sigma)
    pairwise = np.mean([abs(b - a) / a <= 0.10 for a, b in pairs])
    assert _ceiling(pairs, 0.10) == pytest.approx(expected, abs=0.01)
    assert _ceiling(pairs, 0.10) > pairwise + 0.05  # one measurement's noise, not two
    assert _ceiling([(10.0, 10.0)] * 5, 0.05) == 1.0


def test_labels_of_both_passes_are_the_geometric_mean_of_configs_measured_twice(tmp_path, monkeypatch):
    """`benchmarks.device_cost --labels both`: every timed figure the geometric mean of the two
    passes, file size as recorded, configurations measured once left out; `second` the second
    pass alone; `first` the sweep as it is."""
    import json
    import math

    import benchmarks.device_cost as D

    def line(h, variant, cpu, memory, size=10.0):
        return {
            "config_hash": h,
            "config": {"model_type": "bert", "hidden_size": 8 if h == "a" else 16},
            "variant": variant,
            "cpu_ms": cpu,
            "latency_ms": 2 * cpu,
            "memory_mb": memory,
            "size_mb": size,
        }

    first = [
        line("a", "fp32", 4.0, 100.0),
        line("a", "int8-dynamic", 2.0, 50.0, 3.0),
        line("b", "fp32", 8.0, 80.0),
    ]
    second = [line("a", "fp32", 9.0, 121.0), line("a", "int8-dynamic", 2.0, 50.0, 3.0)]
    (tmp_path / "first.jsonl").write_text("".join(json.dumps(r) + "\n" for r in first))
    (tmp_path / "second.jsonl").write_text("".join(json.dumps(r) + "\n" for r in second))
    monkeypatch.setattr(D, "RUNS", tmp_path / "first.jsonl")
    monkeypatch.setattr(D, "SECOND", tmp_path / "second.jsonl")

    assert D.labelled_runs("first") == first
    assert D.labelled_runs("second") == second
    both = D.labelled_runs("both")
    assert [(r["config_hash"], r["variant"]) for r in both] == [("a", "fp32"), ("a", "int8-dynamic")]
    assert both[0]["cpu_ms"] == pytest.approx(6.0) and both[0]["latency_ms"] == pytest.approx(12.0)
    assert both[0]["memory_mb"] == pytest.approx(math.sqrt(100.0 * 121.0)) and both[0]["size_mb"] == 10.0
    assert both[1]["cpu_ms"] == pytest.approx(2.0)
    # the pass-to-pass pairs of the noise floor compare single measurements of the same config
    rows = {(r["figure"], r["variant"], r["source"]): r for r in D.noise_floor(both)}
    assert rows[("cpu_ms", "fp32", "first vs second pass")]["n"] == 1
    assert rows[("cpu_ms", "fp32", "first vs second pass")]["median_abs_change"] == pytest.approx(1.25)

    # a third pass is read on its own and compared with the second, config by config
    third = [line("a", "fp32", 8.0, 121.0), line("b", "fp32", 7.0, 80.0)]
    (tmp_path / "third.jsonl").write_text("".join(json.dumps(r) + "\n" for r in third))
    monkeypatch.setattr(D, "THIRD", tmp_path / "third.jsonl")
    assert D.labelled_runs("third") == third
    assert D.labelled_runs("second") == second  # unchanged by the third
    rows = {(r["figure"], r["variant"], r["source"]): r for r in D.noise_floor(D.labelled_runs("third"))}
    assert rows[("cpu_ms", "fp32", "second vs third pass")]["n"] == 1  # "b" was not in the second pass
    assert rows[("cpu_ms", "fp32", "second vs third pass")]["median_abs_change"] == pytest.approx(1 / 9)


def test_sibling_sizes_are_trained_on_and_never_scored(monkeypatch):
    """The reference runs come with other published sizes of the families the catalog holds in one
    compute shape (`benchmarks/sibling_configs.json`): the product fits on them, and the held-out
    evaluation trains every fold on them but scores only the catalog's configs; an extra record
    of a held-out shape is left out of that fold."""
    import json

    from benchmarks.device_cost import SIBLING_CONFIGS
    from hf_spider.hardware import cost

    reference = cost._reference_records()
    siblings = [r for r in reference if (r.get("match") or {}).get("sibling")]
    catalog = [r for r in reference if not (r.get("match") or {}).get("sibling")]
    names = {r["model"] for r in siblings}
    assert names == set(json.loads(SIBLING_CONFIGS.read_text())["configs"])
    twin = {**catalog[0], "model": "a twin of a catalog config"}  # same shape as a scored config

    trained = []
    real_fit = cost.CostModel.fit.__func__

    def spy(cls, records, target=None):
        trained.append({r["model"] for r in records})
        return real_fit(cls, records, target)

    monkeypatch.setattr(cost.CostModel, "fit", classmethod(spy))
    report = cost.evaluate_heldout(catalog, folds=5, extra_train=[*siblings, twin])
    assert len(trained) == 5 and all(names <= models for models in trained)
    assert not names & {r["model"] for r in report["heldout"]}
    assert "a twin of a catalog config" not in {r["model"] for r in report["heldout"]}
    assert (
        sum("a twin of a catalog config" in models for models in trained) == 4
    )  # not where its shape is held out


def test_cost_and_bench_arguments_that_mean_nothing_are_refused(tmp_path, capsys):
    """`cost --threads 0` silently used the default, `--top 0` printed an empty table and a negative
    budget filtered every row out; `bench` of a file called it missing, and a bench whose every
    variant was skipped (fp16 on a CPU) exited 0 with nothing measured."""
    from test_hardware_fixtures import tiny_bert

    from hf_spider.cli import main

    for bad, word in (
        ("--threads", "0"),
        ("--top", "0"),
        ("--max-latency-ms", "-1"),
        ("--max-latency-ms", "0"),
    ):
        assert main(["cost", bad, word]) == 2
        err = capsys.readouterr().err
        assert bad in err and err.count("\n") == 1
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main(["bench", str(afile)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    folder = tiny_bert(tmp_path / "bert")
    fast = ["--threads", "1", "--iterations", "3", "--min-seconds", "0", "--warmup", "1", "--no-memory"]
    assert main(["bench", str(folder), "--variants", "fp16", *fast]) == 2
    out = capsys.readouterr()
    assert "fp16 needs a CUDA target" in out.out and "no variant of" in out.err


def test_bench_of_weights_that_cannot_be_loaded_is_one_line(tmp_path, capsys):
    """A corrupt model.safetensors ended in a SafetensorError traceback."""
    from test_hardware_fixtures import tiny_bert

    from hf_spider.cli import main

    folder = tiny_bert(tmp_path / "bert")
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00")
    assert main(["bench", str(folder), "--variants", "fp32", "--iterations", "3", "--min-seconds", "0"]) == 2
    err = capsys.readouterr().err
    assert "cannot load the weights of" in err and err.count("\n") == 1


def test_bench_warns_of_more_threads_than_cores(tmp_path, capsys):
    import os

    from test_hardware_fixtures import tiny_bert

    from hf_spider.cli import main

    folder = tiny_bert(tmp_path / "bert")
    threads = str((os.cpu_count() or 1) + 2)
    fast = ["--iterations", "3", "--min-seconds", "0", "--warmup", "1", "--no-memory"]
    assert main(["bench", str(folder), "--variants", "fp32", "--threads", threads, *fast]) == 0
    assert f"--threads {threads} on" in capsys.readouterr().err
