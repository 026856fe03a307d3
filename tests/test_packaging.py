"""A built wheel is a working product: it carries the embedded catalog and the shipped ranker
weights, and `hf-spider recommend --stages rank` runs from it outside the source tree.

Real build (setuptools, as `pip wheel` runs it), real install into a fresh virtual environment
without system site-packages. The heavy dependencies (torch, ...) come from this project's
environment through a `.pth` line instead of a download: the test stays offline and cheap, and
`hf_spider` itself can only come from the wheel (the project's editable install is a `.pth` hook
of its own site folder, which a `.pth`-added folder does not run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import hf_spider

REPO = Path(hf_spider.__file__).resolve().parent.parent
SOURCES = (
    "pyproject.toml",
    "setup.py",
    "MANIFEST.in",
    "README.md",
    "hf_spider",
    "model_cards",
    "benchmarks/results/device_cost_third_pass.jsonl",
    "benchmarks/results/device_cost_siblings.jsonl",
    "benchmarks/results/cost_facts.json",
    "benchmarks/results/cost_card_configs.json",
)

CARD = """---
task_categories: [text-classification]
dataset_info:
  features:
  - name: text
    dtype: string
  - name: label
    dtype:
      class_label:
        names:
          '0': negative
          '1': positive
---
# movie reviews
"""


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (the build writes build/ and egg-info/)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(src))
    (built,) = dist.glob("hf_spider-*.whl")
    return built


def test_wheel_carries_the_catalog_and_the_ranker_weights(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in (
        "hf_spider/_model_cards/catalog.jsonl",
        "hf_spider/_reference/device_cost_third_pass.jsonl",  # the cost model's reference runs
        "hf_spider/_reference/device_cost_siblings.jsonl",
        "hf_spider/_reference/cost_facts.json",  # and the seeds of its caches
        "hf_spider/_reference/cost_card_configs.json",
        "hf_spider/ranker/weights/model.safetensors",
        "hf_spider/ranker/weights/config.json",
    ):
        assert name in names, name
    packaged = zipfile.ZipFile(wheel).read("hf_spider/_model_cards/catalog.jsonl")
    assert packaged == (REPO / "model_cards" / "catalog.jsonl").read_bytes()


@pytest.mark.slow
def test_installed_wheel_recommends_from_outside_the_source_tree(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip("--python", str(python), "install", "--no-deps", "-q", str(wheel))
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (Path(site) / "_project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    card = tmp_path / "reviews-card"
    card.mkdir()
    (card / "README.md").write_text(CARD)
    work = tmp_path / "work"  # outside the source tree: nothing can come from REPO
    work.mkdir()
    env = {
        **os.environ,
        "HF_SPIDER_HOME": str(tmp_path / "home"),  # no user catalog
        "HF_SPIDER_ZOO": str(tmp_path / "no-zoo"),  # the embedded catalog alone
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": "",
    }
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import hf_spider._paths as p; print(p.PACKAGE_DIR); print(p.EMBEDDED_CATALOG_DIR);"
            " print(p.REFERENCE_DEVICE_RUNS)",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(Path(w).is_relative_to(venv) for w in where), where

    proc = subprocess.run(
        [str(venv / "bin" / "hf-spider"), "recommend", str(card), "--stages", "rank", "--json", "out.json"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((work / "out.json").read_text())
    catalog = result["meta"]["catalog"]
    assert Path(catalog["source"]).is_relative_to(venv) and catalog["num_candidates"] > 50
    assert "shipped" in result["meta"]["protocol"]["ranker"]
    ranking = result["ranking"]
    assert len(ranking) == catalog["num_candidates"] and ranking[0]["rank"] == 1
    scores = [r["score"] for r in ranking]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) > 1


def _onnx_model(path: Path) -> Path:
    """A small real ONNX graph (x @ W + b, then ReLU) for the agent to time."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.normal(size=(16, 8)).astype(np.float32), "W")
    bias = numpy_helper.from_array(np.zeros(8, np.float32), "b")
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializer=[weight, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.slow
def test_agent_extra_installs_light_and_serves_without_torch(wheel, tmp_path):
    """`pip install "hf-spider[agent]"` into a fresh environment (from the configured index or
    wheel cache, no network needed): ONNX Runtime, numpy, psutil and their few dependencies, no
    torch, transformers or gradio; `hf-spider agent` starts from it and measures a model."""
    import re

    import numpy as np

    from hf_spider.hardware import MeasureConfig
    from hf_spider.hardware.agent import AgentClient

    venv = tmp_path / "board"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    _pip("--python", str(python), "install", "-q", f"{wheel}[agent]")
    listed = (
        subprocess.run(
            [
                str(python),
                "-c",
                "import importlib.metadata as m; print(' '.join(d.metadata['Name'] for d in m.distributions()))",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.lower()
        .split()
    )
    assert {"numpy", "onnxruntime", "psutil", "hf-spider"} <= set(listed)
    heavy = {
        "torch",
        "transformers",
        "gradio",
        "datasets",
        "pandas",
        "scipy",
        "optimum-onnx",
        "huggingface-hub",
    }
    assert not heavy & set(listed), heavy & set(listed)

    token_file = tmp_path / "agent.token"
    env = {**os.environ, "HF_SPIDER_HOME": str(tmp_path / "home"), "PYTHONPATH": ""}
    agent = subprocess.Popen(
        [
            str(venv / "bin" / "hf-spider"),
            "agent",
            "--new-token",
            "--token-file",
            str(token_file),
            "--port",
            "0",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "wrote a new agent token" in agent.stdout.readline()
        line = agent.stdout.readline()
        url = re.search(r"http://[0-9.]+:[0-9]+", line).group(0)
        client = AgentClient(url, token=token_file.read_text().strip())
        assert client.info()["onnxruntime"]
        feeds = {"x": np.random.default_rng(1).normal(size=(8, 16)).astype(np.float32)}
        raw = client.measure(
            _onnx_model(tmp_path / "tiny.onnx"),
            feeds,
            MeasureConfig(threads=1, iterations=5, min_seconds=0.1, warmup=1, batch=4),
        )
        assert raw["latency_ms"]["p50"] > 0 and raw["memory"]["peak_mb"] > 0
        assert raw["outputs"].shape == (8, 8)
    finally:
        agent.terminate()
        _, err = agent.communicate(timeout=30)
    assert "Traceback" not in err
