"""The demo's training job learns every class (slow: the full `make demo` training run)."""

from __future__ import annotations

import pytest

from sfxgan.config import get_preset
from sfxgan.data import load_dataset
from sfxgan.demo import write_demo_dataset
from sfxgan.evaluate import mean_spectrum_check
from sfxgan.generate import Sampler
from sfxgan.train import train


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
