"""`sfxgan generate RUN --out DIR`: new clips per class from a trained run, as plain class
folders or in the DCASE 2023 Task 7 layout."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sfxgan.cli.options import (
    add_finish_options,
    add_phase_options,
    add_quiet_option,
    add_run_argument,
    add_weights_options,
    class_list,
    finish_from,
    non_negative_int,
    positive_int,
)
from sfxgan.config import DCASE_CLIPS_PER_CLASS
from sfxgan.dsp.finish import Finish, quieter_note
from sfxgan.errors import SfxganError
from sfxgan.generate import BATCH, GENERATION_PRECISIONS, RECORD

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
    p.add_argument(
        "--start",
        type=non_negative_int,
        default=0,
        help="number of the first take (default: 0): takes START..START+N-1, so --start 100 "
        "continues a set of 100; take i is the same sound in any request",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace takes the folder already holds (without it only missing ones are written, "
        "and takes of another model or other settings are refused)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=BATCH,
        help="clips made at once: memory grows with it, not with the number of clips "
        "(default: %(default)s)",
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
    p.add_argument(
        "--precision",
        choices=GENERATION_PRECISIONS,
        default="auto",
        help="the generator's arithmetic: auto (default) is bf16 where the device computes it "
        "natively and fast (a GPU with bfloat16, a CPU with AVX-512 BF16 or AMX: 2.5x faster "
        "on paper-16k, takes judged the same), else fp32; fp32 makes the takes of the library "
        "API, `sfxgan studio` and an export",
    )
    add_finish_options(p)
    add_weights_options(p)
    add_quiet_option(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.generate import Sampler

    finish = finish_from(args)
    finish.check()  # what can be said before the run is loaded
    if args.dcase and args.rate is not None:
        from sfxgan.apps.dcase import DCASE_SAMPLE_RATE

        raise SfxganError(
            f"--rate does not apply to --dcase, whose layout is {DCASE_SAMPLE_RATE} Hz; drop --rate"
        )
    sampler = Sampler.from_run(
        args.run, device=args.device, ema=not args.no_ema, checkpoint=args.checkpoint
    )
    why = sampler.use_precision(args.precision)
    if not args.quiet:
        print(sampler.describe_checkpoint(), file=sys.stderr)
        print(f"generator precision: {sampler.precision} ({why})", file=sys.stderr)
    if args.dcase:
        return _run_dcase(args, sampler, finish)
    from sfxgan.apps.takes import GenerationInterrupted, generate_to_folder

    per_class = args.per_class or PER_CLASS
    try:
        result = generate_to_folder(
            sampler,
            Path(args.out),
            per_class,
            class_list(args.classes),
            args.seed,
            args.phase,
            args.iters,
            pictures=args.png,
            start=args.start,
            overwrite=args.overwrite,
            batch_size=args.batch_size,
            progress=not args.quiet,
            finish=finish,
        )
    except GenerationInterrupted as stop:
        done = stop.written
        print(
            f"interrupted: {done.total_written} new clips written to {args.out}, every one "
            f"complete; run the same command again to write the rest"
        )
        return 130
    takes = result.takes
    numbers = f"takes {takes.start}-{takes.stop - 1}" if len(takes) > 1 else f"take {takes.start}"
    if not result.total_written and not result.removed:
        print(f"nothing to write: {args.out} holds {numbers} of {', '.join(result.written)}")
        return 0
    weights = "moving-average" if sampler.weights == "ema" else "trained"
    kept = sum(result.present.values())
    said = f"; {kept} were there already" if kept else ""
    removed = f"; {result.removed} files of the earlier set removed" if result.removed else ""
    rate = result.total_written / result.seconds if result.seconds else 0.0
    print(
        f"wrote {result.total_written} clips ({numbers} of {', '.join(result.written)}{said}"
        f"{removed}) from step {sampler.step} ({weights} weights) to {args.out} in "
        f"{result.seconds:.1f} s ({rate:.1f} clips/s)"
    )
    if result.quieter:
        print(quieter_note(result.quieter, result.finish, str(Path(args.out) / RECORD)))
    return 0


def _run_dcase(args: argparse.Namespace, sampler, finish: Finish) -> int:
    from sfxgan.apps.dcase import write_dcase

    if args.png:
        raise SfxganError(
            "--png is not part of the DCASE layout (audio only); drop it, or write the "
            "pictures with a plain `sfxgan generate --png` into another folder"
        )
    if args.start:
        raise SfxganError("--start is not part of the DCASE layout, whose files count from 0001")
    start = time.perf_counter()
    per_class = args.per_class or DCASE_CLIPS_PER_CLASS
    written = write_dcase(
        sampler,
        Path(args.out),
        per_class,
        class_list(args.classes),
        args.seed,
        args.phase,
        args.iters,
        batch_size=args.batch_size,
        progress=not args.quiet,
        finish=finish,
    )
    total = sum(len(v) for v in written.values())
    seconds = time.perf_counter() - start
    weights = "moving-average" if sampler.weights == "ema" else "trained"
    print(
        f"wrote {total} clips ({per_class} per class: {', '.join(written)}) from step "
        f"{sampler.step} ({weights} weights) to {args.out} in the DCASE 2023 Task 7 layout in "
        f"{seconds:.1f} s ({total / seconds:.1f} clips/s)"
    )
    return 0
