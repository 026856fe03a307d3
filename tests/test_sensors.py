"""Sensor readers against FAKE sysfs trees (this machine has no thermal, RAPL or power sensors).

Each fake tree mimics the files a real kernel exposes (names and units from the kernel's
powercap, thermal and hwmon documentation); the readers and the session run unchanged on them.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from hf_spider.hardware.config import MeasureConfig
from hf_spider.hardware.sensors import ROOT_ENV, SensorReader, SensorSession


def _write(root, relative, text):
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{text}\n")
    return path


@pytest.fixture
def fake_x86_sysfs(tmp_path):
    """A FAKE sysfs of an x86 laptop: two thermal zones, RAPL package + a sub-zone, throttle counters."""
    root = tmp_path / "fake-sysfs-x86"
    _write(root, "sys/class/thermal/thermal_zone0/type", "x86_pkg_temp")
    _write(root, "sys/class/thermal/thermal_zone0/temp", "48000")
    _write(root, "sys/class/thermal/thermal_zone1/type", "acpitz")
    _write(root, "sys/class/thermal/thermal_zone1/temp", "40500")
    _write(root, "sys/class/powercap/intel-rapl:0/name", "package-0")
    _write(root, "sys/class/powercap/intel-rapl:0/energy_uj", "262143000000")
    _write(root, "sys/class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850")
    _write(root, "sys/class/powercap/intel-rapl:0:0/name", "core")
    _write(root, "sys/class/powercap/intel-rapl:0:0/energy_uj", "5")
    for cpu in ("cpu0", "cpu1"):
        _write(root, f"sys/devices/system/cpu/{cpu}/thermal_throttle/core_throttle_count", "3")
        _write(root, f"sys/devices/system/cpu/{cpu}/thermal_throttle/package_throttle_count", "0")
    _write(root, "proc/stat", "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n")
    return root


@pytest.fixture
def fake_jetson_sysfs(tmp_path):
    """A FAKE sysfs of a Jetson: an INA3221 hwmon with voltage/current rails, no RAPL, no thermal zone."""
    root = tmp_path / "fake-sysfs-jetson"
    hw = "sys/class/hwmon/hwmon1"
    _write(root, f"{hw}/name", "ina3221")
    _write(root, f"{hw}/in1_label", "VDD_IN")
    _write(root, f"{hw}/in1_input", "5000")  # mV
    _write(root, f"{hw}/curr1_input", "1000")  # mA -> 5 W
    _write(root, f"{hw}/in2_label", "VDD_CPU_GPU_CV")
    _write(root, f"{hw}/in2_input", "5000")
    _write(root, f"{hw}/curr2_input", "200")  # 1 W
    _write(root, "sys/class/hwmon/hwmon0/name", "cpu_thermal")
    _write(root, "sys/class/hwmon/hwmon0/temp1_input", "51250")
    return root


def test_x86_readers_on_a_fake_sysfs(fake_x86_sysfs):
    reader = SensorReader(fake_x86_sysfs)
    temps = reader.temperatures()
    assert temps == {"x86_pkg_temp (thermal_zone0)": 48.0, "acpitz (thermal_zone1)": 40.5}
    zones = reader.rapl_zones()
    assert list(zones) == ["package-0 (intel-rapl:0)"]  # the core sub-zone is part of the package
    assert zones["package-0 (intel-rapl:0)"] == (262143000000, 262143328850)
    assert reader.throttle_state()["counts"]["cpu1/core"] == 3
    assert reader.cpu_jiffies() == (150, 1000)
    assert reader.available()["energy"].startswith("RAPL")


def test_session_energy_wraps_and_throttle_counts_grow(fake_x86_sysfs):
    reader = SensorReader(fake_x86_sysfs)
    with SensorSession(reader) as session:
        # during the runs: the package counter wraps around, cpu1 throttles twice, the zone warms
        _write(fake_x86_sysfs, "sys/class/powercap/intel-rapl:0/energy_uj", "671150")
        _write(fake_x86_sysfs, "sys/devices/system/cpu/cpu1/thermal_throttle/core_throttle_count", "5")
        _write(fake_x86_sysfs, "sys/class/thermal/thermal_zone0/temp", "61000")
        _write(fake_x86_sysfs, "proc/stat", "cpu  250 0 100 850 50 0 0 0 0 0\n")
    report = session.report(10, threads=2)
    # (262143328850 - 262143000000) + 671150 uJ = 1 J over 10 runs
    energy = report["energy_per_inference_mj"]
    assert energy["label"] == "measured" and energy["value"] == pytest.approx(100.0)
    assert "RAPL" in energy["method"]
    assert report["throttled"]["value"] is True and "cpu1/core +2" in report["throttled"]["method"]
    assert report["temperature_before_c"]["value"] == 48.0
    assert report["temperature_after_c"]["value"] == 61.0
    assert report["machine_busy_pct"]["value"] == pytest.approx(100.0 * 200 / 250)
    assert report["cpu_utilisation_pct"]["label"] == "measured"


def test_jetson_power_rails_are_integrated(fake_jetson_sysfs):
    reader = SensorReader(fake_jetson_sysfs)
    assert reader.power_rails() == {"ina3221 VDD_IN": 5.0, "ina3221 VDD_CPU_GPU_CV": 1.0}
    assert reader.temperatures() == {"cpu_thermal temp1_input": 51.25}
    with SensorSession(reader, sample_period=0.01) as session:
        time.sleep(0.2)
    report = session.report(4)
    energy = report["energy_per_inference_mj"]
    wall = session.wall_after - session.wall_before
    # a constant 6 W over the wall time, shared by 4 runs
    assert energy["value"] == pytest.approx(6.0 * wall * 1000.0 / 4, rel=0.05)
    assert "hwmon power rails" in energy["method"]
    assert report["throttled"]["label"] == "unavailable"


def test_raspberry_pi_firmware_throttle_flags(tmp_path):
    root = tmp_path / "fake-sysfs-rpi"
    _write(root, "sys/devices/platform/soc/soc:firmware/get_throttled", "0x0")
    reader = SensorReader(root)
    with SensorSession(reader) as session:
        _write(root, "sys/devices/platform/soc/soc:firmware/get_throttled", "0x50004")
    throttled = session.report(1)["throttled"]
    assert throttled["value"] is True and "since boot" in throttled["method"]


def test_nothing_readable_says_unavailable_with_the_reason(tmp_path):
    with SensorSession(SensorReader(tmp_path / "fake-sysfs-empty")) as session:
        pass
    report = session.report(5)
    for key in ("temperature_before_c", "temperature_after_c", "throttled", "energy_per_inference_mj"):
        assert report[key]["label"] == "unavailable" and report[key]["value"] is None
        assert report[key]["method"]
    assert report["machine_busy_pct"]["label"] == "unavailable"


def test_run_protocol_reports_sensors_from_the_fake_tree(tmp_path, fake_x86_sysfs, monkeypatch):
    """The real ONNX Runtime protocol carries the readings (the agent returns the same dict)."""
    import onnx
    from onnx import TensorProto, helper

    from hf_spider.hardware._runtime import run_protocol

    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 2], np.ones(8, dtype=np.float32))
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "tiny.onnx"
    onnx.save(model, str(path))
    monkeypatch.setenv(ROOT_ENV, str(fake_x86_sysfs))
    feeds = {"x": np.ones((8, 4), dtype=np.float32)}
    config = MeasureConfig(threads=1, warmup=1, iterations=5, min_seconds=0.0, memory=False)
    raw = run_protocol(path, feeds, config)
    sensors = raw["sensors"]
    assert sensors["temperature_before_c"]["value"] == 48.0
    assert sensors["energy_per_inference_mj"]["value"] == 0.0  # the fake counter did not move
    assert sensors["throttled"]["value"] is False


def test_agent_reports_its_sensors(tmp_path, fake_x86_sysfs, monkeypatch):
    """A real agent on loopback, reading a FAKE sysfs: /info lists the sensors, jobs carry the readings."""
    from test_hardware_fixtures import tiny_bert

    from hf_spider.hardware import DeviceTarget, make_variants, measure
    from hf_spider.hardware._export import export
    from hf_spider.hardware.agent import AgentServer
    from hf_spider.hardware.sample import TaskSample, feeds_for

    monkeypatch.setenv(ROOT_ENV, str(fake_x86_sysfs))
    token = "loopback-sensor-token-0123456789"
    server = AgentServer("127.0.0.1", 0, token=token, workdir=tmp_path / "agent", max_upload_mb=8)
    server.start()
    try:
        exported = export(tiny_bert(tmp_path / "tiny-bert"), "text-classification", tmp_path / "export")
        feeds = feeds_for(exported, TaskSample.synthetic("text", n=4))
        target = DeviceTarget.resolve(server.url, token=token)
        assert target.info["sensors"]["energy"].startswith("RAPL")
        (fp32,) = make_variants(exported, ["fp32"], target, feeds)
        config = MeasureConfig(threads=1, warmup=1, iterations=3, min_seconds=0.0, memory=False)
        result = measure(fp32, target, feeds, config=config)
    finally:
        server.shutdown()
    sensors = result["sensors"]
    assert sensors["temperature_after_c"]["value"] == 48.0
    assert sensors["energy_per_inference_mj"]["label"] == "measured"
    assert sensors["cpu_utilisation_pct"]["value"] >= 0
    assert server.url in result["sensors_where"]
