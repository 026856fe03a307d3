"""Variants, measurement, device targets and profiles, and `hf-spider bench`, on real ONNX Runtime."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_hardware_fixtures import tiny_bert, tiny_vit

from hf_spider import _paths
from hf_spider.cli import main
from hf_spider.errors import TargetError, UserInputError
from hf_spider.hardware import DeviceTarget, MeasureConfig, make_variants, measure
from hf_spider.hardware._export import export
from hf_spider.hardware._measure import FIGURES, flat_row
from hf_spider.hardware.device import cpu_flags, int8_dot_product, isa_from_flags
from hf_spider.hardware.profiles import PROFILES, load_calibration, save_calibration
from hf_spider.hardware.sample import TaskSample, feeds_for

FAST = MeasureConfig(iterations=8, min_seconds=0.2, warmup=1, threads=1, batch=4)
QUICK = FAST.replace(memory=False)


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    root = tmp_path_factory.mktemp("bert")
    exported = export(tiny_bert(root / "tiny-bert"), "text-classification", root / "export")
    sample = TaskSample.synthetic("text", n=16)
    return exported, feeds_for(exported, sample)


@pytest.fixture(scope="module")
def bert_variants(bert):
    exported, feeds = bert
    target = DeviceTarget.resolve("local")
    return make_variants(
        exported, ["fp32", "int8-dynamic", "int8-static", "optimized", "fp16"], target, feeds
    )


# ---------------------------------------------------------------- device facts

ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm aes crc32 asimddp asimdhp\nCPU part\t: 0xd0b\n"
X86_AVX2 = (
    "model name\t: Intel(R) Core(TM) i5-8250U\nflags\t\t: fpu sse4_2 avx avx2 fma\ncpu MHz\t\t: 1800.000\n"
)


def test_isa_detection_from_cpuinfo_flags():
    arm = cpu_flags(ARM_CPUINFO)
    assert isa_from_flags(arm, "aarch64") == "arm64" and int8_dot_product(arm, "arm64")
    x86 = cpu_flags(X86_AVX2)
    assert isa_from_flags(x86, "x86_64") == "avx2" and not int8_dot_product(x86, "avx2")
    vnni = cpu_flags("flags : avx2 avx512f avx512_vnni\n")
    assert isa_from_flags(vnni, "x86_64") == "avx512_vnni" and int8_dot_product(vnni, "avx512_vnni")
    assert isa_from_flags(cpu_flags("flags : avx2 avx512f\n"), "x86_64") == "avx512"


def test_local_target_reports_cpu_isa_and_threads():
    target = DeviceTarget.resolve("local", threads=1)
    info = target.info
    assert type(target).__name__ == "LocalTarget" and info["threads"] == 1 and info["cores"] >= 1
    assert info["isa"] == isa_from_flags(cpu_flags()) and info["cpu_model"]
    assert "CPUExecutionProvider" in info["providers"]


def test_unknown_target_lists_the_choices():
    with pytest.raises(TargetError) as info:
        DeviceTarget.resolve("rpi9")
    assert "rpi4" in info.value.one_line() and "http://HOST:PORT" in info.value.one_line()
    with pytest.raises(TargetError, match="bad agent URL"):
        DeviceTarget.resolve("http://nohostport", token="t")


# ---------------------------------------------------------------- variants


def test_variants_are_built_for_the_target_isa_and_cached(bert, bert_variants):
    exported, feeds = bert
    by_name = {v.name: v for v in bert_variants}
    fp32, dyn, static = by_name["fp32"], by_name["int8-dynamic"], by_name["int8-static"]
    assert dyn.path.stat().st_size < 0.5 * fp32.path.stat().st_size
    assert static.path.stat().st_size < 0.5 * fp32.path.stat().st_size
    assert dyn.config["isa"] == DeviceTarget.resolve("local").isa and "dynamic int8" in dyn.method
    assert "calibration on 16 rows" in static.method and static.config["calibration"]["fingerprint"]
    assert by_name["optimized"].path is not None and "ORTOptimizer" in by_name["optimized"].method
    assert by_name["fp16"].path is None and "CUDA" in by_name["fp16"].skipped
    again = make_variants(exported, ["int8-dynamic"], DeviceTarget.resolve("local"), feeds)[0]
    assert again.cached and again.path == dyn.path


def test_variant_for_an_arm_device_uses_the_arm64_preset(bert):
    exported, feeds = bert
    rpi = DeviceTarget.resolve("rpi5")
    variant = make_variants(exported, ["int8-dynamic"], rpi, feeds)[0]
    assert variant.config["isa"] == "arm64" and "preset arm64" in variant.method
    local = make_variants(exported, ["int8-dynamic"], DeviceTarget.resolve("local"), feeds)[0]
    if local.config["isa"] != "arm64":
        assert variant.path != local.path  # a different config is a different cache entry


def test_unknown_variant_and_missing_calibration(bert):
    exported, _ = bert
    with pytest.raises(UserInputError, match="unknown variant"):
        make_variants(exported, ["int4"])
    static = make_variants(exported, ["int8-static"], None, None)[0]
    assert static.path is None and "calibration" in static.skipped


def test_graph_optimisation_skipped_with_reason_for_unsupported_exports(tmp_path):
    exported = export(tiny_vit(tmp_path / "vit"), "feature-extraction", tmp_path / "export")
    exported.model_type = "efficientnet"  # what optimum's optimiser does not know
    variant = make_variants(exported, ["optimized"])[0]
    assert variant.path is None and "efficientnet" in variant.skipped


# ---------------------------------------------------------------- measurement


def test_measure_local_gives_every_figure_measured(bert, bert_variants):
    _, feeds = bert
    fp32, dyn = bert_variants[0], bert_variants[1]
    ref = measure(fp32, None, feeds, config=QUICK)
    result = measure(dyn, DeviceTarget.resolve("local"), feeds, reference=ref["outputs"], config=FAST)
    figures = result["figures"]
    assert set(FIGURES) <= set(figures)
    for name in (
        "latency_p50_ms",
        "latency_p90_ms",
        "latency_p99_ms",
        "throughput_b1_per_s",
        "throughput_batch_per_s",
        "peak_memory_mb",
        "file_size_mb",
        "load_ms",
        "fidelity",
    ):
        assert figures[name]["value"] is not None and figures[name]["value"] > 0, name
        assert figures[name]["label"] == "measured" and figures[name]["method"], name
    lat = figures
    assert lat["latency_p50_ms"]["value"] <= lat["latency_p90_ms"]["value"] <= lat["latency_p99_ms"]["value"]
    assert result["protocol"]["iterations"] >= 8 and result["protocol"]["threads"] == 1
    assert figures["throughput_batch_per_s"]["batch"] == 4
    assert figures["peak_memory_mb"]["value"] > figures["peak_memory_mb"]["baseline_mb"] > 0
    assert 0 <= figures["fidelity"]["value"] <= 1 and figures["fidelity"]["unit"] == "top-1 agreement"
    assert figures["file_size_mb"]["value"] == pytest.approx(dyn.path.stat().st_size / 2**20)
    assert "not applicable" in figures["logme_delta"]["method"]
    row = flat_row(result, score=0.5)
    assert row["latency_p50_ms"] == figures["latency_p50_ms"]["value"] and row["transfer_score"] == 0.5


def test_feature_fidelity_is_cosine(tmp_path):
    exported = export(tiny_vit(tmp_path / "vit"), "feature-extraction", tmp_path / "export")
    feeds = feeds_for(exported, TaskSample.synthetic("image", n=8))
    fp32, dyn = make_variants(exported, ["fp32", "int8-dynamic"])
    ref = measure(fp32, None, feeds, config=QUICK)["outputs"]
    result = measure(dyn, None, feeds, reference=ref, labels=np.array([0, 1] * 4), config=QUICK)
    fid = result["figures"]["fidelity"]
    assert fid["unit"] == "cosine" and 0.5 < fid["value"] <= 1.0 + 1e-6
    assert result["figures"]["logme_delta"]["method"]  # a value, or the stated reason it has none


def test_profile_figures_are_estimated_with_their_method(bert, bert_variants):
    _, feeds = bert
    dyn = bert_variants[1]
    result = measure(dyn, DeviceTarget.resolve("rpi4"), feeds, config=QUICK)
    figures = result["figures"]
    for name in ("latency_p50_ms", "latency_p99_ms", "throughput_b1_per_s", "load_ms", "fidelity"):
        assert figures[name]["label"] == "estimated", name
        assert name == "fidelity" or "rpi4" in figures[name]["method"]
    assert result["estimated_from"]["factor"] > 1  # a Pi 4 is slower than this machine, nominally


def test_profile_calibration_is_saved_and_used(bert, bert_variants):
    _, feeds = bert
    pairs = [{"model": "m", "variant": "int8-dynamic", "precision": "int8", "local_ms": 2.0, "agent_ms": 7.0}]
    saved = save_calibration("rpi5", pairs, agent_info={"cpu_model": "Cortex-A76"})
    assert saved["factors"] == {"int8": 3.5}
    assert load_calibration("rpi5")["agent_cpu"] == "Cortex-A76"
    assert (_paths.cache_dir("profiles") / "rpi5.json").exists()
    result = measure(bert_variants[1], DeviceTarget.resolve("rpi5"), feeds, config=QUICK)
    assert result["estimated_from"]["factor"] == pytest.approx(3.5)
    assert "calibrated" in result["figures"]["latency_p50_ms"]["method"]
    with pytest.raises(TargetError):
        save_calibration("rpi99", pairs, agent_info={})


def test_every_profile_documents_its_device():
    for name, profile in PROFILES.items():
        info = profile.info()
        assert (
            info["cores"] > 0
            and info["memory_mb"] > 0
            and info["isa"] in ("arm64", "avx2", "avx512", "avx512_vnni")
        )
        assert isinstance(info["int8_dot_product"], bool) and profile.description, name


# ---------------------------------------------------------------- the CLI


def test_bench_cli_on_a_transformer_gives_every_figure(tmp_path, capsys):
    model = tiny_bert(tmp_path / "tiny-bert")
    out = tmp_path / "report.json"
    code = main(
        [
            "bench",
            str(model),
            "--variants",
            "fp32,int8-dynamic,int8-static",
            "--threads",
            "1",
            "--iterations",
            "10",
            "--min-seconds",
            "0.2",
            "--json",
            str(out),
            "--max-latency-ms",
            "10000",
        ]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads(out.read_text())
    assert [r["variant"] for r in report["results"]] == ["fp32", "int8-dynamic", "int8-static"]
    sizes = {}
    for result in report["results"]:
        for name in FIGURES:
            fig = result["figures"][name]
            assert fig["label"] == "measured" and fig["method"]
            if name != "logme_delta":
                assert fig["value"] is not None, (result["variant"], name)
        sizes[result["variant"]] = result["figures"]["file_size_mb"]["value"]
    assert sizes["int8-dynamic"] < sizes["fp32"] / 2 and sizes["int8-static"] < sizes["fp32"] / 2
    assert report["sample"]["source"] == "synthetic" and report["pick"]["reason"]
    assert report["pareto"] and "p50" in capsys.readouterr().out


def test_bench_cli_user_errors_exit_2(tmp_path, capsys):
    model = tiny_bert(tmp_path / "tiny-bert")
    cases = [
        ["--target", "rpi9"],
        ["--variants", "fp32,int3"],
        ["--max-latency-ms", "0.000001"],
        ["--target", "http://127.0.0.1:9", "--token-file", str(tmp_path / "missing-token")],
        ["--calibrate", "rpi9"],
        ["--calibrate", "rpi4"],  # needs an agent target
        ["--task-kind", "object-detection"],
    ]
    base = ["bench", str(model), "--threads", "1", "--iterations", "3", "--min-seconds", "0", "--no-memory"]
    for extra in cases:
        code = main([*base, "--variants", "fp32", *extra])
        err = capsys.readouterr().err
        assert code == 2, extra
        assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err


def test_impossible_constraint_names_the_constraint(tmp_path, capsys):
    model = tiny_bert(tmp_path / "tiny-bert")
    code = main(
        [
            "bench",
            str(model),
            "--variants",
            "fp32,int8-dynamic",
            "--threads",
            "1",
            "--iterations",
            "3",
            "--min-seconds",
            "0",
            "--no-memory",
            "--max-size-mb",
            "0.01",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--max-size-mb 0.01" in err and "int8-dynamic" in err and "relax to --max-size-mb" in err


def test_devices_command_lists_profiles(capsys):
    assert main(["devices", "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"rpi4", "rpi5", "jetson-orin-nano", "x86-laptop"} <= set(data["profiles"])
    assert data["local"]["isa"]


def test_fp16_variant_for_a_cuda_target(bert):
    exported, feeds = bert
    import onnx

    # A hand-made target standing in for a CUDA device (no GPU here): only `info["cuda"]` matters.
    gpu = SimpleNamespace(name="cuda-box", info={"cuda": True, "isa": "avx2"})
    fp32, fp16 = make_variants(exported, ["fp32", "fp16"], gpu, feeds)
    assert fp16.path is not None and "float16" in fp16.method
    assert fp16.path.stat().st_size < 0.6 * fp32.path.stat().st_size
    model = onnx.load(str(fp16.path))
    onnx.checker.check_model(model)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64  # I/O kept as they were


def test_bench_with_a_labelled_dataset_reports_the_logme_change(tmp_path):
    import csv

    from hf_spider.hardware._bench import bench

    rows = [("the film was wonderful and charming", "pos"), ("the update was broken and dull", "neg")] * 20
    data = tmp_path / "reviews.csv"
    with open(data, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i, (text, label) in enumerate(rows):
            writer.writerow([f"{text} {'a' * (i % 5)}", label])
    model = tiny_bert(tmp_path / "tiny-bert")
    seen = []
    report = bench(
        str(model),
        variants="fp32,int8-dynamic",
        dataset=str(data),
        task_kind="feature-extraction",
        config=QUICK.replace(sample_size=32),
        progress=lambda stage, done, total, note="": seen.append((stage, done, total, note)),
    )
    # Each stage shows as it starts and ends, every variant as it is built and measured.
    assert [(stage, done, total) for stage, done, total, _ in seen] == [
        ("export", 0, 1),
        ("export", 1, 1),
        ("sample", 0, 1),
        ("sample", 1, 1),
        ("variants", 0, 2),
        ("variants", 1, 2),
        ("variants", 2, 2),
        ("measure", 0, 2),
        ("measure", 1, 2),
        ("measure", 2, 2),
    ]
    assert seen[4][3] == "fp32" and seen[5][3] == "int8-dynamic" and seen[8][3].startswith("int8-dynamic on ")
    assert report["sample"]["source"].startswith("dataset") and report["sample"]["labelled"]
    int8 = report["results"][1]["figures"]
    assert int8["fidelity"]["unit"] == "cosine"
    assert (
        int8["logme_delta"]["value"] is not None
        and "LogME(variant) - LogME(fp32)" in int8["logme_delta"]["method"]
    )
    assert report["results"][0]["figures"]["logme_delta"]["value"] == pytest.approx(0.0, abs=1e-6)
