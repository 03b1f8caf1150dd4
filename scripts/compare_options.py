"""Compare training options over seeds and data sets from the runs' own quality logs: a table of
each run's best check (the rule of checkpoints/best.pt) with the medians over seeds, and learning
curves (median over seeds, the seeds' range shaded) of class fit and FD per set.

    python scripts/compare_options.py RUNS --sets drums 0ad demo \\
        --options base diffaug aux10 lecam trans --seeds 0 1 2 --png docs/options.png

RUNS holds one run folder per set, option and seed, named SET-OPTION-sSEED (docs/training.md
gives the commands that trained them). The table goes to the standard output in Markdown.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np

from sfxgan.evaluate.tracking import best_check, read_quality


def envelope_hits(row: dict) -> tuple[float, float]:
    """How many classes meet the issue's envelope targets at a check: attack rise time within
    1.5x the real clips' and floor within 6 dB of theirs (NaN without envelope figures)."""
    classes = [k.split(":", 1)[1] for k in row if k.startswith("attack_ms:")]
    if not classes:
        return float("nan"), float("nan")
    attack = sum(row[f"attack_ms:{c}"] <= 1.5 * row[f"attack_ms_real:{c}"] for c in classes)
    floor = sum(abs(row[f"floor_db:{c}"] - row[f"floor_db_real:{c}"]) <= 6 for c in classes)
    return attack, floor


def summary(rows: list[dict]) -> dict:
    best = best_check(rows)[0]
    attack, floor = envelope_hits(best)
    return {
        "step": best["step"],
        "class_fit": best["class_fit"],
        "worst_class": min(v for k, v in best.items() if k.startswith("class_fit:")),
        "fd": best["fd"],
        "fd_resynth": best.get("fd_resynth", float("nan")),
        "diversity": best["diversity"],
        "near_copies": best["near_copies"],
        "near_copies_real": best.get("near_copies_real", float("nan")),
        "attack_hits": attack,
        "floor_hits": floor,
        "last_fd": rows[-1]["fd"],
        "last_class_fit": rows[-1]["class_fit"],
    }


COLUMNS = [  # key, header, format of one value
    ("class_fit", "class fit", lambda v: f"{100 * v:.0f}"),
    ("worst_class", "worst class", lambda v: f"{100 * v:.0f}"),
    ("fd", "FD", lambda v: f"{v:.1f}"),
    ("diversity", "diversity", lambda v: f"{v:.2f}"),
    ("near_copies", "near copies %", lambda v: f"{100 * v:.0f}"),
    ("attack_hits", "classes: attack <= 1.5x real", lambda v: f"{v:.0f}"),
    ("floor_hits", "classes: floor within 6 dB", lambda v: f"{v:.0f}"),
    ("step", "best step", lambda v: f"{v:.0f}"),
]


def seed_cells(found: list[dict], columns: list) -> list[str]:
    """One Markdown cell per column: each seed's figure, then their median in bold."""
    cells = []
    for key, _, fmt in columns:
        values = [f[key] for f in found]
        cells.append(" / ".join(fmt(v) for v in values) + f"; **{fmt(statistics.median(values))}**")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--options", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--png", type=Path, help="learning curves")
    args = parser.parse_args()

    curves: dict[tuple[str, str], list[list[dict]]] = {}
    print(
        "| set | option | "
        + " | ".join(f"{header} (seeds; median)" for _, header, _ in COLUMNS)
        + " |"
    )
    print("|---|---|" + "---:|" * len(COLUMNS))
    for data in args.sets:
        for option in args.options:
            logs = [read_quality(args.runs / f"{data}-{option}-s{seed}") for seed in args.seeds]
            logs = [rows for rows in logs if rows]
            if not logs:
                continue
            curves[data, option] = logs
            cells = seed_cells([summary(rows) for rows in logs], COLUMNS)
            seeds = "" if len(logs) == len(args.seeds) else f" ({len(logs)} seeds)"
            print(f"| {data} | {option}{seeds} | " + " | ".join(cells) + " |")
    if args.png:
        save_curves(args.png, curves, args.sets, args.options)


def save_curves(path: Path, curves: dict, sets: list[str], options: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("class_fit", "class fit"), ("fd", "FD (judge features)")]
    fig, axes = plt.subplots(
        len(metrics), len(sets), figsize=(4.2 * len(sets), 3.2 * len(metrics)), squeeze=False
    )
    for col, data in enumerate(sets):
        for row, (key, label) in enumerate(metrics):
            ax = axes[row][col]
            for number, option in enumerate(options):
                logs = curves.get((data, option))
                if not logs:
                    continue
                steps = sorted(set.intersection(*({r["step"] for r in rows} for rows in logs)))
                values = np.array(
                    [[next(r[key] for r in rows if r["step"] == s) for s in steps] for rows in logs]
                )
                color = f"C{number}"  # an option's colour in every panel
                ax.plot(steps, np.median(values, axis=0), marker="o", label=option, color=color)
                low, high = values.min(axis=0), values.max(axis=0)
                ax.fill_between(steps, low, high, alpha=0.12, color=color)
            ax.set_title(f"{data}: {label}")
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if key == "fd":
                ax.set_yscale("log")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"\ncurves: {path}")


if __name__ == "__main__":
    main()
