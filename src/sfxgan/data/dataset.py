"""Datasets: scan class folders or a CSV manifest, validate every file, cache the features.

A user's folder is checked here, once, at the edge: files that cannot be used are skipped and
listed with the reason at the end of the scan; a dataset that cannot train a conditional model
(fewer than two classes, a class without a usable clip) is an error naming the folder. The
decoded clips and their spectrograms are cached on disk, keyed by the files' paths, sizes and
modification times and by the feature settings, so a second run does not decode again.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sfxgan.config import PRESETS, FeatureConfig
from sfxgan.data.audio import AUDIO_EXTENSIONS, fit_length, is_silent, load_audio
from sfxgan.dsp.features import STFT, to_log_spec
from sfxgan.errors import AudioError, DataError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; concurrent first runs decode twice
    fcntl = None

# Bump when the cached arrays change meaning, so old caches are ignored rather than misread.
CACHE_FORMAT = 1


@dataclass(frozen=True)
class Entry:
    path: Path
    label: str


@dataclass(frozen=True)
class Skipped:
    path: Path
    reason: str


@dataclass
class Listing:
    """What a folder or manifest offers before decoding: candidate files, skipped ones, classes."""

    source: Path
    entries: list[Entry]
    skipped: list[Skipped]
    classes: list[str]
    is_manifest: bool


@dataclass
class SoundDataset:
    """Decoded clips and their normalised log-spectrograms, in memory or memory-mapped.

    audio (N, clip_samples) float32 in [-1, 1]; log_spec (N, frames, bins) float16 in [-1, 1]
    (half precision: the values are bounded and the networks train in float32 or bf16 anyway);
    labels (N,) int64 indexing `classes`, which is sorted and saved with every model.
    """

    audio: np.ndarray
    log_spec: np.ndarray
    labels: np.ndarray
    classes: list[str]
    paths: list[str]
    max_value: float
    features: FeatureConfig
    crop: str
    source: Path
    skipped: list[Skipped] = field(default_factory=list)
    from_cache: bool = False
    # each clip's decoded length in samples before it was cut or padded to clip_samples (None
    # for a cache written before lengths were kept)
    lengths: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def class_counts(self) -> dict[str, int]:
        counts = Counter(self.labels.tolist())
        return {name: counts.get(i, 0) for i, name in enumerate(self.classes)}

    def report(self) -> str:
        """The scan report: what is kept per class and every skipped file with the reason."""
        counts = ", ".join(f"{name} {n}" for name, n in self.class_counts().items())
        cached = " (from cache)" if self.from_cache else ""
        lines = [
            f"{self.source}: {len(self)} clips in {len(self.classes)} classes{cached}: {counts}; "
            f"max_value {self.max_value:.4g}"
        ]
        if self.lengths is not None:
            lines += fit_lines(self.classes, self.labels, self.lengths, self.features, self.crop)
        lines += _skipped_lines(self.skipped, self.source)
        return "\n".join(lines)


def fit_lines(
    classes: list[str],
    labels: np.ndarray,
    lengths: np.ndarray,
    features: FeatureConfig,
    crop: str,
) -> list[str]:
    """What fitting every clip to the model's length did, per class: how many were cut and by
    how much, how many padded with silence, and what to do about it."""
    labels, lengths = np.asarray(labels), np.asarray(lengths)
    target, rate = features.clip_samples, features.sample_rate
    seconds = target / rate
    lines = []
    for i, name in enumerate(classes):
        mine = lengths[labels == i]
        said = []
        for hit, verb in ((mine[mine > target], "cut"), (mine[mine < target], "padded")):
            if len(hit):
                off = np.abs(hit.astype(np.int64) - target) / rate
                said.append(
                    f"{len(hit)} of {len(mine)} {verb}, by {off.mean():.2f} s on average "
                    f"(up to {off.max():.2f} s)"
                )
        if said:
            lines.append(f"  {name}: {'; '.join(said)}")
    if lines:
        lines.insert(
            0,
            f"clips are fitted to the model's {seconds:.3f} s: longer ones cut (crop '{crop}'), "
            "shorter ones padded with silence:",
        )
    if lines and any(lengths > target):
        longer_presets = sorted(
            (p.features.duration, name)
            for name, p in PRESETS.items()
            if p.features.duration > seconds + 1e-9
        )
        advice = []
        if crop != "loudest":
            advice.append(f"keep each long clip's loudest {seconds:.3f} s with --crop loudest")
        else:
            advice.append(f"each long clip keeps its loudest {seconds:.3f} s (--crop loudest)")
        if longer_presets:
            advice.append(
                "train on longer clips with "
                + " or ".join(f"--preset {name} ({d:.3f} s)" for d, name in longer_presets)
            )
        lines.append("  " + "; ".join(advice))
    return lines


def _skipped_lines(skipped: list[Skipped], source: Path) -> list[str]:
    if not skipped:
        return []
    base = source if source.is_dir() else source.parent
    lines = [f"skipped {len(skipped)} file(s):"]
    for item in skipped:
        try:
            shown = item.path.relative_to(base)
        except ValueError:
            shown = item.path
        lines.append(f"  {shown}: {item.reason}")
    return lines


def default_cache_dir() -> Path:
    """$SFXGAN_CACHE_DIR, else $XDG_CACHE_HOME/sfxgan, else ~/.cache/sfxgan."""
    if os.environ.get("SFXGAN_CACHE_DIR"):
        return Path(os.environ["SFXGAN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sfxgan"


def scan_folder(root: str | Path) -> Listing:
    """List one sub-folder per class (sorted names); files in nested folders belong to the
    class folder above them. Hidden files are ignored; other non-audio files are skipped."""
    root = Path(root)
    if not root.exists():
        raise DataError(
            f"data folder '{root}' does not exist; give a folder with one sub-folder "
            "per class, or a CSV manifest with path,label columns"
        )
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder or a .csv manifest")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    entries: list[Entry] = []
    skipped: list[Skipped] = []
    for path in sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")):
        skipped.append(Skipped(path, "not inside a class folder"))
    for label in classes:
        for path in sorted((root / label).rglob("*")):
            if not path.is_file() or any(
                part.startswith(".") for part in path.relative_to(root).parts
            ):
                continue
            if path.suffix.lower() in AUDIO_EXTENSIONS:
                entries.append(Entry(path, label))
            else:
                kind = path.suffix or "no extension"
                skipped.append(Skipped(path, f"not an audio file we read ({kind})"))
    return Listing(root, entries, skipped, classes, is_manifest=False)


def read_manifest(csv_path: str | Path) -> Listing:
    """A CSV with a header holding `path` and `label` columns; paths relative to the CSV."""
    csv_path = Path(csv_path)
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip().lower() for c in (reader.fieldnames or [])]
            if "path" not in columns or "label" not in columns:
                raise DataError(
                    f"manifest '{csv_path}' needs a header row with 'path' and "
                    f"'label' columns (found: {', '.join(columns) or 'none'})"
                )
            rows = [
                {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
                for row in reader
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read manifest '{csv_path}': {exc}") from exc
    entries, skipped = [], []
    for line, row in enumerate(rows, start=2):
        if not row.get("path") or not row.get("label"):
            skipped.append(Skipped(csv_path, f"line {line}: empty path or label"))
            continue
        path = Path(row["path"])
        path = path if path.is_absolute() else csv_path.parent / path
        if not path.is_file():
            skipped.append(Skipped(path, f"listed on line {line} but not found"))
            continue
        entries.append(Entry(path, row["label"]))
    classes = sorted(
        {e.label for e in entries} | {row["label"] for row in rows if row.get("label")}
    )
    return Listing(csv_path, entries, skipped, classes, is_manifest=True)


def list_source(source: str | Path) -> Listing:
    source = Path(source)
    if source.suffix.lower() == ".csv" and not source.is_dir():
        if not source.is_file():
            raise DataError(f"manifest '{source}' does not exist")
        return read_manifest(source)
    return scan_folder(source)


def _cache_key(listing: Listing, features: FeatureConfig, crop: str) -> str:
    files = []
    for entry in listing.entries:
        stat = entry.path.stat()
        files.append([str(entry.path.resolve()), entry.label, stat.st_size, stat.st_mtime_ns])
    blob = json.dumps(
        {
            "format": CACHE_FORMAT,
            "features": features.to_dict(),
            "crop": crop,
            "files": files,
            "classes": listing.classes,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def to_stderr(message: str) -> None:
    """The default log of scans and warnings."""
    print(message, file=sys.stderr)


def decode_clips(
    listing: Listing,
    sample_rate: int,
    clip_samples: int,
    crop: str,
    progress: bool = True,
    lengths: list[int] | None = None,
) -> tuple[list[np.ndarray], list[int], list[str], list[Skipped]]:
    """Decode every listed file to a mono clip of `clip_samples` at `sample_rate`.

    Returns (clips, labels indexing listing.classes, paths, skipped); undecodable files and
    clips that are silent, as a whole or in the part `crop` keeps, are skipped with the reason.
    `lengths`, when given, receives each kept clip's decoded length before it was fitted.
    """
    clips, labels, paths, skipped = [], [], [], []
    class_index = {name: i for i, name in enumerate(listing.classes)}
    seconds = clip_samples / sample_rate
    for entry in tqdm(
        listing.entries, desc="decoding", unit="file", disable=not progress, leave=False
    ):
        try:
            audio = load_audio(entry.path, sample_rate)
            if is_silent(audio):
                raise AudioError("silent (peak below -80 dBFS)")
            clip = fit_length(audio, clip_samples, crop)
            if is_silent(clip):
                raise AudioError(
                    f"silent in the {seconds:.3f} s kept by crop '{crop}' (try --crop loudest)"
                )
        except AudioError as exc:
            skipped.append(Skipped(entry.path, str(exc)))
            continue
        clips.append(clip)
        labels.append(class_index[entry.label])
        paths.append(str(entry.path))
        if lengths is not None:
            lengths.append(len(audio))
    return clips, labels, paths, skipped


def load_dataset(
    source: str | Path,
    features: FeatureConfig,
    crop: str = "start",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    log: Callable[[str], None] | None = to_stderr,
) -> SoundDataset:
    """Scan, validate, decode and featurise a dataset (or load it from the cache).

    `log` receives the scan report at the end of the scan (also when the dataset is then
    rejected, so the user sees why a class came out empty).
    """
    listing = list_source(source)
    if not listing.classes:
        raise DataError(
            f"no class sub-folders in '{listing.source}'; put each class's sounds in "
            "a sub-folder named after the class"
        )
    cache_root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(listing, features, crop)
    # Processes that start together (torchrun) decode once: the first builds the cache while
    # holding the lock, the others then find it.
    with _cache_lock(cache_root / f".{key}.lock", enabled=use_cache):
        return _load_or_build(listing, features, crop, cache_root / key, use_cache, progress, log)


def _load_or_build(
    listing: Listing,
    features: FeatureConfig,
    crop: str,
    cache_folder: Path,
    use_cache: bool,
    progress: bool,
    log: Callable[[str], None] | None,
) -> SoundDataset:
    where = "manifest" if listing.is_manifest else "folder"
    cached = _read_cache(cache_folder) if use_cache else None
    if cached is not None:
        audio, log_spec, labels, paths, max_value, decode_skipped, lengths = cached
        dataset = SoundDataset(
            audio,
            log_spec,
            labels,
            list(listing.classes),
            paths,
            max_value,
            features,
            crop,
            listing.source,
            listing.skipped + decode_skipped,
            from_cache=True,
            lengths=lengths,
        )
        if log:
            log(dataset.report())
        return dataset

    lengths: list[int] = []
    clips, labels, paths, decode_skipped = decode_clips(
        listing, features.sample_rate, features.clip_samples, crop, progress, lengths
    )
    class_index = {name: i for i, name in enumerate(listing.classes)}
    skipped = listing.skipped + decode_skipped

    counts = Counter(labels)
    empty = [name for name in listing.classes if counts[class_index[name]] == 0]
    if log:
        kept = ", ".join(f"{name} {counts[i]}" for i, name in enumerate(listing.classes))
        fitted = fit_lines(listing.classes, np.asarray(labels), np.asarray(lengths), features, crop)
        log(
            "\n".join(
                [f"{listing.source}: kept {len(clips)} clips: {kept}"]
                + fitted
                + _skipped_lines(skipped, listing.source)
            )
        )
    if empty:
        name = empty[0]
        thing = (
            f"class folder '{listing.source / name}'"
            if not listing.is_manifest
            else f"class '{name}' in manifest '{listing.source}'"
        )
        raise DataError(
            f"{thing} has no usable audio clip (see the skipped files above); add "
            f"clips to it or remove it"
        )
    if len(listing.classes) < 2:
        raise DataError(
            f"{where} '{listing.source}' has only one class "
            f"('{listing.classes[0]}'); a conditional model needs at least 2 classes, "
            "one sub-folder each"
        )

    audio = np.stack(clips).astype(np.float32)
    labels_arr = np.asarray(labels, dtype=np.int64)
    magnitude = _batched(STFT(features).magnitude, audio)
    # max_value: the largest magnitude over the whole training set (SPEC section 2); it is
    # saved with every model so users never copy it by hand as with the reference.
    max_value = float(magnitude.max())
    with torch.inference_mode():
        log_spec = to_log_spec(torch.from_numpy(magnitude), max_value).numpy().astype(np.float16)
    dataset = SoundDataset(
        audio,
        log_spec,
        labels_arr,
        list(listing.classes),
        paths,
        max_value,
        features,
        crop,
        listing.source,
        skipped,
        lengths=np.asarray(lengths, dtype=np.int64),
    )
    if use_cache:
        _write_cache(cache_folder, dataset, decode_skipped)
    return dataset


@contextmanager
def _cache_lock(path: Path, enabled: bool):
    """An exclusive advisory lock on `path` while building or reading a cache entry; none where
    it cannot be had (no fcntl on Windows, a read-only cache folder)."""
    if not enabled or fcntl is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a")  # noqa: SIM115 (held until the end of the with-block)
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _batched(
    fn: Callable[[torch.Tensor], torch.Tensor], audio: np.ndarray, batch: int = 256
) -> np.ndarray:
    with torch.inference_mode():
        parts = [
            fn(torch.from_numpy(audio[i : i + batch])).numpy() for i in range(0, len(audio), batch)
        ]
    return np.concatenate(parts)


def _write_cache(folder: Path, dataset: SoundDataset, decode_skipped: list[Skipped]) -> None:
    """Write to a temporary folder and rename it, so a crash never leaves a half cache.

    The rename of the folder is the atomic step: the cache is four files that must agree, which
    renaming each into place could not promise, so they are written plainly into a folder no
    reader looks into. One that a power cut left short reads as no cache (`_read_cache`)."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        np.save(tmp / "audio.npy", dataset.audio)
        np.save(tmp / "log_spec.npy", dataset.log_spec)
        np.save(tmp / "labels.npy", dataset.labels)
        meta = {
            "format": CACHE_FORMAT,
            "paths": dataset.paths,
            "max_value": dataset.max_value,
            "skipped": [[str(s.path), s.reason] for s in decode_skipped],
            "lengths": None if dataset.lengths is None else dataset.lengths.tolist(),
        }
        (tmp / "meta.json").write_text(json.dumps(meta))
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    except OSError as exc:  # a read-only cache must not stop training
        to_stderr(f"warning: could not write the feature cache in '{folder.parent}': {exc}")


def _read_cache(folder: Path):
    try:
        meta = json.loads((folder / "meta.json").read_text())
        if meta.get("format") != CACHE_FORMAT:
            return None
        audio = np.load(folder / "audio.npy", mmap_mode="r")
        log_spec = np.load(folder / "log_spec.npy", mmap_mode="r")
        labels = np.load(folder / "labels.npy")
    except (OSError, ValueError, json.JSONDecodeError):
        return None
    skipped = [Skipped(Path(p), reason) for p, reason in meta["skipped"]]
    lengths = meta.get("lengths")  # absent in caches written before lengths were kept
    lengths = None if lengths is None else np.asarray(lengths, dtype=np.int64)
    return audio, log_spec, labels, meta["paths"], float(meta["max_value"]), skipped, lengths
