"""The shared test helpers (tests/helpers.py) check what they claim to check."""

from __future__ import annotations

import socket
import subprocess

import pytest
import soundfile as sf

from tests.helpers import assert_one_line_error, free_port, tone, wait_for_logged_steps, write


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
        s.listen()


def test_waiting_for_logged_steps_returns_once_the_rows_are_there(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("step,loss\n1,0.5\n2,0.4\n")
    wait_for_logged_steps(metrics, 2, timeout=60)  # returns at once: header + 2 rows
    wait_for_logged_steps(tmp_path / "missing.csv", 1, timeout=0.3)  # gives up after the timeout
