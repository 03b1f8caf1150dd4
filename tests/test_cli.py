"""The `sfxgan` command as a user runs it: files written, exit codes, one-line errors."""

from __future__ import annotations

import json

import pytest
import soundfile as sf

from sfxgan.apps.demo import DEMO_CLASSES
from tests.helpers import assert_one_line_error, sfxgan

# every test here runs the sfxgan command
pytestmark = pytest.mark.integration


def test_demo_data_command_writes_the_dataset(tmp_path):
    out = tmp_path / "demo"
    result = sfxgan("demo-data", out, "--per-class", 3, "--seed", 7)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(DEMO_CLASSES)
    for name in DEMO_CLASSES:
        files = sorted((out / name).glob("*.wav"))
        assert [f.name for f in files] == [f"{name}_{i:03d}.wav" for i in range(3)]
        info = sf.info(files[0])
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    assert "15 synthetic clips" in result.stdout


def test_demo_data_refuses_a_folder_holding_other_files(tmp_path):
    (tmp_path / "mine.wav").write_bytes(b"precious")
    result = sfxgan("demo-data", tmp_path)
    assert_one_line_error(result, "already holds other files")
    assert (tmp_path / "mine.wav").read_bytes() == b"precious"


def test_reconstruct_writes_sounds_pictures_and_the_spectral_convergence(demo_dir, tmp_path):
    out = tmp_path / "rec"
    result = sfxgan("reconstruct", demo_dir, "--out", out, "--per-class", 2, "--iters", 16)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["spectral_convergence"]) == set(DEMO_CLASSES)
    assert 0 < summary["mean_spectral_convergence"] < 0.35
    for name in DEMO_CLASSES:
        wavs = sorted((out / name).glob("*_reconstructed.wav"))
        assert len(wavs) == 2 and len(list((out / name).glob("*.png"))) == 2
        audio, rate = sf.read(wavs[0])
        assert rate == 16000 and audio.shape == (8192,)  # the tiny preset's 0.512 s
        assert 0.01 < abs(audio).max() <= 1.0
    # one row per class with its figures, as summary.json holds them
    assert "(lead-in 190 samples, log floor silence)" in result.stdout
    for name in DEMO_CLASSES:
        row = next(line for line in result.stdout.splitlines() if line.split()[:1] == [name])
        assert f"{summary['attack_error'][name]:.3f}" in row
        assert f"{summary['floor_db'][name]:.1f}" in row
    assert "5 classes" in result.stderr or "kept 30 clips" in result.stderr  # the scan report


def test_missing_data_folder_is_a_one_line_error(tmp_path):
    result = sfxgan("reconstruct", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert_one_line_error(result, "nowhere", "does not exist")


def test_unknown_preset_is_a_usage_error(demo_dir, tmp_path):
    result = sfxgan("reconstruct", demo_dir, "--out", tmp_path / "o", "--preset", "huge")
    assert_one_line_error(result, "huge")


def test_unwritable_output_is_a_one_line_error(demo_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = sfxgan(
        "reconstruct", demo_dir, "--out", blocker / "sub", "--per-class", 1, "--iters", 1
    )
    assert_one_line_error(result, "cannot write")
