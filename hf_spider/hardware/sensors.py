"""What IoT engineers read besides latency: CPU utilisation during the timed runs, temperature
before and after and whether the CPU throttled, and energy per inference where a power sensor is
readable. numpy-free and torch-free: the device agent runs it too.

Sources (Linux; every reader takes a `root` so tests point it at a fake sysfs tree):
- CPU utilisation: this process's CPU time over wall time (`os.times`), and the whole machine's
  busy share from `/proc/stat`.
- temperature: `/sys/class/thermal/thermal_zone*/temp` (millidegrees C), else hwmon `temp*_input`.
- throttling: x86 `thermal_throttle/*_throttle_count` per CPU (a count that grew), the Raspberry
  Pi firmware's `get_throttled` bits, else unavailable.
- energy: Linux powercap / RAPL (`/sys/class/powercap/intel-rapl:N/energy_uj`, wrap-around
  handled) on x86; hwmon power rails (`power*_input` in microwatts, or `in*_input` mV x
  `curr*_input` mA as on the Jetson's INA3221) sampled during the runs and integrated.
Anything not readable is reported `unavailable` with the reason.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("hf_spider.hardware")

ROOT_ENV = "HF_SPIDER_SYSFS_ROOT"  # tests point the readers at a fake tree
MEASURED = "measured"
UNAVAILABLE = "unavailable"
# Raspberry Pi firmware `get_throttled` bits: now (0-3), since boot (16-19).
_PI_THROTTLED_NOW = 0x4
_PI_THROTTLED_SINCE_BOOT = 0x40000
_PI_SOFT_TEMP_LIMIT = 0x8


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    if text is None:
        return None
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        return None


def _figure(value, unit: str, label: str, method: str) -> dict[str, Any]:
    return {"value": value, "unit": unit, "label": label, "method": method}


def _unavailable(unit: str, reason: str) -> dict[str, Any]:
    return _figure(None, unit, UNAVAILABLE, reason)


class SensorReader:
    """Reads the sensors of one machine below `root` (default `/`, or `$HF_SPIDER_SYSFS_ROOT`)."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root or os.environ.get(ROOT_ENV) or "/")

    def _path(self, relative: str) -> Path:
        return self.root / relative

    # temperature ----------------------------------------------------------------------------
    def temperatures(self) -> dict[str, float]:
        """Degrees C per sensor: thermal zones first, hwmon temperature inputs otherwise."""
        temps: dict[str, float] = {}
        for zone in sorted(self._path("sys/class/thermal").glob("thermal_zone*")):
            milli = _read_int(zone / "temp")
            if milli is not None:
                temps[f"{_read(zone / 'type') or zone.name} ({zone.name})"] = milli / 1000.0
        if temps:
            return temps
        for hwmon in sorted(self._path("sys/class/hwmon").glob("hwmon*")):
            name = _read(hwmon / "name") or hwmon.name
            for item in sorted(hwmon.glob("temp*_input")):
                milli = _read_int(item)
                if milli is not None:
                    label = _read(hwmon / item.name.replace("_input", "_label")) or item.name
                    temps[f"{name} {label}"] = milli / 1000.0
        return temps

    # throttling -----------------------------------------------------------------------------
    def throttle_state(self) -> dict[str, Any] | None:
        """Counters / flags that say whether the CPU throttled, or None when none is readable."""
        counts = {}
        for cpu in sorted(self._path("sys/devices/system/cpu").glob("cpu[0-9]*")):
            for kind in ("core", "package"):
                value = _read_int(cpu / "thermal_throttle" / f"{kind}_throttle_count")
                if value is not None:
                    counts[f"{cpu.name}/{kind}"] = value
        if counts:
            return {"source": "thermal_throttle counters", "counts": counts}
        bits = _read_int(self._path("sys/devices/platform/soc/soc:firmware/get_throttled"))
        if bits is not None:
            return {"source": "Raspberry Pi firmware get_throttled", "bits": bits}
        return None

    # energy ---------------------------------------------------------------------------------
    def rapl_zones(self) -> dict[str, tuple[int, int | None]]:
        """Top-level RAPL zones (packages, psys): name -> (energy_uj, max_energy_range_uj)."""
        zones = {}
        for zone in sorted(self._path("sys/class/powercap").glob("intel-rapl:*")):
            if zone.name.count(":") != 1:  # sub-zones (core, uncore, dram) are parts of a package
                continue
            energy = _read_int(zone / "energy_uj")
            if energy is None:
                continue
            name = _read(zone / "name") or zone.name
            zones[f"{name} ({zone.name})"] = (energy, _read_int(zone / "max_energy_range_uj"))
        return zones

    def power_rails(self) -> dict[str, float]:
        """Watts per hwmon power rail: `power*_input` (uW), or `in*_input` (mV) x `curr*_input` (mA)."""
        rails: dict[str, float] = {}
        for hwmon in sorted(self._path("sys/class/hwmon").glob("hwmon*")):
            name = _read(hwmon / "name") or hwmon.name
            for item in sorted(hwmon.glob("power*_input")):
                micro = _read_int(item)
                if micro is not None:
                    label = _read(hwmon / item.name.replace("_input", "_label")) or item.name
                    rails[f"{name} {label}"] = micro / 1e6
            for current in sorted(hwmon.glob("curr*_input")):
                index = current.name[len("curr") : -len("_input")]
                milliamps = _read_int(current)
                millivolts = _read_int(hwmon / f"in{index}_input")
                if milliamps is None or millivolts is None:
                    continue
                label = (
                    _read(hwmon / f"in{index}_label")
                    or _read(hwmon / f"curr{index}_label")
                    or f"rail {index}"
                )
                rails.setdefault(f"{name} {label}", millivolts * milliamps / 1e6)
        return rails

    # CPU ------------------------------------------------------------------------------------
    def cpu_jiffies(self) -> tuple[int, int] | None:
        """(busy, total) jiffies of all CPUs from /proc/stat."""
        text = _read(self._path("proc/stat"))
        if not text:
            return None
        for line in text.splitlines():
            parts = line.split()
            if parts and parts[0] == "cpu":
                values = [int(v) for v in parts[1:]]
                idle = values[3] + (values[4] if len(values) > 4 else 0)
                return sum(values) - idle, sum(values)
        return None

    def available(self) -> dict[str, str]:
        """Which sensors this machine exposes, in words (for the agent's /info)."""
        temps = self.temperatures()
        throttle = self.throttle_state()
        rapl = self.rapl_zones()
        rails = self.power_rails()
        return {
            "temperature": f"{len(temps)} sensor(s)"
            if temps
            else "unavailable: no thermal zone or hwmon input",
            "throttling": throttle["source"] if throttle else "unavailable: no throttle counter readable",
            "energy": (
                f"RAPL ({', '.join(rapl)})"
                if rapl
                else f"hwmon power rails ({', '.join(rails)})"
                if rails
                else "unavailable: no powercap/RAPL zone or hwmon power rail readable"
            ),
        }


