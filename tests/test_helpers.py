"""The shared test helpers (tests/helpers.py) check what they claim to check."""

from __future__ import annotations

import socket
import subprocess
import threading
import time

import pytest
import soundfile as sf

from tests.helpers import (
    assert_one_line_error,
    assert_previews,
    free_port,
    tone,
    wait_for_logged_steps,
    write,
)


def _finished(returncode: int, stderr: str) -> subprocess.CompletedProcess:
    return subprocess.CompletedProcess(["sfxgan"], returncode, stdout="", stderr=stderr)


def test_a_one_line_error_passes_and_a_traceback_or_other_exit_code_fails():
    assert_one_line_error(_finished(2, "sfxgan: error: no such run: x/y\n"), "no such run", "x/y")
    with pytest.raises(AssertionError):
        assert_one_line_error(_finished(1, "sfxgan: error: no such run\n"))
    with pytest.raises(AssertionError):
        assert_one_line_error(_finished(2, "Traceback (most recent call last):\nerror: x\n"))
    with pytest.raises(AssertionError):
        assert_one_line_error(_finished(2, "sfxgan: error: no such run\n"), "missing word")


def test_tone_and_write_give_the_sound_file_asked_for(tmp_path):
    stereo = tone(freq=1000, seconds=0.25, rate=8000, level=0.25, channels=2)
    assert stereo.shape == (2000, 2) and abs(stereo).max() == pytest.approx(0.25, abs=1e-3)
    path = write(tmp_path / "new" / "folder" / "a.wav", stereo, 8000, subtype="PCM_24")
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (8000, 2, 2000, "PCM_24")


def test_a_free_port_can_be_listened_on():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))  # OSError (address in use) if something held it
        s.listen()
        assert s.getsockname() == ("127.0.0.1", port)


def _timed(call, *args, **kwargs) -> float:
    start = time.monotonic()
    call(*args, **kwargs)
    return time.monotonic() - start


def test_waiting_for_logged_steps_returns_once_the_rows_are_there(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,loss\n1,0.5\n2,0.4\n")
    # header + 2 rows are there: at once, not at the timeout
    assert _timed(wait_for_logged_steps, metrics, 2, timeout=60) < 1
    # rows written 0.5 s later (as a training in another process logs them): it waits for them
    # and returns within a poll or two (0.2 s each), far before the timeout
    later = tmp_path / "later.csv"
    writer = threading.Timer(0.5, later.write_text, args=("step,loss\n1,0.5\n2,0.4\n",))
    writer.start()
    waited = _timed(wait_for_logged_steps, later, 2, timeout=60)
    writer.join()
    assert 0.5 <= waited < 5, waited
    # too few rows, or no file: gives up after the timeout (its own clock: 10 ms of slack)
    assert 0.29 <= _timed(wait_for_logged_steps, metrics, 3, timeout=0.3) < 2
    assert 0.29 <= _timed(wait_for_logged_steps, tmp_path / "missing.csv", 1, timeout=0.3) < 2


def test_previews_pass_as_training_writes_them_and_fail_silent_clicks_or_wrong_sizes(tmp_path):
    import numpy as np

    from sfxgan.config import get_preset
    from sfxgan.data.audio import peak_normalize, write_wav
    from sfxgan.plots import save_spectrograms

    features = get_preset("tiny").features
    rate, samples = features.sample_rate, features.clip_samples
    spec = np.zeros((features.n_frames, features.n_bins), dtype=np.float32)
    sound = peak_normalize(np.random.default_rng(0).standard_normal(samples))
    click = np.zeros(samples)
    click[100] = 1.0

    def previews(folder, audio, rate=rate, panels=1):
        write_wav(folder / "rain.wav", audio, rate)
        save_spectrograms(folder / "rain.png", [("rain", spec)] * panels, features, "step 2")
        return folder

    assert_previews(previews(tmp_path / "good", sound), ["rain"], rate, samples)
    for name, folder in {
        "silent": previews(tmp_path / "silent", np.zeros(samples)),
        "a click": previews(tmp_path / "click", click),
        "short": previews(tmp_path / "short", sound[: samples // 2]),
        "another rate": previews(tmp_path / "rate", sound, rate=8000),
        "two panels": previews(tmp_path / "wide", sound, panels=2),
    }.items():
        with pytest.raises(AssertionError):
            assert_previews(folder, ["rain"], rate, samples)
            pytest.fail(f"{name} passed")
    truncated = previews(tmp_path / "truncated", sound)
    png = (truncated / "rain.png").read_bytes()
    (truncated / "rain.png").write_bytes(png[: len(png) // 2])
    with pytest.raises(OSError):  # PIL: image file is truncated
        assert_previews(truncated, ["rain"], rate, samples)
