"""A Debian package's files as real data for the development sets (real_sfx.py, real_drums.py):
the command line both scripts share, the download and the unpacking."""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path


def parse_arguments(
    script: str, package: str, doc: str, argv: list[str] | None
) -> tuple[Path, Path | None]:
    """`SCRIPT OUT [--deb FILE]`: the folder to write (refused when it holds anything) and a
    downloaded .deb, if given. Returns (out, deb or None)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (one sub-folder per class)")
    parser.add_argument("--deb", type=Path, help=f"a downloaded {package} .deb (no apt-get)")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"{script}: '{args.out}' is not empty; give a new folder")
    return args.out, args.deb


def fetch_deb(script: str, package: str, folder: Path) -> Path:
    """`apt-get download` the package into `folder` (no root needed for the download itself)."""
    try:
        subprocess.run(
            ["apt-get", "download", package], cwd=folder, check=True, capture_output=True
        )
    except FileNotFoundError:
        sys.exit(f"{script}: apt-get not found; download {package}'s .deb and pass --deb FILE")
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        sys.exit(
            f"{script}: apt-get download {package} failed ({reason[0]}); run "
            "'apt-get update' first, or pass a downloaded .deb with --deb FILE"
        )
    return next(folder.glob(f"{package}_*.deb"))


@contextlib.contextmanager
def unpacked(script: str, package: str, deb: Path | None) -> Iterator[tuple[Path, str]]:
    """The package's files in a temporary folder, with its version: (root, version). The .deb
    is `deb`, else downloaded; the folder goes when the block ends."""
    with tempfile.TemporaryDirectory(prefix=f"{script}_") as tmp:
        tmp = Path(tmp)
        deb = deb or fetch_deb(script, package, tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield tmp / "x", version


def write_record(out: Path, script: str, record: dict, left_out: str) -> None:
    """Write what a script did to `OUT/.SCRIPT.json` (hidden, so that the scanner does not list
    it as a skipped file) and print its summary: the package, the clips per class (from
    `record["counts"]`) and `left_out`, one line on what was not taken."""
    (out / f".{script}.json").write_text(json.dumps(record, indent=2) + "\n")
    counts = record["counts"]
    width = max(map(len, counts))
    print(
        f"{record['package']} {record['version']}: {sum(counts.values())} clips in "
        f"{len(counts)} classes in {out}"
    )
    for name, n in counts.items():
        print(f"  {name:{width}s} {n:3d}")
    print(f"  left out: {left_out}")
