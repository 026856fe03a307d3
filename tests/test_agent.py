"""The device agent over loopback: a real HTTP server, real uploads, real ONNX Runtime jobs."""

from __future__ import annotations

import http.client
import io
import itertools
import json
import re
import time

import numpy as np
import pytest
from test_hardware_fixtures import tiny_bert

from hf_spider.cli import main
from hf_spider.errors import AuthError, TargetError
from hf_spider.hardware import DeviceTarget, make_variants, measure
from hf_spider.hardware._bench import bench
from hf_spider.hardware._export import export
from hf_spider.hardware.agent import AgentClient, AgentServer
from hf_spider.hardware.sample import TaskSample, feeds_for

TOKEN = "loopback-test-token-0123456789"
FAST = {"min_iterations": 5, "min_seconds": 0.1, "warmup": 1, "threads": 1, "batch": 4}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    server = AgentServer(
        "127.0.0.1", 0, token=TOKEN, workdir=tmp_path_factory.mktemp("agent"), max_upload_mb=3
    )
    server.start()
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    root = tmp_path_factory.mktemp("bert")
    folder = tiny_bert(root / "tiny-bert")
    exported = export(folder, "text-classification", root / "export")
    feeds = feeds_for(exported, TaskSample.synthetic("text", n=8))
    return folder, exported, feeds


def _raw(agent, method, path, body=b"", headers=None, token=TOKEN):
    host, port = agent.httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    all_headers = {"Content-Length": str(len(body)), **(headers or {})}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, body=body, headers=all_headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, (json.loads(data) if data else {})


def _still_serving(agent):
    status, info = _raw(agent, "GET", "/info")
    assert status == 200 and info["cpu_model"]


