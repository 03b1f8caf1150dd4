"""Tests for the synthetic demo dataset (sfxgan.apps.demo).

All thresholds are checks on measured properties of generated audio; nothing compares against
stored results, so a change that breaks a class's character, the determinism or the file format
makes a test fail.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sfxgan.apps.demo import DEMO_CLASSES, DEMO_SAMPLE_RATE, synthesize_clip, write_demo_dataset
from sfxgan.errors import ConfigError

SR = DEMO_SAMPLE_RATE
PER_CLASS = 20
CROP = 8192  # 0.512 s at 16 kHz: what the small training preset crops from each clip's start
# Peaks are drawn in [-20, -3] dBFS; 0.5 dB of slack covers 16-bit rounding.
PEAK_MIN = 10 ** (-20.5 / 20)
PEAK_MAX = 10 ** (-2.5 / 20)
# Stated floor for the content of the first 0.512 s (absolute, dBFS).
FIRST_CROP_RMS_FLOOR = 10 ** (-50 / 20)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Path]]]:
    out = tmp_path_factory.mktemp("demo_seed0")
    return out, write_demo_dataset(out, per_class=PER_CLASS, seed=0)


@pytest.fixture(scope="module")
def clips(dataset: tuple[Path, dict[str, list[Path]]]) -> dict[str, list[np.ndarray]]:
    _, paths = dataset
    return {c: [sf.read(p, dtype="float64")[0] for p in paths[c]] for c in DEMO_CLASSES}


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x))))


def _frame_rms(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame * frame
    return np.sqrt(np.mean(x[:n].reshape(-1, frame) ** 2, axis=1))


def _power_spectrum(x: np.ndarray, n_fft: int = 512, hop: int = 256) -> np.ndarray:
    """Mean power spectrum of Hann-windowed frames of the first 0.512 s."""
    seg = x[:CROP]
    frames = np.lib.stride_tricks.sliding_window_view(seg, n_fft)[::hop] * np.hanning(n_fft)
    return np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)


def _features(x: np.ndarray) -> np.ndarray:
    """Level-invariant mean log-power spectrum (the clip's own mean log level removed)."""
    logp = np.log10(_power_spectrum(x) + 1e-12)
    return logp - logp.mean()


def _centroid_hz(x: np.ndarray) -> float:
    p = _power_spectrum(x)
    f = np.fft.rfftfreq(512, 1.0 / SR)
    return float(np.sum(p * f) / np.sum(p))


def _band_fraction(x: np.ndarray, lo: float, hi: float) -> float:
    p = _power_spectrum(x)
    f = np.fft.rfftfreq(512, 1.0 / SR)
    return float(np.sum(p[(f >= lo) & (f < hi)]) / np.sum(p))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


# ---------------------------------------------------------------------------------------------
# Files and format
# ---------------------------------------------------------------------------------------------


def test_public_constants() -> None:
    assert DEMO_SAMPLE_RATE == 16000
    assert tuple(sorted(DEMO_CLASSES)) == DEMO_CLASSES
    assert set(DEMO_CLASSES) == {"birds", "engine", "footsteps", "gunshots", "rain"}


def test_writes_expected_layout(dataset: tuple[Path, dict[str, list[Path]]]) -> None:
    out, paths = dataset
    assert sorted(p.name for p in out.iterdir()) == list(DEMO_CLASSES)
    assert list(paths) == list(DEMO_CLASSES)
    for c in DEMO_CLASSES:
        expected = [out / c / f"{c}_{i:03d}.wav" for i in range(PER_CLASS)]
        assert paths[c] == expected
        assert sorted((out / c).iterdir()) == expected


def test_file_format_duration_and_level(dataset: tuple[Path, dict[str, list[Path]]]) -> None:
    _, paths = dataset
    for c in DEMO_CLASSES:
        for p in paths[c]:
            info = sf.info(p)
            assert info.format == "WAV", p
            assert info.subtype == "PCM_16", p
            assert info.samplerate == SR, p
            assert info.channels == 1, p
            assert 1.0 <= info.duration <= 2.0, (p, info.duration)
            x, _ = sf.read(p, dtype="float64")
            assert np.all(np.isfinite(x)), p
            peak = np.max(np.abs(x))
            assert PEAK_MIN <= peak <= PEAK_MAX, (p, 20 * np.log10(peak))
            # Not silent anywhere near the whole clip: far above 16-bit quantisation noise.
            assert _rms(x) > 10 ** (-60 / 20), p


def test_synthesize_clip_contract() -> None:
    for ci, c in enumerate(DEMO_CLASSES):
        for i in range(8):
            x = synthesize_clip(c, np.random.default_rng([123, ci, i]))
            assert x.dtype == np.float32 and x.ndim == 1
            assert SR <= len(x) <= 2 * SR
            assert np.all(np.isfinite(x))
            peak = float(np.max(np.abs(x)))
            assert 10 ** (-20.01 / 20) <= peak <= 10 ** (-2.99 / 20), (c, i)
            # Short fades: the very first and last samples are (near) zero, so no click.
            assert abs(float(x[0])) < 1e-6 and abs(float(x[-1])) < 1e-6, (c, i)


def test_other_sample_rate() -> None:
    x = synthesize_clip("birds", np.random.default_rng(5), sample_rate=22050)
    assert 22050 <= len(x) <= 2 * 22050
    assert np.all(np.isfinite(x)) and 0 < np.max(np.abs(x)) < 1


def test_invalid_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown demo class"):
        synthesize_clip("thunder", np.random.default_rng(0))
    with pytest.raises(ValueError, match="sample_rate"):
        synthesize_clip("rain", np.random.default_rng(0), sample_rate=4000)
    with pytest.raises(ConfigError):
        write_demo_dataset(tmp_path, per_class=-1)
    with pytest.raises(ConfigError):
        write_demo_dataset(tmp_path, per_class=1, seed=-3)


# ---------------------------------------------------------------------------------------------
# Determinism and variety
# ---------------------------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes_independent_of_per_class(
    dataset: tuple[Path, dict[str, list[Path]]], tmp_path: Path
) -> None:
    _, paths = dataset
    again = write_demo_dataset(tmp_path, per_class=3, seed=0)  # fewer clips than the fixture
    for c in DEMO_CLASSES:
        assert len(again[c]) == 3
        for p_new, p_old in zip(again[c], paths[c][:3], strict=True):
            assert p_new.read_bytes() == p_old.read_bytes(), p_new


