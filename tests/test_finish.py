"""Takes ready for a session (dsp.finish): the rate, the loudness and the true peak a designer's
meter shows, no DC and no click at the end, and today's files unchanged when nothing is asked."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from sfxgan.apps.dcase import DCASE_SAMPLE_RATE, DCASE_SAMPLES, write_dcase
from sfxgan.apps.takes import generate_to_folder
from sfxgan.cli import main
from sfxgan.data.audio import write_wav
from sfxgan.dsp.finish import (
    LOUDNESS_EXTRA,
    Finish,
    finish_clip,
    to_db,
    to_loudness,
    true_peak,
)
from sfxgan.errors import SfxganError
from sfxgan.evaluate.evaluation import evaluate
from sfxgan.evaluate.judge import JudgeConfig, train_judge_on_folder
from sfxgan.generate import Sampler, read_takes_record
from tests.helpers import assert_one_line_error, sfxgan, tone

FAST = ("--phase", "fast-griffin-lim", "--iters", "2", "--quiet")
RATE = 16_000
CLIP = 8192  # the tiny preset's 0.512 s


def lufs(audio: np.ndarray, rate: int) -> float:
    """What a designer's meter says: pyloudnorm's BS.1770-4 integrated loudness."""
    return pyloudnorm.Meter(rate).integrated_loudness(np.asarray(audio, dtype=np.float64))


def noise(seconds: float = CLIP / RATE, level: float = 0.3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def click(seconds: float = CLIP / RATE) -> np.ndarray:
    """A 3 ms burst, then silence: a take whose peak is far above its loudness."""
    audio = np.zeros(round(seconds * RATE), np.float32)
    audio[:48] = noise(0.003, level=0.5, seed=1)
    return audio


@pytest.fixture(scope="module")
def sampler(tiny_run) -> Sampler:
    return Sampler.from_run(tiny_run)


# --- the meter ----------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [16_000, 48_000])
def test_the_true_peak_is_found_between_the_samples(rate):
    """A sine at a quarter of the rate, 45 degrees off the samples: every sample is at 0.707
    of its crest, which the true peak finds (BS.1770 annex 2). It rises and falls over 2000
    samples: a sine switched on at once rings past its crest where it starts."""
    n = np.arange(rate // 2)
    ramp = np.minimum(1.0, np.minimum(n, n[::-1]) / 2000)
    sine = (ramp * np.sin(2 * np.pi * n / 4 + np.pi / 4)).astype(np.float32)
    assert np.abs(sine).max() == pytest.approx(np.sqrt(0.5), rel=1e-6)
    assert to_db(true_peak(sine, rate)) == pytest.approx(0.0, abs=0.02)


# --- what a finished take is ---------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8_000, 44_100, 48_000])
def test_a_finished_take_has_no_dc_ends_at_zero_and_keeps_its_length_in_seconds(rate):
    clip = 0.5 * tone(440, CLIP / RATE) + 0.2  # a DC offset of 0.2
    done = finish_clip(clip, RATE, Finish.session(rate=rate))
    assert done.sample_rate == rate
    assert abs(len(done.audio) - CLIP * rate / RATE) <= 1  # the same seconds, to a sample
    assert done.audio[-1] == 0.0  # the fade ends on zero: no click
    assert abs(done.audio.mean()) < 1e-3  # the offset is gone (it was 0.4 of the peak)
    assert np.abs(done.audio).max() == pytest.approx(1.0, abs=1e-6)  # peak-normalised
    # the fade's 5 ms and only those: 10 ms before the end the tone is as it was
    body = done.audio[: -round(0.005 * rate)]
    assert np.abs(body[-round(0.005 * rate) :]).max() > 0.9


def test_resampling_adds_nothing_above_the_models_nyquist():
    """A 48 kHz take of a 16 kHz model: its sound still ends at 8 kHz (as the docs say)."""
    done = finish_clip(noise(), RATE, Finish.session(rate=48_000))
    # a window, so that the take's abrupt start does not smear over every frequency
    power = np.abs(np.fft.rfft(done.audio * np.hanning(len(done.audio)))) ** 2
    freqs = np.fft.rfftfreq(len(done.audio), 1 / 48_000)
    above = power[freqs > 8_100].sum() / power[freqs < 7_900].sum()
    assert 10 * np.log10(above) < -100  # measured -137 dB


def test_a_sustained_take_reaches_the_loudness_asked_under_the_ceiling():
    done = finish_clip(noise(), RATE, Finish.session(rate=48_000, loudness=-23))
    assert lufs(done.audio, 48_000) == pytest.approx(-23, abs=0.05)
    assert done.loudness == pytest.approx(-23, abs=0.05) and not done.quieter
    assert to_db(true_peak(done.audio, 48_000)) <= -1.0


def test_a_take_the_ceiling_holds_down_says_how_loud_it_is():
    """A click cannot reach -16 LUFS with its true peak under -1 dBTP: it is held at the
    ceiling, and its figure is what a meter measures."""
    done = finish_clip(click(), RATE, Finish.session(loudness=-16))
    measured = lufs(done.audio, RATE)
    assert measured < -20
    assert done.quieter and done.loudness == pytest.approx(measured, abs=0.01)
    assert done.short_by == pytest.approx(-16 - measured, abs=0.01)
    assert to_db(true_peak(done.audio, RATE)) == pytest.approx(-1.0, abs=0.02)
    assert to_db(true_peak(done.audio, RATE)) <= -1.0
    lower = finish_clip(click(), RATE, Finish.session(loudness=-16, true_peak=-6))
    assert to_db(true_peak(lower.audio, RATE)) == pytest.approx(-6.0, abs=0.02)


def hit(decay_s: float = 0.1) -> np.ndarray:
    """A drum-like hit: noise decaying by e every `decay_s`, its crest far above its loudness."""
    t = np.arange(CLIP) / RATE
    return (noise() * np.exp(-t / decay_s)).astype(np.float32)


def test_limit_brings_a_hit_to_the_loudness_asked_under_the_ceiling():
    """--limit: a hit that the ceiling held down reaches -16 LUFS by a meter, its true peak
    still at most -1 dBTP, and the limiter works on its loud start only: from 0.3 s on the take
    is the plain take times one gain (no pumping in what was under the ceiling)."""
    plain = finish_clip(hit(), RATE, Finish.session(rate=48_000, loudness=-16))
    done = finish_clip(hit(), RATE, Finish.session(rate=48_000, loudness=-16, limit=True))
    assert plain.quieter and not done.quieter
    assert lufs(done.audio, 48_000) == pytest.approx(-16, abs=0.1)
    assert done.loudness == pytest.approx(lufs(done.audio, 48_000), abs=0.01)
    assert to_db(true_peak(done.audio, 48_000)) <= -1.0
    tail = slice(round(0.3 * 48_000), round(0.45 * 48_000))
    after, before = done.audio[tail], plain.audio[tail]
    residual = after - (np.dot(after, before) / np.dot(before, before)) * before
    assert np.sqrt(np.mean(residual**2)) < 0.01 * np.sqrt(np.mean(after**2))
    # a 3 ms click, or a hit of 50 ms, would need more than the limiter's depth: they stay
    # quieter, and say so, never quieter than without the limiter
    for sound in (click(), hit(0.05)):
        held = finish_clip(sound, RATE, Finish.session(loudness=-16))
        tried = finish_clip(sound, RATE, Finish.session(loudness=-16, limit=True))
        assert tried.quieter and tried.loudness >= held.loudness - 0.01
        assert to_db(true_peak(tried.audio, RATE)) <= -1.0
    # a take under the ceiling is not limited at all
    sustained = Finish.session(rate=48_000, loudness=-23)
    same = finish_clip(noise(), RATE, dataclasses.replace(sustained, limit=True))
    np.testing.assert_array_equal(same.audio, finish_clip(noise(), RATE, sustained).audio)
    with pytest.raises(SfxganError, match="--limit brings takes to --loudness"):
        Finish.session(rate=48_000, limit=True)


def test_a_silent_take_stays_silent():
    done = to_loudness(np.zeros(CLIP, np.float32), RATE, -16, -1)
    assert not done.audio.any() and done.loudness is None and done.quieter


def test_what_no_option_asks_is_todays_take_and_each_option_finishes():
    assert Finish.session() == Finish() and Finish().is_default
    asked = Finish.session(rate=48_000)
    assert (asked.remove_dc, asked.fade_ms, asked.loudness) == (True, 5.0, None)
    assert Finish.session(fade_ms=0).remove_dc and not Finish.session(fade_ms=0).fade_ms
    assert not Finish.session(loudness=-16, keep_dc=True).remove_dc
    assert Finish.from_record(None) == Finish()  # a record from before finishing existed
    assert Finish.from_record(asked.record()) == asked


@pytest.mark.parametrize(
    "finish, model, message",
    [
        (Finish.session(rate=100), (), "--rate must be from 8000 to 192000 Hz, not 100"),
        (Finish.session(loudness=5), (), "--loudness must be from -60 to 0 LUFS, not 5"),
        (Finish.session(loudness=float("nan")), (), "--loudness must be from -60 to 0"),
        (Finish.session(loudness=-16, true_peak=3), (), "--true-peak must be from -20 to 0"),
        (Finish.session(fade_ms=-1), (), "--fade-ms must be 0 or more"),
        (Finish.session(fade_ms=600), (RATE, CLIP), "from 0 to the clip's 512 ms, not 600"),
        (Finish.session(loudness=-16), (RATE, 4000), "250 ms, shorter than the 400 ms blocks"),
    ],
)
def test_settings_out_of_range_are_refused(finish, model, message):
    with pytest.raises(SfxganError, match=message.replace("(", r"\(")):
        finish.check(*model)


def test_a_true_peak_without_a_loudness_is_refused():
    with pytest.raises(SfxganError, match="--true-peak is the ceiling of --loudness"):
        Finish.session(true_peak=-2)


def test_loudness_without_pyloudnorm_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyloudnorm", None)  # `import pyloudnorm` fails
    with pytest.raises(SfxganError, match=r"pip install 'sfxgan\[loudness\]'"):
        Finish.session(loudness=-16).check()
    Finish.session(rate=48_000).check()  # the rest needs no pyloudnorm


# --- generate's folder of takes -------------------------------------------------------------------


def test_default_takes_are_todays_files_byte_for_byte(sampler, tmp_path):
    """No finishing asked: each file is the sampler's peak-normalised clip written as 16-bit
    PCM at the model's rate, as generate wrote it before finishing existed."""
    generate_to_folder(sampler, tmp_path / "now", 3, ["rain"], 0, "fast-griffin-lim", 2)
    generate_to_folder(
        sampler, tmp_path / "asked", 3, ["rain"], 0, "fast-griffin-lim", 2, finish=Finish()
    )
    clips = sampler.generate("rain", 3, seed=0, phase="fast-griffin-lim", n_iter=2)
    for i, clip in enumerate(clips):
        before = write_wav(tmp_path / "before" / f"rain_{i}.wav", clip, RATE).read_bytes()
        assert (tmp_path / "now" / "rain" / f"rain_{i}.wav").read_bytes() == before
        assert (tmp_path / "asked" / "rain" / f"rain_{i}.wav").read_bytes() == before
    record = read_takes_record(tmp_path / "now")
    assert record["settings"]["finish"] == Finish().record() and "quieter" not in record
    finished = tmp_path / "finished"
    fade = Finish.session(fade_ms=5)
    generate_to_folder(sampler, finished, 1, ["rain"], 0, "fast-griffin-lim", 2, finish=fade)
    now = (tmp_path / "now" / "rain" / "rain_0.wav").read_bytes()
    assert (finished / "rain" / "rain_0.wav").read_bytes() != now


