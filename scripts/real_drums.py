"""Build a second real-data development set: drum one-shots from Debian's hydrogen-drumkits.

    python scripts/real_drums.py data/drums            # apt-get download, extract, arrange
    python scripts/real_drums.py data/drums --deb hydrogen-drumkits_*.deb   # offline, from a file

The package holds the drum kits of the Hydrogen drum machine (in `usr/share/hydrogen/data/
drumkits/<kit>/`, GPL-2, GPL-2+, CC-BY-3.0, CC-BY-SA-3.0 and CC0, kit by kit): acoustic kits
recorded at several velocities and synthesised electronic ones, one-shots with sharp attacks that
decay towards silence, in WAV, FLAC and AIFF, 8, 16 and 24 bit, 22 050 to 48 000 Hz, mono and
stereo. They are copied as they are (no conversion), so the data path meets what a user's sample
library holds.

A sample's class comes from its kit's `drumkit.xml`: each `<instrument>` has a `<name>` and one
`<filename>` (old kits) or `<layer>`s with a `<filename>` each (newer kits, some in the
namespace http://www.hydrogen-music.org/drumkit). The instrument name is matched against
`INSTRUMENTS` below; a file that no instrument names is matched by its file name against
`FILE_NAMES` instead. A file is also left out where its file name names another class than its
instrument or a left-out kind (a tom sample played as a kick, a shaker as a pedal hi-hat), where
instruments of different classes share it, where it is not audio or (near) silent, and where it is
a byte copy of one already taken. Everything else (claps, cowbells, congas, bongos, djembes,
shakers, FX, rolls, side sticks and rim clicks, unnamed samples) is left out too; all of them are
listed with the reason in `OUT/.real_drums.json` (hidden, so that the scanner does not list it as
a skipped file). It is a benchmark, not a test input: the tests never need it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import soundfile as sf
from debian_package import parse_arguments, unpacked, write_record

PACKAGE = "hydrogen-drumkits"
KITS = "usr/share/hydrogen/data/drumkits"
COPYRIGHT = "usr/share/doc/hydrogen-drumkits/copyright"
AUDIO = {".wav", ".flac", ".aiff", ".aif"}
# (near) empty: shorter than 10 ms, or a peak below -60 dBFS (the kits' "emptySample.flac")
MIN_SECONDS = 0.010
MIN_PEAK = 1e-3

# Instrument names, lower-cased, are searched (not matched whole) with these patterns; `(?<!
# [a-z])` keeps a short word from matching inside a longer one ("tom" in "Custom"). LEFT_OUT is
# tried first, then the classes in order; the first that matches decides.
LEFT_OUT = (
    r"clap|cowbell|conga|bongo|djembe|cajon|maraca|shak|tambourine|agogo|clave|wood ?block|"
    r"waterglass|finger ?snap|whistle|zap|(?<![a-z])fx|click|stick|roll|loop|beat|empty|"
    r"sangban|dununba|kenkeni"
)
INSTRUMENTS: dict[str, str] = {
    # bass drum
    "kick": r"kick|bass ?drum",
    # snare hits, rimshots included (head and rim struck together); rolls and side sticks not
    "snare": r"snare",
    # closed, open, semi-open, pedal (foot), swish and choked hi-hats, acoustic and synthetic
    "hihat": r"hi[- ]?hat|(?<![a-z])(hat|[cos]?hh)(?![a-z])",
    # rack and floor toms
    "tom": r"(?<![a-z])tom",
    # crash, ride (bow, bell, cup), china, splash
    "cymbal": r"crash|ride|china|splash|cymbal|(paiste|sabian|zildjian) bell",
}
# File names: the stem with camelCase split ("PearlKick" -> "pearl-kick"), lower-cased and
# searched as above. Used for files no instrument names, and to catch contradictions.
FILE_LEFT_OUT = (
    r"clap|cowbell|conga|bongo|djembe|cajon|maraca|shak|tambourine|agogo|clave|wood-?block|"
    r"waterglass|finger-?snap|whistle|empty|loop|roll|stick"
)
FILE_NAMES: dict[str, str] = {
    "kick": r"kick|bass-?drum|(?<![a-z])bd(?![a-z])",
    "snare": r"snare|(?<![a-z])s[dn](?![a-z])",
    "hihat": r"hi-?hat|(?<![a-z])[co]?hh|(?<![a-z])hat(?![a-z])",
    "tom": r"(?<![a-z])(floor)?tom|(?<![a-z])tm\d?(?![a-z])",
    "cymbal": r"crash|ride|china|splash|cymbal",
}
CLASSES = list(INSTRUMENTS)


def classify(text: str, patterns: dict[str, str], left_out: str) -> str | None:
    """The class of `text`, "-" for a left-out kind, None for no match."""
    if re.search(left_out, text):
        return "-"
    for name, pattern in patterns.items():
        if re.search(pattern, text):
            return name
    return None


def file_words(stem: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", "-", stem).lower()


def sanitise(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_")


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def instruments(xml: Path) -> list[tuple[str, list[str]]]:
    """(name, file names) per <instrument> of a drumkit.xml, with or without its namespace."""
    out = []
    for inst in ET.parse(xml).getroot().iter():
        if local(inst.tag) != "instrument":
            continue
        name = next((e.text or "" for e in inst if local(e.tag) == "name"), "").strip()
        files = [e.text.strip() for e in inst.iter() if local(e.tag) == "filename" and e.text]
        out.append((name, files))
    return out


def licenses(copyright_file: Path, kits: list[str]) -> dict[str, str]:
    """Each kit's `License:` from the package's machine-readable copyright file."""
    text = copyright_file.read_text(errors="replace")
    found: dict[str, str] = {}
    for stanza in re.split(r"\n\s*\n", text):
        files = re.search(r"^Files:(.*(?:\n .*)*)", stanza, re.M)
        lic = re.search(r"^License: *(.+)$", stanza, re.M)
        if not files or not lic:
            continue
        for glob in files.group(1).split():
            if not (glob.startswith("drumkits/") and glob.endswith(".h2drumkit")):
                continue  # debian/*, drumkits.json
            stem = glob.removeprefix("drumkits/").removesuffix(".h2drumkit")
            for kit in kits:
                if fnmatch.fnmatchcase(kit, stem) or fnmatch.fnmatchcase(kit, stem + " *"):
                    found[kit] = lic.group(1).strip()
    return {kit: found.get(kit, "?") for kit in kits}


def audio_problem(path: Path) -> str | None:
    try:
        data, rate = sf.read(path, always_2d=True)
    except Exception:  # noqa: BLE001 - any decoder failure means "not audio" here
        return "not decodable audio"
    if len(data) < MIN_SECONDS * rate or float(np.abs(data).max()) < MIN_PEAK:
        return "(near) empty"
    return None


def decide(path: Path, named: dict[str | None, list[str]] | None) -> tuple[str | None, str]:
    """A file's class, or None and why it is left out; `named`: class -> instrument names."""
    if path.suffix.lower() not in AUDIO:
        return None, "not an audio file"
    by_name = classify(file_words(path.stem), FILE_NAMES, FILE_LEFT_OUT)
    if named is None:
        if by_name in (None, "-"):
            return None, "not in drumkit.xml, and its file name is of no class or left out"
        name = by_name
    elif len(named) > 1:
        return None, f"instruments of different classes (or none) share it: {named}"
    else:
        name, insts = next(iter(named.items()))
        if name is None:
            return None, f"instrument {insts[0]!r}: of no class"
        if name == "-":
            return None, f"instrument {insts[0]!r}: a left-out kind"
        if by_name is not None and by_name != name:
            said = "a left-out kind" if by_name == "-" else by_name
            return None, f"instrument {insts[0]!r} says {name}, its file name {said}"
    problem = audio_problem(path)
    return (None, problem) if problem else (name, "")


