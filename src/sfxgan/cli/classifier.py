"""`sfxgan classifier train DATA --out FILE`: the judge network that evaluate scores with."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sfxgan.cli.options import add_crop_option, add_data_argument, add_quiet_option, positive_int
from sfxgan.errors import SfxganError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "classifier",
        help="the judge network used by evaluate",
        description="A small CNN on log-mel spectrograms trained on your real data; its "
        "penultimate layer is the embedding for the distribution metrics.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = actions.add_parser("train", help="train the judge on class folders or a manifest")
    add_data_argument(c)
    c.add_argument("--out", required=True, type=Path, help="classifier file, e.g. judge.pt")
    # the judge's own defaults (JudgeConfig: 16 384 samples at 16 kHz), not imported here to
    # keep start-up short
    c.add_argument(
        "--seconds",
        type=float,
        default=1.024,
        help="clip length it listens to; match your generated clips (default: %(default)s)",
    )
    c.add_argument("--sample-rate", type=positive_int, default=16000)
    c.add_argument("--epochs", type=positive_int, default=40)
    c.add_argument("--seed", type=int, default=0)
    add_crop_option(c, help="part of long clips to keep (default: %(default)s)")
    add_quiet_option(c)
    c.set_defaults(handler=run_train)


def run_train(args: argparse.Namespace) -> int:
    from sfxgan.evaluate.judge import JudgeConfig, train_judge_on_folder

    out = Path(args.out)
    if out.is_dir() or out.suffix.lower() == ".json":
        raise SfxganError(f"--out '{out}': give a classifier file name such as judge.pt")
    config = JudgeConfig(
        sample_rate=args.sample_rate, clip_samples=round(args.seconds * args.sample_rate)
    )
    start = time.perf_counter()
    judge = train_judge_on_folder(
        args.data,
        config,
        crop=args.crop,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.quiet,
    )
    judge.save(out)
    meta = judge.meta
    per_class = ", ".join(f"{k} {100 * v:.0f} %" for k, v in meta["per_class_accuracy"].items())
    resynthesised = (
        f"; {100 * meta['accuracy_resynthesised']:.1f} % after Griffin-Lim resynthesis"
        if meta.get("accuracy_resynthesised") is not None
        else ""
    )
    print(
        f"classifier: held-out accuracy {100 * meta['accuracy']:.1f} % on {meta['n_held_out']} "
        f"clips ({per_class}{resynthesised}); trained on {meta['n_train']} clips in "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(f"saved {out} (and {out.with_suffix('.json')})")
    return 0
