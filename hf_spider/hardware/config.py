"""`MeasureConfig`: the measurement protocol, one object from the command line to the device agent.

The same fields drive `hf-spider bench`, `bench()`, every target's `measure()`, the runtime that
times the ONNX session (`_runtime.run_protocol`) and the agent, which receives them as the job's
`params` and validates them with `MeasureConfig.from_wire` (its bounds are the ones below).
Protocol (`BENCHMARKS.md`): a fixed thread count, a warm-up, then timed runs until at least
`iterations` runs or `min_seconds` have passed.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from hf_spider.errors import UserInputError


def _spec(flag: str, help: str, low: float, high: float) -> dict[str, Any]:
    return {"flag": flag, "help": help, "min": low, "max": high}


@dataclass(frozen=True)
class MeasureConfig:
    """How a variant is timed and measured. Every field carries its flag, help text and bounds.

    Example:
        >>> MeasureConfig(threads=1, iterations=10, min_seconds=0.5).wire()
        {'threads': 1, 'batch': 8, 'warmup': 5, 'iterations': 10, 'min_seconds': 0.5, 'memory': True}
    """

    threads: int | None = field(
        default=None,
        metadata=_spec(
            "--threads", "ONNX Runtime intra-op threads (default: all cores of the target)", 1, 1024
        ),
    )
    batch: int = field(default=8, metadata=_spec("--batch", "the larger batch for throughput", 1, 4096))
    warmup: int = field(default=5, metadata=_spec("--warmup", "untimed warm-up runs", 0, 1000))
    iterations: int = field(
        default=50, metadata=_spec("--iterations", "timed runs at batch 1, at least ...", 1, 100_000)
    )
    min_seconds: float = field(
        default=5.0, metadata=_spec("--min-seconds", "... or until this many seconds have passed", 0, 3600)
    )
    memory: bool = field(
        default=True,
        metadata=_spec("--no-memory", "skip the peak-memory measurement in a separate process", 0, 1),
    )
    sample_size: int = field(
        default=32,
        metadata=_spec("--sample-size", "rows of the task sample fed to the model (host side)", 1, 100_000),
    )

    # Fields the host keeps to itself: the agent never sees them.
    _HOST_ONLY = ("sample_size",)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            low, high, flag = f.metadata["min"], f.metadata["max"], f.metadata["flag"]
            if isinstance(f.default, bool):
                if not isinstance(value, bool):
                    raise UserInputError(f"{f.name} must be true or false, got {value!r}")
                continue
            if value is None and f.default is None:
                continue
            integer = isinstance(f.default, int) or f.name == "threads"
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or (integer and not float(value).is_integer())
                or not low <= value <= high
            ):
                raise UserInputError(
                    f"{flag} must be a number in [{low:g}, {high:g}], got {value!r}",
                    hint=f"e.g. {flag} {f.default if f.default is not None else 1}",
                )
            object.__setattr__(self, f.name, int(value) if integer else float(value))

    def replace(self, **changes: Any) -> MeasureConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def wire(self) -> dict[str, Any]:
        """The fields a device agent needs, as sent in a job's `params`."""
        return {k: v for k, v in self.to_dict().items() if k not in self._HOST_ONLY}

    @classmethod
    def from_wire(cls, params: Any) -> MeasureConfig:
        """A config from a job's `params`; raises `UserInputError` naming the bad or unknown key."""
        if not isinstance(params, dict):
            raise UserInputError("params must be a JSON object")
        allowed = [f.name for f in dataclasses.fields(cls) if f.name not in cls._HOST_ONLY]
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise UserInputError(f"unknown parameter {unknown[0]!r}; allowed: {', '.join(allowed)}")
        return cls(**params)

    # ------------------------------------------------------------ the command line

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """One flag per field, with its help text and default, on `parser`."""
        for f in dataclasses.fields(cls):
            flag, text = f.metadata["flag"], f.metadata["help"]
            if isinstance(f.default, bool):
                parser.add_argument(flag, dest=f.name, action="store_false", help=text)
                continue
            kind = float if isinstance(f.default, float) else int
            default = f" (default {f.default:g})" if f.default is not None else ""
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=text + default)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> MeasureConfig:
        return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls)})
