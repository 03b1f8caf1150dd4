"""`sfxgan generate RUN --out DIR`: a folder of numbered takes per class, made in batches.

    OUT/generated.json            what made the takes: run, step, weights, seed, phase, finish,
                                  versions, and the takes quieter than a --loudness asked
    OUT/<class>/<class>_<i>.wav   take i of the class (16-bit PCM), and <class>_<i>.png with --png

Takes are peak-normalised at the model's rate, the paper's files; a `Finish` (dsp.finish) makes
them ready for a session instead: another rate, a loudness under a true-peak ceiling, DC removed,
a fade-out at the end. Takes finished otherwise are other settings, never mixed.

Takes are written a batch at a time, so memory stays flat at any count (progress bar and ETA on
stderr). Take i is the same sound in any request (generate.take_seed), so a folder can be filled
in pieces: a command that asks for takes the folder already holds, from the same model and
settings, writes only the missing ones; takes from another model or other settings are never
mixed with the new ones, nor overwritten without --overwrite. What cannot be met is refused
before any work: more than the disk holds, batches beyond memory, foreign audio in the folder.
Ctrl-C keeps every finished file (each is written whole or not at all) and the record.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from sfxgan import __version__
from sfxgan.data.audio import AUDIO_EXTENSIONS, write_wav
from sfxgan.dsp.finish import Finish, finish_clip
from sfxgan.errors import SfxganError
from sfxgan.files import write_json_atomic
from sfxgan.generate import (
    BATCH,
    RECORD,
    RECORD_FORMAT,
    RECORD_VERSION,
    Sampler,
    gigabytes,
    read_takes_record,
    settings_of,
)
from sfxgan.plots import save_spectrograms

WAV_HEADER = 44
PNG_BYTES = 150_000  # a spectrogram picture, with room (the demo's are 40-60 kB)
DISK_RESERVE = 64 * 2**20  # left free: a full disk breaks more than this command
# what must be equal for new takes to join a folder's takes: the same model and the same sound
MATCHED = (
    "model",
    "seed",
    "precision",
    "phase",
    "iterations",
    "sample_rate",
    "clip_samples",
    "finish",
)


def _held(settings: dict, key: str):
    """A record's setting; a record written before takes could be finished has today's."""
    if key == "finish":
        return Finish.from_record(settings.get("finish")).record()
    if key == "precision":  # takes were made in fp32 before generation had a precision
        return settings.get(key, "fp32")
    return settings.get(key)


def clip_bar(total: int, enabled: bool) -> tqdm:
    """The progress bar over clips of `generate` and `generate --dcase`, with its ETA."""
    return tqdm(
        total=total,
        unit="clip",
        desc="generating",
        disable=not enabled,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def take_path(out: Path, class_name: str, index: int, suffix: str = ".wav") -> Path:
    return out / class_name / f"{class_name}_{index}{suffix}"


# --- what the folder holds, and what to write ---------------------------------------------------


@dataclass
class Plan:
    """What a request finds in the folder: per class, the takes held (take -> file suffixes)."""

    takes: range
    held: dict[str, dict[int, set[str]]]
    overwrite: bool
    pictures: bool
    stale: list[Path] = field(default_factory=list)  # an earlier set's files, for --overwrite
    # takes of this set quieter than its --loudness asked, from earlier requests: class -> take
    # (as a string, a JSON key) -> LUFS reached, None where unmeasurable
    quieter: dict[str, dict[str, float | None]] = field(default_factory=dict)

    def needs(self, name: str, index: int) -> tuple[bool, bool]:
        """(write its audio, write its picture) for take `index` of class `name`."""
        found = () if self.overwrite else self.held.get(name, {}).get(index, ())
        audio = ".wav" not in found
        return audio, self.pictures and (audio or ".png" not in found)

    def present(self, name: str) -> int:
        """Requested takes of the class whose audio the folder holds (and keeps)."""
        if self.overwrite:
            return 0
        found = self.held.get(name, {})
        return sum(1 for i, suffixes in found.items() if i in self.takes and ".wav" in suffixes)

    def pictures_only(self, name: str) -> int:
        """Held takes that need only their picture."""
        if self.overwrite or not self.pictures:
            return 0
        found = self.held.get(name, {})
        return sum(1 for i, s in found.items() if i in self.takes and s == {".wav"})


# take 7 of rain is rain_7.wav (never rain_007.wav, which is some other file)
_TAKE = re.compile(r"^(?P<name>.+)_(?P<index>0|[1-9][0-9]*)\.(?:wav|png)$")


def _scan(out: Path) -> tuple[dict[str, dict[int, set[str]]], list[Path]]:
    """class -> take -> suffixes present, and audio files that are not takes of this layout."""
    takes: dict[str, dict[int, set[str]]] = {}
    foreign: list[Path] = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # atomic writes' temporaries are hidden
                if entry.is_dir():  # an evaluation reads sub-folders of a class too
                    foreign += [
                        path
                        for path in sorted(Path(entry.path).rglob("*"))
                        if path.suffix.lower() in AUDIO_EXTENSIONS
                    ]
                    continue
                match = _TAKE.match(entry.name)
                if match and match["name"] == folder.name:
                    index = int(match["index"])
                    takes.setdefault(folder.name, {}).setdefault(index, set()).add(
                        Path(entry.name).suffix
                    )
                elif Path(entry.name).suffix.lower() in AUDIO_EXTENSIONS:
                    foreign.append(folder / entry.name)
    return takes, foreign


def plan_takes(
    out: Path,
    names: list[str],
    takes: range,
    settings: dict,
    overwrite: bool,
    pictures: bool,
) -> Plan:
    """What to write into `out` for takes `takes` of classes `names`, or a one-line refusal."""
    if out.exists() and not out.is_dir():
        raise SfxganError(f"--out '{out}' exists and is not a folder; choose a new folder")
    if not out.is_dir():
        return Plan(takes, {}, overwrite, pictures)
    record = read_takes_record(out)
    try:
        held, foreign = _scan(out)
    except OSError as exc:
        raise SfxganError(f"cannot read '{out}': {exc.strerror or exc}") from exc
    if foreign:
        others = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise SfxganError(
            f"'{foreign[0]}'{others} is audio that is not a take of this folder; an evaluation "
            f"of '{out}' would count it with the takes: move it, or choose another --out"
        )
    count = sum(len(v) for v in held.values())
    same = record is not None and all(_held(record["settings"], k) == settings[k] for k in MATCHED)
    if count and not same and not overwrite:
        if record is None:
            made = "with no record of what made them (generated.json)"
        else:
            made = f"made with {_difference(record['settings'], settings)}"
        raise SfxganError(
            f"'{out}' holds {count} takes {made}: choose another --out, or add --overwrite "
            "to replace them"
        )
    stale = []
    if count and not same:  # --overwrite on another set: its takes go, so none are mixed
        stale = [
            take_path(out, name, i, suffix)
            for name, found in held.items()
            for i, suffixes in found.items()
            for suffix in suffixes
        ]
        held = {}
    quieter = record.get("quieter", {}) if same else {}
    return Plan(takes, held, overwrite, pictures, stale, quieter)


def _difference(held: dict, asked: dict) -> str:
    """What differs between a folder's takes and a request, old then new."""
    said = []
    for key in MATCHED:
        if _held(held, key) == asked[key]:
            continue
        if key == "finish":
            rate = asked["sample_rate"]
            said.append(
                f"finish '{Finish.from_record(held.get(key)).describe(rate)}', where this "
                f"command has '{Finish.from_record(asked[key]).describe(rate)}'"
            )
        elif key == "model":
            said.append(
                f"the model of step {held.get('step')} of {held.get('checkpoint')} "
                f"({held.get('weights')}), where this command has step {asked['step']} of "
                f"{asked['checkpoint']} ({asked['weights']})"
            )
        else:
            said.append(
                f"{key.replace('_', ' ')} {held.get(key)}, where this command has {asked[key]}"
            )
    return "; ".join(said)