def test_a_folder_from_before_finishing_goes_on_being_filled(sampler, tmp_path):
    """A generated.json without a finish (written by an earlier version) is today's takes: the
    same request adds the missing ones; a finished request is refused as other settings."""
    generate_to_folder(sampler, tmp_path, 1, ["rain"], 0, "fast-griffin-lim", 2)
    record = json.loads((tmp_path / "generated.json").read_text())
    del record["settings"]["finish"]
    (tmp_path / "generated.json").write_text(json.dumps(record))
    more = generate_to_folder(sampler, tmp_path, 2, ["rain"], 0, "fast-griffin-lim", 2)
    assert more.written == {"rain": 1} and more.present == {"rain": 1}
    with pytest.raises(SfxganError, match="made with finish 'peak-normalised, as the model"):
        generate_to_folder(
            sampler,
            tmp_path,
            2,
            ["rain"],
            0,
            "fast-griffin-lim",
            2,
            finish=Finish.session(fade_ms=5),
        )


def test_the_record_keeps_the_quieter_takes_of_every_request(sampler, tmp_path):
    """A folder filled in two requests lists the takes held down in both (a -1 LUFS target
    is out of reach of nearly every take)."""
    finish = Finish.session(loudness=-1)
    first = generate_to_folder(
        sampler, tmp_path, 2, ["rain"], 0, "fast-griffin-lim", 2, finish=finish
    )
    second = generate_to_folder(
        sampler, tmp_path, 4, ["rain"], 0, "fast-griffin-lim", 2, finish=finish
    )
    held = {**first.quieter.get("rain", {}), **second.quieter.get("rain", {})}
    assert sorted(held) == [0, 1, 2, 3]  # two from each request
    listed = read_takes_record(tmp_path)["quieter"]["rain"]
    assert sorted(map(int, listed)) == [0, 1, 2, 3]
    for take in held:
        audio = sf.read(tmp_path / "rain" / f"rain_{take}.wav", dtype="float32")[0]
        assert listed[str(take)] == pytest.approx(lufs(audio, RATE), abs=0.05)
        assert listed[str(take)] < -2