def arrange(kits_dir: Path, out: Path) -> tuple[dict, dict, list[dict]]:
    counts = {name: 0 for name in CLASSES}
    per_kit: dict[str, dict[str, int]] = {}
    left_out: list[dict] = []
    seen: dict[str, str] = {}
    for kit_dir in sorted(p for p in kits_dir.iterdir() if p.is_dir()):
        kit = kit_dir.name
        per_kit[kit] = {name: 0 for name in CLASSES}
        named: dict[str, dict[str | None, list[str]]] = {}  # file -> class -> instruments
        xml = kit_dir / "drumkit.xml"
        for inst, files in instruments(xml) if xml.is_file() else []:
            for file in files:
                name = classify(inst.lower(), INSTRUMENTS, LEFT_OUT)
                named.setdefault(file, {}).setdefault(name, []).append(inst)
        for path in sorted(p for p in kit_dir.rglob("*") if p.is_file()):
            rel = str(path.relative_to(kit_dir))
            if path.name == "drumkit.xml":
                continue
            name, reason = decide(path, named.get(rel))
            if name is None:
                left_out.append({"kit": kit, "file": rel, "reason": reason})
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest in seen:
                left_out.append(
                    {"kit": kit, "file": rel, "reason": f"same bytes as {seen[digest]}"}
                )
                continue
            target = out / name / f"{sanitise(kit)}__{sanitise(rel)}"
            if target.exists():
                reason = f"name collides with {target.name} after sanitising"
                left_out.append({"kit": kit, "file": rel, "reason": reason})
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            seen[digest] = f"{name}/{target.name}"
            counts[name] += 1
            per_kit[kit][name] += 1
    return counts, per_kit, left_out


def main(argv: list[str] | None = None) -> int:
    out, deb = parse_arguments("real_drums", PACKAGE, __doc__, argv)

    with unpacked("real_drums", PACKAGE, deb) as (root, version):
        kits_dir = root / KITS
        counts, per_kit, left_out = arrange(kits_dir, out)
        kit_licenses = licenses(root / COPYRIGHT, sorted(per_kit))

    used = sorted({kit_licenses[kit] for kit, n in per_kit.items() if sum(n.values())})
    record = {
        "package": PACKAGE,
        "version": version,
        "source": f"{KITS}/",
        "license": ", ".join(used) + f" (kit by kit, /{COPYRIGHT})",
        "licenses": kit_licenses,
        "rules": {
            "instrument_names": INSTRUMENTS,
            "instrument_left_out": LEFT_OUT,
            "file_names": FILE_NAMES,
            "file_left_out": FILE_LEFT_OUT,
            "near_empty": f"shorter than {MIN_SECONDS} s or peak below {MIN_PEAK}",
        },
        "counts": counts,
        "per_kit": per_kit,
        "left_out": left_out,
    }
    write_record(
        out,
        "real_drums",
        record,
        f"{len(left_out)} files (listed with the reason in .real_drums.json)",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
