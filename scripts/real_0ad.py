"""Build a third real-data development set: weapon, impact, footstep and creature sounds from
Debian's 0ad-data (the sounds of the game 0 A.D.).

    python scripts/real_0ad.py data/0ad            # apt-get download (1.4 GB), extract, arrange
    python scripts/real_0ad.py data/0ad --deb 0ad-data_*.deb   # offline, from a file

0 A.D.'s sounds (CC-BY-SA-3.0, Wildfire Games) are recorded and designed effects of a real-time
strategy game, in `audio/` inside the package's `mods/public/public.zip`: Ogg Vorbis, mono, 22 050
to 48 000 Hz, 0.1 to 4.5 s. Unlike the drum kits they are a sound designer's library of one-shots
with many takes of each sound: swishes of swords and spears, metal clashing on metal, arrows
striking wood, earth, stone and metal, footsteps on five grounds, an axe on a tree, human death
cries. They are copied as they are (no conversion), so the data path meets what a user's library
holds.

Classes come from the paths of the files (`CLASSES` below, written down in docs/real_data.md);
everything else (ambience, voices, interface sounds, animals, resources other than wood cutting,
and byte copies of a file already taken) is left out and counted in `OUT/.real_0ad.json` (hidden,
so that the scanner does not list it as a skipped file). It is a benchmark, not a test input: the
tests never need it.
"""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile

from debian_package import parse_arguments, unpacked, write_record

PACKAGE = "0ad-data"
ARCHIVE = "usr/share/games/0ad/mods/public/public.zip"

# class -> the paths (inside the archive, without the .ogg) that belong to it
CLASSES: dict[str, str] = {
    # a weapon swung or thrust through the air, no hit
    "swing": r"audio/attack/weapon/(pike|spear|sword|jav)_attack_?\d+",
    # sword on sword: a metal clash with a ring (takes 12, 12a, 12b of one hit)
    "sword_hit": r"audio/attack/weapon/swordhit_?\d+[a-z]?",
    # an arrow striking wood, earth, stone or metal
    "arrow_impact": r"audio/attack/impact/arrow(_(wood|dirt|metal|stone))?_?\d+",
    # one footstep on grass, gravel, rock, sand, snow or wood
    "footstep": r"audio/actor/singlesteps/fs_[a-z]+_?\d+",
    # an axe biting into a tree
    "wood_chop": r"audio/resource/lumbering/lumber_tree_?\d+",
    # a man or woman dying: cries and groans, the longest and most voiced class
    "death_cry": r"audio/actor/human/death/(male_|female_)?death_?\d+",
}


def sound_class(path: str) -> str | None:
    stem = path.removesuffix(".ogg")
    for name, pattern in CLASSES.items():
        if re.fullmatch(pattern, stem):
            return name
    return None


def main(argv: list[str] | None = None) -> int:
    out, deb = parse_arguments("real_0ad", PACKAGE, __doc__, argv)

    counts: dict[str, int] = {name: 0 for name in CLASSES}
    left_out = {"no class": 0, "byte copy": 0}
    seen: set[str] = set()
    with (
        unpacked("real_0ad", PACKAGE, deb) as (root, version),
        zipfile.ZipFile(root / ARCHIVE) as archive,
    ):
        for path in sorted(archive.namelist()):
            if not (path.startswith("audio/") and path.endswith(".ogg")):
                continue
            name = sound_class(path)
            if name is None:
                left_out["no class"] += 1
                continue
            data = archive.read(path)
            digest = hashlib.sha256(data).hexdigest()
            if digest in seen:
                left_out["byte copy"] += 1
                continue
            seen.add(digest)
            # the archive path as the file name (attack__impact__arrow_wood_1.ogg): files of
            # one stem in two folders never collide, and the name says where each came from
            target = out / name / path.removeprefix("audio/").replace("/", "__")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            counts[name] += 1

    record = {
        "package": PACKAGE,
        "version": version,
        "source": f"{ARCHIVE}: audio/",
        "license": "CC-BY-SA-3.0 (Wildfire Games, 0 A.D.)",
        "classes": CLASSES,
        "counts": counts,
        "left_out": left_out,
    }
    write_record(
        out,
        "real_0ad",
        record,
        (
            f"{left_out['no class']} sounds of no class, {left_out['byte copy']} byte copies "
            "(counted in .real_0ad.json)"
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
