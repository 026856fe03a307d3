"""`hf-spider bench`, `hf-spider agent` and `hf-spider devices`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hf_spider._cli_utils import write_json as _write_json
from hf_spider.errors import UserInputError


def register(subparsers) -> None:
    from hf_spider.hardware.config import MeasureConfig
    from hf_spider.hardware.constraints import add_constraint_arguments

    p = subparsers.add_parser(
        "bench",
        help="export one model, build quantized variants and measure them on a device target",
        description="Export MODEL (repo id or folder) to ONNX, build the variants and measure each on "
        "TARGET: latency p50/p90/p99, throughput, peak memory, size, load time, fidelity against fp32.",
    )
    p.add_argument("model", help="Hub repo id or local model folder")
    p.add_argument(
        "--target", default="local", help="local, http://HOST:PORT (a device agent) or a profile name"
    )
    p.add_argument(
        "--variants",
        default="fp32,int8-dynamic,int8-static",
        help="comma list: fp32,int8-dynamic,int8-static,optimized,fp16",
    )
    p.add_argument(
        "--dataset", help="dataset for the calibration/fidelity sample (default: a synthetic sample)"
    )
    p.add_argument(
        "--task-kind",
        default="auto",
        help="image-classification, text-classification, feature-extraction or auto",
    )
    p.add_argument("--json", metavar="PATH", help="write the report as JSON ('-' for stdout)")
    MeasureConfig.add_arguments(p)
    add_agent_token_argument(p)
    p.add_argument("--token", help="Hugging Face token for private repos (default: the logged-in one)")
    p.add_argument("--endpoint", help="Hub endpoint (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--score", type=float, help="the model's transfer score, for the Pareto front")
    p.add_argument(
        "--calibrate",
        metavar="PROFILE",
        help="with an agent target: save agent/local ratios as PROFILE's calibration",
    )
    p.add_argument("--allow-pickle", action="store_true", help="accept pickle (pytorch_model.bin) weights")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="run the model repo's own code (only if you trust it)",
    )
    p.add_argument(
        "--from-config",
        action="store_true",
        help="fetch config.json only, build the model with random weights and measure that (no weights "
        "downloaded; latency, memory and size are real, fidelity is not available)",
    )
    p.add_argument(
        "--seq-len", type=int, default=64, help="with --from-config: tokens of the text input (64)"
    )
    add_constraint_arguments(p)
    p.set_defaults(func=_bench)
    from hf_spider.hardware.cost_cli import register_cost

    register_cost(subparsers)

    a = subparsers.add_parser(
        "agent",
        help="serve this device to hf-spider hosts: receive ONNX variants over HTTP, measure them",
        description="Run on the device (Raspberry Pi, Jetson, ...). Hosts use --target http://HOST:PORT.",
    )
    a.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 for the network)")
    a.add_argument("--port", type=int, default=8765)
    a.add_argument(
        "--token-file",
        required=True,
        help="file holding the token hosts must send (at least 16 characters)",
    )
    a.add_argument(
        "--new-token",
        action="store_true",
        help="write a fresh random token into --token-file first (refuses to overwrite a file)",
    )
    a.add_argument("--workdir", help="where uploads are kept (default: the hf-spider cache)")
    a.add_argument("--max-upload-mb", type=float, default=512.0, help="largest accepted upload (default 512)")
    a.add_argument("--queue-size", type=int, default=8, help="jobs waiting at most (default 8)")
    a.set_defaults(func=_agent)

    d = subparsers.add_parser("devices", help="list device targets: this machine and the device profiles")
    d.add_argument("--json", metavar="PATH", help="write the list as JSON ('-' for stdout)")
    d.set_defaults(func=_devices)


def add_agent_token_argument(parser) -> None:
    """`--token-file`: how `bench` and `recommend` take a device agent's token."""
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="file holding the device agent's token, for --target http://HOST:PORT "
        "(or set HF_SPIDER_AGENT_TOKEN)",
    )


def agent_token(args) -> str | None:
    """The agent token of `--token-file`, else `HF_SPIDER_AGENT_TOKEN`, else None."""
    if getattr(args, "token_file", None):
        from hf_spider.hardware.agent import read_token_file

        return read_token_file(args.token_file)
    from hf_spider.hardware.targets import AGENT_TOKEN_ENV

    return os.environ.get(AGENT_TOKEN_ENV) or None