def check_disk(out: Path, n_bytes: int) -> None:
    """Refuse before any work a set of files that the disk under `out` cannot hold."""
    where = out
    while not where.exists():
        where = where.parent
    free = shutil.disk_usage(where).free
    if n_bytes + DISK_RESERVE > free:
        raise SfxganError(
            f"the takes need about {gigabytes(n_bytes)} on the disk of '{where}', which has "
            f"{gigabytes(free)} free; ask for fewer clips with --per-class, or choose an --out "
            "on a larger disk"
        )


# --- writing ------------------------------------------------------------------------------------


@dataclass
class Written:
    """What a `generate_to_folder` call did."""

    out: Path
    takes: range  # the takes asked for, per class
    written: dict[str, int]  # takes written, per class
    present: dict[str, int]  # takes found already there, per class
    removed: int  # files of an earlier set removed (--overwrite)
    seconds: float
    interrupted: bool = False
    finish: Finish = field(default_factory=Finish)
    # this request's takes quieter than --loudness asked: class -> take -> LUFS (None: unmeasurable)
    quieter: dict[str, dict[int, float | None]] = field(default_factory=dict)

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


class GenerationInterrupted(KeyboardInterrupt):
    """Ctrl-C during generation, after the record was brought up to date; carries `written`."""

    def __init__(self, written: Written):
        super().__init__("interrupted")
        self.written = written


