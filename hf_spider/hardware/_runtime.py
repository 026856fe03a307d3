"""The measurement protocol itself, on ONNX Runtime and numpy only.

Kept free of torch / transformers so the device agent (a Raspberry Pi with `onnxruntime` and
`numpy`) runs exactly the same code as the host. Protocol (`BENCHMARKS.md`, `MeasureConfig`): a
fixed thread count, a warm-up, then timed runs until at least `iterations` runs or `min_seconds`,
latency percentiles at batch 1, throughput at batch 1 and at a larger batch, load time, and the
peak resident memory of a *separate* process with the memory arena off.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from hf_spider.hardware.config import MeasureConfig

MIN_TIMED_RUNS = 3  # even a slow model is timed at least this many times


def make_session(model_path: str | os.PathLike, threads: int, *, arena: bool = True, providers=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_cpu_mem_arena = arena
    options.log_severity_level = 3
    return ort.InferenceSession(
        str(model_path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
    )


def n_rows(feeds: dict[str, np.ndarray]) -> int:
    return min(len(v) for v in feeds.values())


def take(feeds: dict[str, np.ndarray], start: int, size: int) -> dict[str, np.ndarray]:
    """Rows start..start+size of every input, wrapping around the sample."""
    total = n_rows(feeds)
    index = np.arange(start, start + size) % total
    return {k: np.ascontiguousarray(v[index]) for k, v in feeds.items()}


def fixed_batch(session) -> int | None:
    """The batch size the graph is frozen to, or None when the batch axis is dynamic."""
    dims = {i.shape[0] for i in session.get_inputs() if i.shape}
    fixed = [d for d in dims if isinstance(d, int)]
    return fixed[0] if fixed else None


def cast_feeds(session, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Keep the inputs the graph declares, in the dtypes it declares."""
    types = {
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
        "tensor(float)": np.float32,
        "tensor(float16)": np.float16,
        "tensor(double)": np.float64,
        "tensor(bool)": np.bool_,
    }
    out = {}
    for spec in session.get_inputs():
        if spec.name not in feeds:
            raise KeyError(f"the model needs input {spec.name!r}, the sample gives {sorted(feeds)}")
        out[spec.name] = feeds[spec.name].astype(types.get(spec.type, feeds[spec.name].dtype), copy=False)
    return out