def _bench(args) -> int:
    from hf_spider.hardware.config import MeasureConfig
    from hf_spider.hardware.constraints import Constraints, pick
    from hf_spider.hardware.targets import DeviceTarget
    from hf_spider.hardware.variants import parse_variants

    constraints = Constraints.from_args(args)  # checked before the long run
    parse_variants(args.variants)
    config = MeasureConfig.from_args(args)
    target = DeviceTarget.resolve(args.target, token=agent_token(args))
    cores = os.cpu_count() or 1
    if config.threads and config.threads > cores and args.target in (None, "local"):
        print(
            f"warning: --threads {config.threads} on {cores} cores: the threads share them, so figures "
            "are slower than the machine's, and the run is long",
            file=sys.stderr,
        )
    if args.from_config:
        from hf_spider.hardware.cost_cli import bench_from_config

        report = bench_from_config(args, target, config)
    else:
        report = _bench_weights(args, target, config)
    pick_error = None
    if constraints:
        from hf_spider.errors import ConstraintError

        try:
            choice, reason = pick(report["rows"], constraints)
            report["pick"] = {"choice": choice, "reason": reason, "constraints": constraints.to_dict()}
        except ConstraintError as exc:
            pick_error = exc
            report["pick"] = {"error": exc.one_line(), "constraints": constraints.to_dict()}
    _write_json(args.json, report)
    if args.json != "-":
        _print_report(report)
    if pick_error is not None:
        raise pick_error
    if not report.get("rows"):  # every variant asked for was skipped: nothing measured is a failure
        from hf_spider.errors import TargetError

        raise TargetError(
            f"no variant of {args.model} could be measured on {target.name}",
            hint="ask for variants this target runs (the reasons are printed above), e.g. --variants fp32,int8-dynamic",
        )
    return 0


def _bench_weights(args, target, config) -> dict[str, Any]:
    from rich.console import Console

    from hf_spider._cli_utils import StageBars
    from hf_spider.hardware._bench import bench

    # Beside the report on stdout, as `recommend` shows its stages; on stderr when stdout is JSON.
    with StageBars(Console(stderr=args.json == "-")) as bars:
        return bench(
            args.model,
            target=target,
            variants=args.variants,
            dataset=args.dataset,
            task_kind=args.task_kind,
            config=config,
            token=args.token,
            endpoint=args.endpoint,
            score=args.score,
            calibrate=args.calibrate,
            allow_pickle=args.allow_pickle,
            trust_remote_code=args.trust_remote_code,
            progress=bars,
        )


def _num(fig: dict[str, Any], fmt: str = ".3g") -> str:
    value = fig.get("value")
    if value is None:
        return "-"
    return format(value, fmt) + ("*" if fig.get("label") == "estimated" else "")


def _sensor_line(sensors: dict[str, Any]) -> str:
    """One line: the readable sensors with values, the others named as unavailable."""
    parts, missing = [], []
    for key, unit in (
        ("cpu_utilisation_pct", "% CPU"),
        ("temperature_before_c", " C before"),
        ("temperature_after_c", " C after"),
        ("energy_per_inference_mj", " mJ/inference"),
    ):
        fig = sensors.get(key) or {}
        if fig.get("value") is None:
            missing.append(key)
        else:
            parts.append(f"{fig['value']:.3g}{unit}")
    throttled = sensors.get("throttled") or {}
    if throttled.get("value") is None:
        missing.append("throttled")
    else:
        parts.append("throttled" if throttled["value"] else "not throttled")
    return ", ".join(parts) + (f"; unavailable here: {', '.join(missing)}" if missing else "")


def _print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=max(Console().width, 120))
    info = report["target"]["info"]
    target = report["target"]
    console.print(
        f"[bold]{report['model_id']}[/] on [bold]{target['name']}[/] ({target['kind']}): {info.get('cpu_model') or info.get('description')}, "
        f"isa {info.get('isa')}, int8 dot-product {'yes' if info.get('int8_dot_product') else 'no'}, {info.get('cores')} cores"
    )
    console.print(
        f"export: {report['export']['method']}; sample: {report['sample']['rows']} rows, {report['sample']['source']}"
    )
    results = [r for r in report["results"] if "figures" in r]
    if results:
        batch = results[0]["figures"]["throughput_batch_per_s"].get("batch")
        table = Table(
            title=f"latency in ms, memory and size in MiB, threads {results[0]['protocol']['threads']}; * = estimated"
        )
        for col in (
            "variant",
            "p50",
            "p90",
            "p99",
            "b1 /s",
            f"b{batch} /s",
            "peak",
            "file",
            "load ms",
            "fidelity",
            "dLogME",
        ):
            table.add_column(col, justify="left" if col == "variant" else "right", no_wrap=True)
        for r in results:
            f = r["figures"]
            table.add_row(
                r["variant"],
                _num(f["latency_p50_ms"]),
                _num(f["latency_p90_ms"]),
                _num(f["latency_p99_ms"]),
                _num(f["throughput_b1_per_s"]),
                _num(f["throughput_batch_per_s"]),
                _num(f["peak_memory_mb"], ".0f"),
                _num(f["file_size_mb"], ".3g"),
                _num(f["load_ms"]),
                _num(f["fidelity"], ".4f"),
                _num(f["logme_delta"], ".3g"),
            )
        console.print(table)
        console.print(f"latency method: {results[0]['figures']['latency_p50_ms']['method']}")
        interval = results[0]["figures"]["latency_p50_ms"].get("interval")
        if interval:
            console.print(f"estimate intervals (JSON: figures.*.interval): {interval['method']}")
        sensors = results[0].get("sensors")
        if sensors:
            console.print(f"sensors ({results[0].get('sensors_where')}): {_sensor_line(sensors)}")
    for r in report["results"]:
        if "skipped" in r:
            console.print(f"skipped {r['variant']}: {r['skipped']}")
    error = (report.get("calibration") or {}).get("error") or {}
    if error.get("before_median_rel_error") is not None:
        after = error.get("after_median_rel_error")
        console.print(
            f"calibration of {report['calibration']['profile']}: median error {error['before_median_rel_error']:.0%} "
            f"before (nominal rates, {error['n_before']} pairs), "
            + (
                f"{after:.0%} after (leave-one-out, {error['n_after']} pairs)"
                if after is not None
                else "after: needs two pairs of a precision"
            )
        )
    front = ", ".join(r["variant"] for r in report["pareto"])
    if front:
        console.print(f"Pareto front: {front}")
    if "pick" in report and "reason" in report["pick"]:
        from rich.markup import escape

        console.print(f"[bold green]pick:[/] {escape(report['pick']['reason'])}")  # "[fp32]" is text


