"""Task loading and backbone throughput.

Run: `python -m benchmarks.tasks [--rows 20000] [--sample 500] [--inputs 128] [--threads 2]`.
Prints a table and writes `benchmarks/results/tasks.json`.

Protocol:
- hub streaming: an image dataset of `--rows` 32x32 PNGs in 10 classes, sorted by label, written as
  one parquet file (row groups of 100 rows) into a Hub-layout repo served by
  `hf_spider.testing.HubServer` on 127.0.0.1. `load_task("org/bench", endpoint=..., sample=...,
  probe=False)` from a cold HF_HOME: wall time, HTTP requests, bytes fetched by `HfFileSystem`
  (counted by wrapping its range reads) against the file size, and how many classes the sample has.
- zoo tasks: the `--datasets` of `zoo_dir()/datasets` with `--sample` examples, the zoo probe encoder
  of its modality: wall time cold (features computed) and warm (features from the disk cache).
- backbones: `--inputs` texts / images through each zoo model present (batch 32, `--threads` torch
  threads, CPU), cache off: inputs per second.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hf_spider import _paths

RESULTS = Path(__file__).resolve().parent / "results"


def _png(rng, label: int) -> bytes:
    from PIL import Image

    arr = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    arr[..., label % 3] = 25 * label
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


class _ByteCounter:
    """Counts the bytes HfFileSystem file objects fetch (ranged and streamed reads)."""

    def __init__(self):
        from huggingface_hub import hf_file_system as hffs

        self.total = 0
        self._mod = hffs
        self._orig_fetch = hffs.HfFileSystemFile._fetch_range
        self._orig_stream = hffs.HfFileSystemStreamFile.read

    def __enter__(self):
        counter = self
        orig_fetch, orig_stream = self._orig_fetch, self._orig_stream

        def fetch(f, start, end):
            data = orig_fetch(f, start, end)
            counter.total += len(data)
            return data

        def stream(f, length=-1):
            data = orig_stream(f, length)
            counter.total += len(data)
            return data

        self._mod.HfFileSystemFile._fetch_range = fetch
        self._mod.HfFileSystemStreamFile.read = stream
        return self

    def __exit__(self, *exc):
        self._mod.HfFileSystemFile._fetch_range = self._orig_fetch
        self._mod.HfFileSystemStreamFile.read = self._orig_stream


def bench_hub(rows: int, samples: list[int]) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from hf_spider.tasks import load_task
    from hf_spider.testing.hub_server import HubServer, write_repo

    out = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "hub"
        card = "---\ntask_categories: [image-classification]\n---\n# bench\n\nSynthetic images for the benchmark.\n"
        folder = write_repo(root, "org/bench", {"README.md": card}, repo_type="dataset")
        rng = np.random.default_rng(0)
        labels = np.sort(rng.integers(0, 10, rows))
        images = [{"bytes": _png(rng, int(lab)), "path": None} for lab in labels]
        features = {
            "image": {"_type": "Image"},
            "label": {"_type": "ClassLabel", "names": [f"c{i}" for i in range(10)]},
        }
        schema = pa.schema(
            [
                pa.field("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                pa.field("label", pa.int64()),
            ],
            metadata={"huggingface": json.dumps({"info": {"features": features}})},
        )
        table = pa.table({"image": images, "label": labels.astype(np.int64)}, schema=schema)
        (folder / "data").mkdir()
        path = folder / "data" / "train-00000-of-00001.parquet"
        pq.write_table(table, path, row_group_size=100)
        size = path.stat().st_size
        for sample in samples:
            os.environ["HF_HOME"] = str(Path(tmp) / f"hf-{sample}")
            with HubServer(root) as hub, _ByteCounter() as counter:
                start = time.perf_counter()
                task = load_task("org/bench", endpoint=hub.url, sample=sample, probe=False)
                wall = time.perf_counter() - start
                out.append(
                    {
                        "rows": rows,
                        "sample": sample,
                        "wall_s": round(wall, 2),
                        "http_requests": len(hub.requests),
                        "bytes_fetched": counter.total,
                        "file_bytes": size,
                        "fraction_read": round(counter.total / size, 3),
                        "classes_in_sample": len(np.unique(task.labels)),
                        "sample_pool": task.metadata["source"]["sample_pool"],
                    }
                )
    return out


def bench_zoo_tasks(sample: int, names: list[str]) -> list[dict]:
    from hf_spider.tasks import load_task

    out = []
    root = _paths.zoo_dir() / "datasets"
    for folder in sorted(
        p for p in root.glob("*") if (p / "README.md").is_file() and (not names or p.name in names)
    ):
        timings = []
        for _ in range(2):
            start = time.perf_counter()
            task = load_task(folder, sample=sample)
            timings.append(time.perf_counter() - start)
        out.append(
            {
                "dataset": folder.name,
                "modality": task.modality,
                "classes": task.metadata["num_classes"],
                "sample": len(task.labels),
                "probe": task.probe,
                "cold_s": round(timings[0], 2),
                "warm_s": round(timings[1], 2),
            }
        )
    return out


def bench_backbones(n: int) -> list[dict]:
    from PIL import Image

    from hf_spider.models import extract_features

    rng = np.random.default_rng(0)
    words = ["good", "bad", "movie", "film", "plot", "the", "a", "great", "awful", "story", "actors", "scene"]
    texts = [" ".join(rng.choice(words, size=24)) for _ in range(n)]
    images = [Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)) for _ in range(n)]
    models = [
        ("sentence-transformers/all-MiniLM-L6-v2", "text"),
        ("sentence-transformers/all-mpnet-base-v2", "text"),
        ("hf-spider-zoo/splade-tiny", "text"),
        ("timm/tf_efficientnet_lite0.in1k", "image"),
        ("timm/tf_efficientnet_lite2.in1k", "image"),
        ("hf-spider-zoo/open-nsfw-onnx", "image"),
    ]
    out = []
    hub = _paths.zoo_dir() / "hub"
    for repo, modality in models:
        if not (hub / f"models--{repo.replace('/', '--')}").is_dir():
            continue
        inputs = texts if modality == "text" else images
        extract_features(repo, inputs[:4], modality=modality, offline=True, use_cache=False)  # load + warm up
        start = time.perf_counter()
        feats = extract_features(repo, inputs, modality=modality, offline=True, use_cache=False)
        wall = time.perf_counter() - start
        out.append(
            {
                "model": repo,
                "modality": modality,
                "dim": int(feats.shape[1]),
                "inputs": n,
                "inputs_per_s": round(n / wall, 1),
                "wall_s": round(wall, 2),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--inputs", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--datasets",
        nargs="*",
        default=["digits", "mnist", "debates_2016", "rotten_tomatoes"],
        help="zoo datasets to time (none given: all)",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["hub", "zoo", "backbones"])
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("HF_SPIDER_ZOO", str(_paths.zoo_dir()))  # keep the installed zoo
        os.environ["HF_SPIDER_HOME"] = home  # a cold features cache
        results = {
            "machine": f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "python": sys.version.split()[0],
            "torch_threads": args.threads,
        }
        if "hub" not in args.skip:
            results["hub_streaming"] = bench_hub(args.rows, [100, args.sample])
        if "zoo" not in args.skip:
            results["zoo_tasks"] = bench_zoo_tasks(args.sample, args.datasets)
        if "backbones" not in args.skip:
            results["backbones"] = bench_backbones(args.inputs)

    from rich.console import Console
    from rich.table import Table

    console = Console()
    for key in ("hub_streaming", "zoo_tasks", "backbones"):
        rows = results.get(key) or []
        if not rows:
            continue
        table = Table(title=key)
        for col in rows[0]:
            table.add_column(col)
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    console.print(results["machine"], results["date"])
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tasks.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
