"""Run folders written by an earlier sfxgan keep working: they load, generate and resume.

tests/fixtures/run_v0_1 was written by sfxgan 0.1 (commit 4b81855) with
tests/fixtures/make_run_v0_1.py: the tiny preset with narrow layers, trained for 2 steps. A
change that cannot read it strands every run users have trained; such a change needs a
migration with a one-line message instead, and a test of that here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sfxgan.apps.demo import DEMO_CLASSES
from sfxgan.generate import Sampler
from sfxgan.run_folder import load_checkpoint
from sfxgan.training.trainer import train
from tests.helpers import sfxgan

FIXTURES = Path(__file__).parent / "fixtures"
RUN_V0_1 = FIXTURES / "run_v0_1"
CLIP_SAMPLES = 8192  # the tiny preset's 0.512 s at 16 kHz
FAST = ["--iters", "2"]


@pytest.fixture
def old_run(tmp_path) -> Path:
    """A copy of the fixture, so that nothing a test writes changes the committed files."""
    return Path(shutil.copytree(RUN_V0_1, tmp_path / "run_v0_1"))


def test_the_fixture_is_what_version_0_1_wrote():
    config = json.loads((RUN_V0_1 / "config.json").read_text())
    assert config["sfxgan_version"] == "0.1.0" and config["preset"] == "tiny"
    assert sorted(p.name for p in (RUN_V0_1 / "checkpoints").iterdir()) == [
        "latest.pt",
        "step_0000002.pt",
    ]
    assert (RUN_V0_1 / "metrics.csv").read_text().count("\n") == 3  # header + 2 steps


def test_a_version_0_1_run_loads_and_generates(old_run):
    sampler = Sampler.from_run(old_run, device="cpu")
    assert sampler.step == 2 and sampler.weights == "ema"
    assert sampler.classes == sorted(DEMO_CLASSES) and sampler.sample_rate == 16000
    audio = sampler.generate("rain", n=2, seed=3, n_iter=4)
    assert audio.shape == (2, CLIP_SAMPLES) and audio.dtype == np.float32
    assert np.isfinite(audio).all() and 0 < np.abs(audio).max() <= 1.0
    assert np.array_equal(audio, sampler.generate("rain", n=2, seed=3, n_iter=4))
    raw = Sampler.from_run(old_run / "checkpoints" / "step_0000002.pt", device="cpu", ema=False)
    assert raw.weights == "raw" and raw.generate("birds", n_iter=4).shape == (1, CLIP_SAMPLES)


def test_a_version_0_1_run_keeps_the_reference_framing_and_floor(old_run):
    """A run written before the lead-in and the silent floor were settings (their config has
    neither) was trained with the reference's framing and inverse, and generates with them:
    its takes are what version 0.1 wrote (tests/fixtures/run_v0_1_rain_seed3_iters4.npy, made
    by 0.1's `Sampler.generate("rain", n=2, seed=3, n_iter=4)`), up to float rounding, which
    differs between CPUs."""
    sampler = Sampler.from_run(old_run, device="cpu")
    assert (sampler.spec.features.lead_in, sampler.spec.features.log_floor) == (0, "constant")
    expected = np.load(FIXTURES / "run_v0_1_rain_seed3_iters4.npy")
    audio = sampler.generate("rain", n=2, seed=3, n_iter=4)
    assert np.abs(audio - expected).max() < 1e-3, np.abs(audio - expected).max()


@pytest.mark.integration
def test_a_version_0_1_run_resumes_for_one_more_step(old_run, demo_dir):
    before = load_checkpoint(old_run)
    train(demo_dir, old_run, settings={"steps": 3}, resume=True, progress=False)
    after = load_checkpoint(old_run)
    assert after["step"] == 3 and after["config"]["train"]["steps"] == 3
    # the run keeps what it was: only the step budget changed, and its config now says which
    # framing and floor it has (the reference's, which 0.1 used without naming them)
    framing = {"lead_in": 0, "log_floor": "constant"}
    assert after["config"]["features"] == {**before["config"]["features"], **framing}
    unchanged = {**after["config"], "train": before["config"]["train"]}
    assert unchanged == {**before["config"], "features": after["config"]["features"]}
    weights = after["generator"]
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())
    assert any(not torch.equal(weights[k], before["generator"][k]) for k in weights)
    assert (old_run / "metrics.csv").read_text().count("\n") == 4  # one row more


@pytest.mark.integration
def test_sfxgan_generate_reads_a_version_0_1_run(old_run, tmp_path):
    out = tmp_path / "sounds"
    result = sfxgan("generate", old_run, "--out", out, "--per-class", 1, *FAST)
    assert result.returncode == 0, result.stderr
    for name in DEMO_CLASSES:
        audio, rate = sf.read(out / name / f"{name}_0.wav")
        assert rate == 16000 and audio.shape == (CLIP_SAMPLES,)
        assert np.isfinite(audio).all() and np.abs(audio).max() > 0
