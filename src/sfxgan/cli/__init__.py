"""The `sfxgan` command: one module per command (or group of subcommands), each with its parser
beside its handler; options that several commands share are declared once in `options`.

User errors (SfxganError) print one line and exit with code 2; argparse does the same for wrong
arguments. Anything else is a bug and keeps its traceback.

Every command module has `add_parser(subparsers)`, which adds its parser and sets `handler`, the
function that runs it. Handlers import the heavy parts of the package when they run, so that
`sfxgan --help` and a mistyped option answer at once.
"""

from __future__ import annotations

import argparse
import os
import sys

from sfxgan import __version__, threads
from sfxgan.cli import (
    bench,
    classifier,
    demo_data,
    evaluate,
    experiment,
    export,
    generate,
    reconstruct,
    studio,
    train,
    vary,
)
from sfxgan.cli.options import thread_count
from sfxgan.errors import SfxganError

# in the order `sfxgan --help` lists them: the method's path first, then the tools around it
COMMANDS = (
    demo_data,
    reconstruct,
    train,
    generate,
    vary,
    export,
    studio,
    classifier,
    evaluate,
    experiment,
    bench,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfxgan", description="Conditional sound-effect generation with a regularized WGAN."
    )
    parser.add_argument("--version", action="version", version=f"sfxgan {__version__}")
    parser.add_argument(
        "--threads",
        type=thread_count,
        default="auto",
        help="CPU threads for torch, or auto (the default): one per core that other processes "
        "leave free, checked again every few seconds during long work. A fixed N keeps results "
        "bit-identical between runs; more threads than free cores makes every step wait",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads.configure(args.threads, log=lambda message: print(message, file=sys.stderr))
    try:
        return args.handler(args)
    except SfxganError as exc:
        # under torchrun every process meets the same error: rank 0 says it
        if os.environ.get("RANK", "0") == "0":
            print(f"sfxgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfxgan: interrupted", file=sys.stderr)
        return 130
