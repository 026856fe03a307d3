"""The `hf-spider` command line.

Each stage of the pipeline owns its sub-commands in `hf_spider/<stage>/cli.py`, which exposes
`register(subparsers)`. Library code never prints; only these modules write to the terminal.
Every error a user can cause is an `HfSpiderError`: printed on one line, exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from hf_spider import __version__
from hf_spider.errors import HfSpiderError

# Stage modules that contribute sub-commands, in pipeline order.
_COMMAND_MODULES = (
    "hf_spider.catalog.cli",
    "hf_spider.tasks.cli",
    "hf_spider.zoo.cli",
    "hf_spider.ranker.cli",
    "hf_spider.hardware.cli",
    "hf_spider.recommend.cli",
)

EXIT_USER_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-spider",
        description="Which pre-trained Hub model should I start from, for my dataset, on my hardware?",
    )
    parser.add_argument("--version", action="version", version=f"hf-spider {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def _no_progress_bars() -> None:
    """No tqdm bars of huggingface_hub / datasets (uploads, downloads) when stderr is a file or pipe."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # read when they are imported
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()


_VERBOSE = {"-v": 1, "-vv": 2, "-vvv": 3, "--verbose": 1}


def _verbose_first(argv: list[str]) -> list[str]:
    """`-v` may follow the subcommand too (`hf-spider eval ranking ... -v`): moved before it, where
    the parser reads it (no subcommand has a `-v` of its own). Arguments after `--` stay."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in _VERBOSE]
    rest = [a for a in argv[:end] if a not in _VERBOSE]
    return flags + rest + argv[end:]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_verbose_first(list(sys.argv[1:] if argv is None else argv)))
    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.verbose < 2:
        # `datasets` logs a file it cannot parse as an ERROR, then raises; hf-spider reports the
        # error once, on one line.
        logging.getLogger("datasets.packaged_modules").setLevel(logging.CRITICAL)
    if not sys.stderr.isatty():
        _no_progress_bars()
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USER_ERROR
    try:
        result = args.func(args)
    except HfSpiderError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `hf-spider ... --json - | head`: the reader went away; not an error worth a traceback.
        sys.stderr.close()
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
