"""Generation at scale as a user meets it: numbered takes that stay the same sound whatever is
asked with them, folders filled in pieces, refusals before any work, Ctrl-C, flat memory."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from sfxgan.apps.takes import generate_to_folder
from sfxgan.errors import SfxganError
from sfxgan.evaluate.evaluation import _which_weights
from sfxgan.generate import RECORD, Sampler, read_takes_record
from tests.helpers import assert_one_line_error, sfxgan

FAST = ("--phase", "fast-griffin-lim", "--iters", "2", "--quiet")


def pcm(path) -> np.ndarray:
    return sf.read(path, dtype="int16")[0].astype(np.int32)


def assert_same_sound(a: np.ndarray, b: np.ndarray) -> None:
    # The same take from batches of other sizes: bit-identical on the machines measured; one
    # 16-bit step of slack for a convolution algorithm that another batch size might pick.
    assert a.shape == b.shape
    assert np.abs(a - b).max() <= 1


@pytest.fixture(scope="module")
def sampler(tiny_run) -> Sampler:
    return Sampler.from_run(tiny_run)


def test_take_i_is_the_same_whatever_is_asked_with_it(sampler):
    """50 takes are the first 50 of 100; a take does not depend on its batch, its neighbours,
    the batch size or whether it is asked for alone, and different takes differ."""
    hundred = sampler.generate("rain", 100, seed=3, phase="fast-griffin-lim", n_iter=2)
    fifty = sampler.generate("rain", 50, seed=3, phase="fast-griffin-lim", n_iter=2)
    np.testing.assert_allclose(fifty, hundred[:50], atol=1e-5)
    later = sampler.generate("rain", 10, seed=3, phase="fast-griffin-lim", n_iter=2, start=90)
    np.testing.assert_allclose(later, hundred[90:], atol=1e-5)
    odd = [b for b in sampler.stream("rain", [97, 5, 64], 3, "fast-griffin-lim", 2, batch_size=2)]
    assert [b.indices for b in odd] == [[97, 5], [64]]
    np.testing.assert_allclose(odd[0].audio, hundred[[97, 5]], atol=1e-5)
    np.testing.assert_allclose(odd[1].audio, hundred[[64]], atol=1e-5)
    z = sampler.latents("rain", 100, seed=3)
    assert len({tuple(row.tolist()) for row in z}) == 100
    assert not np.allclose(sampler.latents("rain", 1, seed=4), z[:1])
    assert not np.allclose(sampler.latents("birds", 1, seed=3), z[:1])


def test_bf16_takes_are_fp32_takes_up_to_rounding_and_the_same_in_any_request(tiny_run):
    """--precision bf16 (what auto picks on a CPU with native bfloat16): take i does not
    depend on its batch, and its spectrogram is fp32's take i up to bf16 rounding, far nearer
    it than any other take."""
    sampler = Sampler.from_run(tiny_run)
    assert sampler.precision == "fp32"  # the library's default: exact, as export and studio
    assert sampler.use_precision("bf16") == "asked" and sampler.precision == "bf16"
    audio, bf16 = sampler.generate("rain", 40, seed=3, n_iter=2, return_spec=True)
    some = sampler.generate("rain", 10, seed=3, n_iter=2, start=30)
    np.testing.assert_allclose(some, audio[30:], atol=1e-5)
    odd = list(sampler.stream("rain", [37, 2], 3, "fast-griffin-lim", 2, batch_size=1))
    np.testing.assert_allclose(np.concatenate([b.audio for b in odd]), audio[[37, 2]], atol=1e-5)

    sampler.use_precision("fp32")
    fp32 = sampler.generate("rain", 40, seed=3, n_iter=2, return_spec=True)[1]
    rounding = np.abs(bf16 - fp32).mean(axis=(1, 2))  # (40,) take i against take i
    other = np.abs(bf16 - np.roll(fp32, 1, axis=0)).mean(axis=(1, 2))  # against take i - 1
    assert rounding.max() > 0  # bf16 did run
    assert rounding.max() < 0.2 * other.min(), (rounding.max(), other.min())
    with pytest.raises(SfxganError, match="unknown precision 'fp8'"):
        sampler.use_precision("fp8")


def test_stream_holds_one_batch_and_refuses_what_memory_cannot_hold(sampler):
    batches = list(
        sampler.stream("birds", 10, seed=0, phase="fast-griffin-lim", n_iter=2, batch_size=4)
    )
    assert [len(b.indices) for b in batches] == [4, 4, 2]
    assert batches[0].audio.shape == (4, sampler.spec.features.clip_samples)
    assert batches[0].log_spec.shape == (4, *sampler.spec.model.spectrogram_shape())
    with pytest.raises(SfxganError, match="need about .* GB but only"):
        sampler.generate("birds", n=10**9)  # 32 TB of audio: refused before any is made
    with pytest.raises(SfxganError, match="batches of 1000000000 clips need"):
        next(sampler.stream("birds", 10, batch_size=10**9))
    with pytest.raises(SfxganError, match="latents of 1000000000000 clips"):
        sampler.latents("birds", 10**12, 0)


@pytest.mark.integration
def test_a_folder_is_filled_in_pieces_and_never_overwritten(tiny_run, tmp_path):
    out = tmp_path / "takes"
    first = sfxgan("generate", tiny_run, "--out", out, "--classes", "rain", "--per-class", 4, *FAST)
    assert first.returncode == 0, first.stderr
    assert "takes 0-3 of rain" in first.stdout
    record = json.loads((out / RECORD).read_text())
    assert record["complete"] and record["takes"] == {"rain": 4}
    settings = record["settings"]
    assert (settings["seed"], settings["phase"], settings["iterations"]) == (
        0,
        "fast-griffin-lim",
        2,
    )
    assert settings["weights"] == "ema" and settings["step"] == 6 and settings["model"]
    assert record["versions"]["torch"] and record["versions"]["sfxgan"]
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "rain").iterdir()}

    # the same command asking for more writes only the missing takes, and says so
    more = sfxgan("generate", tiny_run, "--out", out, "--classes", "rain", "--per-class", 6, *FAST)
    assert more.returncode == 0, more.stderr
    assert "wrote 2 clips" in more.stdout and "4 were there already" in more.stdout
    for name, (mtime, data) in before.items():
        path = out / "rain" / name
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data
    # --start continues a set; a fresh folder gets the same takes under the same numbers
    cont = sfxgan(
        "generate",
        tiny_run,
        "--out",
        out,
        "--classes",
        "rain",
        "--per-class",
        2,
        "--start",
        6,
        *FAST,
    )
    assert cont.returncode == 0 and "takes 6-7 of rain" in cont.stdout, cont.stderr
    fresh = tmp_path / "fresh"
    result = sfxgan(
        "generate", tiny_run, "--out", fresh, "--classes", "rain", "--per-class", 8, *FAST
    )
    assert result.returncode == 0, result.stderr
    for i in range(8):
        assert_same_sound(
            pcm(out / "rain" / f"rain_{i}.wav"), pcm(fresh / "rain" / f"rain_{i}.wav")
        )
    again = sfxgan("generate", tiny_run, "--out", out, "--classes", "rain", "--per-class", 8, *FAST)
    assert again.returncode == 0 and "nothing to write" in again.stdout
    # takes of the other precision are other takes: refused, named
    precision = read_takes_record(out)["settings"]["precision"]
    other_precision = "fp32" if precision == "bf16" else "bf16"
    asked = ("--classes", "rain", "--precision", other_precision)
    assert_one_line_error(
        sfxgan("generate", tiny_run, "--out", out, *asked, *FAST),
        f"precision {precision}, where this command has {other_precision}",
    )

    # takes of other settings are refused, named old and new, and nothing changes
    other = sfxgan("generate", tiny_run, "--out", out, "--classes", "rain", "--seed", 1, *FAST)
    assert_one_line_error(other, "holds 8 takes", "seed 0, where this command has 1", "--overwrite")
    assert (out / "rain" / "rain_0.wav").read_bytes() == before["rain_0.wav"][1]
    # --overwrite replaces the set: the old takes go, so that no evaluation mixes the two
    replaced = sfxgan(
        "generate",
        tiny_run,
        "--out",
        out,
        "--classes",
        "rain",
        "--seed",
        1,
        "--per-class",
        3,
        "--overwrite",
        *FAST,
    )
    assert replaced.returncode == 0, replaced.stderr
    assert "8 files of the earlier set removed" in replaced.stdout
    assert sorted(p.name for p in (out / "rain").iterdir()) == [f"rain_{i}.wav" for i in range(3)]
    assert read_takes_record(out)["settings"]["seed"] == 1
    assert pcm(out / "rain" / "rain_0.wav").tolist() != pcm(fresh / "rain" / "rain_0.wav").tolist()

    # audio that is not a take of the folder, and takes with no record, are refused
    stray = out / "rain" / "field_recording.wav"
    stray.write_bytes((fresh / "rain" / "rain_0.wav").read_bytes())
    assert_one_line_error(
        sfxgan("generate", tiny_run, "--out", out, *FAST), "field_recording.wav", "not a take"
    )
    stray.unlink()
    (out / RECORD).unlink()
    assert_one_line_error(
        sfxgan("generate", tiny_run, "--out", out, "--classes", "rain", *FAST),
        "no record of what made them",
        "--overwrite",
    )


@pytest.mark.integration
def test_requests_that_cannot_be_met_are_refused_before_any_work(tiny_run, tmp_path):
    out = tmp_path / "takes"
    disk = sfxgan("generate", tiny_run, "--out", out, "--per-class", 10**9, *FAST)
    assert_one_line_error(disk, "need about", "GB free", "--per-class")
    memory = sfxgan("generate", tiny_run, "--out", out, "--batch-size", 10**9, *FAST)
    assert_one_line_error(memory, "batches of 1000000000 clips", "of memory is available")
    dcase = sfxgan("generate", tiny_run, "--out", out, "--dcase", "--start", 5, *FAST)
    assert_one_line_error(dcase, "--start")
    assert not out.exists()


def test_evaluate_reads_the_weights_from_the_record(sampler, tmp_path):
    generate_to_folder(sampler, tmp_path, 1, ["rain"], 0, "fast-griffin-lim", 2)
    record = read_takes_record(tmp_path)
    assert _which_weights(record, None, tmp_path) is True  # the run's moving average made them
    assert _which_weights(None, None, tmp_path) is True  # no record: the default
    assert _which_weights(None, False, tmp_path) is False  # no record: --no-ema says
    with pytest.raises(SfxganError, match="moving-average weights .*drop --no-ema"):
        _which_weights(record, False, tmp_path)
    raw = Sampler.from_run(sampler.checkpoint, ema=False)
    assert raw.fingerprint() != sampler.fingerprint()
    generate_to_folder(raw, tmp_path / "raw", 1, ["rain"], 0, "fast-griffin-lim", 2)
    assert _which_weights(read_takes_record(tmp_path / "raw"), None, tmp_path) is False
    (tmp_path / RECORD).write_text("{not json")
    with pytest.raises(SfxganError, match="not a readable record"):
        read_takes_record(tmp_path)


@pytest.mark.integration
def test_evaluate_no_ema_against_the_record_is_a_one_line_error(tiny_run, demo_dir, tmp_path):
    out = tmp_path / "takes"
    assert sfxgan("generate", tiny_run, "--out", out, "--per-class", 1, *FAST).returncode == 0
    result = sfxgan(
        "evaluate",
        "--real",
        demo_dir,
        "--generated",
        out,
        "--out",
        tmp_path / "report",
        "--no-ema",
        "--quiet",
    )
    assert_one_line_error(result, "moving-average weights", "drop --no-ema")


@pytest.mark.integration
def test_ctrl_c_keeps_every_finished_take_and_a_rerun_writes_the_rest(tiny_run, tmp_path):
    out = tmp_path / "takes"
    args = [
        sys.executable,
        "-m",
        "sfxgan",
        "generate",
        str(tiny_run),
        "--out",
        str(out),
        "--classes",
        "rain",
        "--per-class",
        "400",
        "--batch-size",
        "8",
        *FAST,
    ]
    # a shell starts background jobs with Ctrl-C ignored, and a child inherits that: give the
    # command Ctrl-C as a terminal would, whatever started the test run
    process = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("rain/rain_*.wav"))) < 20:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted" in stdout and "run the same command again" in stdout
    takes = sorted(out.glob("rain/*"))
    assert 20 <= len(takes) < 400
    assert all(p.suffix == ".wav" and not p.name.startswith(".") for p in takes)  # no partial
    for path in takes:
        assert sf.info(path).frames == 8192  # each file whole
    record = read_takes_record(out)
    assert not record["complete"] and record["takes"]["rain"] == len(takes)
    rest = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert rest.returncode == 0, rest.stderr
    assert f"wrote {400 - len(takes)} clips" in rest.stdout
    assert len(list(out.glob("rain/rain_*.wav"))) == 400 and read_takes_record(out)["complete"]


@pytest.mark.slow
@pytest.mark.integration
def test_memory_stays_flat_whatever_the_number_of_clips(tiny_run, tmp_path):
    """Peak memory of 100 and of 1 500 clips differs by much less than 1 400 clips would take
    (about 140 MB for their audio and spectrograms alone)."""
    code = (
        "import resource, sys; from sfxgan.cli import main; rc = main(sys.argv[1:]); "
        "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    peaks = []
    for n in (100, 1500):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "generate",
                str(tiny_run),
                "--out",
                str(tmp_path / str(n)),
                "--classes",
                "rain",
                "--per-class",
                str(n),
                *FAST,
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        peaks.append(int(result.stdout.split("PEAK")[-1]) / 1024)  # MB
        assert len(list((tmp_path / str(n) / "rain").iterdir())) == n
    assert peaks[1] - peaks[0] < 30, peaks


def test_the_folder_scan_knows_takes_from_other_audio(tmp_path):
    """rain/rain_7.wav is take 7; rain_007.wav, another name or audio in a sub-folder of a class
    (which an evaluation would read) is not a take and is named as foreign."""
    from sfxgan.apps.takes import _scan

    (tmp_path / "rain" / "old").mkdir(parents=True)
    for name in ("rain_7.wav", "rain_7.png", "rain_0.wav", ".rain_1.wav.123-ab.tmp"):
        (tmp_path / "rain" / name).write_bytes(b"")
    for name in ("rain_007.wav", "birds_1.wav", "old/rain_2.wav"):
        (tmp_path / "rain" / name).write_bytes(b"")
    takes, foreign = _scan(tmp_path)
    assert takes == {"rain": {7: {".wav", ".png"}, 0: {".wav"}}}
    assert sorted(p.relative_to(tmp_path).as_posix() for p in foreign) == [
        "rain/birds_1.wav",
        "rain/old/rain_2.wav",
        "rain/rain_007.wav",
    ]
