"""`sfxgan vary RUN SOUND [SOUND ...] --out DIR`: takes like a sound the user brings, by fitting
it into the trained generator (apps/vary.py)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sfxgan.cli.options import (
    add_finish_options,
    add_quiet_option,
    add_run_argument,
    add_weights_options,
    finish_from,
    non_negative_int,
)
from sfxgan.config import DEFAULT_SPREAD

TAKES = 10  # takes per sound unless asked


def spread(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got '{text}'") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value:g}")
    return value


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "vary",
        help="write takes like a sound you bring (GAN inversion)",
        description="Fit each sound into the run's generator (the latent, and the class unless "
        "--class says it, whose take comes closest to the sound's spectrogram), then write "
        "OUT/<name>_fit.wav (the fitted take), OUT/<name>_<i>.wav (takes around it) and "
        "OUT/vary.json. Each sound is decoded as training data is: the model's rate, mono, "
        "cut or padded to the run's clip length.",
    )
    add_run_argument(p)
    p.add_argument("sounds", nargs="+", metavar="SOUND", type=Path, help="audio files to vary")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument(
        "--takes",
        type=non_negative_int,
        default=TAKES,
        help="takes per sound besides the fitted one (default: %(default)s)",
    )
    p.add_argument(
        "--class",
        dest="class_name",
        metavar="NAME",
        help="fit the sounds as this class (default: find the class that fits each best)",
    )
    p.add_argument(
        "--spread",
        type=spread,
        default=DEFAULT_SPREAD,
        help="how far the takes stray from the fitted one: 0 the fitted take itself, 1 free "
        "takes of the class (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the fit's starts and of the takes: take i is the same sound for a seed",
    )
    p.add_argument("--png", action="store_true", help="also write a spectrogram PNG per take")
    add_finish_options(p)
    add_weights_options(p)
    add_quiet_option(p, help="no line per sound")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.apps.vary import RECORD, load_sources, vary_to_folder
    from sfxgan.dsp.finish import quieter_note
    from sfxgan.generate import Sampler

    finish = finish_from(args)
    finish.check()
    sampler = Sampler.from_run(
        args.run, device=args.device, ema=not args.no_ema, checkpoint=args.checkpoint
    )
    if args.class_name is not None:
        sampler.label(args.class_name)  # an unknown class names the known ones, before any work
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr))
    if log:
        log(sampler.describe_checkpoint())
    sources = load_sources(args.sounds, sampler)
    try:
        record = vary_to_folder(
            sampler,
            sources,
            args.out,
            args.takes,
            args.class_name,
            args.spread,
            args.seed,
            pictures=args.png,
            finish=finish,
            log=log,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted: the sounds listed in {args.out / RECORD} are complete; run the same "
            "command again for the rest",
            file=sys.stderr,
        )
        return 130
    sounds = record["sounds"]
    files = sum(len(s["files"]) for s in sounds)
    print(f"wrote {files} takes of {len(sounds)} sounds to {args.out} ({args.out / RECORD})")
    # per sound, not per class: two sounds of one class each have their own quieter takes
    quieter = {Path(s["source"]).stem: s["quieter"] for s in sounds if s["quieter"]}
    if quieter:
        print(quieter_note(quieter, finish, str(args.out / RECORD)))
    return 0