@pytest.mark.integration
def test_session_takes_from_the_command(tiny_run, tmp_path):
    """--rate 48000 --loudness -16: 48 kHz 16-bit files of the same seconds, at -16 LUFS by
    pyloudnorm or, where the -1 dBTP ceiling holds a take down, listed as quieter; no DC, no
    click at the end; generated.json says how they were finished."""
    out = tmp_path / "session"
    args = ("--out", out, "--classes", "rain,birds", "--per-class", 3, "--rate", 48000)
    result = sfxgan("generate", tiny_run, *args, "--loudness", -16, *FAST)
    assert result.returncode == 0, result.stderr
    record = read_takes_record(out)
    assert record["settings"]["finish"] == {
        "rate": 48000,
        "loudness": -16.0,
        "true_peak": -1.0,
        "remove_dc": True,
        "fade_ms": 5.0,
        "limit": False,
    }
    assert "48000 Hz, -16 LUFS under -1 dBTP" in record["files"]
    quieter = record["quieter"]
    reached = 0
    for name in ("rain", "birds"):
        for i in range(3):
            path = out / name / f"{name}_{i}.wav"
            info = sf.info(path)
            assert (info.samplerate, info.subtype, info.channels) == (48000, "PCM_16", 1)
            assert abs(info.frames / 48000 - CLIP / RATE) <= 1 / 48000
            audio = sf.read(path, dtype="float32")[0]
            pcm = sf.read(path, dtype="int16")[0]
            assert pcm[-1] == 0 and abs(audio.mean()) < 1e-3
            assert to_db(true_peak(audio, 48000)) <= -1.0
            measured = lufs(audio, 48000)
            if str(i) in quieter.get(name, {}):
                assert measured < -16 + 0.5
                assert quieter[name][str(i)] == pytest.approx(measured, abs=0.05)
            else:
                assert measured == pytest.approx(-16, abs=0.5)
                reached += 1
    assert reached  # not every take held down: the check above measured some
    assert ("quieter than -16 LUFS" in result.stdout) == bool(quieter)

    # the same request again has nothing to write; another finish is other settings
    again = sfxgan("generate", tiny_run, *args, "--loudness", -16, *FAST)
    assert again.returncode == 0 and "nothing to write" in again.stdout, again.stderr
    plain = sfxgan("generate", tiny_run, "--out", out, "--classes", "rain", *FAST)
    assert_one_line_error(
        plain,
        "holds 6 takes made with finish 'at 48000 Hz, -16 LUFS under -1 dBTP, DC removed, 5 ms "
        "fade-out', where this command has 'peak-normalised, as the model made them'",
        "--overwrite",
    )


