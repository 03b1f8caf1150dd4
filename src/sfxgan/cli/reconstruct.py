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
    non_negative_int,
    positive_int,
)
from sfxgan.config import LOG_FLOORS


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
    p.add_argument(
        "--lead-in",
        type=non_negative_int,
        help="samples of silence before the first frame (default: the preset's; 0 is the "
        "reference's framing)",
    )
    p.add_argument(
        "--log-floor",
        choices=LOG_FLOORS,
        help="what the log floor inverts to (default: the preset's; constant is the reference's)",
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
        lead_in=args.lead_in,
        log_floor=args.log_floor,
    )
    print(
        f"{summary['phase']}, {summary['iterations']} iterations, preset {summary['preset']} "
        f"(lead-in {summary['lead_in']} samples, log floor {summary['log_floor']}):"
    )
    print(
        f"  {'class':<16} {'clips':>5} {'spectral conv.':>14} {'attack error':>12} "
        f"{'rest error':>10} {'floor dB':>9} {'(original)':>10}"
    )
    for name, value in summary["spectral_convergence"].items():
        print(
            f"  {name:<16} {summary['clips'][name]:>5} {value:>14.4f} "
            f"{summary['attack_error'][name]:>12.3f} {summary['rest_error'][name]:>10.3f} "
            f"{summary['floor_db'][name]:>9.1f} {summary['floor_db_original'][name]:>10.1f}"
        )
    print(
        f"  {'mean':<16} {sum(summary['clips'].values()):>5} "
        f"{summary['mean_spectral_convergence']:>14.4f} {summary['mean_attack_error']:>12.3f} "
        f"{summary['mean_rest_error']:>10.3f}"
    )
    print(
        "  (attack error: RMS envelope over the first 16 ms, rest error: after it, relative; "
        "floor: median 10th-percentile frame energy below the loudest frame)"
    )
    print(f"wrote original and reconstructed WAVs and spectrogram PNGs to {args.out}")
    return 0
