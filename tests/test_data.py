"""The scanner, the manifest loader and the feature cache, on the files users really have."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

import sfxgan.data.dataset
from sfxgan.config import get_preset
from sfxgan.data.dataset import load_dataset, scan_folder
from sfxgan.errors import DataError
from tests.helpers import tone, write

FEATURES = get_preset("tiny").features


@pytest.fixture
def messy(tmp_path):
    """A library as users have it: good files in many formats, and broken ones."""
    root = tmp_path / "library"
    for i in range(3):
        write(root / "birds" / f"chirp_{i}.wav", tone(2000 + 500 * i))
    (root / "birds" / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(64))
    (root / "birds" / "empty.wav").write_bytes(b"")
    (root / "birds" / "notes.wav").write_text("this is a text file named .wav\n")
    (root / "birds" / "readme.txt").write_text("recorded in the garden\n")
    (root / "birds" / ".DS_Store").write_bytes(b"\x00\x01")
    # engine: one clip in each format and oddity that must be kept
    left_only = np.stack([tone(440, rate=44100), np.zeros(44100, np.float32)], axis=1)
    write(root / "engine" / "stereo_44k.wav", left_only, rate=44100)
    write(root / "engine" / "eight_bit.wav", tone(300), subtype="PCM_U8")
    write(root / "engine" / "lossless.flac", tone(200))
    write(root / "engine" / "vorbis.ogg", tone(250), format="OGG", subtype="VORBIS")
    write(root / "engine" / "mpeg.mp3", tone(350), format="MP3", subtype="MPEG_LAYER_III")
    write(root / "engine" / "apple.aiff", tone(275), format="AIFF", subtype="PCM_24")
    write(root / "engine" / "nested" / "motör_ß_引擎.wav", tone(150))
    write(root / "engine" / "silent.wav", np.zeros(16000, np.float32))
    write(root / "engine" / "no_samples.wav", np.zeros(0, np.float32))
    return root


def test_scanner_keeps_good_files_and_reports_bad_ones(messy):
    logged = []
    dataset = load_dataset(messy, FEATURES, log=logged.append, progress=False)
    assert dataset.classes == ["birds", "engine"]
    assert dataset.class_counts() == {"birds": 3, "engine": 7}
    assert dataset.audio.shape == (10, FEATURES.clip_samples)
    assert dataset.log_spec.shape == (10, 128, 128)
    assert dataset.audio.dtype == np.float32 and dataset.log_spec.dtype == np.float16
    kept = {os.path.basename(p) for p in dataset.paths}
    assert {"motör_ß_引擎.wav", "mpeg.mp3", "vorbis.ogg", "lossless.flac", "apple.aiff"} <= kept

    reasons = {s.path.name: s.reason for s in dataset.skipped}
    assert set(reasons) == {
        "corrupt.wav",
        "empty.wav",
        "notes.wav",
        "readme.txt",
        "silent.wav",
        "no_samples.wav",
    }
    assert "could not be decoded" in reasons["corrupt.wav"]
    assert "could not be decoded" in reasons["notes.wav"]
    assert "empty file" in reasons["empty.wav"]
    assert "not an audio file" in reasons["readme.txt"]
    assert "silent" in reasons["silent.wav"]
    assert "zero-length" in reasons["no_samples.wav"]
    # the report printed at the end of the scan names every skipped file and why
    report = "\n".join(logged)
    for name in reasons:
        assert name in report
    assert "skipped 6 file(s)" in report


def test_stereo_44k_is_mixed_to_mono_and_resampled(messy):
    dataset = load_dataset(messy, FEATURES, log=None, progress=False)
    index = next(i for i, p in enumerate(dataset.paths) if p.endswith("stereo_44k.wav"))
    clip = dataset.audio[index]
    # the left channel held a 0.5 sine, the right silence: the mono mix peaks at 0.25
    assert np.abs(clip).max() == pytest.approx(0.25, abs=0.01)
    spectrum = np.abs(np.fft.rfft(clip))
    peak_hz = np.argmax(spectrum) * FEATURES.sample_rate / len(clip)
    assert peak_hz == pytest.approx(440, abs=3)  # 440 Hz survives 44.1 -> 16 kHz


def test_empty_class_folder_is_an_error_naming_it(messy):
    (messy / "rain").mkdir()
    logged = []
    with pytest.raises(DataError, match=r"class folder '.*rain' has no usable audio clip"):
        load_dataset(messy, FEATURES, log=logged.append, progress=False)
    assert "corrupt.wav" in "\n".join(logged)  # the report still came out


def test_class_whose_files_are_all_broken_is_an_error(messy):
    (messy / "rain").mkdir()
    (messy / "rain" / "broken.wav").write_bytes(b"garbage")
    with pytest.raises(DataError, match="rain"):
        load_dataset(messy, FEATURES, log=None, progress=False)


def test_one_class_is_not_enough(tmp_path):
    write(tmp_path / "only" / "a.wav", tone())
    with pytest.raises(DataError, match="at least 2 classes"):
        load_dataset(tmp_path, FEATURES, log=None, progress=False)


def test_missing_folder_and_folder_without_classes(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(tmp_path / "nope", FEATURES, log=None)
    write(tmp_path / "loose.wav", tone())
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset(tmp_path, FEATURES, log=None)


def test_class_order_is_sorted_and_files_in_the_root_are_reported(tmp_path):
    for name in ("rain", "Birds", "engine"):
        write(tmp_path / name / "a.wav", tone())
    write(tmp_path / "stray.wav", tone())
    listing = scan_folder(tmp_path)
    assert listing.classes == ["Birds", "engine", "rain"]
    assert [s.reason for s in listing.skipped] == ["not inside a class folder"]


def test_manifest(tmp_path):
    write(tmp_path / "audio" / "a.wav", tone(300))
    write(tmp_path / "audio" / "b.flac", tone(900))
    write(tmp_path / "audio" / "c.wav", tone(1200))
    manifest = tmp_path / "list.csv"
    manifest.write_text(
        "path,label\naudio/a.wav,rain\naudio/b.flac,birds\naudio/c.wav,birds\n"
        f"{tmp_path / 'audio' / 'a.wav'},rain\naudio/missing.wav,rain\n"
    )
    dataset = load_dataset(manifest, FEATURES, log=None, progress=False)
    assert dataset.classes == ["birds", "rain"]
    assert dataset.class_counts() == {"birds": 2, "rain": 2}  # relative and absolute paths
    assert [s.reason for s in dataset.skipped] == ["listed on line 6 but not found"]
    assert dataset.labels.tolist() == [1, 0, 0, 1]


def test_manifest_without_header_is_an_error(tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("a.wav,rain\n")
    with pytest.raises(DataError, match="'path' and 'label' columns"):
        load_dataset(manifest, FEATURES, log=None)


def test_second_load_comes_from_the_cache_without_decoding(demo_dir, tmp_path, monkeypatch):
    first = load_dataset(demo_dir, FEATURES, cache_dir=tmp_path, log=None, progress=False)
    assert not first.from_cache

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache was valid")

    monkeypatch.setattr(sfxgan.data.dataset, "load_audio", no_decoding)
    second = load_dataset(demo_dir, FEATURES, cache_dir=tmp_path, log=None, progress=False)
    assert second.from_cache
    assert np.array_equal(first.audio, second.audio)
    assert np.array_equal(first.log_spec, second.log_spec)
    assert first.max_value == second.max_value and first.classes == second.classes

    # other feature settings are another cache entry
    with pytest.raises(AssertionError, match="decoded although"):
        load_dataset(
            demo_dir, get_preset("paper-16k").features, cache_dir=tmp_path, log=None, progress=False
        )


def test_a_changed_file_invalidates_the_cache(tmp_path):
    data = tmp_path / "data"
    write(data / "a" / "x.wav", tone(300))
    write(data / "b" / "y.wav", tone(600))
    first = load_dataset(data, FEATURES, cache_dir=tmp_path / "cache", log=None, progress=False)
    write(data / "b" / "y.wav", tone(900, seconds=0.8))
    second = load_dataset(data, FEATURES, cache_dir=tmp_path / "cache", log=None, progress=False)
    assert not second.from_cache
    assert not np.array_equal(first.audio[1], second.audio[1])


def test_crop_loudest_keeps_a_late_event(tmp_path):
    late = np.concatenate([np.zeros(24000, np.float32), tone(1000, seconds=0.3)])
    write(tmp_path / "a" / "late.wav", late)
    write(tmp_path / "a" / "early.wav", tone(500))
    write(tmp_path / "b" / "other.wav", tone(700))
    start = load_dataset(
        tmp_path, FEATURES, crop="start", use_cache=False, log=None, progress=False
    )
    assert [s.path.name for s in start.skipped] == ["late.wav"]
    assert "try --crop loudest" in start.skipped[0].reason
    loudest = load_dataset(
        tmp_path, FEATURES, crop="loudest", use_cache=False, log=None, progress=False
    )
    assert len(loudest) == 3
    index = next(i for i, p in enumerate(loudest.paths) if p.endswith("late.wav"))
    assert np.abs(loudest.audio[index]).max() > 0.4


def test_short_clips_are_zero_padded_at_the_end(tmp_path):
    write(tmp_path / "a" / "short.wav", tone(500, seconds=0.1))
    write(tmp_path / "b" / "long.wav", tone(500, seconds=3.0))
    dataset = load_dataset(tmp_path, FEATURES, use_cache=False, log=None, progress=False)
    short = dataset.audio[0]
    assert np.abs(short[:1600]).max() > 0.4 and np.abs(short[1601:]).max() == 0
    assert sf.info(tmp_path / "b" / "long.wav").frames == 48000  # the user's file is untouched


def test_a_damaged_mp3_is_skipped_as_undecodable_without_decoder_noise(tmp_path, capfd):
    """libsndfile calls a damaged MP3 'File does not exist or is not a regular file (possibly a
    pipe?)', and libmpg123 prints its resync notes to the terminal; the user is told once, in
    the skipped list, that the file could not be decoded."""
    root = tmp_path / "library"
    for name in ("birds", "rain"):
        for i in range(2):
            write(root / name / f"{name}_{i}.wav", tone(300 + 200 * i))
    good = write(tmp_path / "good.mp3", tone(350), format="MP3", subtype="MPEG_LAYER_III")
    data = good.read_bytes()
    (root / "rain" / "damaged.mp3").write_bytes(data[:200] + bytes(range(256)) * 20 + data[3000:])
    (root / "rain" / "zeros.mp3").write_bytes(b"ID3" + bytes(1000))
    capfd.readouterr()
    dataset = load_dataset(root, FEATURES, log=None, progress=False, use_cache=False)
    reasons = {s.path.name: s.reason for s in dataset.skipped}
    for name in ("damaged.mp3", "zeros.mp3"):
        assert reasons[name].startswith("could not be decoded (damaged, or not the .mp3 format")
        assert "does not exist" not in reasons[name]
    out, err = capfd.readouterr()
    assert "MPEG-Header" not in err and "resync" not in err and "ID3v2" not in err, err


def test_the_scan_says_how_many_clips_are_cut_or_padded_and_what_to_do(tmp_path):
    """tiny keeps 0.512 s: a class of 1.5 s clips is cut, one of 0.25 s clips padded; the scan
    says so per class with the amounts, and points to --crop loudest and the longer presets."""
    root = tmp_path / "library"
    for i in range(3):
        write(root / "long" / f"long_{i}.wav", tone(300, seconds=1.5))
        write(root / "short" / f"short_{i}.wav", tone(500, seconds=0.25))
    write(root / "short" / "fits.wav", tone(500, seconds=8192 / 16000))
    logged = []
    load_dataset(root, FEATURES, log=logged.append, progress=False)
    report = "\n".join(logged)
    assert "fitted to the model's 0.512 s" in report
    assert "long: 3 of 3 cut, by 0.99 s on average (up to 0.99 s)" in report
    assert "short: 3 of 4 padded, by 0.26 s on average (up to 0.26 s)" in report
    assert "--crop loudest" in report and "--preset paper-16k (1.024 s)" in report
    # the same lines when the dataset comes from the feature cache
    cached = load_dataset(root, FEATURES, log=None, progress=False)
    assert cached.from_cache and "long: 3 of 3 cut" in cached.report()
    # clips that all fit say nothing about fitting
    fits = tmp_path / "fits"
    for name in ("a", "b"):
        write(fits / name / "x.wav", tone(400, seconds=8192 / 16000))
    logged.clear()
    load_dataset(fits, FEATURES, log=logged.append, progress=False)
    assert "fitted" not in "\n".join(logged)