@pytest.mark.parametrize(
    "options, message",
    [
        (("--rate", "100"), "--rate must be from 8000 to 192000 Hz, not 100"),
        (("--loudness", "+5"), "--loudness must be from -60 to 0 LUFS, not 5"),
        (("--true-peak", "-2"), "--true-peak is the ceiling of --loudness"),
        (("--limit",), "--limit brings takes to --loudness"),
        (("--dcase", "--rate", "48000"), "--rate does not apply to --dcase"),
    ],
)
def test_bad_finishing_options_are_one_line_errors(options, message, tmp_path, capsys):
    # refused before the run is read: no run is needed to meet them
    code = main(["generate", str(tmp_path / "run"), "--out", str(tmp_path / "out"), *options])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("sfxgan: error:") and message in err[-1]
    assert not (tmp_path / "out").exists()


def test_loudness_without_pyloudnorm_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pyloudnorm", None)
    code = main(["generate", str(tmp_path / "run"), "--out", str(tmp_path), "--loudness", "-16"])
    assert code == 2 and LOUDNESS_EXTRA in capsys.readouterr().err.splitlines()[-1]


# --- the DCASE layout and the evaluation ----------------------------------------------------------


def test_dcase_files_take_the_loudness_and_keep_their_format(sampler, tmp_path):
    out = tmp_path / "dcase"
    finish = Finish.session(loudness=-23)
    write_dcase(sampler, out, 2, ["rain"], 0, "fast-griffin-lim", 2, finish=finish)
    record = json.loads((out / "dcase.json").read_text())
    assert (
        record["finish"] == finish.record() and "-23 LUFS" in record["conversion"]["normalisation"]
    )
    for name in ("0001.wav", "0002.wav"):
        info = sf.info(out / "Rain" / name)
        assert (info.samplerate, info.frames, info.subtype) == (
            DCASE_SAMPLE_RATE,
            DCASE_SAMPLES,
            "PCM_16",
        )
        audio = sf.read(out / "Rain" / name, dtype="float32")[0]
        if name not in record["quieter"].get("Rain", {}):
            assert lufs(audio, DCASE_SAMPLE_RATE) == pytest.approx(-23, abs=0.5)
        assert to_db(true_peak(audio, DCASE_SAMPLE_RATE)) <= -1.0


@pytest.mark.integration
def test_a_finished_folder_evaluates_as_the_models_takes_do(sampler, demo_dir, tmp_path):
    """evaluate reads 48 kHz, loudness-normalised takes at its judge's rate: the judge hears
    the same sounds in them as in the model's own takes."""
    plain, session = tmp_path / "plain", tmp_path / "session"
    generate_to_folder(sampler, plain, 4, None, 0, "fast-griffin-lim", 2)
    finish = Finish.session(rate=48_000, loudness=-16)
    generate_to_folder(sampler, session, 4, None, 0, "fast-griffin-lim", 2, finish=finish)
    judge = train_judge_on_folder(demo_dir, JudgeConfig(clip_samples=CLIP), epochs=5, seed=0)
    a = evaluate(demo_dir, plain, judge=judge, progress=False, log=None).metrics
    b = evaluate(demo_dir, session, judge=judge, progress=False, log=None).metrics
    assert b["generated_by"]["finish"] == finish.record()
    for name, row in b["per_class"].items():
        assert row["n_generated"] == 4
        assert row["class_fit"] == pytest.approx(a["per_class"][name]["class_fit"], abs=0.25)
