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
from conftest import needs_zoo
from test_hardware_fixtures import tiny_bert

from hf_spider.cli import main
from hf_spider.errors import AuthError, TargetError
from hf_spider.hardware import DeviceTarget, MeasureConfig, make_variants, measure
from hf_spider.hardware._bench import bench
from hf_spider.hardware._export import export
from hf_spider.hardware.agent import AGENT_VERSION, AgentClient, AgentServer
from hf_spider.hardware.sample import TaskSample, feeds_for

TOKEN = "loopback-test-token-0123456789"
FAST = MeasureConfig(iterations=5, min_seconds=0.1, warmup=1, threads=1, batch=4)
QUICK = FAST.replace(memory=False)


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
    assert type(target).__name__ == "AgentTarget" and target.info["agent"]["max_upload_mb"] == 3
    fp32, dyn = make_variants(exported, ["fp32", "int8-dynamic"], target, feeds)
    assert dyn.config["isa"] == target.info["isa"]  # quantized for the agent's instruction set
    ref = measure(fp32, target, feeds, config=QUICK)
    result = target.measure(dyn, feeds, reference=ref["outputs"], config=FAST)
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
    assert result["target"]["info"]["agent"]["version"] == AGENT_VERSION
    assert figures["fidelity"]["unit"] == "top-1 agreement"
    # the same files are not uploaded twice
    names = sorted(p.name for p in agent.files_dir.iterdir())
    measure(dyn, target, feeds, config=QUICK)
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
        "params": {"iterations": 30, "min_seconds": 0.3, "threads": 1, "memory": False},
    }
    ids = [_raw(agent, "POST", "/jobs", body=json.dumps(job).encode())[1]["id"] for _ in range(3)]
    done = [_wait(agent, i) for i in ids]
    assert all(d["status"] == "done" for d in done)
    for earlier, later in itertools.pairwise(done):
        assert later["started"] >= earlier["finished"]


