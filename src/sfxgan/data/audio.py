"""Audio in and out: decode, mix to mono, resample, pad or crop, peak-normalise, write 16-bit
WAV."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf
import soxr
import torch

from sfxgan.config import CROP_MODES
from sfxgan.errors import AudioError, first_line
from sfxgan.files import atomic_write

# What libsndfile (through soundfile) decodes; others are listed as skipped by the scanner.
AUDIO_EXTENSIONS = frozenset({".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".aifc"})
# A clip whose peak stays below -80 dBFS carries nothing to learn from.
SILENCE_PEAK = 1e-4


def load_audio(path: str | Path, sample_rate: int) -> np.ndarray:
    """Decode a file to mono float32 at `sample_rate`; raise AudioError saying why it can't."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise AudioError(f"cannot read: {exc.strerror}") from exc
    if size == 0:
        raise AudioError("empty file (0 bytes)")
    try:
        # libmpg123 prints its own notes on a damaged MP3 ("Illegal Audio-MPEG-Header ...")
        # straight to the terminal; the skipped-files list says what matters once
        with _native_stderr_silenced(path.suffix.lower() == ".mp3"):
            audio, file_rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as exc:
        # libsndfile's own words, without the "Error opening '<path>'" the list already names
        said = getattr(exc, "error_string", None) or str(exc)
        reason = first_line(RuntimeError(said), 120)
        if "does not exist or is not a regular file" in said:
            # libsndfile's words when no decoder accepts the bytes of a file that does exist
            reason = f"damaged, or not the {path.suffix or 'audio'} format its name says"
        raise AudioError(f"could not be decoded ({reason})") from exc
    if audio.shape[0] == 0:
        raise AudioError("zero-length audio (no samples)")
    if not np.isfinite(audio).all():
        raise AudioError("audio contains NaN or infinite samples")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if file_rate != sample_rate:
        mono = soxr.resample(mono, file_rate, sample_rate, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)


@contextmanager
def _native_stderr_silenced(enabled: bool = True) -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 to /dev/null for the block."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def fit_length(audio: np.ndarray, n_samples: int, crop: str = "start") -> np.ndarray:
    """Zero-pad at the end, or cut to `n_samples`: from the start (the reference) or around the
    loudest window (keeps the event of a clip whose sound starts late)."""
    if len(audio) <= n_samples:
        return np.pad(audio, (0, n_samples - len(audio)))
    if crop == "start":
        start = 0
    elif crop == "loudest":
        energy = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
        window_energy = energy[n_samples:] - energy[:-n_samples]
        start = int(np.argmax(window_energy))
    else:
        raise ValueError(f"crop must be one of {CROP_MODES}, not {crop!r}")
    return audio[start : start + n_samples]


Samples = TypeVar("Samples", np.ndarray, torch.Tensor)


def peak_normalize(
    audio: Samples,
    per: str = "clip",
    eps: float = 1e-8,
    batch_peak: Callable[[torch.Tensor], torch.Tensor] | None = None,
    min_peak: float | None = None,
) -> Samples:
    """Scale audio (..., samples), a numpy array or a torch tensor, to peak 1: each clip by its
    own peak, or per="batch" all by the largest (the reference's training loss). The package's
    one peak normalisation.

    By default the audio is divided by peak + eps: the arithmetic of the training loss, which
    back-propagates through it, and of generated audio. With `min_peak` it is divided by
    max(peak, min_peak) instead (eps unused): min_peak=1.0 only scales down clips over full
    scale; a clip whose divisor would be 0 (silence, min_peak 0) is returned as it is.
    `batch_peak` maps this batch's peak to the one to use (torch only: the global batch's, in
    training over several processes).
    """
    is_numpy = isinstance(audio, np.ndarray)
    magnitude = np.abs(audio) if is_numpy else audio.abs()
    if per == "clip":
        peak = magnitude.max(axis=-1, keepdims=True) if is_numpy else magnitude.amax(-1, True)
    elif per == "batch":
        peak = magnitude.max() if is_numpy else magnitude.amax()
        if batch_peak is not None:
            peak = batch_peak(peak)
    else:
        raise ValueError(f"per must be 'clip' or 'batch', not {per!r}")
    if min_peak is None:
        return audio / (peak + eps)
    if is_numpy:
        divisor = np.maximum(peak, min_peak)
        return audio / np.where(divisor > 0, divisor, 1)
    divisor = peak.clamp_min(min_peak)
    return audio / divisor.where(divisor > 0, 1.0)


def is_silent(audio: np.ndarray) -> bool:
    return len(audio) == 0 or float(np.abs(audio).max()) < SILENCE_PEAK


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM WAV, creating folders; samples are clipped to [-1, 1].

    Appears whole or not at all (files.atomic_write): an interrupted run never leaves half a
    file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    with atomic_write(path) as fh:
        sf.write(fh, audio, sample_rate, subtype="PCM_16", format="WAV")
    return path
