"""`sfxgan export RUN --format onnx|torchscript --out FILE`: the generator for game and audio
tools (the work is in sfxgan.apps.export)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfxgan.cli.options import add_run_argument, add_weights_options
from sfxgan.config import EXPORT_FORMATS


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="the generator as an ONNX or TorchScript file for game and audio tools",
        description="Write the generator plus the inverse of the log/normalisation (latent and "
        "class in, magnitude spectrogram out) and a JSON sidecar FILE.json with the classes, "
        "sample rate, STFT settings, max_value and latent size.",
    )
    add_run_argument(p)
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, type=Path, help="file to write, e.g. rain.onnx")
    add_weights_options(
        p,
        no_ema_help="export the trained generator weights, not their moving average",
        device=False,
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.apps.export import export_run

    model_path, sidecar_path = export_run(
        args.run, args.format, args.out, ema=not args.no_ema, checkpoint=args.checkpoint
    )
    print(f"wrote {model_path} and its settings {sidecar_path}")
    return 0
