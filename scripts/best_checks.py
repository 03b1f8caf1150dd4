"""Replay the best-check rule over finished runs' quality logs: which check `best.pt` would hold
and where `--patience K` would have stopped each run (the rule reads quality.csv alone, so this
is what training with it decides).

    python scripts/best_checks.py runs/wes-s0 runs/wes-s1 --patience 1,2,3
"""

from __future__ import annotations

import argparse

from sfxgan.evaluate.tracking import best_check, read_quality


def stop_step(rows: list[dict], patience: int) -> int | None:
    """The step of the first check after which `patience` checks had not beaten the best."""
    for i in range(len(rows)):
        if best_check(rows[: i + 1])[1] >= patience:
            return int(rows[i]["step"])
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--patience", default="1,2", help="comma-separated values of K")
    args = parser.parse_args()
    patiences = [int(k) for k in args.patience.split(",")]
    print(
        "| run | checks: step (FD, class fit) | best | "
        + " | ".join(f"stop, patience {k}" for k in patiences)
        + " |"
    )
    print("|---|---|---:|" + "---:|" * len(patiences))
    for run in args.runs:
        rows = read_quality(run)
        if not rows:
            print(f"| {run} | no quality.csv | | " + " | " * len(patiences))
            continue
        best = best_check(rows)[0]
        checks = ", ".join(
            f"{r['step']:.0f} ({r['fd']:.3g}, {100 * r['class_fit']:.0f} %)" for r in rows
        )
        stops = [stop_step(rows, k) for k in patiences]
        stops_text = " | ".join("-" if s is None else str(s) for s in stops)
        print(f"| {run} | {checks} | {best['step']:.0f} | {stops_text} |")


if __name__ == "__main__":
    main()
