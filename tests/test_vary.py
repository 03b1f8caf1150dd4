"""`sfxgan vary`: a sound the user brings, fitted into the generator, and takes around it.

The run is the session's tiny run (a few steps): its sounds are not good yet, but inversion is
an optimisation, and what it must do holds for any generator: come nearer the sound than random
takes do, give the fitted take at spread 0 and `generate`'s takes at spread 1, write whole
files and a record, and refuse bad input in one line. docs/vary.md has the figures on trained
runs (scripts/measure_vary.py).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
import torch

from sfxgan.apps import vary
from sfxgan.apps.vary import (
    RECORD,
    invert,
    level_matched,
    load_source,
    load_sources,
    log_spectral_distance,
    variations,
    vary_to_folder,
)
from sfxgan.dsp.finish import to_db, true_peak
from sfxgan.errors import SfxganError
from sfxgan.evaluate.judge import JudgeConfig, train_judge_on_folder
from sfxgan.generate import Sampler
from sfxgan.run_folder import judge_path
from tests.helpers import assert_one_line_error, sfxgan, write

QUICK = {"starts": 8, "latent_steps": 40, "offset_steps": 20}  # a fit in about a second


@pytest.fixture(scope="module")
def sampler(tiny_run) -> Sampler:
    return Sampler.from_run(tiny_run)


def a_sound(demo_dir, name: str = "footsteps"):
    return sorted((demo_dir / name).glob("*.wav"))[0]


def test_the_fit_is_nearer_the_sound_than_any_of_64_random_takes(sampler, demo_dir):
    source = load_source(a_sound(demo_dir), sampler)
    fit = invert(sampler, source, seed=0, **QUICK)
    assert fit.class_name in sampler.classes
    target = level_matched(sampler, source, fit.class_name)
    assert torch.equal(target, fit.target)
    z = sampler.latents(fit.class_name, 64, seed=1)
    labels = torch.full((64,), sampler.label(fit.class_name))
    random_takes = log_spectral_distance(sampler.log_spec(z, labels), target)
    assert fit.distance_db < float(random_takes.min()), (fit.distance_db, random_takes.min())
    # the record says how near each class came, and the class found came nearest
    assert set(fit.per_class_db) == set(sampler.classes)
    assert fit.per_class_db[fit.class_name] == min(fit.per_class_db.values())
    # the same seed finds the same fit
    again = invert(sampler, source, seed=0, **QUICK)
    assert torch.equal(again.latent, fit.latent) and again.class_name == fit.class_name


def test_spread_runs_from_the_fitted_take_to_generates_takes(sampler, demo_dir):
    source = load_source(a_sound(demo_dir, "rain"), sampler)
    fit = invert(sampler, source, class_name="rain", seed=0, **QUICK)
    assert fit.class_name == "rain" and list(fit.per_class_db) == ["rain"]
    at_zero = variations(sampler, fit, range(3), spread=0.0, seed=5)
    for take in at_zero:
        torch.testing.assert_close(take, fit.log_spec, atol=1e-5, rtol=0)
    at_one = variations(sampler, fit, [0, 4], spread=1.0, seed=5)
    labels = torch.full((2,), sampler.label("rain"))
    generated = sampler.log_spec(sampler.latents("rain", [0, 4], seed=5), labels)
    torch.testing.assert_close(at_one, generated, atol=1e-5, rtol=0)
    # take i is the same sound whatever else is asked, and the takes differ from each other
    between = variations(sampler, fit, range(4), spread=0.3, seed=5)
    torch.testing.assert_close(between[2], variations(sampler, fit, [2], 0.3, 5)[0])
    assert (between[0] - between[1]).abs().mean() > 1e-3
    # nearer the fit than free takes are
    near = log_spectral_distance(between, fit.log_spec).mean()
    free = log_spectral_distance(at_one, fit.log_spec).mean()
    assert near < free
    with pytest.raises(SfxganError, match="spread"):
        variations(sampler, fit, range(2), spread=1.5, seed=0)


def test_a_long_stereo_sound_at_another_rate_is_fitted_as_training_data_is(sampler, tmp_path):
    rng = np.random.default_rng(0)
    seconds, rate = 1.5, 44_100
    stereo = (0.3 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)
    path = write(tmp_path / "long take.flac", stereo, rate)
    source = load_source(path, sampler)
    assert source.audio.shape == (sampler.spec.features.clip_samples,)
    assert source.seconds == pytest.approx(seconds, abs=1e-3)
    assert "cut from 1.500 s" in source.fitted
    assert source.name == "long-take"
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration
def test_vary_writes_the_fit_the_takes_pictures_and_the_record(tiny_run, demo_dir, tmp_path):
    sound = a_sound(demo_dir, "rain")
    out = tmp_path / "out"
    result = sfxgan(
        "vary", tiny_run, sound, "--out", out, "--takes", 3, "--png", "--seed", 2, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    stem = sound.stem
    names = [f"{stem}_fit", f"{stem}_0", f"{stem}_1", f"{stem}_2"]
    for name in names:
        audio, rate = sf.read(out / f"{name}.wav")
        assert rate == 16_000 and audio.shape == (8192,)
        assert np.abs(audio).max() == pytest.approx(1.0, abs=1e-3)  # peak-normalised, as generate
        assert (out / f"{name}.png").is_file()
    record = json.loads((out / RECORD).read_text())
    assert record["format"] == "sfxgan-vary" and record["settings"]["seed"] == 2
    assert record["settings"]["spread"] == vary.DEFAULT_SPREAD
    (entry,) = record["sounds"]
    assert entry["sha256"] == hashlib.sha256(sound.read_bytes()).hexdigest()
    assert entry["class"] in {"birds", "engine", "footsteps", "gunshots", "rain"}
    assert len(entry["latent"]) == 100 and entry["distance_db"] > 0
    assert entry["files"] == [f"{name}.wav" for name in names]
    assert "judge" not in entry  # this run trained no judge
    assert "wrote 4 takes of 1 sounds" in result.stdout
    # the same command gives the same files
    again = sfxgan("vary", tiny_run, sound, "--out", tmp_path / "again", "--takes", 3, "--seed", 2)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / f"{stem}_1.wav").read_bytes() == (
        out / f"{stem}_1.wav"
    ).read_bytes()
    assert "fitted as" in again.stderr  # a line per sound unless --quiet


@pytest.mark.integration
def test_takes_for_a_session_at_48k_and_minus_16_lufs(tiny_run, demo_dir, tmp_path):
    """--rate 48000 --loudness -16 --limit: every take 48 kHz 16-bit, 0.512 s, at -16 LUFS by
    pyloudnorm with its true peak under -1 dBTP."""
    out = tmp_path / "out"
    sound = a_sound(demo_dir, "gunshots")
    result = sfxgan(
        "vary", tiny_run, sound, "--out", out, "--takes", 2, "--class", "gunshots",
        "--rate", 48_000, "--loudness", -16, "--limit", "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / RECORD).read_text())
    assert record["settings"]["finish"]["loudness"] == -16
    assert record["settings"]["finish"]["limit"] is True
    assert record["sounds"][0]["quieter"] == {}
    wavs = sorted(out.glob("*.wav"))
    assert len(wavs) == 3
    for wav in wavs:
        info = sf.info(wav)
        assert info.samplerate == 48_000 and info.subtype == "PCM_16"
        assert info.frames == 8192 * 3  # the same 0.512 s
        audio, _ = sf.read(wav)
        assert pyloudnorm.Meter(48_000).integrated_loudness(audio) == pytest.approx(-16, abs=0.5)
        assert to_db(true_peak(audio.astype(np.float32), 48_000)) <= -1.0


@pytest.mark.integration
def test_the_quieter_note_counts_every_sound_of_a_class(tiny_run, demo_dir, tmp_path):
    """Two sounds fitted in one class, a loudness no take can reach under a -20 dBTP ceiling:
    the note counts all 4 files, not one sound's 2."""
    first, second = sorted((demo_dir / "gunshots").glob("*.wav"))[:2]
    out = tmp_path / "out"
    result = sfxgan(
        "vary", tiny_run, first, second, "--out", out, "--takes", 1, "--class", "gunshots",
        "--loudness", -1, "--true-peak", -20, "--quiet",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    record = json.loads((out / RECORD).read_text())
    assert [len(s["quieter"]) for s in record["sounds"]] == [2, 2]
    assert "note: 4 takes are quieter than -1 LUFS" in result.stdout
    assert f"{first.stem} 2, {second.stem} 2" in result.stdout


@pytest.mark.integration
def test_the_runs_judge_names_the_class_of_the_sound_and_of_the_fit(tiny_run, demo_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    judge = train_judge_on_folder(demo_dir, JudgeConfig(clip_samples=8192), epochs=2, seed=0)
    judge.save(judge_path(run))
    sampler = Sampler.from_run(run)
    sources = load_sources([a_sound(demo_dir, "gunshots")], sampler)
    record = vary_to_folder(sampler, sources, tmp_path / "out", 1, seed=0, fitting=QUICK)
    (entry,) = record["sounds"]
    said = entry["judge"]
    assert said["source"]["class"] in judge.classes and said["fit"]["class"] in judge.classes
    assert 0.0 < said["source"]["confidence"] <= 1.0
    # the fit's class is among those the judge hears in the sound
    heard = vary.heard_classes(judge, sources[0], sampler.sample_rate)
    assert entry["class"] in heard and entry["classes_tried"] == heard


def test_an_interrupted_vary_keeps_the_sounds_it_finished(sampler, demo_dir, tmp_path, monkeypatch):
    sources = load_sources([a_sound(demo_dir, "rain"), a_sound(demo_dir, "birds")], sampler)
    real_invert = vary.invert
    calls = []

    def invert_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_invert(*args, **kwargs)

    monkeypatch.setattr(vary, "invert", invert_then_stop)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        vary_to_folder(sampler, sources, out, 2, seed=0, fitting=QUICK)
    record = json.loads((out / RECORD).read_text())
    assert [Path(s["source"]).name for s in record["sounds"]] == [sources[0].path.name]
    for name in record["sounds"][0]["files"]:
        assert sf.info(out / name).frames == 8192
    assert not list(out.glob("birds*")) and not list(out.glob(".*"))


@pytest.mark.integration
def test_bad_input_is_one_line_naming_the_file(tiny_run, demo_dir, tmp_path):
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("not a sound")
    silent = write(tmp_path / "silent.wav", np.zeros(8000, np.float32))
    good = a_sound(demo_dir)
    out = tmp_path / "out"
    assert_one_line_error(sfxgan("vary", tiny_run, not_audio, "--out", out), "notes.wav")
    assert_one_line_error(sfxgan("vary", tiny_run, silent, "--out", out), "silent.wav", "silent")
    missing = tmp_path / "gone.wav"
    assert_one_line_error(sfxgan("vary", tiny_run, missing, "--out", out), "gone.wav", "exist")
    assert_one_line_error(
        sfxgan("vary", tiny_run, good, "--out", out, "--class", "bells"), "bells", "rain"
    )
    no_run = tmp_path / "empty_run"
    no_run.mkdir()
    assert_one_line_error(sfxgan("vary", no_run, good, "--out", out), "empty_run")
    same_name = write(tmp_path / "other" / good.name, np.full(8000, 0.1, np.float32))
    assert_one_line_error(sfxgan("vary", tiny_run, good, same_name, "--out", out), good.stem)
    spread = sfxgan("vary", tiny_run, good, "--out", out, "--spread", "2")
    assert spread.returncode == 2 and "--spread" in spread.stderr
    assert not out.exists()  # nothing was written for any of them
