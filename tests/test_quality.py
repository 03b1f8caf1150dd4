"""The demo's training job learns every class (slow: the full `make demo` training run)."""

from __future__ import annotations

import pytest

from sfxgan.config import get_preset
from sfxgan.data import load_dataset
from sfxgan.demo import write_demo_dataset
from sfxgan.evaluate import mean_spectrum_check
from sfxgan.evaluate.evaluation import evaluate
from sfxgan.generate import Sampler, generate_to_folder
from sfxgan.train import train

# The judge's figures for this run (w = 1e-2, seed 0 in docs/results.md): class fit 0.66, phase
# SC 0.40 at 40 clips per class; the bounds leave room for 20 clips and another thread count.
CLASS_FIT_AT_LEAST = 0.5
PHASE_SC_BELOW = 0.55


@pytest.mark.slow
def test_tiny_learns_the_spectrum_of_every_demo_class(tmp_path):
    """Exactly the `make demo` job (demo data seed 0, 40 per class, the tiny preset's defaults
    with the reconstruction loss): the generated clips' mean log-spectrum of every class is
    nearer that class's real clips than any other class's."""
    data, run = tmp_path / "data", tmp_path / "run"
    write_demo_dataset(data, per_class=40, seed=0)
    result = train(data, run, "tiny", progress=False)
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
    # Bounds from docs/results.md (this run is w = 1e-2, seed 0 there), with margin.
    generate_to_folder(sampler, tmp_path / "sounds", 20, None, 0, "fast-griffin-lim", 32, False)
    overall = evaluate(data, tmp_path / "sounds", run=run, progress=False, log=None).metrics[
        "overall"
    ]
    print({k: round(v, 3) for k, v in overall.items() if isinstance(v, float)})
    assert overall["class_fit"] >= CLASS_FIT_AT_LEAST
    assert overall["memorisation"] <= overall["memorisation_real"] + 0.1  # no copying
    assert overall["fd_real"] < overall["fd_resynth"] < overall["fd"]
    assert overall["phase_sc"] < PHASE_SC_BELOW
