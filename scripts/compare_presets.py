"""Presets side by side under one judge: a Markdown table of `sfxgan evaluate` reports, one row
per set, variant and judge, each cell the seeds' figures and their median.

    python scripts/compare_presets.py cross --sets drums 0ad --variants lecam tinypat cpu1s \\
        --judges j512 j1024

FOLDER holds one folder per set, variant and seed, named SET-VARIANT-sSEED, with one report
folder per judge inside (the metrics.json that `sfxgan evaluate --classifier JUDGE` writes);
docs/training.md gives the commands that made them. The judge of a set and seed is the same for
every variant, so the rows of one judge compare the variants' takes, whatever their length (the
judge pads shorter takes with silence and keeps the start of longer ones).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from compare_options import seed_cells  # the same cells as the options table


def figures(metrics: dict) -> dict[str, float]:
    overall, per_class = metrics["overall"], metrics["per_class"]
    worst = min(per_class, key=lambda name: per_class[name]["class_fit"])
    hits = [
        row["attack_ms"] <= 1.5 * row["attack_ms_real"]
        for row in per_class.values()
        if row.get("attack_ms") is not None and row.get("attack_ms_real") is not None
    ]
    return {
        "class_fit": overall["class_fit"],
        "worst_class": per_class[worst]["class_fit"],
        "fd": overall["fd"],
        "fd_real": overall["fd_real"],
        "diversity": overall["diversity"],
        "near_copies": overall["memorisation"],
        "near_copies_real": overall["memorisation_real"],
        "attack_hits": float(sum(hits)),
    }


COLUMNS = [  # key, header, format of one value
    ("class_fit", "class fit %", lambda v: f"{100 * v:.0f}"),
    ("worst_class", "worst class %", lambda v: f"{100 * v:.0f}"),
    ("fd", "FD", lambda v: f"{v:.1f}"),
    ("fd_real", "FD of real halves", lambda v: f"{v:.2f}"),
    ("diversity", "diversity", lambda v: f"{v:.2f}"),
    ("near_copies", "near copies %", lambda v: f"{100 * v:.0f}"),
    ("near_copies_real", "real's own %", lambda v: f"{100 * v:.1f}"),
    ("attack_hits", "classes: attack <= 1.5x real", lambda v: f"{v:.0f}"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--variants", nargs="+", required=True)
    parser.add_argument("--judges", nargs="+", required=True, help="report folder names")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args()

    print(
        "| set | judge | variant | "
        + " | ".join(f"{header} (seeds; median)" for _, header, _ in COLUMNS)
        + " |"
    )
    print("|---|---|---|" + "---:|" * len(COLUMNS))
    for data in args.sets:
        for judge in args.judges:
            for variant in args.variants:
                paths = [
                    args.folder / f"{data}-{variant}-s{seed}" / judge / "metrics.json"
                    for seed in args.seeds
                ]
                found = [figures(json.loads(p.read_text())) for p in paths if p.is_file()]
                if not found:
                    continue
                cells = seed_cells(found, COLUMNS)
                seeds = "" if len(found) == len(args.seeds) else f" ({len(found)} seeds)"
                print(f"| {data} | {judge} | {variant}{seeds} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