def _time_runs(
    session, feeds, batch, *, warmup, iterations, min_seconds, sensors=None, cpu_times=None
) -> tuple[list[float], float]:
    """Timed runs after a warm-up; `sensors` (a `SensorSession`) brackets the timed runs only.

    `cpu_times`, when given, receives this process's CPU time of each run (all threads): unlike
    wall time it hardly moves when other processes compete for the cores."""
    total = n_rows(feeds)
    for i in range(warmup):
        session.run(None, take(feeds, i * batch, batch))
    batches = [take(feeds, i * batch, batch) for i in range(max(1, total // batch))]
    times: list[float] = []
    with sensors if sensors is not None else contextlib.nullcontext():
        started = time.perf_counter()
        while True:
            chunk = batches[len(times) % len(batches)]
            t0, c0 = time.perf_counter(), time.process_time()
            session.run(None, chunk)
            times.append(time.perf_counter() - t0)
            if cpu_times is not None:
                cpu_times.append(time.process_time() - c0)
            elapsed = time.perf_counter() - started
            if len(times) >= iterations or (elapsed >= min_seconds and len(times) >= MIN_TIMED_RUNS):
                break
    return times, elapsed


def pool(output: np.ndarray, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """One vector per row: token outputs are mean-pooled over the attention mask."""
    output = np.asarray(output, dtype=np.float32)
    if output.ndim == 3:
        mask = feeds.get("attention_mask")
        if mask is not None and mask.shape[:2] == output.shape[:2]:
            weights = mask.astype(np.float32)[..., None]
            return (output * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
        return output.mean(1)
    if output.ndim > 3:  # feature maps: global average pool
        return output.reshape(output.shape[0], output.shape[1], -1).mean(-1)
    return output.reshape(output.shape[0], -1)


def sample_outputs(session, feeds, batch: int, output_name: str | None = None) -> np.ndarray:
    """The pooled chosen output for every row of the sample."""
    feeds = cast_feeds(session, feeds)
    names = [o.name for o in session.get_outputs()]
    index = names.index(output_name) if output_name in names else 0
    total = n_rows(feeds)
    parts = []
    for start in range(0, total, batch):
        size = min(batch, total - start)
        chunk = take(feeds, start, batch)  # full batches keep frozen-batch graphs happy
        parts.append(pool(session.run(None, chunk)[index], chunk)[:size])
    return np.concatenate(parts)


def run_protocol(
    model_path: str | os.PathLike,
    feeds: dict[str, np.ndarray],
    config: MeasureConfig,
    *,
    output_name: str | None = None,
    providers: list[str] | None = None,
    throughput: bool = True,
) -> dict[str, Any]:
    """Measure one ONNX file on this machine under `config`. Returns raw numbers and the pooled
    sample outputs. `config.threads` None means every core of this machine. `throughput=False`
    skips the larger-batch timing and the sample outputs (throughput and fidelity then None): the
    config-only cost sweep reads neither, and on a large model they take most of the time."""
    threads = config.threads or os.cpu_count() or 1
    warmup, min_seconds = config.warmup, config.min_seconds
    model_path = Path(model_path)
    t0 = time.perf_counter()
    session = make_session(model_path, threads, providers=providers)
    load_ms = (time.perf_counter() - t0) * 1000.0
    feeds = cast_feeds(session, feeds)
    frozen = fixed_batch(session)
    batch1 = frozen or 1
    big = frozen or max(2, config.batch)
    from hf_spider.hardware.sensors import SensorSession

    sensors = SensorSession()
    cpu_times: list[float] = []
    lat, elapsed1 = _time_runs(
        session,
        feeds,
        batch1,
        warmup=warmup,
        iterations=config.iterations,
        min_seconds=min_seconds,
        sensors=sensors,
        cpu_times=cpu_times,
    )
    lat_ms = np.asarray(lat) * 1000.0
    big_times: list[float] = []
    if throughput:
        big_times, _ = _time_runs(
            session,
            feeds,
            big,
            warmup=min(warmup, 2),
            iterations=max(5, config.iterations // 5),
            min_seconds=min_seconds,
        )
    result: dict[str, Any] = {
        "file_size_bytes": model_path.stat().st_size,
        "load_ms": load_ms,
        "latency_ms": {
            "p50": float(np.percentile(lat_ms, 50)),
            "p90": float(np.percentile(lat_ms, 90)),
            "p99": float(np.percentile(lat_ms, 99)),
            "mean": float(lat_ms.mean()),
        },
        "cpu_ms_p50": float(np.median(cpu_times) * 1000.0),
        "iterations": len(lat),
        "timed_seconds": elapsed1,
        "throughput_b1": batch1 * len(lat) / sum(lat),
        "batch": big,
        "throughput_batch": big * len(big_times) / sum(big_times) if big_times else None,
        "iterations_batch": len(big_times),
        "threads": threads,
        "warmup": warmup,
        "providers": session.get_providers(),
        "batch_frozen": frozen is not None,
        "outputs": sample_outputs(session, feeds, big, output_name) if throughput else None,
        # CPU utilisation, temperature, throttling, energy over the batch-1 timed runs
        "sensors": sensors.report(len(lat), threads=threads),
    }
    del session
    if config.memory:
        result["memory"] = memory_probe(model_path, feeds, threads=threads, batch=big, providers=providers)
    return result


def memory_probe(model_path, feeds, *, threads: int, batch: int, providers=None) -> dict[str, float]:
    """Peak RSS of a fresh process that loads the model (arena off) and runs batch 1 and `batch`."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="hf-spider-probe-") as tmp:
        inputs = Path(tmp) / "inputs.npz"
        np.savez(inputs, **take(feeds, 0, batch))
        cmd = [
            sys.executable,
            "-m",
            "hf_spider.hardware._probe",
            str(model_path),
            str(inputs),
            "--threads",
            str(threads),
            "--batch",
            str(batch),
        ]
        if providers:
            cmd += ["--providers", ",".join(providers)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"memory probe failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
