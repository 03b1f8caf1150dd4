"""`sfxgan generate RUN --out DIR --dcase`: clips in the layout and format of DCASE 2023 Task 7.

The Foley sound synthesis task of DCASE 2023 asked for 100 clips per category, 4 s, mono,
16-bit PCM at 22 050 Hz, and ranked systems by FAD (VGGish embeddings) per category. Its
baseline's inference script writes `<out>/<Category>/0001.wav ... 0100.wav`; this writes the same
tree, so a run's clips can be scored like the challenge's published systems:

    DIR/DogBark/0001.wav ... DIR/DogBark/0100.wav
    DIR/Rain/0001.wav ...
    DIR/dcase.json          what was done (run, seed, conversion, class -> folder)

Conversion of each clip (docs/dcase.md says why):

1. the generator and phase reconstruction at the model's rate (as `sfxgan generate`; clip i of
   a class is clip i of `sfxgan generate --per-class N` with the same seed);
2. resampled to 22 050 Hz with soxr, quality "HQ";
3. cut to 4 s keeping the start, or padded with digital silence at the end; either edge gets a
   10 ms raised-cosine fade-out, so that the cut is not a click;
4. peak-normalised to -1 dBFS (after resampling, which can overshoot a peak of 1);
5. written as 16-bit PCM, without dither (the padding stays exact digital silence).

`--loudness` (dsp.finish) brings each clip to a loudness under a true-peak ceiling in step 4
instead of its peak, and with it the clip's DC is removed before step 2 and the sound's end is
faded out over the longer of --fade-ms and step 3's fade (also where the clip is exactly 4 s);
`--fade-ms` alone does the same with step 4's peak. The rate is the layout's: no --rate.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import soxr

from sfxgan import __version__
from sfxgan.apps.takes import WAV_HEADER, check_disk, clip_bar
from sfxgan.data.audio import AUDIO_EXTENSIONS, fit_length, write_wav
from sfxgan.dsp.finish import Finish, Finished, fade_out, quieter_note, remove_dc, to_loudness
from sfxgan.errors import SfxganError
from sfxgan.files import write_json_atomic
from sfxgan.generate import BATCH, Sampler

# --- the challenge's format ---------------------------------------------------------------------

DCASE_SAMPLE_RATE = 22_050
DCASE_SECONDS = 4
DCASE_SAMPLES = DCASE_SAMPLE_RATE * DCASE_SECONDS  # 88 200
DCASE_TASK = "DCASE 2023 Task 7 (Foley sound synthesis)"
# The category names and indices of the task description; the folder names of its development
# set and of its baseline's output.
DCASE_CATEGORIES: dict[str, int] = {
    "DogBark": 0,
    "Footstep": 1,
    "GunShot": 2,
    "Keyboard": 3,
    "MovingMotorVehicle": 4,
    "Rain": 5,
    "Sneeze_Cough": 6,
}
# Files are numbered 0001, 0002, ... as the baseline writes them; more than 4 digits would break
# both the name pattern and the sort order that tools listing the folder rely on.
MAX_CLIPS_PER_CLASS = 9999

# --- the conversion ------------------------------------------------------------------------------

RESAMPLE_QUALITY = "HQ"  # soxr's 20-bit recipe, as the data loader uses: finer than 16-bit output
# -1 dBFS sample peak, the usual delivery ceiling (EBU R128 asks -1 dBTP): room for the
# inter-sample peaks that a later resampling (VGGish's 16 kHz, a player's DAC) brings back. 1 dB
# of level changes no figure of the evaluation materially; clipping would.
PEAK_DBFS = -1.0
PEAK = 10.0 ** (PEAK_DBFS / 20.0)
# A fade-out over the last 10 ms before a cut or before the padded silence: long enough to turn
# the step into no click, short enough to leave the sound's own decay alone.
FADE_SECONDS = 0.010
# Below this share of the 4 s, most of each file is padding: say so, FAD will show it.
SHORT_SHARE = 0.9

# --- the class mapping ----------------------------------------------------------------------------

# Names of a run's classes that mean a DCASE category, compared after `_key` (case folded, spaces,
# underscores, hyphens and other punctuation dropped): the category's own name, plural and -ing
# forms, and a few common names of the same sound. Anything else is not a DCASE category.
DCASE_ALIASES: dict[str, tuple[str, ...]] = {
    "DogBark": ("dogbark", "dogbarks", "dogbarking", "bark", "barks", "barking"),
    "Footstep": ("footstep", "footsteps"),
    "GunShot": ("gunshot", "gunshots", "gunfire"),
    "Keyboard": ("keyboard", "keyboards", "keyboardtyping", "typing"),
    "MovingMotorVehicle": (
        "movingmotorvehicle",
        "movingmotorvehicles",
        "motorvehicle",
        "motorvehicles",
    ),
    "Rain": ("rain", "rainfall"),
    # early versions of the baseline named this folder "Sneeze"
    "Sneeze_Cough": (
        "sneezecough",
        "sneezescoughs",
        "sneezeandcough",
        "sneezesandcoughs",
        "coughsneeze",
        "sneeze",
        "sneezes",
        "cough",
        "coughs",
    ),
}


def _key(name: str) -> str:
    return re.sub(r"[\W_]+", "", name.casefold())


_CATEGORY_OF: dict[str, str] = {
    alias: category for category, aliases in DCASE_ALIASES.items() for alias in aliases
}
assert all(_key(c) in _CATEGORY_OF for c in DCASE_CATEGORIES), "a category misses its own name"


def dcase_category(class_name: str) -> str | None:
    """The DCASE 2023 Task 7 category a class name means ("dog_bark" -> "DogBark"), or None."""
    return _CATEGORY_OF.get(_key(class_name))


def dcase_folders(class_names: list[str]) -> dict[str, str]:
    """class -> folder: the DCASE category where the name means one, else the class's own name.
    Two classes meaning the same category are an error: one folder would mix two sounds."""
    folders: dict[str, str] = {}
    by_category: dict[str, list[str]] = {}
    for name in class_names:
        category = dcase_category(name)
        folders[name] = category or name
        if category:
            by_category.setdefault(category, []).append(name)
    for category, names in by_category.items():
        if len(names) > 1:
            quoted = [f"'{n}'" for n in names]
            listed = f"{', '.join(quoted[:-1])} and {quoted[-1]}"
            raise SfxganError(
                f"classes {listed} {'both' if len(names) == 2 else 'all'} map to the DCASE "
                f"category {category}; write one of them with --classes"
            )
    return folders


# --- the conversion -------------------------------------------------------------------------------


def to_dcase_clip(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """One clip of the model (any rate, any length) -> 88 200 float32 samples at 22 050 Hz,
    peak -1 dBFS: resampled, cut (keeping the start) or padded with silence, the edge faded."""
    return finish_dcase_clip(audio, sample_rate, Finish()).audio


def finish_dcase_clip(audio: np.ndarray, sample_rate: int, finish: Finish) -> Finished:
    """`to_dcase_clip` with a finish (the module docstring): its DC, fade and loudness."""
    audio = np.asarray(audio, dtype=np.float32)
    if finish.remove_dc:
        audio = remove_dc(audio)
    if sample_rate != DCASE_SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, DCASE_SAMPLE_RATE, quality=RESAMPLE_QUALITY)
    sound = min(len(audio), DCASE_SAMPLES)  # samples of sound; the rest is padding
    clip = fit_length(audio, DCASE_SAMPLES, crop="start").copy()
    fade = FADE_SECONDS if len(audio) != DCASE_SAMPLES else 0.0
    fade = max(fade, finish.fade_ms / 1000)
    if fade:
        fade_out(clip[:sound], round(fade * DCASE_SAMPLE_RATE))  # in place, through the view
    if finish.loudness is not None:
        return to_loudness(clip, DCASE_SAMPLE_RATE, finish.loudness, finish.true_peak)
    peak = float(np.abs(clip).max())
    # a silent clip stays silent rather than becoming amplified rounding noise
    return Finished(clip * np.float32(PEAK / peak) if peak > 1e-8 else clip, DCASE_SAMPLE_RATE)


def _length_note(model_seconds: float, fade_ms: float = 0.0) -> str:
    target = f"{DCASE_SECONDS} s"
    if abs(model_seconds - DCASE_SECONDS) < 0.5 / DCASE_SAMPLE_RATE:
        if fade_ms:
            return f"none: the model's clips are {target} ({fade_ms:g} ms fade-out at the end)"
        return f"none: the model's clips are {target}"
    fade = max(FADE_SECONDS * 1000, fade_ms)
    if model_seconds < DCASE_SECONDS:
        return (
            f"padded {model_seconds:g} s -> {target} with silence at the end "
            f"({fade:g} ms fade-out at the end of the sound)"
        )
    return (
        f"cropped {model_seconds:g} s -> {target}, keeping the start "
        f"({fade:g} ms fade-out before the cut)"
    )


# --- the folder -----------------------------------------------------------------------------------


def clip_name(index: int) -> str:
    """The file name of clip `index` (from 0): 0001.wav, 0002.wav, ..."""
    return f"{index + 1:04d}.wav"


def _foreign_audio(out: Path, planned: set[Path]) -> list[Path]:
    """Audio files under `out` that this command would not overwrite. Hidden entries are left
    out, as `sfxgan evaluate` and the training scanner leave them out."""
    found = []
    for path in sorted(out.rglob("*")):
        parts = path.relative_to(out).parts
        if any(p.startswith(".") for p in parts) or not path.is_file():
            continue
        if path.suffix.lower() in AUDIO_EXTENSIONS and path not in planned:
            found.append(path)
    return found


def _check_folder(out: Path, folders: list[str], per_class: int) -> None:
    """Refuse a folder holding audio files this command would not replace: leftovers (an earlier
    set of 100 under a new one of 50, an earlier command's other classes, `generate`'s own
    layout) would be counted by an evaluation of the folder as if they were this set."""
    if out.exists() and not out.is_dir():
        raise SfxganError(f"--out '{out}' exists and is not a folder; choose a new folder")
    if not out.is_dir():
        return
    planned = {out / folder / clip_name(i) for folder in folders for i in range(per_class)}
    try:
        foreign = _foreign_audio(out, planned)
    except OSError as exc:
        raise SfxganError(f"cannot read '{out}': {exc.strerror or exc}") from exc
    if foreign:
        first = foreign[0]
        others = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise SfxganError(
            f"'{first.parent}' holds {first.name}{others}: audio under '{out}' that this command "
            f"would not overwrite and an evaluation would mix with the new set; choose a new "
            f"--out folder or remove them"
        )


def write_dcase(
    sampler: Sampler,
    out: Path,
    per_class: int,
    classes: list[str] | None,
    seed: int,
    phase: str,
    n_iter: int,
    batch_size: int = BATCH,
    progress: bool = False,
    finish: Finish | None = None,
) -> dict[str, list[Path]]:
    """Write OUT/<Category>/0001.wav... (4 s, mono, 16-bit, 22 050 Hz) and OUT/dcase.json,
    finished as `finish` says (the module docstring; its rate must be None).

    Classes of the run that are DCASE categories (after `dcase_category`) go to the category's
    folder, others under their own name (said on stderr). Everything is checked before anything
    is written. Returns folder -> written files. Deterministic for (seed, class)."""
    out = Path(out)
    names = list(dict.fromkeys(classes or sampler.classes))  # "rain,rain" is one class
    for name in names:
        sampler.label(name)  # every name is checked before anything is written
    if not 1 <= per_class <= MAX_CLIPS_PER_CLASS:
        raise SfxganError(
            f"the DCASE layout numbers clips 0001 to {MAX_CLIPS_PER_CLASS:04d}; "
            f"ask for 1 to {MAX_CLIPS_PER_CLASS} per class, not {per_class}"
        )
    finish = finish or Finish()
    if finish.rate is not None:
        raise SfxganError(f"the DCASE layout is {DCASE_SAMPLE_RATE} Hz; a finish has no rate here")
    finish.check(DCASE_SAMPLE_RATE, DCASE_SAMPLES)
    folders = dcase_folders(names)
    _check_folder(out, list(folders.values()), per_class)
    check_disk(out, len(names) * per_class * (WAV_HEADER + 2 * DCASE_SAMPLES))
    sampler.check_memory(sampler.batch_bytes(batch_size), f"batches of {batch_size} clips")

    model_seconds = sampler.spec.features.clip_samples / sampler.sample_rate
    others = [name for name in names if dcase_category(name) is None]
    if others:
        listed = ", ".join(f"'{n}'" for n in others)
        if len(others) == 1:
            said = "is not a DCASE 2023 Task 7 category; written under its own name"
        else:
            said = "are not DCASE 2023 Task 7 categories; written under their own names"
        print(f"note: {listed} {said}", file=sys.stderr)
    if model_seconds < SHORT_SHARE * DCASE_SECONDS:
        print(
            f"warning: the model's clips are {model_seconds:g} s long, so each {DCASE_SECONDS} s "
            f"file is {model_seconds:g} s of sound then {DCASE_SECONDS - model_seconds:g} s of "
            f"silence; FAD against the challenge's 4 s clips counts the silence too",
            file=sys.stderr,
        )

    record = _record(sampler, names, folders, per_class, seed, phase, n_iter, finish)
    written: dict[str, list[Path]] = {}
    quieter: dict[str, dict[int, float | None]] = {}  # folder -> clip number -> LUFS
    bar = clip_bar(len(names) * per_class, progress)
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "dcase.json", record)
        for name in names:
            bar.set_postfix_str(name)
            batches = sampler.stream(
                name, per_class, seed, phase, n_iter, normalize=False, batch_size=batch_size
            )
            written[folders[name]] = paths = []
            for batch in batches:  # unnormalised: the one normalisation is after resampling
                for index, clip in zip(batch.indices, batch.audio, strict=True):
                    dcase = finish_dcase_clip(clip, sampler.sample_rate, finish)
                    path = out / folders[name] / clip_name(index)
                    paths.append(write_wav(path, dcase.audio, DCASE_SAMPLE_RATE))
                    if dcase.quieter:
                        quieter.setdefault(folders[name], {})[index + 1] = dcase.loudness
                    bar.update()
        if finish.loudness is not None:
            record["quieter"] = {
                folder: {clip_name(i - 1): lufs for i, lufs in clips.items()}
                for folder, clips in quieter.items()
            }
        write_json_atomic(out / "dcase.json", {**record, "complete": True})
    except OSError as exc:
        raise SfxganError(f"cannot write to '{out}': {exc.strerror or exc}") from exc
    finally:
        bar.close()
    if quieter:
        print(quieter_note(quieter, finish, str(out / "dcase.json")), file=sys.stderr)
    return written


def _record(
    sampler: Sampler,
    names: list[str],
    folders: dict[str, str],
    per_class: int,
    seed: int,
    phase: str,
    n_iter: int,
    finish: Finish,
) -> dict:
    """dcase.json: what made the set, in which format, and how it was converted."""
    model_rate = sampler.sample_rate
    model_samples = sampler.spec.features.clip_samples
    model_seconds = model_samples / model_rate
    return {
        "task": DCASE_TASK,
        "complete": False,  # true once every clip is written: an interrupted set says so
        "sfxgan_version": __version__,
        "checkpoint": str(sampler.checkpoint),
        "step": sampler.step,
        "weights": sampler.weights,
        "preset": sampler.spec.preset,
        "seed": seed,
        "precision": sampler.precision,
        "phase": {"method": phase, "iterations": n_iter},
        "model": {
            "sample_rate": model_rate,
            "clip_samples": model_samples,
            "clip_seconds": model_seconds,
        },
        "format": {
            "sample_rate": DCASE_SAMPLE_RATE,
            "clip_samples": DCASE_SAMPLES,
            "clip_seconds": DCASE_SECONDS,
            "channels": 1,
            "subtype": "PCM_16",
            "clips_per_class": per_class,
            "files": f"{clip_name(0)} ... {clip_name(per_class - 1)}",
        },
        "conversion": _conversion(model_rate, model_seconds, finish),
        "finish": finish.record(),
        "classes": [
            {
                "class": name,
                "folder": folders[name],
                "dcase_category": dcase_category(name),
                "dcase_index": DCASE_CATEGORIES.get(folders[name]),
            }
            for name in names
        ],
    }


def _conversion(model_rate: int, model_seconds: float, finish: Finish) -> dict:
    if finish.loudness is None:
        level = f"peak {PEAK_DBFS:g} dBFS per clip, after resampling"
    else:
        level = (
            f"{finish.loudness:g} LUFS integrated per clip (ITU-R BS.1770-4, pyloudnorm), under a "
            f"{finish.true_peak:g} dBTP true-peak ceiling, after resampling"
        )
    conversion = {
        "resampling": f"soxr {soxr.__version__}, quality {RESAMPLE_QUALITY}, "
        f"{model_rate} Hz -> {DCASE_SAMPLE_RATE} Hz",
        "length": _length_note(model_seconds, finish.fade_ms),
        "normalisation": level,
        "dither": "none",
    }
    if finish.remove_dc:
        conversion["dc"] = "the clip's mean removed, before resampling"
    return conversion
