"""The demo's training job learns every class (slow: the full `make demo` training run)."""

from __future__ import annotations

import os

import pytest

from sfxgan.apps.demo import write_demo_dataset
from sfxgan.apps.takes import generate_to_folder
from sfxgan.config import get_preset
from sfxgan.data.dataset import load_dataset
from sfxgan.evaluate import mean_spectrum_check
from sfxgan.evaluate.evaluation import evaluate
from sfxgan.generate import Sampler
from sfxgan.training.trainer import train

# The judge's figures for this job (docs/results.md, `sfxgan evaluate` on 20 clips per class):
# class fit 89 / 87 / 89 % and phase SC 0.32 / 0.38 / 0.36 on training seeds 0 / 1 / 2 with one
# thread; the bounds sit well below the worst, as threads and CPUs move a GAN's trajectory as
# much as seeds do (the preset before this one: 86 % at one thread, 64 % at two).
CLASS_FIT_AT_LEAST = 0.6
PHASE_SC_BELOW = 0.5


# Training seeds to check: `make test` runs seed 0 (the `make demo` job); docs/results.md gives
# the figures of seeds 0, 1 and 2, and `SFXGAN_QUALITY_SEEDS=0,1,2 make test` checks them all.
SEEDS = [int(s) for s in os.environ.get("SFXGAN_QUALITY_SEEDS", "0").split(",")]


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_tiny_learns_the_spectrum_of_every_demo_class(tmp_path, seed):
    """Exactly the `make demo` job (demo data seed 0, 40 per class, the tiny preset's defaults)
    at a training seed: the generated clips' mean log-spectrum of every class is nearer that
    class's real clips than any other class's, and the judge finds the classes."""
    data, run = tmp_path / "data", tmp_path / "run"
    write_demo_dataset(data, per_class=40, seed=0)
    result = train(data, run, "tiny", {"seed": seed}, progress=False)
    assert result.step == get_preset("tiny").train.steps and not result.interrupted
    sampler = Sampler.from_run(run)
    dataset = load_dataset(data, sampler.spec.features, log=None, progress=False)
    fits = mean_spectrum_check(sampler, dataset)
    table = "; ".join(
        f"{f.class_name}->{f.nearest} ({f.distance_own:.2f} vs {f.distance_nearest_other:.2f})"
        for f in fits
    )
    print(table)
    assert all(f.ok for f in fits), table

    # The judge (a CNN trained on the real clips) on 20 clips per class, as `make demo` runs it.
    generate_to_folder(sampler, tmp_path / "sounds", 20, None, 0, "fast-griffin-lim", 32, False)
    overall = evaluate(data, tmp_path / "sounds", run=run, progress=False, log=None).metrics[
        "overall"
    ]
    print({k: round(v, 3) for k, v in overall.items() if isinstance(v, float)})
    assert overall["class_fit"] >= CLASS_FIT_AT_LEAST
    assert overall["memorisation"] <= overall["memorisation_real"] + 0.1  # no copying
    assert overall["fd_real"] < overall["fd_resynth"] < overall["fd"]
    assert overall["phase_sc"] < PHASE_SC_BELOW
