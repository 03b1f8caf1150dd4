"""Peak memory and speed of `sfxgan generate` as a user runs it: the command in a child process,
its resident memory (VmRSS) read every 0.2 s, the kernel's own peak (VmHWM) at the end.

    python scripts/generate_memory.py RUN --per-class 100000 --classes rain [generate options]

Prints one JSON line: clips, seconds, clips/s, peak RSS in MB, and the RSS at a quarter, half,
three quarters and the end of the run (flat memory: the four figures stay put as clips pile up).
The output folder is a temporary one, removed afterwards unless --keep is given. Time it alone:
another busy process on the cores slows torch several-fold (README, threads).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process in kB (empty once it has gone)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            fields = dict(line.split(":", 1) for line in fh if line.startswith(("VmRSS", "VmHWM")))
    except OSError:
        return {}
    return {k: int(v.split()[0]) for k, v in fields.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--keep", type=Path, help="write the clips here and keep them")
    parser.add_argument("--threads", default="auto")
    parser.add_argument(
        "--older",
        action="store_true",
        help="for a version of sfxgan whose generate has no --quiet (its stderr is dropped)",
    )
    args, generate_args = parser.parse_known_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="sfxgan-memory-")) / "takes"
    command = [
        sys.executable,
        "-m",
        "sfxgan",
        "--threads",
        str(args.threads),
        "generate",
        args.run,
        "--out",
        str(out),
        *([] if args.older else ["--quiet"]),
        *generate_args,
    ]
    began = time.perf_counter()
    stderr = subprocess.DEVNULL if args.older else None
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
    samples, peak = [], 0
    while child.poll() is None:
        now = status(child.pid)
        if "VmRSS" in now:
            samples.append((time.perf_counter() - began, now["VmRSS"]))
            peak = max(peak, now.get("VmHWM", 0))
        time.sleep(0.2)
    seconds = time.perf_counter() - began
    stdout = child.stdout.read()
    if child.returncode != 0:
        print(stdout, file=sys.stderr)
        return child.returncode
    clips = sum(1 for _ in out.rglob("*.wav"))
    said = re.search(r" in ([0-9.]+) s \(", stdout)  # the command's own time, without start-up
    if not args.keep:
        shutil.rmtree(out.parent)

    def rss_at(share: float) -> float:
        t = share * samples[-1][0]
        return min(samples, key=lambda s: abs(s[0] - t))[1] / 1024

    print(
        json.dumps(
            {
                "clips": clips,
                "seconds": round(seconds, 1),  # wall, start-up and model loading included
                "generate_seconds": float(said[1]) if said else None,
                "clips_per_s": round(clips / float(said[1]), 1) if said else None,
                "peak_rss_mb": round(max(peak, max(s[1] for s in samples)) / 1024, 1),
                "rss_mb_at_25_50_75_100": [round(rss_at(s), 1) for s in (0.25, 0.5, 0.75, 1.0)],
                "command": " ".join(command[2:]),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
