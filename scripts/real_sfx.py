"""Build the real-data development set: game sound effects from Debian's wesnoth-1.16-data.

    python scripts/real_sfx.py data/wesnoth            # apt-get download, extract, arrange
    python scripts/real_sfx.py data/wesnoth --deb wesnoth-1.16-data_*.deb   # offline, from a file

The Battle for Wesnoth's sounds (GPL-2+, in `data/core/sounds/`) are recordings and designed
effects of a real game: weapon strikes and swings, bows and slings, spells, creature pain cries
and death cries, at 11 025 to 48 000 Hz, mono and stereo, Ogg Vorbis and 8/16-bit WAV. They are
copied as they are (no conversion), so the data path meets what a user's library holds.

Classes come from file-name families (`FAMILIES` below, written down in docs/real_data.md);
files of no family (ambience loops, horn signals, growls, UI sounds) are left out and listed in
`OUT/.real_sfx.json` (hidden, so that the scanner does not list it as a skipped file). It is a
benchmark, not a test input: the tests never need it.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = "wesnoth-1.16-data"
SOUNDS = "usr/share/games/wesnoth/1.16/data/core/sounds"

# class -> file-name stems (without the extension, numbered variants "-1", "-2" ... and the
# "-miss" variant of an attack folded in). A file belongs to the first class whose pattern
# matches its whole stem.
CREATURES = (
    "bat|drake|dwarf|elf|ghoul|goblin|gryphon|horse|human|human-female|human-old|lich|mermaid|"
    "mermen|naga|ogre|orc|orc-small|skeleton|skeleton-big|troll|tusker|wolf|wose|yeti|zombie|hiss"
)
FAMILIES: dict[str, str] = {
    # weapon strikes and swings, hand to hand
    "melee": (
        r"(axe|sword-\d|mace|club|flail|staff|spear|hatchet|knife|dagger-swish|fist|claws|"
        r"bite|bite-small|pincers|tail|squishy-(hit|strike)|mud-fist|tusker-charge|miss-\d)"
        r"(-miss)?|squishy-miss"
    ),
    # bows, crossbows, slings, thrown weapons and firearms
    "ranged": (
        r"(bow|bow-puny|bow-puny-fire|crossbow|crossbow-fire|sling|sling-big|throw-\d|"
        r"throwing-knife|dart|net|thunderstick|dragonstick|gunshot)(-miss)?"
    ),
    # spells, fire and elemental attacks
    "magic": (
        r"(magic-[a-z]+(-[a-z]+)?(-\d)?|magicmissile|lightning|flame-big|fire|melee-fire|torch|"
        r"ink|mud-glob|water-blast|entangle|heal|poison|slowed|petrified)(-miss(-\d)?)?"
    ),
    # a creature hurt: short pain cries and grunts
    "pain_cry": rf"({CREATURES})-hit(-\d)?",
    # a creature dying: longer death cries
    "death_cry": rf"({CREATURES})-die(-\d)?",
}


def family(stem: str) -> str | None:
    for name, pattern in FAMILIES.items():
        if re.fullmatch(pattern, stem):
            return name
    return None


def fetch_deb(folder: Path) -> Path:
    """`apt-get download` the package into `folder` (no root needed for the download itself)."""
    try:
        subprocess.run(
            ["apt-get", "download", PACKAGE], cwd=folder, check=True, capture_output=True
        )
    except FileNotFoundError:
        sys.exit(f"real_sfx: apt-get not found; download {PACKAGE}'s .deb and pass --deb FILE")
    except subprocess.CalledProcessError as exc:
        reason = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        sys.exit(
            f"real_sfx: apt-get download {PACKAGE} failed ({reason[0]}); run "
            "'apt-get update' first, or pass a downloaded .deb with --deb FILE"
        )
    return next(folder.glob(f"{PACKAGE}_*.deb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (one sub-folder per class)")
    parser.add_argument("--deb", type=Path, help=f"a downloaded {PACKAGE} .deb (no apt-get)")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        sys.exit(f"real_sfx: '{args.out}' is not empty; give a new folder")

    with tempfile.TemporaryDirectory(prefix="real_sfx_") as tmp:
        tmp = Path(tmp)
        deb = args.deb or fetch_deb(tmp)
        subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp / "x")], check=True)
        version = subprocess.run(
            ["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True, text=True
        ).stdout.strip()
        sounds = tmp / "x" / SOUNDS
        counts: dict[str, int] = {name: 0 for name in FAMILIES}
        left_out = []
        for path in sorted(p for p in sounds.rglob("*") if p.is_file()):
            name = family(path.stem) if path.parent == sounds else None
            if name is None:
                left_out.append(str(path.relative_to(sounds)))
                continue
            target = args.out / name / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            counts[name] += 1

    record = {
        "package": PACKAGE,
        "version": version,
        "source": f"{SOUNDS}/",
        "license": "GPL-2+ (The Battle for Wesnoth)",
        "families": FAMILIES,
        "counts": counts,
        "left_out": left_out,
    }
    (args.out / ".real_sfx.json").write_text(json.dumps(record, indent=2) + "\n")
    total = sum(counts.values())
    print(f"{PACKAGE} {version}: {total} clips in {len(counts)} classes in {args.out}")
    for name, n in counts.items():
        print(f"  {name:10s} {n:3d}")
    print(f"  left out: {len(left_out)} files of no family (listed in .real_sfx.json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
