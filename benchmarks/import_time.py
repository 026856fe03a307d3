"""How long `import hf_spider` and each stage package take: the median of N fresh interpreters,
from `python -X importtime` (the package's cumulative microseconds), so a lazy face stays lazy.

Run: `python -m benchmarks.import_time [--runs 7] [--root DIR]` (`--root` picks the source tree
whose `hf_spider` is imported, e.g. to compare two checkouts).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

PACKAGES = (
    "hf_spider",
    "hf_spider.catalog",
    "hf_spider.tasks",
    "hf_spider.estimators",
    "hf_spider.ranker",
    "hf_spider.hardware",
    "hf_spider.recommend",
    "hf_spider.zoo",
    "hf_spider.testing",
)


def cumulative_ms(module: str, root: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(root)}
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,  # `-c` puts the working folder first on sys.path
        check=True,
    ).stderr
    for line in err.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1]) / 1000.0
    raise RuntimeError(f"{module} not in the import-time report")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--root", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    root = Path(args.root)
    print(f"{'package':<24} median ms (of {args.runs})")
    for module in PACKAGES:
        times = [cumulative_ms(module, root) for _ in range(args.runs)]
        print(f"{module:<24} {statistics.median(times):8.1f}")


if __name__ == "__main__":
    main()