def _npz(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _wait(agent, job_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        status, job = _raw(agent, "GET", f"/jobs/{job_id}")
        assert status == 200
        if job["status"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_round_trip_returns_measured_figures_with_agent_device_info(agent, bert):
    _, exported, feeds = bert
    target = DeviceTarget.resolve(agent.url, token=TOKEN)
    assert target.kind == "agent" and target.info["agent"]["max_upload_mb"] == 3
    fp32, dyn = make_variants(exported, ["fp32", "int8-dynamic"], target, feeds)
    assert dyn.config["isa"] == target.info["isa"]  # quantized for the agent's instruction set
    ref = measure(fp32, target, feeds, memory=False, **FAST)
    result = measure(dyn, target, feeds, reference=ref["outputs"], **FAST)
    figures = result["figures"]
    for name in (
        "latency_p50_ms",
        "latency_p99_ms",
        "throughput_b1_per_s",
        "throughput_batch_per_s",
        "peak_memory_mb",
        "load_ms",
        "fidelity",
    ):
        assert figures[name]["label"] == "measured" and figures[name]["value"] is not None, name
    assert agent.url in figures["latency_p50_ms"]["method"]
    assert result["target"]["kind"] == "agent" and result["target"]["info"]["cpu_model"]
    assert result["target"]["info"]["agent"]["version"] >= 1
    assert figures["fidelity"]["unit"] == "top-1 agreement"
    # the same files are not uploaded twice
    names = sorted(p.name for p in agent.files_dir.iterdir())
    measure(dyn, target, feeds, memory=False, **FAST)
    assert sorted(p.name for p in agent.files_dir.iterdir()) == names


def test_wrong_or_missing_token_is_refused_and_agent_keeps_serving(agent):
    assert _raw(agent, "GET", "/health", token=None)[0] == 200
    assert _raw(agent, "GET", "/info", token="wrong")[0] == 401
    assert _raw(agent, "GET", "/info", token=None)[0] == 401
    assert _raw(agent, "PUT", "/files/x.onnx", body=b"abc", token="wrong")[0] == 401
    with pytest.raises(AuthError, match="rejected the token"):
        DeviceTarget.resolve(agent.url, token="wrong")
    with pytest.raises(AuthError, match="needs a token"):
        DeviceTarget.resolve(agent.url)
    _still_serving(agent)


def test_oversized_upload_is_refused_before_reading(agent):
    host, port = agent.httpd.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.putrequest("PUT", "/files/huge.onnx")
    conn.putheader("Authorization", f"Bearer {TOKEN}")
    conn.putheader("Content-Length", str(50 * 2**20))
    conn.endheaders()  # the body is never sent: the agent answers from the header
    response = conn.getresponse()
    assert response.status == 413 and "limit" in json.loads(response.read())["error"]
    conn.close()
    assert not (agent.files_dir / "huge.onnx").exists()
    _still_serving(agent)


def test_client_refuses_a_variant_over_the_agent_limit(agent, tmp_path):
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * (4 * 2**20))
    with pytest.raises(TargetError, match="over the agent's upload limit"):
        AgentClient(agent.url, token=TOKEN).measure(big, {"x": np.zeros((1, 2), np.float32)}, {})


@pytest.mark.parametrize(
    "path",
    [
        "/files/../escape.onnx",
        "/files/..%2Fescape.onnx",
        "/files/.hidden",
        "/files/a/b.onnx",
        "/files/%2e%2e",
    ],
)
def test_path_traversal_is_refused(agent, path):
    status, body = _raw(agent, "PUT", path, body=b"data")
    assert status == 400 and "file name" in body["error"]
    assert not (agent.files_dir.parent / "escape.onnx").exists()
    assert not list(agent.files_dir.parent.parent.glob("escape*"))
    _still_serving(agent)


def test_malformed_model_fails_the_job_clearly(agent):
    assert _raw(agent, "PUT", "/files/garbage.onnx", body=b"this is not a protobuf" * 10)[0] == 201
    assert _raw(agent, "PUT", "/files/in.npz", body=_npz(x=np.zeros((2, 3), np.float32)))[0] == 201
    status, job = _raw(
        agent, "POST", "/jobs", body=json.dumps({"model": "garbage.onnx", "inputs": "in.npz"}).encode()
    )
    assert status == 202
    done = _wait(agent, job["id"])
    assert done["status"] == "failed" and "not a valid ONNX model" in done["error"]
    assert "\n" not in done["error"]
    _still_serving(agent)


def test_pickled_inputs_are_refused(agent, bert):
    _, exported, _ = bert
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    assert _raw(agent, "PUT", "/files/model.onnx", body=exported.path.read_bytes())[0] == 201
    assert _raw(agent, "PUT", "/files/pickled.npz", body=pickled.getvalue())[0] == 201
    _, job = _raw(
        agent, "POST", "/jobs", body=json.dumps({"model": "model.onnx", "inputs": "pickled.npz"}).encode()
    )
    done = _wait(agent, job["id"])
    assert done["status"] == "failed" and "npz" in done["error"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (json.dumps({"model": "nope.onnx", "inputs": "in.npz"}).encode(), 404, "not uploaded"),
        (
            json.dumps({"model": "in.npz", "inputs": "in.npz", "params": {"rm": "-rf"}}).encode(),
            400,
            "unknown parameter",
        ),
        (
            json.dumps({"model": "in.npz", "inputs": "in.npz", "params": {"threads": -3}}).encode(),
            400,
            "threads",
        ),
        (json.dumps({"model": "../x", "inputs": "in.npz"}).encode(), 400, "file name"),
    ],
)
def test_bad_jobs_get_clear_errors(agent, body, status, words):
    _raw(agent, "PUT", "/files/in.npz", body=_npz(x=np.zeros((2, 3), np.float32)))
    got, answer = _raw(agent, "POST", "/jobs", body=body)
    assert got == status and words in answer["error"]
    _still_serving(agent)


def test_unknown_routes_and_jobs(agent):
    assert _raw(agent, "GET", "/nothing")[0] == 404
    assert _raw(agent, "GET", "/jobs/0000")[0] == 404
    assert _raw(agent, "DELETE", "/files/x")[0] == 501  # not an HTTP method the agent serves
    _still_serving(agent)


def test_jobs_run_one_at_a_time(agent, bert):
    _, exported, feeds = bert
    client = AgentClient(agent.url, token=TOKEN)
    model = client.upload(exported.path)
    inputs = _npz(**feeds)
    _raw(agent, "PUT", "/files/feeds.npz", body=inputs)
    job = {
        "model": model,
        "inputs": "feeds.npz",
        "params": {"min_iterations": 30, "min_seconds": 0.3, "threads": 1, "memory": False},
    }
    ids = [_raw(agent, "POST", "/jobs", body=json.dumps(job).encode())[1]["id"] for _ in range(3)]
    done = [_wait(agent, i) for i in ids]
    assert all(d["status"] == "done" for d in done)
    for earlier, later in itertools.pairwise(done):
        assert later["started"] >= earlier["finished"]


def test_bench_against_the_agent_calibrates_a_profile(agent, bert):
    folder, _, _ = bert
    report = bench(
        str(folder),
        target=agent.url,
        agent_token=TOKEN,
        variants="fp32,int8-dynamic",
        calibrate="rpi4",
        memory=False,
        **FAST,
    )
    assert {r["variant"] for r in report["results"]} == {"fp32", "int8-dynamic"}
    assert all(r["figures"]["latency_p50_ms"]["label"] == "measured" for r in report["results"])
    calibration = report["calibration"]
    assert set(calibration["factors"]) == {"fp32", "int8"} and calibration["n"] == 2
    # the loopback agent is this machine: the factor is near 1 (noisy on a shared CPU)
    assert all(0.05 < f < 20 for f in calibration["factors"].values())
    rpi = DeviceTarget.resolve("rpi4")
    assert rpi.info["calibration"]["factors"] == calibration["factors"]


def test_cli_wrong_agent_token_exits_2(agent, bert, tmp_path, capsys):
    folder, _, _ = bert
    token_file = tmp_path / "token"
    token_file.write_text("not-the-token\n")
    code = main(
        ["bench", str(folder), "--target", agent.url, "--token-file", str(token_file), "--variants", "fp32"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "rejected the token" in err and "Traceback" not in err
    assert "not-the-token" not in err
    _still_serving(agent)


def test_cli_unreachable_agent_and_bad_token_file_exit_2(tmp_path, capsys):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    code = main(["bench", str(tmp_path), "--target", "http://127.0.0.1:9", "--token-file", str(token_file)])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach the device agent" in err and err.count("\n") == 1
    code = main(["agent", "--port", "0", "--token-file", str(tmp_path / "absent")])
    err = capsys.readouterr().err
    assert code == 2 and "token file" in err and err.count("\n") == 1


def test_agent_command_serves_over_http(tmp_path):
    import subprocess
    import sys

    import requests

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hf_spider",
            "agent",
            "--port",
            "0",
            "--token-file",
            str(token_file),
            "--workdir",
            str(tmp_path / "work"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://[0-9.]+:[0-9]+", line).group(0)
        assert TOKEN not in line
        assert requests.get(url + "/health", timeout=10).json()["ok"]
        assert requests.get(url + "/info", timeout=10).status_code == 401
        info = requests.get(url + "/info", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
        assert info["agent"]["max_upload_mb"] == 512 and info["isa"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_truncated_upload_is_refused_and_not_stored(agent):
    import socket

    host, port = agent.httpd.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as sock:
        head = (
            f"PUT /files/cut.onnx HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"x" * 10)
        sock.shutdown(socket.SHUT_WR)
        answer = sock.makefile("rb").read().decode()
    assert answer.startswith("HTTP/1.1 400") and "upload ended after 10 of 1000 bytes" in answer
    assert not (agent.files_dir / "cut.onnx").exists()
    assert not list(agent.files_dir.glob(".upload-*"))
    _still_serving(agent)
