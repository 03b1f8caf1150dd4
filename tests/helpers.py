"""What several test files share: the `sfxgan` command as a user runs it, its one-line errors,
test sounds, and waiting on a training that runs in another process.

Fixtures live in conftest.py (pytest finds them by name); plain functions live here, so that a
test file imports them from one place instead of from another test file.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image


def sfxgan(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run `python -m sfxgan ARGS` as a user would, capturing what it prints."""
    return subprocess.run(
        [sys.executable, "-m", "sfxgan", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """The command failed as a user error: exit code 2, no traceback, and a last line that
    says what was wrong (holding each of `words`)."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("sfxgan: error:") or "error:" in last
    for word in words:
        assert word in last, last


def tone(
    freq: float = 440.0,
    seconds: float = 1.0,
    rate: int = 16000,
    level: float = 0.5,
    channels: int = 1,
) -> np.ndarray:
    """A sine of `freq` Hz at peak `level`, mono as (samples,), else (samples, channels)."""
    t = np.arange(int(seconds * rate)) / rate
    mono = (level * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def write(path: Path, audio: np.ndarray, rate: int = 16000, **kwargs) -> Path:
    """Write a sound file, making its folder; keyword arguments go to soundfile (subtype...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, **kwargs)
    return path


# A training preview's picture: one spectrogram panel, 4.1 x 2.8 in at 90 dpi (plots.py)
PREVIEW_PNG_SIZE = (round(90 * (2.9 + 1.2)), round(90 * 2.8))  # (369, 252) pixels
LOSSES_PNG_SIZE = (14 * 80, 3 * 80)  # the loss curves of one run: 14 x 3 in at 80 dpi


def assert_png(path: Path, size: tuple[int, int]) -> None:
    """A PNG that decodes whole, of `size` (width, height) pixels."""
    with Image.open(path) as image:
        image.load()  # decodes every row: a truncated file raises here
        assert (image.format, image.size) == ("PNG", size), (path, image.format, image.size)


def assert_previews(folder: Path, classes, sample_rate: int, clip_samples: int) -> None:
    """A step's training previews: per class one WAV as `generate` writes it (mono 16-bit at
    the preset's rate and clip length, peak-normalised, not silent) and one PNG of its
    spectrogram that decodes, and nothing else."""
    names = sorted(f"{name}.{ext}" for name in classes for ext in ("png", "wav"))
    assert sorted(p.name for p in folder.iterdir()) == names
    for name in classes:
        path = folder / f"{name}.wav"
        audio, rate = sf.read(path, dtype="float32")
        assert (rate, audio.shape, sf.info(path).subtype) == (
            sample_rate,
            (clip_samples,),
            "PCM_16",
        ), path
        # peak 1, and sound rather than one click in silence: a lone full-scale sample has an
        # RMS of 1 / sqrt(8192) = 0.011 in a tiny clip (seen: 0.09-0.23 after 2-6 steps)
        peak, rms = float(np.abs(audio).max()), float(np.sqrt(np.mean(np.square(audio))))
        assert peak >= 0.99 and rms > 0.03, (path, peak, rms)
        assert_png(folder / f"{name}.png", PREVIEW_PNG_SIZE)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_logged_steps(metrics: Path, steps: int, timeout: float) -> None:
    """Until a running training has logged `steps` rows to its metrics.csv (or the timeout)."""
    deadline = time.time() + timeout
    while time.time() < deadline and (
        not metrics.exists() or len(metrics.read_text().splitlines()) < steps + 1
    ):
        time.sleep(0.2)