def test_synthesize_clip_is_a_function_of_rng_state() -> None:
    for c in DEMO_CLASSES:
        a = synthesize_clip(c, np.random.default_rng([9, 9]))
        b = synthesize_clip(c, np.random.default_rng([9, 9]))
        assert np.array_equal(a, b), c


def test_other_seed_gives_different_audio(
    clips: dict[str, list[np.ndarray]], tmp_path: Path
) -> None:
    other = write_demo_dataset(tmp_path, per_class=3, seed=1)
    for c in DEMO_CLASSES:
        for i, p in enumerate(other[c]):
            y, _ = sf.read(p, dtype="float64")
            x = clips[c][i]
            assert len(x) != len(y) or not np.array_equal(x, y), (c, i)
            assert abs(_corr(x, y)) < 0.9, (c, i)


def test_clips_within_a_class_all_differ(clips: dict[str, list[np.ndarray]]) -> None:
    for c in DEMO_CLASSES:
        for (i, x), (j, y) in itertools.combinations(enumerate(clips[c]), 2):
            assert len(x) != len(y) or not np.array_equal(x, y), (c, i, j)
            assert abs(_corr(x, y)) < 0.9, (c, i, j, _corr(x, y))
        # Durations and levels vary too, not just the waveform.
        assert len({len(x) for x in clips[c]}) >= PER_CLASS // 2, c
        peaks_db = [20 * np.log10(np.max(np.abs(x))) for x in clips[c]]
        assert np.ptp(peaks_db) > 5.0, c


