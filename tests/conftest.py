from __future__ import annotations

import os
from pathlib import Path

import pytest

from sfxgan import threads
from sfxgan.apps.demo import write_demo_dataset

# The suite's own torch work and every sfxgan command it starts use one thread per core that is
# free when the session starts (sfxgan/threads.py), so on a machine with a busy core no test
# process oversubscribes it. The count is fixed for the session (exported to the commands as
# OMP_NUM_THREADS, which --threads auto honours) so that runs compared bit for bit use one count.
if not os.environ.get("OMP_NUM_THREADS"):
    os.environ["OMP_NUM_THREADS"] = str(threads.ThreadGovernor().start())


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Keep the feature cache of every test out of the user's ~/.cache."""
    monkeypatch.setenv("SFXGAN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset (5 classes x 6 clips), written once per test session."""
    root = tmp_path_factory.mktemp("demo") / "data"
    write_demo_dataset(root, per_class=6, seed=0)
    return root


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_dir) -> Path:
    """A tiny-preset run trained for a few steps on the demo data, once per test session: a
    real checkpoint (with the moving average and standing BatchNorm statistics) for the tests
    of what reads runs (studio, export, generate). Its sounds are not yet good."""
    from sfxgan.training.trainer import train

    settings = {"steps": 6, "batch_size": 4, "recon_iters": 3, "preview_every": 100}
    run = tmp_path_factory.mktemp("tiny_run") / "run"
    train(demo_dir, run, "tiny", settings, progress=False)
    return run