class SensorSession:
    """Readings around one timed block: `with SensorSession() as s: ...; s.report(runs)`."""

    def __init__(self, reader: SensorReader | None = None, *, sample_period: float = 0.05):
        self.reader = reader or SensorReader()
        self.sample_period = sample_period
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SensorSession:
        r = self.reader
        self.temps_before = r.temperatures()
        self.throttle_before = r.throttle_state()
        self.rapl_before = r.rapl_zones()
        self.rails = r.power_rails() if not self.rapl_before else {}
        self.jiffies_before = r.cpu_jiffies()
        self.times_before = os.times()
        self.wall_before = time.perf_counter()
        if self.rails:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            rails = self.reader.power_rails()
            if rails:
                self._samples.append((time.perf_counter(), sum(rails.values())))
            self._stop.wait(self.sample_period)

    def __exit__(self, *exc) -> None:
        self.wall_after = time.perf_counter()
        self.times_after = os.times()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        r = self.reader
        self.jiffies_after = r.cpu_jiffies()
        self.rapl_after = r.rapl_zones()
        self.throttle_after = r.throttle_state()
        self.temps_after = r.temperatures()

    def report(self, runs: int, *, threads: int | None = None) -> dict[str, Any]:
        """The readings as labelled figures; `runs` is the number of inferences in the block."""
        wall = max(self.wall_after - self.wall_before, 1e-9)
        cpu = (self.times_after.user - self.times_before.user) + (
            self.times_after.system - self.times_before.system
        )
        out: dict[str, Any] = {
            "cpu_utilisation_pct": _figure(
                100.0 * cpu / wall,
                "% of one core",
                MEASURED,
                f"CPU time of this process / wall time over the {runs} timed runs"
                + (f" ({threads} threads: up to {100 * threads}%)" if threads else ""),
            )
        }
        if self.jiffies_before and self.jiffies_after:
            busy = self.jiffies_after[0] - self.jiffies_before[0]
            total = self.jiffies_after[1] - self.jiffies_before[1]
            out["machine_busy_pct"] = (
                _figure(
                    100.0 * busy / total,
                    "%",
                    MEASURED,
                    "busy share of all CPUs from /proc/stat (other processes included)",
                )
                if total > 0
                else _unavailable("%", "the timed runs were shorter than one /proc/stat tick")
            )
        else:
            out["machine_busy_pct"] = _unavailable("%", "/proc/stat not readable")
        out.update(self._temperature())
        out["throttled"] = self._throttled()
        out["energy_per_inference_mj"] = self._energy(runs, wall)
        return out

    def _temperature(self) -> dict[str, Any]:
        if not self.temps_before or not self.temps_after:
            reason = "no thermal zone or hwmon temperature input readable"
            return {
                "temperature_before_c": _unavailable("C", reason),
                "temperature_after_c": _unavailable("C", reason),
            }
        hottest = max(self.temps_after, key=self.temps_after.get)
        before = self.temps_before.get(hottest, max(self.temps_before.values()))
        method = f"hottest sensor after the runs: {hottest}"
        return {
            "temperature_before_c": _figure(before, "C", MEASURED, method),
            "temperature_after_c": _figure(self.temps_after[hottest], "C", MEASURED, method),
        }

    def _throttled(self) -> dict[str, Any]:
        before, after = self.throttle_before, self.throttle_after
        if not before or not after or before.get("source") != after.get("source"):
            return _unavailable("", "no throttle counter or firmware flag readable")
        if "counts" in after:
            grew = {k: after["counts"][k] - before["counts"].get(k, 0) for k in after["counts"]}
            grew = {k: v for k, v in grew.items() if v > 0}
            return _figure(
                bool(grew),
                "",
                MEASURED,
                "thermal_throttle counters grew during the runs: "
                + ", ".join(f"{k} +{v}" for k, v in grew.items())
                if grew
                else "thermal_throttle counters unchanged during the runs",
            )
        bits = after["bits"]
        now = bool(bits & (_PI_THROTTLED_NOW | _PI_SOFT_TEMP_LIMIT))
        return _figure(
            now,
            "",
            MEASURED,
            f"Raspberry Pi firmware get_throttled = {bits:#x} after the runs"
            + ("; throttled at some point since boot" if bits & _PI_THROTTLED_SINCE_BOOT else ""),
        )

    def _energy(self, runs: int, wall: float) -> dict[str, Any]:
        unit = "mJ"
        if runs <= 0:
            return _unavailable(unit, "no timed runs")
        if self.rapl_before and self.rapl_after:
            total_uj = 0
            for zone, (start, max_range) in self.rapl_before.items():
                if zone not in self.rapl_after:
                    continue
                end = self.rapl_after[zone][0]
                delta = end - start
                if delta < 0:  # the counter wrapped around
                    if not max_range:
                        return _unavailable(unit, f"RAPL counter of {zone} wrapped and its range is unknown")
                    delta += max_range
                total_uj += delta
            return _figure(
                total_uj / 1000.0 / runs,
                unit,
                MEASURED,
                f"RAPL energy of {', '.join(self.rapl_before)} over {runs} runs ({wall:.2f} s) / runs; "
                "the whole package, other processes included",
            )
        if self.rails:
            samples = self._samples
            if len(samples) >= 2:
                joules = sum(
                    (t1 - t0) * (p0 + p1) / 2.0 for (t0, p0), (t1, p1) in itertools.pairwise(samples)
                )
                covered = samples[-1][0] - samples[0][0]
                joules *= wall / covered if covered > 0 else 1.0
            else:  # runs shorter than the sampling period: one reading times the wall time
                joules = sum(self.reader.power_rails().values()) * wall
            return _figure(
                joules * 1000.0 / runs,
                unit,
                MEASURED,
                f"hwmon power rails ({', '.join(self.rails)}) sampled every {self.sample_period * 1000:.0f} ms "
                f"({len(samples)} samples) and integrated over {runs} runs / runs; the whole board",
            )
        return _unavailable(unit, "no powercap/RAPL zone or hwmon power rail readable on this machine")
