"""The offline zoo on `local`: fp32 vs int8 latency, size, memory and fidelity for every model.

Run: `python -m benchmarks.device [--threads 1] [--iterations 50] [--min-seconds 5] [--sample 64]
[--variants fp32,int8-dynamic,int8-static] [--models ID ...]`.
Prints a table and writes `benchmarks/results/device.json`.

Protocol (`BENCHMARKS.md`, device benchmarks): each zoo model is exported (optimum, torch.onnx or
the repo's ONNX as is), its variants are built for this CPU's instruction set, and each is measured
with ONNX Runtime at a fixed thread count: warm-up, then at least `--iterations` timed runs or
`--min-seconds`; p50/p90/p99 at batch 1; throughput at batch 1 and 8; peak RSS of a separate process
with the memory arena off; file size; load time. Fidelity against fp32 on a real labelled sample of
the zoo dataset of the model's modality (text: debates_2016, image: digits): top-1 agreement for
classifiers, feature cosine and LogME(variant) - LogME(fp32) for backbones. int8-static is
calibrated (minmax) on the same sample. The machine is shared with other jobs: quote the ratios.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from hf_spider import _paths
from hf_spider.hardware import DeviceTarget, MeasureConfig
from hf_spider.hardware._bench import bench

RESULTS = Path(__file__).resolve().parent / "results"
DATASETS = {"text": "debates_2016", "image": "digits"}


def zoo_models() -> list[str]:
    manifest = _paths.zoo_dir() / "manifest.json"
    if not manifest.exists():
        raise SystemExit(f"no zoo at {_paths.zoo_dir()}: run `hf-spider zoo install` first")
    return sorted(json.loads(manifest.read_text())["models"])


def _modality(model: str) -> str:
    return "image" if ("efficientnet" in model or "nsfw" in model) else "text"


def run(models, *, variants: str, threads: int, iterations: int, min_seconds: float, sample: int) -> dict:
    target = DeviceTarget.resolve("local", threads=threads)
    reports = []
    for model in models:
        dataset = _paths.zoo_dir() / "datasets" / DATASETS[_modality(model)]
        started = time.perf_counter()
        report = bench(
            model,
            target=target,
            variants=variants,
            dataset=str(dataset) if dataset.exists() else None,
            config=MeasureConfig(
                threads=threads, iterations=iterations, min_seconds=min_seconds, sample_size=sample
            ),
        )
        report["wall_s"] = time.perf_counter() - started
        reports.append(report)
        print(f"  {model}: {report['wall_s']:.0f} s", flush=True)
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {**target.info, "platform": platform.platform()},
        "protocol": {
            "threads": threads,
            "iterations": iterations,
            "min_seconds": min_seconds,
            "sample": sample,
        },
        "reports": reports,
    }


def table(data: dict) -> str:
    lines = [
        "| model | export | variant | p50 ms | p99 ms | items/s b8 | peak MiB | file MiB | load ms | fidelity | dLogME | p50 vs fp32 | size vs fp32 |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for report in data["reports"]:
        by_variant = {r["variant"]: r for r in report["results"] if "figures" in r}
        base = by_variant.get("fp32")
        export_method = report["export"]["method"].split(" (")[0]
        for result in report["results"]:
            if "figures" not in result:
                lines.append(
                    f"| {report['model']} | {export_method} | {result['variant']} | skipped: {result['skipped']} |"
                )
                continue
            f = result["figures"]

            def v(name, fmt=".3g", fig=f):
                value = fig[name]["value"]
                return "-" if value is None else format(value, fmt)

            fid = f["fidelity"]
            fid_text = (
                "-"
                if fid["value"] is None
                else f"{fid['value']:.4f} {'agree' if 'agreement' in fid['unit'] else 'cos'}"
            )
            ratio_lat = ratio_size = "-"
            if base:
                ratio_lat = (
                    f"{f['latency_p50_ms']['value'] / base['figures']['latency_p50_ms']['value']:.2f}x"
                )
                ratio_size = f"{f['file_size_mb']['value'] / base['figures']['file_size_mb']['value']:.2f}x"
            lines.append(
                f"| {report['model']} | {export_method} | {result['variant']} | {v('latency_p50_ms')} | "
                f"{v('latency_p99_ms')} | {v('throughput_batch_per_s')} | {v('peak_memory_mb', '.0f')} | "
                f"{v('file_size_mb')} | {v('load_ms', '.0f')} | {fid_text} | {v('logme_delta', '.2g')} | "
                f"{ratio_lat} | {ratio_size} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", help="zoo repo ids (default: every zoo model)")
    parser.add_argument("--variants", default="fp32,int8-dynamic,int8-static")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iterations", type=int, default=50)
    parser.add_argument("--min-seconds", type=float, default=5.0)
    parser.add_argument("--sample", type=int, default=64)
    args = parser.parse_args(argv)
    models = args.models or zoo_models()
    print(f"device benchmark: {len(models)} models on local, {args.threads} thread(s)", flush=True)
    data = run(
        models,
        variants=args.variants,
        threads=args.threads,
        iterations=args.iterations,
        min_seconds=args.min_seconds,
        sample=args.sample,
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "device.json"
    out.write_text(json.dumps(data, indent=2, default=str))
    info = data["machine"]
    print(
        f"\n{info['cpu_model']}, {info['cores']} cores, isa {info['isa']}, ONNX Runtime {info['onnxruntime']}, {data['date']}"
    )
    print(table(data))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
