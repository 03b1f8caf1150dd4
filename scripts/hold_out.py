"""Split class folders into a training set and held-out clips, as symbolic links (no copies).

    python scripts/hold_out.py data/drums data/drums-train data/drums-held --per-class 4

From each class, `--per-class` files are held out, chosen by a generator seeded with the class
name (the same files on every machine); docs/vary.md's held-out drum hits were chosen so.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("train", type=Path)
    parser.add_argument("held", type=Path)
    parser.add_argument("--per-class", type=int, default=4)
    args = parser.parse_args()
    for folder in sorted(p for p in args.data.iterdir() if p.is_dir()):
        files = sorted(p.name for p in folder.iterdir() if p.is_file() or p.is_symlink())
        held = set(random.Random(folder.name).sample(files, args.per_class))
        for name in files:
            target = (args.held if name in held else args.train) / folder.name / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to((folder / name).resolve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
