"""`sfxgan demo-data DIR`: the built-in synthetic dataset, so everything runs offline."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sfxgan.cli.options import positive_int
from sfxgan.errors import SfxganError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo-data",
        help="write the built-in synthetic demo dataset",
        description="Write a procedurally synthesised dataset (footsteps, "
        "gunshots, rain, engine, birds) so everything runs offline.",
    )
    p.add_argument("dir", help="output folder (new or empty)")
    p.add_argument("--per-class", type=positive_int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.apps.demo import DEMO_CLASSES, write_demo_dataset

    out = Path(args.dir)
    if out.exists() and not out.is_dir():
        raise SfxganError(f"'{out}' exists and is not a folder; choose a new folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_CLASSES)
        if foreign:
            raise SfxganError(
                f"'{out}' already holds other files ({', '.join(foreign[:3])}); "
                "choose an empty or new folder for the demo data"
            )
    start = time.perf_counter()
    try:
        written = write_demo_dataset(out, per_class=args.per_class, seed=args.seed)
    except OSError as exc:
        raise SfxganError(f"cannot write the demo data to '{out}': {exc.strerror or exc}") from exc
    total = sum(len(paths) for paths in written.values())
    print(
        f"wrote {total} synthetic clips ({args.per_class} per class: {', '.join(written)}) "
        f"to {out} in {time.perf_counter() - start:.1f} s"
    )
    return 0