# ---------------------------------------------------------------------------------------------
# Class character
# ---------------------------------------------------------------------------------------------


def test_classes_are_spectrally_separable(clips: dict[str, list[np.ndarray]]) -> None:
    """Leave-one-out nearest-centroid classification on mean log spectra of the first 0.512 s."""
    feats = np.array([_features(x) for c in DEMO_CLASSES for x in clips[c]])
    labels = np.repeat(np.arange(len(DEMO_CLASSES)), PER_CLASS)
    correct = 0
    for k in range(len(feats)):
        keep = np.arange(len(feats)) != k
        centroids = np.array(
            [feats[keep & (labels == ci)].mean(axis=0) for ci in range(len(DEMO_CLASSES))]
        )
        pred = int(np.argmin(np.linalg.norm(centroids - feats[k], axis=1)))
        correct += pred == labels[k]
    accuracy = correct / len(feats)
    assert accuracy >= 0.9, accuracy


def test_spectral_centroid_ordering(clips: dict[str, list[np.ndarray]]) -> None:
    med = {c: float(np.median([_centroid_hz(x) for x in clips[c]])) for c in DEMO_CLASSES}
    low = max(med["engine"], med["footsteps"])
    # Birds (2-7 kHz chirps) and rain (high-mid hiss) are bright, the broadband gunshot sits in
    # between, engine and footsteps are low.
    assert min(med["birds"], med["rain"]) > med["gunshots"] > low, med
    assert med["birds"] > 2500.0, med
    assert low < 600.0, med


def test_band_energy(clips: dict[str, list[np.ndarray]]) -> None:
    for c in ("engine", "footsteps"):  # energy mostly below ~1.5 kHz
        for i, x in enumerate(clips[c]):
            assert _band_fraction(x, 0.0, 1500.0) > 0.8, (c, i)
    for i, x in enumerate(clips["birds"]):  # chirps between ~2 and 7 kHz
        assert _band_fraction(x, 1500.0, 8000.0) > 0.9, ("birds", i)
    for i, x in enumerate(clips["rain"]):  # hiss mostly in the (high) mids
        assert _band_fraction(x, 1000.0, 8000.0) > 0.7, ("rain", i)
    for i, x in enumerate(clips["gunshots"]):  # the crack makes it broadband
        assert _band_fraction(x, 2000.0, 8000.0) > 0.02, ("gunshots", i)


def test_stationary_versus_transient(clips: dict[str, list[np.ndarray]]) -> None:
    """Rain and engine are steady; gunshots and footsteps are bursts over a quiet floor."""
    frame = 256  # 16 ms
    for c in ("rain", "engine"):
        for i, x in enumerate(clips[c]):
            e = _frame_rms(x, frame)[2:-3]  # skip the fades
            assert e.max() / np.median(e) < 3.0, (c, i)
            assert e.min() / np.median(e) > 0.2, (c, i)  # no silence anywhere
    for c in ("gunshots", "footsteps"):
        for i, x in enumerate(clips[c]):
            e = _frame_rms(x, frame)
            assert e.max() / np.median(e) > 3.0, (c, i)


def test_content_in_first_crop(clips: dict[str, list[np.ndarray]]) -> None:
    """The training crop (first 0.512 s) must hold the sound, not a lead-in of background."""
    for c in DEMO_CLASSES:
        for i, x in enumerate(clips[c]):
            head = x[:CROP]
            assert _rms(head) > FIRST_CROP_RMS_FLOOR, (c, i, 20 * np.log10(_rms(head)))
            # At least half the clip's overall RMS: the events are not all later in the clip.
            assert _rms(head) > 0.5 * _rms(x), (c, i)
            # First event: the first 10 ms frame within 20 dB of the loudest frame starts
            # before 0.15 s.
            e = _frame_rms(x, SR // 100)
            onset_s = int(np.argmax(e >= 0.1 * e.max())) / 100
            assert onset_s < 0.15, (c, i, onset_s)