def _agent(args) -> int:
    from hf_spider.hardware.agent import AgentServer, check_token_strength, new_token, read_token_file

    if not 0 <= args.port <= 65535:
        raise UserInputError(
            f"--port {args.port} is not a port", hint="pick one in 1-65535 (0: any free port)"
        )
    if args.max_upload_mb <= 0 or args.queue_size < 1:
        raise UserInputError("--max-upload-mb must be > 0 and --queue-size >= 1")
    if args.workdir is not None:
        try:
            Path(args.workdir, "files").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserInputError(
                f"cannot use --workdir {args.workdir}: {exc.strerror}",
                hint="pass a folder the agent may write (it keeps uploaded models there)",
            ) from None
    if args.new_token:
        _write_new_token(args.token_file, new_token())
    token = read_token_file(args.token_file)
    check_token_strength(token, f"the token in {args.token_file}")
    try:
        server = AgentServer(
            args.host,
            args.port,
            token=token,
            workdir=args.workdir,
            max_upload_mb=args.max_upload_mb,
            queue_size=args.queue_size,
        )
    except OSError as exc:
        raise UserInputError(
            f"cannot listen on {args.host}:{args.port}: {exc.strerror}", hint="pick another --port or --host"
        ) from None
    info = server.device
    print(
        f"hf-spider agent on {server.url}: {info['cpu_model']}, isa {info['isa']}, {info['cores']} cores, "
        f"ONNX Runtime {info.get('onnxruntime')}; uploads up to {args.max_upload_mb:g} MiB. Ctrl-C stops.",
        flush=True,
    )
    try:
        server.serve_forever()
    finally:
        server.shutdown()
    return 0


def _write_new_token(path: str, token: str) -> None:
    """Create `path` readable by its owner only, holding `token`; never overwrite a file."""
    try:
        fd = os.open(os.path.expanduser(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserInputError(
            f"{path} exists already", hint="drop --new-token to use it, or name a new file"
        ) from None
    except OSError as exc:
        raise UserInputError(f"cannot create {path}: {exc.strerror}", hint="check --token-file") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    print(f"wrote a new agent token to {path}; copy that file to the host (--token-file)", flush=True)


def _devices(args) -> int:
    from hf_spider.hardware.device import local_info
    from hf_spider.hardware.profiles import PROFILES

    data = {"local": local_info(), "profiles": {name: p.info() for name, p in sorted(PROFILES.items())}}
    _write_json(args.json, data)
    if args.json == "-":
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title="device targets (profiles are estimated from local measurements)")
    for col in ("target", "description", "cores", "GHz", "memory MiB", "isa", "int8 dot"):
        # the names a user types are never cut; the description wraps instead
        table.add_column(col, no_wrap=col in ("target", "isa"), ratio=2 if col == "description" else None)
    local = data["local"]
    table.add_row(
        "local",
        local["cpu_model"],
        str(local["cores"]),
        f"{(local['cpu_mhz'] or 0) / 1000:.2g}",
        str(local["memory_mb"]),
        local["isa"],
        "yes" if local["int8_dot_product"] else "no",
    )
    for name, p in sorted(PROFILES.items()):
        table.add_row(
            name,
            p.description,
            str(p.cores),
            f"{p.ghz:g}",
            str(p.memory_mb),
            p.isa,
            "yes" if p.int8_dot_product else "no",
        )
    Console().print(table)
    return 0
