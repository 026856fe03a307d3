"""Config-only device cost: real configs, random weights, real export and ONNX Runtime; no weights fetched."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from test_hardware_fixtures import tiny_bert

from hf_spider.hardware._configonly import (
    CONFIG_LABEL,
    CONFIG_NOTE,
    ConfigMeasureConfig,
    config_hash,
    measure_from_config,
)
from hf_spider.hardware.config import MeasureConfig
from hf_spider.hardware.measurements import load_records
from hf_spider.testing.hub_server import HubServer

FAST = ConfigMeasureConfig(
    MeasureConfig(threads=1, batch=2, warmup=1, iterations=3, min_seconds=0.0), seq_len=16, rows=4
)


@pytest.fixture
def hub_with_weights(tmp_path):
    """A loopback Hub holding a tiny BERT with its weights, tokenizer and config."""
    repo = tmp_path / "hub" / "models" / "config-only-test" / "tiny-bert"
    tiny_bert(repo)
    assert (repo / "model.safetensors").exists()
    with HubServer(tmp_path / "hub") as server:
        yield server


def test_only_config_is_requested_never_weights(hub_with_weights):
    results = measure_from_config(
        "config-only-test/tiny-bert",
        ["fp32", "int8-dynamic"],
        "local",
        endpoint=hub_with_weights.url,
        measure_config=FAST,
    )
    fetched = [path for method, path, *_ in hub_with_weights.requests if "/resolve/" in path]
    assert fetched, "the config was not fetched from the Hub"
    allowed = (
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.txt",
        "special_tokens_map.json",
    )
    assert all(path.rsplit("/", 1)[-1].split("?")[0] in allowed for path in fetched), fetched
    assert not any("safetensors" in path or ".bin" in path for _, path, *_ in hub_with_weights.requests)
    requests_before_export = len(hub_with_weights.requests)
    fp32, int8 = results
    assert (fp32["variant"], int8["variant"]) == ("fp32", "int8-dynamic")
    for result in results:
        figures = result["figures"]
        assert figures["latency_p50_ms"]["label"] == CONFIG_LABEL
        assert figures["latency_p50_ms"]["value"] > 0
        assert figures["latency_p50_ms"]["note"] == CONFIG_NOTE
        assert figures["fidelity"]["value"] is None and "random weights" in figures["fidelity"]["method"]
        assert result["input"]["seq_len"] == 16
    # int8 weights are about a quarter of fp32 ones
    assert int8["figures"]["file_size_mb"]["value"] < 0.5 * fp32["figures"]["file_size_mb"]["value"]
    records = load_records()
    assert {r["variant"] for r in records} == {"fp32", "int8-dynamic"}
    # the config-only fetch leaves no partial snapshot behind: a real export still gets the weights
    from hf_spider.hardware._export import export

    exported = export("config-only-test/tiny-bert", "text-classification", endpoint=hub_with_weights.url)
    assert exported.path.exists()
    assert any(
        "model.safetensors" in path for _, path, *_ in hub_with_weights.requests[requests_before_export:]
    )
    assert all(r["source"] == "config-only" and r["config"]["model_type"] == "bert" for r in records)


def test_results_are_cached_by_config_variant_target_and_protocol(tmp_path):
    folder = tiny_bert(tmp_path / "tiny-bert")
    config = json.loads((folder / "config.json").read_text())
    first = measure_from_config(config, ["fp32"], measure_config=FAST)
    again = measure_from_config(config, ["fp32"], measure_config=FAST)
    assert again[0].get("cached") and not first[0].get("cached")
    assert again[0]["figures"]["latency_p50_ms"]["value"] == first[0]["figures"]["latency_p50_ms"]["value"]
    # another protocol is another measurement
    longer = measure_from_config(config, ["fp32"], measure_config=dataclasses.replace(FAST, seq_len=32))
    assert not longer[0].get("cached") and longer[0]["input"]["seq_len"] == 32
    # names and label maps do not change the architecture's hash
    renamed = {**config, "_name_or_path": "elsewhere", "id2label": {"0": "a", "1": "b", "2": "c"}}
    assert config_hash(renamed) == config_hash(config)


def test_batch_one_only_protocol_skips_throughput_and_outputs(tmp_path):
    """The cost sweep's protocol: batch-1 timing and peak memory measured, the larger batch and the
    sample outputs skipped (said so in the figures), and cached apart from the full protocol."""
    config = json.loads((tiny_bert(tmp_path / "tiny-bert") / "config.json").read_text())
    full = measure_from_config(config, ["fp32"], measure_config=FAST)[0]["figures"]
    lean = measure_from_config(config, ["fp32"], measure_config=dataclasses.replace(FAST, throughput=False))
    assert not lean[0].get("cached")
    figures = lean[0]["figures"]
    assert figures["latency_p50_ms"]["value"] > 0 and figures["cpu_time_p50_ms"]["value"] > 0
    assert figures["peak_memory_mb"]["value"] > 0
    assert figures["throughput_batch_per_s"]["value"] is None
    assert "not measured" in figures["throughput_batch_per_s"]["method"]
    assert full["throughput_batch_per_s"]["value"] > 0
    assert figures["file_size_mb"]["value"] == full["file_size_mb"]["value"]


def test_unknown_model_type_is_a_one_line_user_error(tmp_path, capsys):
    from hf_spider.errors import UserInputError

    with pytest.raises(UserInputError, match="does not know model type"):
        measure_from_config({"model_type": "no-such-architecture"}, ["fp32"], measure_config=FAST)


@pytest.mark.zoo
def test_config_only_matches_the_real_weights_file_size(tmp_path):
    """The zoo's real MiniLM: the random-weight build has the real graph, so the same file size."""
    from hf_spider._paths import zoo_dir
    from hf_spider.hardware._export import export

    hub = zoo_dir() / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    if not hub.exists():
        pytest.skip("offline zoo not installed (hf-spider zoo install)")
    snapshot = next((hub / "snapshots").iterdir())
    folder = tmp_path / "minilm"
    shutil.copytree(snapshot, folder)
    real = export(folder, "feature-extraction", tmp_path / "real")
    (result,) = measure_from_config(folder, ["fp32"], measure_config=FAST)
    real_mb = real.path.stat().st_size / 2**20
    assert result["figures"]["file_size_mb"]["value"] == pytest.approx(real_mb, rel=0.01)


def test_unreachable_hub_is_one_line_exit_2(tmp_path, capsys):
    from hf_spider.cli import main

    code = main(
        ["bench", "nobody/nothing", "--from-config", "--endpoint", "http://127.0.0.1:9", "--variants", "fp32"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    # one line, at once: the endpoint is checked before huggingface_hub's retries (about 23 s of
    # "Retrying in 8s" warnings on a machine without network)
    (line,) = err.strip().splitlines()
    assert line.startswith("error: the config of model nobody/nothing") and "cannot be reached" in line
