"""Training while the sound improves: the best quality check kept as checkpoints/best.pt, the
run stopped by --patience or --time-budget, and the commands that generate using the best
checkpoint unless told otherwise."""

from __future__ import annotations

import math

import pytest
import torch

from sfxgan.evaluate.tracking import (
    CLASS_FIT_SLACK,
    MIN_FD_GAIN,
    best_check,
    is_better,
    read_quality,
)
from sfxgan.run_folder import BEST, load_checkpoint, read_stop
from tests.helpers import assert_one_line_error, sfxgan

QUICK = ("--batch-size", 4, "--recon-iters", 3, "--preview-every", 100)


def check(step: int, fd: float, fit: float) -> dict:
    return {"step": float(step), "fd": fd, "class_fit": fit}


def test_a_check_is_better_by_a_clearly_lower_fd_without_losing_the_class():
    best = check(100, 20.0, 0.80)
    # FD lower by more than the gain, class fit the same or within the slack below
    assert is_better(check(200, 20.0 * (1 - MIN_FD_GAIN) - 0.01, 0.80), best)
    assert is_better(check(200, 15.0, 0.80 - CLASS_FIT_SLACK + 0.01), best)
    # FD lower by less than the gain is the checks' wobble, not progress
    assert not is_better(check(200, 20.0 * (1 - MIN_FD_GAIN / 2), 0.80), best)
    # a lower FD bought with the class is no better
    assert not is_better(check(200, 10.0, 0.80 - 2 * CLASS_FIT_SLACK), best)
    # a class fit clearly higher is better even at a higher FD
    assert is_better(check(200, 25.0, 0.80 + 2 * CLASS_FIT_SLACK), best)
    # a check without figures never is; the first with figures always is
    assert not is_better(check(200, math.nan, 0.9), best)
    assert is_better(check(100, 50.0, 0.2), None)


def test_the_best_check_and_the_checks_since_it_come_from_the_rows_alone():
    rows = [check(100, 50, 0.5), check(200, 30, 0.5), check(300, 29.9, 0.5), check(400, 40, 0.5)]
    best, since = best_check(rows)
    assert best is rows[1] and since == 2
    assert best_check([]) == (None, 0)
    assert best_check(rows[:2]) == (rows[1], 0)


def test_the_class_fit_floor_does_not_slide_with_each_new_best():
    """A run whose FD keeps falling while its class fit slides a few points a check keeps the
    check within the slack of its highest class fit, not one that slid further step by step."""
    rows = [check(100, 20.0, 0.90), check(200, 18.0, 0.86), check(300, 16.0, 0.82)]
    # each check is within the slack of the one before, and each has the clearly lower FD
    assert is_better(rows[2], rows[1])
    # but the last is more than the slack below the highest class fit (90 %)
    assert not is_better(rows[2], rows[1], top_fit=0.90)
    best, since = best_check(rows)
    assert best is rows[1] and since == 1


def expected_stop(rows: list[dict], patience: int) -> int | None:
    """The step of the first check after which `patience` checks had not beaten the best."""
    for i in range(len(rows)):
        if best_check(rows[: i + 1])[1] >= patience:
            return int(rows[i]["step"])
    return None


