"""What a designer's meter says about a folder of takes: per class, the files' rate and length,
the integrated loudness by pyloudnorm (ITU-R BS.1770-4), the true peak, the DC and the last
sample, and how many takes generated.json lists as held under the loudness asked.

    python scripts/measure_takes.py takes/ [more folders]

Prints one Markdown table per folder (docs/finish.md's figures), and where the takes were
brought to a loudness, how many a meter puts within TOLERANCE of it. The true peak is the signal
oversampled to at least 192 kHz with soxr (BS.1770-4 annex 2), as sfxgan.dsp.finish measures
it; the loudness is pyloudnorm's own, not sfxgan's.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile as sf

from sfxgan.dsp.finish import to_db, true_peak

TOLERANCE = 0.5  # LU: a take this near the loudness asked is at it (issue 28's target)


def measure(path: Path) -> dict:
    audio, rate = sf.read(path, dtype="float32")
    return {
        "rate": rate,
        "subtype": sf.info(path).subtype,
        "seconds": len(audio) / rate,
        "lufs": pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64)),
        "true_peak": to_db(true_peak(audio, rate)),
        "dc": float(abs(audio.mean())),
        "last": float(abs(audio[-1])),
    }


def table(folder: Path) -> str:
    record_path = folder / "generated.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {}
    quieter = record.get("quieter", {})
    lines = [
        f"`{folder}`: {record.get('files', '')}",
        "",
        "| class | takes | rate, format | seconds | LUFS median (min, max) | true peak max "
        "| DC max | last sample max | held under the ceiling |",
        "| --- | ---: | --- | --- | --- | ---: | ---: | ---: | ---: |",
    ]
    asked = (record.get("settings", {}).get("finish") or {}).get("loudness")
    reached = {}
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        rows = [measure(p) for p in sorted(class_dir.glob("*.wav"))]
        if asked is not None:
            reached[class_dir.name] = sum(abs(r["lufs"] - asked) <= TOLERANCE for r in rows)
        lufs = np.array([r["lufs"] for r in rows])
        seconds = sorted({round(r["seconds"], 6) for r in rows})
        formats = sorted({f"{r['rate']} Hz {r['subtype']}" for r in rows})
        lines.append(
            f"| {class_dir.name} | {len(rows)} | {', '.join(formats)} "
            f"| {', '.join(f'{s:g}' for s in seconds)} "
            f"| {np.median(lufs):.1f} ({lufs.min():.1f}, {lufs.max():.1f}) "
            f"| {max(r['true_peak'] for r in rows):.2f} dBTP "
            f"| {max(r['dc'] for r in rows):.1e} | {max(r['last'] for r in rows):.1e} "
            f"| {len(quieter.get(class_dir.name, {}))} |"
        )
    if asked is not None:
        per_class = ", ".join(f"{name} {n}" for name, n in reached.items())
        lines += [
            "",
            f"at {asked:g} +/- {TOLERANCE:g} LUFS by the meter: {sum(reached.values())} takes "
            f"({per_class})",
        ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", type=Path)
    for folder in parser.parse_args().folders:
        print(table(folder), end="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
