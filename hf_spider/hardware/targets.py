"""Where variants are measured: one class per kind of device target, each with `measure()`.

- `LocalTarget`: this machine, timed with ONNX Runtime here;
- `AgentTarget`: a running `hf-spider agent` on a board, reached over HTTP with its token (the
  target carries its client, token included; nothing outside reads the token);
- `ProfileTarget`: a documented board that is not attached; figures are measured here and scaled
  to the board (labelled `estimated`, see `hf_spider.hardware.profiles`).

`DeviceTarget.resolve(spec, token=...)` turns `local`, `http://HOST:PORT` or a profile name into
one of them. An agent's token defaults to the `HF_SPIDER_AGENT_TOKEN` environment variable.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hf_spider.errors import TargetError, UserInputError, VariantRejectedError
from hf_spider.hardware._measure import MEASURED, add_fidelity, build_result, estimate_for_profile
from hf_spider.hardware.config import MeasureConfig
from hf_spider.hardware.device import local_info

logger = logging.getLogger("hf_spider.hardware")

AGENT_TOKEN_ENV = "HF_SPIDER_AGENT_TOKEN"


class DeviceTarget:
    """A device target. Subclasses say how a variant is run there (`_run`) and what it cannot take.

    Attributes:
        name: `local`, the agent URL, or the profile name.
        info: device facts (cpu_model, isa, int8_dot_product, cores, threads, memory_mb, ...).
        kind: `local`, `agent` or `profile` (for reports; code dispatches on the class).

    Example:
        >>> target = DeviceTarget.resolve("rpi5")
        >>> type(target).__name__, target.info["isa"]
        ('ProfileTarget', 'arm64')
    """

    kind: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, name: str, info: dict[str, Any]):
        self.name = name
        self.info = info

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @classmethod
    def resolve(
        cls,
        spec: str | DeviceTarget = "local",
        token: str | None = None,
        *,
        threads: int | None = None,
        timeout: float = 10.0,
    ) -> DeviceTarget:
        """`local`, `http://HOST:PORT` (a running `hf-spider agent`) or a profile name.

        An agent is contacted at once, so a wrong token or a dead agent fails here. `token` is the
        agent's token (default: `HF_SPIDER_AGENT_TOKEN`); local targets and profiles ignore it.
        """
        if isinstance(spec, DeviceTarget):
            return spec
        spec = (spec or "local").strip()
        if spec == "local":
            return LocalTarget(threads=threads)
        if spec.startswith(("http://", "https://")):
            return AgentTarget(spec, token=token, timeout=timeout)
        return ProfileTarget(spec)

    @property
    def isa(self) -> str:
        return self.info.get("isa", "avx2")

    @property
    def cuda(self) -> bool:
        return bool(self.info.get("cuda"))

    @property
    def threads(self) -> int:
        """The threads a measurement uses unless its `MeasureConfig` says otherwise."""
        return int(self.info.get("threads") or self.info.get("cores") or 1)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "info": self.info}

    def describe(self) -> str:
        """One line for reports: name, what it is, CPU and threads."""
        cpu = self.info.get("cpu_model") or self.info.get("description") or ""
        text = f"{self.name}: {self.description}"
        if cpu:
            text += f", {cpu}"
        return text + f", {self.threads} threads"

    def refusal(self, variant) -> str | None:
        """Why this target cannot take `variant` (e.g. over an agent's upload limit), or None."""
        return None

    def measure(
        self,
        variant,
        feeds: dict[str, np.ndarray] | None = None,
        *,
        config: MeasureConfig | None = None,
        reference: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        throughput: bool = True,
    ) -> dict[str, Any]:
        """Measure one variant here.

        Args:
            variant: a `Variant` from `make_variants` (skipped variants are refused).
            feeds: ONNX inputs of the task sample (`sample.feeds_for`); default: a synthetic sample.
            config: the protocol (`MeasureConfig`); threads default to the target's.
            reference: the fp32 variant's pooled outputs on the same feeds, for fidelity.
            labels: the sample's labels, for the change of LogME of backbones.
            throughput: False skips the larger-batch timing and the sample outputs on this
                machine (throughput and fidelity not measured); an agent measures everything.

        Returns:
            A dict with `model`, `variant`, `target`, `protocol`, `figures` (see `_measure.FIGURES`)
            and `outputs` (the pooled sample outputs, a numpy array; drop it before writing JSON).
        """
        if variant.path is None:
            raise UserInputError(
                f"variant {variant.name} of {variant.model_id} was skipped: {variant.skipped}"
            )
        reason = self.refusal(variant)
        if reason:
            raise VariantRejectedError(reason)
        config = config or MeasureConfig()
        if config.threads is None:
            config = config.replace(threads=self.threads)
        if feeds is None:
            from hf_spider.hardware.sample import TaskSample, feeds_for

            feeds = feeds_for(variant.exported, TaskSample.synthetic(variant.exported.modality))
        raw, where = self._run(variant, feeds, config, throughput)
        result = build_result(variant, self, raw, where, MEASURED)
        add_fidelity(result, variant, raw["outputs"], reference, labels, MEASURED)
        self._adjust(result, variant)
        result["outputs"] = raw["outputs"]
        return result

    def _run(self, variant, feeds, config: MeasureConfig, throughput: bool) -> tuple[dict[str, Any], str]:
        """The raw protocol numbers (`_runtime.run_protocol`'s dict) and where they were taken."""
        raise NotImplementedError

    def _adjust(self, result: dict[str, Any], variant) -> None:
        """Turn measured figures into this target's figures (profiles estimate)."""


def _run_here(variant, feeds, config: MeasureConfig, throughput: bool = True) -> dict[str, Any]:
    from hf_spider.hardware._runtime import run_protocol

    return run_protocol(
        variant.path, feeds, config, output_name=variant.exported.output_name, throughput=throughput
    )


class LocalTarget(DeviceTarget):
    """This machine."""

    kind = "local"
    description = "this machine"

    def __init__(self, threads: int | None = None):
        super().__init__("local", local_info(threads))

    def _run(self, variant, feeds, config, throughput):
        return _run_here(variant, feeds, config, throughput), "this machine"


class AgentTarget(DeviceTarget):
    """A device running `hf-spider agent`, reached at `url` with `token`.

    Example:
        >>> target = AgentTarget("http://192.168.1.20:8765", token=open("agent.token").read().strip())
    """

    kind = "agent"
    description = "device agent"

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 10.0):
        from hf_spider.hardware.agent import AgentClient

        token = token or os.environ.get(AGENT_TOKEN_ENV) or None
        self.client = AgentClient(url, token=token, timeout=timeout)
        super().__init__(self.client.url, self.client.info())

    @property
    def url(self) -> str:
        return self.client.url

    def refusal(self, variant) -> str | None:
        limit = (self.info.get("agent") or {}).get("max_upload_mb")
        size_mb = Path(variant.path).stat().st_size / 2**20
        if limit is not None and size_mb > limit:
            return (
                f"{variant.name} is {size_mb:.0f} MiB, over the agent's upload limit of {limit:.0f} MiB "
                "(start the agent with a larger --max-upload-mb)"
            )
        return None

    def _run(self, variant, feeds, config, throughput):
        raw = self.client.measure(variant.path, feeds, config, output_name=variant.exported.output_name)
        return raw, f"the device agent at {self.url} ({self.info.get('cpu_model')})"