def _record(
    settings: dict, out: Path, names: list[str], complete: bool, quieter: dict | None = None
) -> dict:
    """generated.json: the settings, the versions, the takes (WAV files) of every class the
    folder holds, this request's and those of earlier ones, and which of them are quieter than
    a --loudness asked."""
    folders = {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")}
    counts = {}
    for name in sorted(folders | set(names)):
        folder = out / name
        counts[name] = (
            sum(1 for p in os.scandir(folder) if p.name.endswith(".wav") and p.name[0] != ".")
            if folder.is_dir()
            else 0
        )
    finish = Finish.from_record(settings.get("finish"))
    record = {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "complete": complete,  # false while writing, and after an interruption
        "settings": settings,
        "versions": {
            "sfxgan": __version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "soundfile": sf.__version__,
        },
        "files": "<class>/<class>_<take>.wav, 16-bit PCM mono, peak-normalised per clip",
        "takes": counts,  # files per class; take i is the same sound in any request
    }
    if not finish.is_default:
        said = finish.describe(settings["sample_rate"])
        record["files"] = f"<class>/<class>_<take>.wav, 16-bit PCM mono, {said}"
        record["quieter"] = quieter or {}
    return record


def generate_to_folder(
    sampler: Sampler,
    out: str | Path,
    per_class: int,
    classes: list[str] | None = None,
    seed: int = 0,
    phase: str | None = None,
    n_iter: int | None = None,
    pictures: bool = False,
    start: int = 0,
    overwrite: bool = False,
    batch_size: int = BATCH,
    progress: bool = False,
    finish: Finish | None = None,
) -> Written:
    """Write takes start..start+per_class-1 of each class into OUT/<class>/ (see the module
    docstring), finished as `finish` says (default: peak-normalised at the model's rate).
    Everything is checked before anything is written."""
    from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS

    phase, n_iter = phase or DEFAULT_PHASE, n_iter or DEFAULT_PHASE_ITERS
    out = Path(out)
    names = list(dict.fromkeys(classes or sampler.classes))  # "rain,rain" is one class
    for name in names:
        sampler.label(name)  # every name is checked before anything is written
    if per_class < 1 or start < 0:
        raise SfxganError(f"ask for 1 or more takes from take 0 on, not {per_class} from {start}")
    takes = range(start, start + per_class)
    finish = finish or Finish()
    clip_samples = sampler.spec.features.clip_samples
    finish.check(sampler.sample_rate, clip_samples)
    settings = {**settings_of(sampler, seed, phase, n_iter), "finish": finish.record()}
    plan = plan_takes(out, names, takes, settings, overwrite, pictures)
    present = {name: plan.present(name) for name in names}
    n_audio = len(names) * len(takes) - sum(present.values())
    n_pictures = (n_audio + sum(plan.pictures_only(n) for n in names)) if pictures else 0
    rate = finish.output_rate(sampler.sample_rate)
    per_clip = WAV_HEADER + 2 * math.ceil(clip_samples * rate / sampler.sample_rate)
    check_disk(out, n_audio * per_clip + n_pictures * PNG_BYTES)
    sampler.check_memory(sampler.batch_bytes(batch_size), f"batches of {batch_size} clips")

    began = time.perf_counter()
    written = Written(out, takes, dict.fromkeys(names, 0), present, len(plan.stale), 0.0)
    written.finish = finish
    quieter = plan.quieter  # the record's, brought up to date take by take
    bar = clip_bar(max(n_audio, n_pictures), progress)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path in plan.stale:
            path.unlink(missing_ok=True)
        write_json_atomic(out / RECORD, _record(settings, out, names, False, quieter))
        for name in names:
            bar.set_postfix_str(name)
            for indices in _batches(plan, name, batch_size):
                (batch,) = sampler.stream(
                    name, indices, seed, phase, n_iter, batch_size=len(indices)
                )
                for index, clip, log_spec in zip(
                    batch.indices, batch.audio, batch.log_spec, strict=True
                ):
                    audio, picture = plan.needs(name, index)
                    if audio:
                        _write_take(sampler, out, name, index, clip, written, quieter)
                    if picture:  # a take whose WAV is there is made again for its picture
                        _picture(sampler, out, name, index, log_spec)
                    bar.update()
        write_json_atomic(out / RECORD, _record(settings, out, names, True, quieter))
    except OSError as exc:
        raise SfxganError(f"cannot write to '{out}': {exc.strerror or exc}") from exc
    except KeyboardInterrupt:
        written.interrupted = True
        write_json_atomic(out / RECORD, _record(settings, out, names, False, quieter))
        raise GenerationInterrupted(written) from None
    finally:
        bar.close()
        written.seconds = time.perf_counter() - began
    return written


def _write_take(
    sampler: Sampler,
    out: Path,
    name: str,
    index: int,
    clip: np.ndarray,
    written: Written,
    quieter: dict[str, dict[str, float | None]],
) -> None:
    """Write one take: as the model made it (peak-normalised, the paper's files, byte for byte),
    or finished; a take quieter than its --loudness asked is noted in both records."""
    path = take_path(out, name, index)
    if written.finish.is_default:
        write_wav(path, clip, sampler.sample_rate)
        written.written[name] += 1
        return
    done = finish_clip(clip, sampler.sample_rate, written.finish)
    write_wav(path, done.audio, done.sample_rate)
    written.written[name] += 1
    held = quieter.setdefault(name, {})
    held.pop(str(index), None)
    if done.quieter:
        held[str(index)] = None if done.loudness is None else round(done.loudness, 2)
        written.quieter.setdefault(name, {})[index] = done.loudness
    if not held:
        del quieter[name]


def _batches(plan: Plan, name: str, batch_size: int) -> Iterator[list[int]]:
    """The takes of a class that need a file, `batch_size` at a time, found as they are needed:
    nothing the size of the request is ever held."""
    batch = []
    for index in plan.takes:
        if any(plan.needs(name, index)):
            batch.append(index)
            if len(batch) == batch_size:
                yield batch
                batch = []
    if batch:
        yield batch


def _picture(sampler: Sampler, out: Path, name: str, index: int, log_spec: np.ndarray) -> None:
    save_spectrograms(
        take_path(out, name, index, ".png"), [(f"{name} {index}", log_spec)], sampler.spec.features
    )
