"""`sfxgan generate RUN --out DIR`: new clips per class from a trained run, as plain class
folders or in the DCASE 2023 Task 7 layout."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sfxgan.cli.options import (
    add_phase_options,
    add_run_argument,
    add_weights_options,
    class_list,
    positive_int,
)
from sfxgan.config import DCASE_CLIPS_PER_CLASS
from sfxgan.errors import SfxganError

PER_CLASS = 10  # clips per class without --dcase (with it: the layout's DCASE_CLIPS_PER_CLASS)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="write new clips per class from a trained run",
        description="Write OUT/<class>/<class>_<i>.wav (16-bit PCM) from a run "
        "folder or checkpoint file.",
    )
    add_run_argument(p)
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--per-class",
        type=positive_int,
        default=None,
        help=f"clips per class (default: {PER_CLASS}; {DCASE_CLIPS_PER_CLASS} with --dcase)",
    )
    p.add_argument("--classes", help="comma-separated class names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    add_phase_options(p)
    p.add_argument("--png", action="store_true", help="also write a spectrogram PNG per clip")
    p.add_argument(
        "--dcase",
        action="store_true",
        help="write the DCASE 2023 Task 7 layout: OUT/<Category>/0001.wav..., 4 s, mono, "
        "16-bit, 22 050 Hz (resampled and padded or cropped)",
    )
    add_weights_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.generate import Sampler, generate_to_folder

    sampler = Sampler.from_run(args.run, device=args.device, ema=not args.no_ema)
    classes = class_list(args.classes)
    start = time.perf_counter()
    if args.dcase:
        from sfxgan.apps.dcase import write_dcase

        if args.png:
            raise SfxganError(
                "--png is not part of the DCASE layout (audio only); drop it, or write the "
                "pictures with a plain `sfxgan generate --png` into another folder"
            )

        per_class = args.per_class or DCASE_CLIPS_PER_CLASS
        written = write_dcase(
            sampler, Path(args.out), per_class, classes, args.seed, args.phase, args.iters
        )
    else:
        per_class = args.per_class or PER_CLASS
        written = generate_to_folder(
            sampler,
            Path(args.out),
            per_class,
            classes,
            args.seed,
            args.phase,
            args.iters,
            pictures=args.png,
        )
    total = sum(len(v) for v in written.values())
    seconds = time.perf_counter() - start
    weights = "moving-average" if sampler.weights == "ema" else "trained"
    layout = " in the DCASE 2023 Task 7 layout" if args.dcase else ""
    print(
        f"wrote {total} clips ({per_class} per class: {', '.join(written)}) from step "
        f"{sampler.step} ({weights} weights) to {args.out}{layout} in {seconds:.1f} s "
        f"({total / seconds:.1f} clips/s)"
    )
    return 0
