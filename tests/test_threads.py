"""`--threads auto`: one torch thread per core that other processes leave free, measured from the
machine's load, followed during long work; a fixed number or OMP_NUM_THREADS wins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import torch

from sfxgan import threads
from tests.helpers import assert_one_line_error, sfxgan

SPIN = "import time\nend = time.time() + {seconds}\nwhile time.time() < end: pass\n"


def busy_process(seconds: float = 30.0) -> subprocess.Popen:
    """Another process keeping one core busy (not torch, not this process)."""
    return subprocess.Popen([sys.executable, "-c", SPIN.format(seconds=seconds)])


# The machine these load tests run on, as --threads auto sees it: the cores this process may use
# (its affinity), capped by a container's quota. They load one core and expect one thread
# fewer than the cores, so they need two cores or more, whole ones: under a fractional quota
# (1.5 cores of 2, say) the busy process's share of the quota is not what they expect.
CORES = threads.available_cores()
needs_two_cores = pytest.mark.skipif(
    CORES < 2 or not CORES.is_integer(),
    reason=f"{CORES:g} usable cores; needs two or more whole cores to tell busy from free",
)
ALONE, LOADED = int(CORES), int(CORES) - 1  # threads chosen alone and beside one busy process


def skip_unless_idle() -> None:
    """These tests make the load themselves: on a machine that other work keeps busy (make test
    beside a training, say) the expected counts are not the right ones, so they skip."""
    before = threads.sample()
    time.sleep(0.5)
    others = threads.others_load(before, threads.sample())
    if others is None or others > 0.3:
        pytest.skip(f"other processes keep {others} cores busy; these checks need idle cores")


def test_a_core_counts_as_busy_when_others_use_more_than_half_of_it():
    assert threads.choose_threads(2, 0.0) == 2
    assert threads.choose_threads(2, 0.4) == 2
    assert threads.choose_threads(2, 0.6) == 1
    assert threads.choose_threads(2, 1.9) == 1  # never fewer than one
    assert threads.choose_threads(16, 3.2) == 13
    assert threads.choose_threads(4, None) == 4  # unknown load: every core
    assert threads.choose_threads(1.5, 0.0) == 1  # a quota of 1.5 cores


@pytest.mark.integration
@needs_two_cores
def test_the_load_of_another_process_is_measured_and_our_own_is_not():
    skip_unless_idle()
    other = busy_process()
    try:
        time.sleep(0.5)
        before = threads.sample()
        time.sleep(1.0)
        loaded = threads.others_load(before, threads.sample())
    finally:
        other.kill()
        other.wait()
    assert loaded is not None and 0.7 < loaded < 1.5
    # this process spinning is its own work, not other processes'
    before = threads.sample()
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        pass
    own = threads.others_load(before, threads.sample())
    assert own is not None and own < 0.5


@pytest.mark.integration
@needs_two_cores
def test_auto_follows_the_load_while_it_runs():
    skip_unless_idle()
    saved = torch.get_num_threads()
    messages = []
    try:
        governor = threads.ThreadGovernor(log=messages.append, recheck_s=1.0)
        assert governor.start() == ALONE
        other = busy_process()
        try:
            time.sleep(1.2)
            assert governor.recheck() == LOADED
            assert torch.get_num_threads() == LOADED
        finally:
            other.kill()
            other.wait()
        time.sleep(1.2)
        assert governor.recheck() == ALONE
        assert torch.get_num_threads() == ALONE
        assert governor.recheck() is None  # within recheck_s: no new measurement
    finally:
        torch.set_num_threads(saved)
    assert messages[0].startswith(f"threads {ALONE} -> {LOADED}: other processes use ")
    assert messages[1].startswith(f"threads {LOADED} -> {ALONE}:")


def without_thread_settings() -> dict:
    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}


@pytest.mark.integration
@needs_two_cores
def test_train_reports_its_choice_alone_and_beside_a_busy_process(demo_dir, tmp_path):
    skip_unless_idle()

    def run(out, *extra):
        return subprocess.run(
            [sys.executable, "-m", "sfxgan", *extra, "train", str(demo_dir), "--out", str(out)]
            + ["--steps", "2", "--batch-size", "4", "--eval-every", "0"],
            capture_output=True,
            text=True,
            env=without_thread_settings(),
            timeout=600,
        )

    alone = run(tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    assert re.search(
        rf"torch threads: {ALONE} \(auto: {ALONE} cores, 0\.\d busy with other", alone.stderr
    )
    other = busy_process()
    try:
        time.sleep(0.5)
        loaded = run(tmp_path / "loaded")
    finally:
        other.kill()
        other.wait()
    assert loaded.returncode == 0, loaded.stderr
    assert re.search(
        rf"torch threads: {LOADED} \(auto: {ALONE} cores, [01]\.\d busy", loaded.stderr
    )
    fixed = run(tmp_path / "fixed", "--threads", "2")
    assert "torch threads: 2 (--threads)" in fixed.stderr


def test_sfxgan_asks_the_openmp_runtime_to_wait_passively():
    code = "import os, sfxgan; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "PASSIVE"
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own setting wins
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ACTIVE"


@pytest.mark.integration
def test_a_thread_count_must_be_auto_or_positive():
    for bad in ("0", "two", "-1"):
        result = sfxgan("--threads", bad, "demo-data", "x")
        assert_one_line_error(result, "--threads", "must be auto or a number of threads")
