"""The `bitmix` command: one entry point, one sub-command per module.

Each module in ``COMMANDS`` exposes ``register(subparsers)``, which adds its
sub-parser and sets ``func``. A :class:`BitmixError` is printed as one line
(``bitmix: error: ...``) with exit status 2, never as a traceback; that includes the
range-checked option values of :mod:`bitmix.argtypes`, raised while the line is parsed.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bitmix import __version__
from bitmix.errors import BitmixError

#: Modules that contribute sub-commands, in the order `bitmix --help` lists them.
COMMANDS = [
    "bitmix.cmd_formats",
    "bitmix.cmd_elaborate",
    "bitmix.cmd_eval",
    "bitmix.cmd_quantize",
    "bitmix.cmd_bench",
    "bitmix.cmd_train",
    "bitmix.cmd_train_scheduler",
    "bitmix.cmd_protocol",
    "bitmix.cmd_sim_board",
    "bitmix.cmd_build",
    "bitmix.cmd_deploy",
    "bitmix.cmd_demo",
    "bitmix.cmd_run",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bitmix", description="Generate, verify and deploy low-bit LLM accelerators.")
    parser.add_argument("--version", action="version", version=f"bitmix {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)       # bitmix.argtypes converters raise BitmixError here
        return args.func(args) or 0
    except BitmixError as exc:
        print(f"bitmix: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bitmix: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:          # e.g. `bitmix formats | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
