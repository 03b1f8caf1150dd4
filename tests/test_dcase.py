"""`sfxgan generate RUN --out DIR --dcase`: the DCASE 2023 Task 7 layout and format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from sfxgan import __version__
from sfxgan.apps.dcase import (
    DCASE_SAMPLE_RATE,
    DCASE_SAMPLES,
    PEAK,
    dcase_category,
    dcase_folders,
    to_dcase_clip,
    write_dcase,
)
from sfxgan.errors import SfxganError
from sfxgan.generate import Sampler
from sfxgan.run_folder import find_checkpoint
from tests.helpers import assert_one_line_error, sfxgan, tone

# The tiny preset's 0.512 s at 16 kHz, resampled: the samples of sound in each 4 s file.
TINY_SOUND = 11_290
FAST = ("--iters", "2")  # the layout does not depend on phase iterations; the tests' time does


@pytest.fixture(scope="module")
def sampler(tiny_run) -> Sampler:
    return Sampler.from_run(tiny_run)


@pytest.fixture(scope="module")
def named_run(tiny_run, tmp_path_factory) -> Path:
    """The tiny run's checkpoint with its five classes renamed as a user's library might name
    them: 'dog_bark' and 'Rain' (DCASE categories), 'sneeze' and 'cough' (both the category
    Sneeze_Cough) and 'wind'. Class names are all the DCASE layout reads, and renaming takes a
    second where training a run on such data takes half a minute."""
    state = torch.load(find_checkpoint(tiny_run), weights_only=True)
    state["config"]["classes"] = ["dog_bark", "Rain", "sneeze", "cough", "wind"]
    path = tmp_path_factory.mktemp("named_run") / "named.pt"
    torch.save(state, path)
    return path


def wav_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


# --- the class mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, category",
    [
        ("DogBark", "DogBark"),
        ("dog_bark", "DogBark"),
        ("Dog bark", "DogBark"),
        ("dog-barks", "DogBark"),
        ("footsteps", "Footstep"),
        ("Footstep", "Footstep"),
        ("gunshot", "GunShot"),
        ("Gun Shots", "GunShot"),
        ("keyboard_typing", "Keyboard"),
        ("moving_motor_vehicle", "MovingMotorVehicle"),
        ("RAIN", "Rain"),
        ("sneeze_cough", "Sneeze_Cough"),
        ("Sneeze/Cough", "Sneeze_Cough"),
        ("sneeze", "Sneeze_Cough"),
        ("birds", None),
        ("engine", None),
        ("dog", None),
        ("rainforest", None),
    ],
)
def test_class_names_map_to_dcase_categories_by_a_small_table(name, category):
    assert dcase_category(name) == category


def test_two_classes_meaning_one_category_are_an_error_naming_both():
    with pytest.raises(SfxganError, match="'sneeze' and 'cough'.*Sneeze_Cough"):
        dcase_folders(["dog_bark", "sneeze", "cough"])
    assert dcase_folders(["dog_bark", "birds"]) == {"dog_bark": "DogBark", "birds": "birds"}


# --- the conversion ------------------------------------------------------------------------------


def test_a_short_clip_is_resampled_padded_with_silence_and_normalised_to_minus_1_dbfs():
    clip = tone(440.0, seconds=0.512, rate=16000, level=1.0)
    out = to_dcase_clip(clip, 16000)
    assert out.shape == (DCASE_SAMPLES,) and out.dtype == np.float32
    assert np.abs(out).max() == pytest.approx(PEAK, rel=1e-6)
    assert not out[TINY_SOUND:].any()  # exact digital silence after the sound
    assert abs(out[TINY_SOUND - 1]) < 1e-3  # faded out: no click where the silence begins
    expected = soxr.resample(clip, 16000, DCASE_SAMPLE_RATE, quality="HQ")
    middle = slice(1000, 10000)  # away from the fade: the resampled sound, only scaled
    gain = np.dot(out[middle], expected[middle]) / np.dot(expected[middle], expected[middle])
    # amplitude 1 -> -1 dBFS; the resampler's ringing at the tone's abrupt end (peak 1.07) is
    # under the fade, so it does not set the level
    assert np.abs(expected).max() > 1.05 and gain == pytest.approx(PEAK, rel=1e-3)
    np.testing.assert_allclose(out[middle], expected[middle] * gain, atol=1e-5)


def test_a_long_clip_keeps_its_start_and_fades_before_the_cut():
    rate = 16000
    clip = tone(300.0, seconds=65536 / rate, rate=rate)  # paper-64k: 4.096 s
    clip[:1600] *= 2.0  # a louder first 0.1 s, to see which end is kept
    out = to_dcase_clip(clip, rate)
    assert out.shape == (DCASE_SAMPLES,)
    assert np.abs(out[:2000]).max() == pytest.approx(PEAK, rel=1e-3)
    assert np.abs(out[3000:80000]).max() == pytest.approx(PEAK / 2, rel=1e-3)
    assert abs(out[-1]) < 1e-3 and np.abs(out[-2000:-400]).max() > 0.4


def test_overshoot_of_the_resampler_is_normalised_away_never_clipped():
    # alternating full-scale samples near Nyquist: the band-limited waveform peaks above 1
    rate = 16000
    n = np.arange(8192)
    clip = np.sign(np.sin(2 * np.pi * 7000 * n / rate)).astype(np.float32)
    resampled = soxr.resample(clip, rate, DCASE_SAMPLE_RATE, quality="HQ")
    assert np.abs(resampled).max() > 1.0  # the case exists
    assert np.abs(to_dcase_clip(clip, rate)).max() == pytest.approx(PEAK, rel=1e-6)
    assert not to_dcase_clip(np.zeros(8192, np.float32), rate).any()  # silence stays silence


# --- through the command -------------------------------------------------------------------------


@pytest.mark.slow
def test_the_full_default_writes_100_clips_per_class_in_the_dcase_format(tiny_run, tmp_path):
    out = tmp_path / "dcase"
    result = sfxgan("generate", tiny_run, "--out", out, "--dcase", *FAST)
    assert result.returncode == 0, result.stderr
    assert "wrote 500 clips (100 per class: birds, engine, Footstep, GunShot, Rain)" in (
        result.stdout
    )
    folders = ["Footstep", "GunShot", "Rain", "birds", "engine"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*folders, "dcase.json"])
    lines = result.stderr.strip().splitlines()
    assert any(line.startswith("generating: 100%|") for line in lines)  # the progress bar
    notes = [line for line in lines if line.strip() and not line.startswith("generating")]
    assert len(notes) == 4, result.stderr
    # which checkpoint: the fixture run trained without quality checks, so its latest
    assert notes[0].startswith("checkpoint: ") and "the run has no best checkpoint" in notes[0]
    assert notes[1].startswith("generator precision: ")  # fp32 or bf16, and why
    assert notes[2].startswith("note: 'birds', 'engine' are not DCASE 2023 Task 7 categories")
    assert notes[3].startswith("warning: the model's clips are 0.512 s long")
    expected_names = [f"{i:04d}.wav" for i in range(1, 101)]
    for folder in folders:
        assert wav_names(out / folder) == expected_names
        for path in sorted((out / folder).iterdir()):
            info = sf.info(str(path))
            assert (info.channels, info.samplerate, info.frames, info.subtype) == (
                1,
                22050,
                88200,
                "PCM_16",
            ), path
            audio, _ = sf.read(path, dtype="float32")
            peak = np.abs(audio).max()
            assert 0.85 < peak <= 1.0, path  # normalised to -1 dBFS: audible, never clipped
            assert np.sqrt(np.mean(audio[: DCASE_SAMPLE_RATE // 2] ** 2)) > 1e-3, path
            assert not audio[TINY_SOUND:].any(), path  # tiny: 0.512 s of sound, then silence

    record = json.loads((out / "dcase.json").read_text())
    assert record["complete"] is True and record["sfxgan_version"] == __version__
    assert Path(record["checkpoint"]).is_relative_to(tiny_run)
    assert (record["step"], record["weights"], record["seed"]) == (6, "ema", 0)
    assert record["phase"] == {"method": "fast-griffin-lim", "iterations": 2}
    assert record["model"] == {"sample_rate": 16000, "clip_samples": 8192, "clip_seconds": 0.512}
    assert record["format"]["sample_rate"] == 22050
    assert record["format"]["clip_samples"] == 88200
    assert record["format"]["clips_per_class"] == 100
    assert record["conversion"]["length"].startswith("padded 0.512 s -> 4 s with silence")
    assert "soxr" in record["conversion"]["resampling"]
    mapping = {c["class"]: (c["folder"], c["dcase_index"]) for c in record["classes"]}
    assert mapping == {
        "birds": ("birds", None),
        "engine": ("engine", None),
        "footsteps": ("Footstep", 1),
        "gunshots": ("GunShot", 2),
        "rain": ("Rain", 5),
    }


@pytest.mark.slow
def test_dcase_names_are_used_for_matching_classes_and_a_subset(named_run, tmp_path):
    out = tmp_path / "dcase"
    result = sfxgan(
        "generate", named_run, "--out", out, "--dcase", "--classes", "dog_bark,Rain",
        "--per-class", 3, *FAST,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "(3 per class: DogBark, Rain)" in result.stdout
    assert "note:" not in result.stderr  # every class asked is a DCASE category
    assert sorted(p.name for p in out.iterdir()) == ["DogBark", "Rain", "dcase.json"]
    for folder in ("DogBark", "Rain"):
        assert wav_names(out / folder) == ["0001.wav", "0002.wav", "0003.wav"]
    record = json.loads((out / "dcase.json").read_text())
    assert [(c["class"], c["folder"]) for c in record["classes"]] == [
        ("dog_bark", "DogBark"),
        ("Rain", "Rain"),
    ]


@pytest.mark.integration
def test_two_classes_of_one_category_are_a_one_line_error_writing_nothing(named_run, tmp_path):
    out = tmp_path / "dcase"
    result = sfxgan("generate", named_run, "--out", out, "--dcase", "--per-class", 2)
    assert_one_line_error(result, "'sneeze'", "'cough'", "Sneeze_Cough", "--classes")
    assert not out.exists()


@pytest.mark.integration
def test_an_unknown_class_is_a_one_line_error_writing_nothing(tiny_run, tmp_path):
    out = tmp_path / "dcase"
    result = sfxgan("generate", tiny_run, "--out", out, "--dcase", "--classes", "rain,thunder")
    assert_one_line_error(result, "'thunder'")
    assert not out.exists()
    result = sfxgan("generate", tiny_run, "--out", out, "--dcase", "--png")
    assert_one_line_error(result, "--png is not part of the DCASE layout")
    assert not out.exists()


@pytest.mark.slow
def test_leftover_files_are_refused_and_the_same_command_may_overwrite(sampler, tiny_run, tmp_path):
    out = tmp_path / "dcase"
    write_dcase(sampler, out, 3, ["rain"], 0, "fast-griffin-lim", 2)
    before = snapshot(out)
    # a smaller set over a larger one would leave 0003.wav in the evaluation
    result = sfxgan(
        "generate", tiny_run, "--out", out, "--dcase", "--classes", "rain", "--per-class", 2, *FAST
    )
    assert_one_line_error(result, str(out / "Rain"), "0003.wav", "--out")
    assert snapshot(out) == before  # nothing written, nothing removed
    # another command's classes in the same folder would be mixed in too
    with pytest.raises(SfxganError, match="would not overwrite"):
        write_dcase(sampler, out, 3, ["birds"], 0, "fast-griffin-lim", 2)
    assert snapshot(out) == before
    # the same command again overwrites its own files, with the same bytes
    write_dcase(sampler, out, 3, ["rain"], 0, "fast-griffin-lim", 2)
    assert snapshot(out) == before


@pytest.mark.slow
def test_the_same_seed_writes_the_same_files_and_chunks_do_not_repeat(sampler, tmp_path):
    n = 34  # more than one chunk of 32
    first = write_dcase(sampler, tmp_path / "a", n, ["gunshots"], 7, "fast-griffin-lim", 2)
    write_dcase(sampler, tmp_path / "b", n, ["gunshots"], 7, "fast-griffin-lim", 2)
    write_dcase(sampler, tmp_path / "c", n, ["gunshots"], 8, "fast-griffin-lim", 2)
    a, b, c = (snapshot(tmp_path / x / "GunShot") for x in "abc")
    assert list(first) == ["GunShot"] and len(first["GunShot"]) == n
    assert a == b
    assert all(a[name] != c[name] for name in a)  # another seed, other sounds
    assert len(set(a.values())) == n  # the second chunk draws new latents, not the first's again
    # clip i is clip i of `sfxgan generate` with the same seed, converted
    plain = sampler.generate("gunshots", n, 7, "fast-griffin-lim", 2)
    for i in (0, 31, 32, 33):
        written, _ = sf.read(first["GunShot"][i], dtype="float32")
        np.testing.assert_allclose(written, to_dcase_clip(plain[i], 16000), atol=3 / 32768)


def test_bad_requests_are_errors_before_anything_is_written(sampler, tmp_path):
    with pytest.raises(SfxganError, match="0001 to 9999"):
        write_dcase(sampler, tmp_path / "x", 10_000, None, 0, "fast-griffin-lim", 2)
    a_file = tmp_path / "file"
    a_file.write_text("not a folder")
    with pytest.raises(SfxganError, match="not a folder"):
        write_dcase(sampler, a_file, 2, None, 0, "fast-griffin-lim", 2)
    assert not (tmp_path / "x").exists()
