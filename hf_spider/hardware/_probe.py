"""Peak resident memory of one ONNX model, in a process of its own.

Run as `python -m hf_spider.hardware._probe MODEL INPUTS.npz --threads T --batch B`; prints one
JSON line. The memory arena is off so the figure is what the model needs, not what the arena kept.
`baseline_mb` is the process after importing numpy and onnxruntime, before the model is loaded.
"""

from __future__ import annotations

import argparse
import json
import sys


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident set size in MiB, from /proc (Linux) or getrusage."""
    try:
        fields = {}
        with open("/proc/self/status") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields[key] = value
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024
    except (OSError, KeyError, ValueError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024
        return peak_mb, peak_mb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--providers", default="CPUExecutionProvider")
    args = parser.parse_args(argv)

    import numpy as np
    import onnxruntime  # noqa: F401  (counted in the baseline)

    from hf_spider.hardware._runtime import cast_feeds, fixed_batch, make_session, take

    with np.load(args.inputs, allow_pickle=False) as data:
        feeds = {k: data[k] for k in data.files}
    baseline, _ = _rss_mb()
    session = make_session(args.model, args.threads, arena=False, providers=args.providers.split(","))
    loaded, _ = _rss_mb()
    feeds = cast_feeds(session, feeds)
    frozen = fixed_batch(session)
    for size in [frozen] if frozen else [1, args.batch]:
        for _ in range(2):
            session.run(None, take(feeds, 0, size))
    _, peak = _rss_mb()
    print(json.dumps({"baseline_mb": baseline, "loaded_mb": loaded, "peak_mb": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
