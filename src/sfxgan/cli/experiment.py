"""`sfxgan experiment compare|curves`: controlled comparisons of settings (the work is in
sfxgan.apps.experiment)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sfxgan.cli.options import add_data_argument, add_preset_option, add_quiet_option, positive_int
from sfxgan.errors import SfxganError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "experiment",
        help="controlled comparisons, e.g. of the reconstruction-loss weight",
        description="Run a set of trainings with the same budget and seeds and compare them.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_compare_parser(actions)
    _add_curves_parser(actions)


def _add_compare_parser(actions: argparse._SubParsersAction) -> None:
    e = actions.add_parser(
        "compare",
        help="train, generate and evaluate per reconstruction weight and seed; one table",
        description="For every weight and seed: train, generate as many clips per class as the "
        "real data has, evaluate with one shared judge; write results.md/.csv/.json/.png. "
        "Rerunning the command continues where it stopped.",
    )
    add_data_argument(e)
    e.add_argument("--out", required=True, type=Path, help="experiment folder")
    e.add_argument("--weights", default="0,1e-3,1e-2,1e-1", help="reconstruction weights w")
    e.add_argument("--seeds", default="0,1", help="seeds, one run per weight and seed")
    e.add_argument("--steps", type=positive_int, default=600, help="steps per run")
    add_preset_option(e)
    e.add_argument(
        "--per-class",
        type=positive_int,
        default=None,
        help="generated clips per class (default: the smallest real class's count)",
    )
    add_quiet_option(e, help="no progress bars")
    e.set_defaults(handler=run_compare)


def _add_curves_parser(actions: argparse._SubParsersAction) -> None:
    e = actions.add_parser(
        "curves",
        help="overlay the loss curves of several runs; how far apart they are, how fast each ran",
        description="Plot the runs' loss curves in one figure and print, per metric, each run's "
        "RMS gap to the first run. Compare a setting's gap with the gap between two seeds.",
    )
    e.add_argument("runs", nargs="+", help="training run folders (the first is the reference)")
    e.add_argument("--out", required=True, type=Path, help="PNG file to write")
    e.add_argument("--labels", help="names for the runs, comma-separated (default: folder names)")
    e.add_argument(
        "--quality",
        type=Path,
        help="also draw the runs' quality curves (train --eval-every) into this PNG and print "
        "each run's last check",
    )
    e.add_argument(
        "--groups",
        help="with --quality: a group name per run, comma-separated; runs of one group (e.g. "
        "the seeds of one setting) share a colour",
    )
    e.set_defaults(handler=run_curves)


def run_compare(args: argparse.Namespace) -> int:
    from sfxgan.apps.experiment import compare, parse_floats, parse_ints, table_markdown

    weights = parse_floats(args.weights, "weights")
    seeds = parse_ints(args.seeds, "seeds")
    start = time.perf_counter()
    try:
        results = compare(
            args.data,
            args.out,
            weights,
            seeds,
            args.steps,
            preset=args.preset,
            per_class=args.per_class,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted; finished runs are kept in {args.out}/runs and the run in progress was "
            "checkpointed: run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    print(table_markdown(results))
    print(
        f"wrote {args.out}/results.md, results.csv, results.json and results.png "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0


def run_curves(args: argparse.Namespace) -> int:
    from sfxgan.apps.experiment import curve_gaps, curves_markdown, speed_markdown
    from sfxgan.plots import overlay_loss_curves
    from sfxgan.run_folder import read_metrics

    labels = args.labels.split(",") if args.labels else [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs) or len(set(labels)) != len(labels):
        raise SfxganError(
            f"--labels needs {len(args.runs)} different names, one per run, separated by commas"
        )
    runs = {}
    for label, run in zip(labels, args.runs, strict=True):
        rows = read_metrics(run)
        if not rows:
            raise SfxganError(f"'{run}' has no metrics.csv; give training run folders")
        runs[label] = rows
    print(curves_markdown(curve_gaps(runs), labels[0]))
    print()
    print(speed_markdown(runs))
    print(f"wrote {overlay_loss_curves(args.out, runs)}")
    if args.quality:
        write_quality_curves(args, labels)
    return 0


def write_quality_curves(args: argparse.Namespace, labels: list[str]) -> None:
    """The runs' quality.csv (train --eval-every) in one figure, one colour per group, and the
    last check of each run as a table."""
    from sfxgan.evaluate.tracking import read_quality, save_quality_curves

    groups = args.groups.split(",") if args.groups else labels
    if len(groups) != len(labels):
        raise SfxganError(f"--groups needs {len(labels)} names, one per run, separated by commas")
    quality = {label: read_quality(run) for label, run in zip(labels, args.runs, strict=True)}
    missing = [str(run) for run, rows in zip(args.runs, quality.values(), strict=True) if not rows]
    if missing:
        raise SfxganError(
            f"no quality.csv in {', '.join(missing)}: train with --eval-every N to track quality"
        )
    print()
    print("| run | step | class fit | FD | KID | diversity | minutes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, rows in quality.items():
        last = rows[-1]
        print(
            f"| {label} | {last['step']:.0f} | {last['class_fit']:.1%} | {last['fd']:.2f} | "
            f"{last['kid']:.3f} | {last['diversity']:.2f} | {last['train_seconds'] / 60:.1f} |"
        )
    references = next(iter(quality.values()))[-1]
    print(
        f"references: FD between real halves {references['fd_real']:.2f}, real via Griffin-Lim "
        f"{references['fd_resynth']:.2f}, the judge on the real clips "
        f"{references['class_fit_real']:.1%}"
    )
    group_of = dict(zip(labels, groups, strict=True))
    print(f"wrote {save_quality_curves(args.quality, quality, group_of)}")
