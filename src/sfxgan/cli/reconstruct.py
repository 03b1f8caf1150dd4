"""`sfxgan reconstruct DATA --out DIR`: real clips to spectrograms and back with phase
reconstruction (the work is in sfxgan.apps.reconstruct)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfxgan.cli.options import (
    add_cache_options,
    add_crop_option,
    add_data_argument,
    add_phase_options,
    add_preset_option,
    positive_int,
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconstruct",
        help="spectrogram -> Griffin-Lim -> audio on real clips",
        description="Turn real clips into spectrograms and back with phase "
        "reconstruction; write WAVs and PNGs and print the spectral "
        "convergence.",
    )
    add_data_argument(p)
    p.add_argument("--out", required=True, type=Path)
    add_preset_option(p)
    add_phase_options(p)
    p.add_argument("--per-class", type=positive_int, default=4)
    add_crop_option(
        p,
        help="which part of a long clip to keep: its start (the reference) or "
        "the loudest window (default: %(default)s)",
    )
    add_cache_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.apps.reconstruct import reconstruct_dataset

    summary = reconstruct_dataset(
        args.data,
        args.out,
        preset=args.preset,
        phase=args.phase,
        n_iter=args.iters,
        per_class=args.per_class,
        crop=args.crop,
        cache_dir=args.cache_dir,
        use_cache=not args.no_cache,
    )
    print(
        f"spectral convergence ({summary['phase']}, {summary['iterations']} iterations, "
        f"preset {summary['preset']}):"
    )
    for name, value in summary["spectral_convergence"].items():
        print(f"  {name:<16} {value:.4f}  ({summary['clips'][name]} clips)")
    print(f"  {'mean':<16} {summary['mean_spectral_convergence']:.4f}")
    print(f"wrote original and reconstructed WAVs and spectrogram PNGs to {args.out}")
    return 0