@pytest.mark.integration
def test_patience_stops_the_run_at_its_first_stall_and_keeps_the_best(demo_dir, tmp_path):
    run = tmp_path / "run"
    result = sfxgan(
        "train", demo_dir, "--out", run, "--steps", 24, "--eval-every", 2, "--patience", 1,
        "--checkpoint-every", 100, *QUICK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = read_quality(run)
    stop = expected_stop(rows, 1)
    final = int(load_checkpoint(run)["step"])
    # the run ends at the first check that did not beat the best (or at --steps without one),
    # with its checkpoint saved there, and says why
    assert final == (stop if stop is not None else 24)
    assert int(rows[-1]["step"]) == final
    if stop is not None:
        assert f"stopped at step {final}: the last quality check did not beat" in result.stdout
    assert "checkpoints/best.pt" in result.stdout
    # the run folder keeps why it ended, for the report
    assert read_stop(run)["step"] == final
    assert read_stop(run)["why"] == ("patience" if stop is not None else "steps")
    # best.pt holds the best check's generator and figures, and says by which rule
    best_row = best_check(rows)[0]
    best = load_checkpoint(run / "checkpoints" / BEST)
    assert best["step"] == int(best_row["step"]) == int(best["best"]["step"])
    assert best["best"]["fd"] == pytest.approx(best_row["fd"], rel=1e-5)
    assert "lowest FD" in best["best"]["rule"]
    assert "critic" not in best  # generation weights only: a run resumes from latest.pt
    assert result.stderr.count("the best so far") == sum(
        best_check(rows[: i + 1])[1] == 0 for i in range(len(rows))
    )


@pytest.mark.integration
def test_a_resumed_run_goes_on_counting_its_patience(demo_dir, tmp_path):
    run = tmp_path / "run"
    first = sfxgan(
        "train", demo_dir, "--out", run, "--steps", 6, "--eval-every", 2,
        "--checkpoint-every", 2, *QUICK,
    )  # fmt: skip
    assert first.returncode == 0, first.stderr
    before = read_quality(run)
    assert len(before) == 3
    assert read_stop(run)["why"] == "steps"
    resumed = sfxgan(
        "train", demo_dir, "--out", run, "--resume", "--steps", 30, "--patience", 2, *QUICK
    )
    assert resumed.returncode == 0, resumed.stderr
    rows = read_quality(run)
    assert rows[:3] == before  # the checks before the resume stay, and count
    # the first check after the resume at which 2 checks in a row, counted over the whole
    # run, have not beaten the best (a stall before the resume is still a stall)
    stalls = [int(r["step"]) for i, r in enumerate(rows) if best_check(rows[: i + 1])[1] >= 2]
    expected = next((step for step in stalls if step > 6), 30)
    assert int(load_checkpoint(run)["step"]) == expected == int(rows[-1]["step"])
    assert read_stop(run) == {
        "step": expected,
        "why": "patience" if expected < 30 else "steps",
        "said": read_stop(run)["said"],
    }


@pytest.mark.integration
def test_a_time_budget_stops_the_run_with_its_checkpoint(demo_dir, tmp_path):
    run = tmp_path / "run"
    result = sfxgan(
        "train", demo_dir, "--out", run, "--steps", 500, "--eval-every", 0,
        "--time-budget", 0.5, "--checkpoint-every", 1000, *QUICK,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    final = int(load_checkpoint(run)["step"])
    assert 1 <= final < 500
    assert f"stopped at step {final}: the time budget" in result.stdout
    assert "no quality check was reached" in result.stdout
    ended = read_stop(run)
    assert (ended["step"], ended["why"]) == (final, "budget")
    assert ended["said"] in result.stdout


@pytest.mark.integration
def test_generate_uses_the_best_checkpoint_unless_told_otherwise(demo_dir, tmp_path):
    run = tmp_path / "run"
    trained = sfxgan(
        "train", demo_dir, "--out", run, "--steps", 6, "--eval-every", 2, *QUICK
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    best_step = int(best_check(read_quality(run))[0]["step"])
    out = tmp_path / "sounds"
    result = sfxgan("generate", run, "--out", out, "--per-class", 1, "--classes", "rain")
    assert result.returncode == 0, result.stderr
    assert f"best.pt (step {best_step}, the best quality check: FD" in result.stderr
    latest = sfxgan(
        "generate", run, "--out", tmp_path / "latest", "--per-class", 1, "--classes", "rain",
        "--checkpoint", "latest",
    )  # fmt: skip
    assert latest.returncode == 0, latest.stderr
    assert "latest.pt (step 6, the latest (asked for))" in latest.stderr
    if best_step != 6:  # the two checkpoints hold different generators, and so different sounds
        a = (out / "rain").glob("*.wav")
        b = (tmp_path / "latest" / "rain").glob("*.wav")
        assert next(a).read_bytes() != next(b).read_bytes()


@pytest.mark.integration
def test_impossible_checkpoint_and_patience_requests_are_one_line_errors(
    tiny_run, demo_dir, tmp_path
):
    # tiny_run trained without quality checks: it has no best, and says how to go on
    result = sfxgan("generate", tiny_run, "--out", tmp_path / "x", "--checkpoint", "best")
    assert_one_line_error(result, "no best checkpoint", "--checkpoint latest")
    result = sfxgan("generate", tiny_run, "--out", tmp_path / "x", "--checkpoint", "nope.pt")
    assert_one_line_error(result, "nope.pt", "neither a file")
    # without --checkpoint it generates from the latest, saying why
    result = sfxgan("generate", tiny_run, "--out", tmp_path / "y", "--per-class", 1)
    assert result.returncode == 0, result.stderr
    assert "the run has no best checkpoint" in result.stderr
    # --patience counts quality checks: none, no run
    run = tmp_path / "run"
    result = sfxgan("train", demo_dir, "--out", run, "--steps", 4, "--patience", 2,
                    "--eval-every", 0, *QUICK)  # fmt: skip
    assert_one_line_error(result, "patience", "--eval-every")
    assert not run.exists()
    # a budget that cannot reach the first check (at step 400, a step taking 0.1 s or more):
    # refused after 2 steps, with the new run folder gone
    result = sfxgan("train", demo_dir, "--out", run, "--steps", 500, "--eval-every", 400,
                    "--time-budget", 5, *QUICK)  # fmt: skip
    assert_one_line_error(result, "--time-budget 5 s cannot reach the quality check at step 400")
    assert not run.exists()


def test_best_checkpoint_loads_as_a_generator(tiny_run, tmp_path):
    """best.pt is a checkpoint that Sampler and export read like any other."""
    from sfxgan.generate import Sampler
    from sfxgan.run_folder import save_best

    state = load_checkpoint(tiny_run)
    copy = tmp_path / "run"
    path = save_best(
        copy, state, int(state["step"]), {"step": 6.0, "fd": 1.0, "class_fit": 1.0, "rule": "test"}
    )
    sampler = Sampler.from_run(path)
    reference = Sampler.from_run(tiny_run)
    z = reference.latents(reference.classes[0], 2, 0)
    labels = torch.zeros(2, dtype=torch.long)
    assert torch.equal(sampler.log_spec(z, labels), reference.log_spec(z, labels))
