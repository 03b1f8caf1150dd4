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

import re
import shutil
import sys

from debian_package import parse_arguments, unpacked, write_record

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


def main(argv: list[str] | None = None) -> int:
    out, deb = parse_arguments("real_sfx", PACKAGE, __doc__, argv)

    with unpacked("real_sfx", PACKAGE, deb) as (root, version):
        sounds = root / SOUNDS
        counts: dict[str, int] = {name: 0 for name in FAMILIES}
        left_out = []
        for path in sorted(p for p in sounds.rglob("*") if p.is_file()):
            name = family(path.stem) if path.parent == sounds else None
            if name is None:
                left_out.append(str(path.relative_to(sounds)))
                continue
            target = out / name / path.name
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
    write_record(
        out, "real_sfx", record, f"{len(left_out)} files of no family (listed in .real_sfx.json)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
