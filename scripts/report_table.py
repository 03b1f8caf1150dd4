"""Several `sfxgan evaluate` reports side by side, as the markdown tables of docs/results.md.

    python scripts/report_table.py runs/tiny-s0/report runs/tiny-s1/report runs/tiny-s2/report
    python scripts/report_table.py --labels "before s0,after s0" runs/b0/report runs/a0/report

One column per report (its folder's metrics.json), one row per figure: class fit (overall and
per class), FD with its references, diversity, near copies with the real clips' own share, and
per class the median attack and noise floor with the real clips' and the real clips' via the
phase path (when the report was made with --run).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _fmt(value, kind: str) -> str:
    if value is None:
        return "n/a"
    if kind == "%":
        return f"{100 * value:.0f} %"
    if kind == "ms":
        return f"{value:.1f}" if value < 10 else f"{value:.0f}"
    if kind == "dB":
        return f"{value:.0f}"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def rows(reports: list[dict]) -> list[tuple[str, list[str]]]:
    first = reports[0]
    classes = first["classes"]
    out = []

    def line(label: str, get, kind: str) -> None:
        out.append((label, [_fmt(get(r), kind) for r in reports]))

    line("class fit", lambda r: r["overall"]["class_fit"], "%")
    for name in classes:
        line(f"class fit: {name}", lambda r, n=name: r["per_class"][n]["class_fit"], "%")
    o = first["overall"]
    line(
        f"FD (real halves {_fmt(o['fd_real'], '')}, real via GL {_fmt(o.get('fd_resynth'), '')})",
        lambda r: r["overall"]["fd"],
        "",
    )
    line("diversity (1 = real)", lambda r: r["overall"]["diversity"], "")
    line(
        f"near copies (real {_fmt(o['memorisation_real'], '%')})",
        lambda r: r["overall"]["memorisation"],
        "%",
    )
    for name in classes:
        row = first["per_class"][name]
        line(
            f"near copies: {name} (real {_fmt(row['memorisation_real'], '%')})",
            lambda r, n=name: r["per_class"][n]["memorisation"],
            "%",
        )
    for key, title, unit in (("attack_ms", "attack", "ms"), ("floor_db", "floor", "dB")):
        for name in classes:
            row = first["per_class"][name]
            refs = f"real {_fmt(row.get(key + '_real'), unit)}"
            line(
                f"{title} {unit}: {name} ({refs})",
                lambda r, n=name, k=key: r["per_class"][n].get(k),
                unit,
            )
            if any(r["per_class"][name].get(key + "_resynth") is not None for r in reports):
                line(
                    f"{title} {unit}: {name}, real via GL",
                    lambda r, n=name, k=key: r["per_class"][n].get(k + "_resynth"),
                    unit,
                )
    line("phase SC", lambda r: r["overall"].get("phase_sc"), "")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="report folders (metrics.json)")
    parser.add_argument("--labels", help="comma-separated column names (default: the folders)")
    args = parser.parse_args(argv)
    reports = []
    for folder in args.reports:
        path = folder / "metrics.json"
        if not path.is_file():
            sys.exit(f"report_table: '{path}' does not exist; run sfxgan evaluate --out {folder}")
        reports.append(json.loads(path.read_text()))
    labels = args.labels.split(",") if args.labels else [str(p.parent.name) for p in args.reports]
    if len(labels) != len(reports):
        sys.exit(f"report_table: {len(labels)} labels for {len(reports)} reports")
    print("| | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for label, cells in rows(reports):
        print(f"| {label} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
