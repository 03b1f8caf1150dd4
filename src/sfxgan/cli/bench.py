"""`sfxgan bench`: training and generation throughput, Griffin-Lim cost, FLOPs and the CPU's
peak (the work is in sfxgan.apps.bench)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfxgan.cli.options import add_quiet_option


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="training and generation throughput, Griffin-Lim cost, FLOPs and the CPU's peak",
        description="Time training steps, generation and Griffin-Lim (medians after a warm-up), "
        "count FLOPs and measure the matrix-product peak; print tables and write JSON.",
    )
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results file")
    p.add_argument("--quick", action="store_true", help="a short run (tiny only) for checks")
    add_quiet_option(p, help="no progress lines")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.apps.bench import default_plan, format_tables, run_bench, write_json

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    result = run_bench(default_plan(quick=args.quick), log=log)
    print(format_tables(result))
    path = write_json(result, args.out)
    print(f"wrote {path}")
    return 0
