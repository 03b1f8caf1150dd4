"""`sfxgan studio RUN`: a local web page to audition, vary, blend and download clips."""

from __future__ import annotations

import argparse

from sfxgan.cli.options import add_run_argument, add_weights_options


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "studio",
        help="a web page to audition, vary, blend and download generated clips",
        description="Serve a local web page (needs the studio extra: pip install "
        "'sfxgan[studio]'): pick a class, a number of variations and a seed, hear and see "
        "each clip, regenerate one, blend two classes, morph between two clips, download "
        "WAVs or a ZIP.",
    )
    add_run_argument(p)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=7860)
    add_weights_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.apps.studio import serve

    serve(
        args.run,
        host=args.host,
        port=args.port,
        device=args.device,
        ema=not args.no_ema,
        checkpoint=args.checkpoint,
    )
    return 0