def test_bench_against_the_agent_calibrates_a_profile(agent, bert, monkeypatch):
    folder, _, _ = bert
    monkeypatch.setenv("HF_SPIDER_AGENT_TOKEN", TOKEN)
    report = bench(
        str(folder),
        target=agent.url,
        # the token the way `recommend` and `bench` take it too: from the environment
        variants="fp32,int8-dynamic",
        calibrate="rpi4",
        config=QUICK,
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


# ---------------------------------------------------------------- rough edges a device on a network meets


def test_idle_connections_are_dropped_and_do_not_pin_threads(tmp_path):
    import socket
    import threading

    server = AgentServer("127.0.0.1", 0, token=TOKEN, workdir=tmp_path, idle_timeout=0.5).start()
    try:
        before = threading.active_count()
        host, port = server.httpd.server_address[:2]
        idle = [socket.create_connection((host, port), timeout=10) for _ in range(20)]
        idle[0].sendall(b"GET /info HTTP/1.1\r\n")  # a request line and then nothing
        for sock in idle:  # the agent hangs up on each (a server without a timeout never would)
            assert sock.recv(1024) == b""
            sock.close()
        deadline = time.time() + 10
        while threading.active_count() > before and time.time() < deadline:
            time.sleep(0.1)
        assert threading.active_count() <= before  # no thread is left holding an idle client
        _still_serving(server)
    finally:
        server.shutdown()


def test_connections_over_the_cap_are_closed_at_once(tmp_path):
    import socket

    server = AgentServer(
        "127.0.0.1", 0, token=TOKEN, workdir=tmp_path, idle_timeout=5, max_connections=3
    ).start()
    try:
        host, port = server.httpd.server_address[:2]
        held = [socket.create_connection((host, port), timeout=10) for _ in range(3)]
        time.sleep(0.2)
        extra = socket.create_connection((host, port), timeout=10)
        assert extra.recv(10) == b""  # closed by the agent, no thread spent on it
        extra.close()
        for sock in held:
            sock.close()
        time.sleep(0.3)
        _still_serving(server)
    finally:
        server.shutdown()


def test_reset_and_half_open_connections_log_no_traceback(agent, capfd, caplog):
    import socket
    import struct

    host, port = agent.httpd.server_address[:2]
    for body in (b"PUT /files/r.onnx HTTP/1.1\r\nAuthorization: Bearer " + TOKEN.encode(), b"GET /in"):
        sock = socket.create_connection((host, port), timeout=10)
        sock.sendall(body + b"\r\nContent-Length: 100000\r\n\r\n" + b"x" * 10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # RST: the agent is mid-read
    half = socket.create_connection((host, port), timeout=10)
    half.sendall(b"GET /health HTTP/1.1\r\n")
    half.shutdown(socket.SHUT_WR)  # half-open: the agent reads EOF mid-headers
    half.recv(1024)
    half.close()
    time.sleep(0.3)
    _still_serving(agent)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err + caplog.text


def test_deeply_nested_json_is_a_400(agent):
    deep = b"[" * 100_000 + b"]" * 100_000
    status, body = _raw(agent, "POST", "/jobs", body=deep)
    assert status == 400 and "nested" in body["error"]
    _still_serving(agent)


@pytest.mark.parametrize("weak", ["x", "short-token", "a" * 40, "abababababababababab"])
def test_weak_tokens_are_refused(tmp_path, weak, capsys):
    from hf_spider.errors import UserInputError

    with pytest.raises(UserInputError, match="too weak"):
        AgentServer("127.0.0.1", 0, token=weak, workdir=tmp_path)
    token_file = tmp_path / "token"
    token_file.write_text(weak)
    assert main(["agent", "--port", "0", "--token-file", str(token_file)]) == 2
    err = capsys.readouterr().err
    assert "too weak" in err and err.count("\n") == 1 and weak not in err.replace(str(tmp_path), "")


def test_new_token_is_generated_private_and_never_overwrites(tmp_path, capsys):
    import os
    import stat

    from hf_spider.hardware.cli import _write_new_token

    token_file = tmp_path / "token"
    _write_new_token(str(token_file), "z" * 3)
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert "zzz" not in capsys.readouterr().out  # the token itself is never printed
    assert main(["agent", "--new-token", "--port", "0", "--token-file", str(token_file)]) == 2
    assert "exists already" in capsys.readouterr().err and token_file.read_text() == "zzz\n"


def test_job_errors_do_not_reveal_the_workdir(agent):
    assert _raw(agent, "PUT", "/files/bad.onnx", body=b"\x08\x01" * 64)[0] == 201
    assert _raw(agent, "PUT", "/files/in2.npz", body=_npz(x=np.zeros((2, 3), np.float32)))[0] == 201
    _, job = _raw(
        agent, "POST", "/jobs", body=json.dumps({"model": "bad.onnx", "inputs": "in2.npz"}).encode()
    )
    done = _wait(agent, job["id"])
    assert done["status"] == "failed" and done["error"]
    workdir = str(agent.files_dir.parent)
    assert workdir not in done["error"] and str(agent.files_dir) not in done["error"]
    assert "/tmp" not in done["error"]


def test_an_old_agent_protocol_is_named(agent, monkeypatch):
    real = agent.info()
    old = {**real, "agent": {**real["agent"], "version": 1}}  # an agent of the first protocol
    monkeypatch.setattr(agent, "info", lambda: old)
    with pytest.raises(TargetError, match="protocol version"):
        DeviceTarget.resolve(agent.url, token=TOKEN)


def test_a_variant_over_the_upload_limit_is_a_skipped_row_and_the_run_goes_on(bert, tmp_path, monkeypatch):
    folder, exported, feeds = bert
    fp32, dyn = make_variants(exported, ["fp32", "int8-dynamic"], None, feeds)
    fp32_mb, int8_mb = (v.path.stat().st_size / 2**20 for v in (fp32, dyn))
    assert int8_mb < fp32_mb
    server = AgentServer(
        "127.0.0.1", 0, token=TOKEN, workdir=tmp_path / "agent", max_upload_mb=(fp32_mb + int8_mb) / 2
    ).start()
    try:
        monkeypatch.setenv("HF_SPIDER_AGENT_TOKEN", TOKEN)
        report = bench(str(folder), target=server.url, variants="fp32,int8-dynamic", config=QUICK)
    finally:
        server.shutdown()
    by_variant = {r["variant"]: r for r in report["results"]}
    assert "over the agent's upload limit" in by_variant["fp32"]["skipped"]
    assert by_variant["int8-dynamic"]["figures"]["latency_p50_ms"]["label"] == "measured"
    # without an fp32 run there is no reference: fidelity says so instead of failing
    assert by_variant["int8-dynamic"]["figures"]["fidelity"]["value"] is None


MINILM = "sentence-transformers/all-MiniLM-L6-v2"
SPLADE = "hf-spider-zoo/splade-tiny"


@needs_zoo(MINILM, SPLADE, datasets=("rotten_tomatoes",))
@pytest.mark.slow
def test_recommend_measures_on_an_agent_and_skips_what_it_cannot_take(tmp_path, monkeypatch, capsys):
    """`recommend DATA --target http://127.0.0.1:PORT --token-file F` end to end, then the Python API
    with the token from the environment. MiniLM's fp32 graph (~86 MiB) is over the agent's 64 MiB
    upload limit: a skipped row with the reason, and the run goes on."""
    from hf_spider import _paths
    from hf_spider.recommend import recommend
    from hf_spider.zoo import model_path

    catalog = tmp_path / "models"
    for repo_id in (MINILM, SPLADE):
        (catalog / repo_id).parent.mkdir(parents=True, exist_ok=True)
        (catalog / repo_id).symlink_to(model_path(repo_id), target_is_directory=True)
    dataset = str(_paths.zoo_dir() / "datasets" / "rotten_tomatoes")
    token_file = tmp_path / "agent.token"
    token_file.write_text(TOKEN + "\n")
    server = AgentServer("127.0.0.1", 0, token=TOKEN, workdir=tmp_path / "agent", max_upload_mb=64).start()
    monkeypatch.chdir(tmp_path)
    try:
        args = ["recommend", dataset, "--catalog", str(catalog), "--stages", "rank,bench", "--top-k", "2"]
        args += [
            "--sample",
            "32",
            "--target",
            server.url,
            "--token-file",
            str(token_file),
            "--json",
            "out.json",
        ]
        assert main(args) == 0
        rows = json.loads((tmp_path / "out.json").read_text())["rows"]
        by_key = {(r["model_id"], r["variant"]): r for r in rows if r["variant"]}
        skipped = by_key[(MINILM, "fp32")]
        assert skipped["device_status"] == "skipped" and "upload limit of 64 MiB" in skipped["device_reason"]
        measured = [r for r in by_key.values() if r["device_status"] == "measured"]
        assert {(r["model_id"], r["variant"]) for r in measured} >= {
            (MINILM, "int8-dynamic"),
            (SPLADE, "fp32"),
        }
        assert all(r["target"] == server.url and r["latency_p50_ms"] > 0 for r in measured)
        assert capsys.readouterr().err.count("Traceback") == 0

        monkeypatch.setenv("HF_SPIDER_AGENT_TOKEN", TOKEN)  # the Python API: a URL, token from the env
        recs = recommend(
            dataset,
            catalog=str(catalog),
            stages=("rank", "bench"),
            top_k=1,
            sample=16,
            target=server.url,
            measure_config=QUICK.replace(sample_size=16),
        )
        assert recs.meta["target"]["kind"] == "agent"
        assert any(r["device_status"] == "measured" for r in recs.rows)
    finally:
        server.shutdown()


def test_agent_arguments_are_checked_before_anything_is_written(tmp_path, capsys):
    """A port out of range ended in an OverflowError traceback; a --workdir that is a file was
    blamed on the port; --new-token wrote its file before either was checked."""
    token_file = tmp_path / "token"
    for port in ("99999", "-1"):
        assert main(["agent", "--new-token", "--port", port, "--token-file", str(token_file)]) == 2
        err = capsys.readouterr().err
        assert f"--port {port} is not a port" in err and err.count("\n") == 1
    assert not token_file.exists()
    afile = tmp_path / "afile"
    afile.write_text("")
    assert (
        main(
            ["agent", "--new-token", "--port", "0", "--token-file", str(token_file), "--workdir", str(afile)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "cannot use --workdir" in err and "--port" not in err and not token_file.exists()