class ProfileTarget(DeviceTarget):
    """A documented board, estimated from a measurement on this machine."""

    kind = "profile"
    description = "device profile (estimated)"

    def __init__(self, name: str):
        from hf_spider.hardware.profiles import get_profile, profile_names

        profile = get_profile(name)
        if profile is None:
            raise TargetError(
                f"unknown target {name!r}",
                hint=f"use 'local', an agent URL like http://HOST:PORT, or a profile: {', '.join(profile_names())}",
            )
        self.profile = profile
        super().__init__(name, profile.info())

    def _run(self, variant, feeds, config, throughput):
        # Timed here with no more threads than this machine has; the profile's factor scales it.
        threads = min(config.threads or self.threads, local_info()["cores"])
        return _run_here(variant, feeds, config.replace(threads=threads), throughput), "this machine"

    def _adjust(self, result, variant):
        estimate_for_profile(result, variant, self.profile)


def measure(
    variant,
    target: DeviceTarget | None = None,
    feeds: dict[str, np.ndarray] | None = None,
    *,
    config: MeasureConfig | None = None,
    reference: np.ndarray | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """`target.measure(variant, ...)`, on this machine when no target is given."""
    target = target if target is not None else LocalTarget()
    return target.measure(variant, feeds, config=config, reference=reference, labels=labels)
