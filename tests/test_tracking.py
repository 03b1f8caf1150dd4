"""Quality during training (`--eval-every`): the judge trained once and kept, quality.csv and its
picture, resume, and figures that agree with `sfxgan evaluate` on the same clips."""

from __future__ import annotations

import csv
import math

import pytest

from sfxgan.apps.takes import generate_to_folder
from sfxgan.evaluate.evaluation import evaluate
from sfxgan.evaluate.judge import Judge
from sfxgan.evaluate.tracking import read_quality
from sfxgan.generate import Sampler
from sfxgan.run_folder import JUDGE_FILE
from sfxgan.training.trainer import train
from tests.helpers import sfxgan

# every test here trains a run with quality checks or runs the sfxgan command on one
pytestmark = pytest.mark.integration

QUICK = {"batch_size": 4, "recon_iters": 3, "preview_every": 100, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def tracked_run(demo_dir, tmp_path_factory):
    """4 steps with a quality check every 2, through the command (stderr kept)."""
    run = tmp_path_factory.mktemp("tracked") / "run"
    result = sfxgan(
        "train", demo_dir, "--out", run, "--steps", 4, "--eval-every", 2, "--batch-size", 4,
        "--recon-iters", 3, "--checkpoint-every", 2,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return run, result


def test_quality_is_checked_every_n_steps_and_written_down(tracked_run, demo_dir):
    run, result = tracked_run
    assert "quality judge: held-out accuracy" in result.stderr
    assert (run / JUDGE_FILE).is_file() and (run / "previews" / "quality.png").is_file()
    with open(run / "quality.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [2, 4]
    classes = sorted(p.name for p in demo_dir.iterdir())
    assert {f"class_fit:{name}" for name in classes} <= set(rows[0])
    judge = Judge.load(run / JUDGE_FILE)
    rows = [{k: float(v) for k, v in row.items()} for row in rows]
    for values in rows:
        # the reference is the judge's held-out accuracy on real clips through Griffin-Lim
        # (6 digits in the CSV), and the judge tells the demo classes apart (seen: 1.0)
        assert values["class_fit_real"] == pytest.approx(
            judge.meta["accuracy_resynthesised"], rel=1e-5
        )
        assert values["class_fit_real"] >= 0.8
        # 6 clips per class: the overall fit is the classes' mean; after 4 steps the generator
        # is at chance, 1 in 5 (seen: 0.2, every clip judged one class), far below the real
        fits = [values[f"class_fit:{name}"] for name in classes]
        assert values["class_fit"] == pytest.approx(sum(fits) / len(fits), abs=1e-5)
        assert values["class_fit"] <= 1 / len(classes) + 0.3
        # FD: the real halves' floor is positive and the resynthesised real clips sit near it
        # (seen: 1.71 against 1.68), while 4 steps sit far above it (seen: 87-90, 50x)
        assert values["fd_real"] > 0
        assert values["fd_resynth"] == pytest.approx(values["fd_real"], rel=0.3)
        assert values["fd"] > 10 * values["fd_real"]
        # an untrained generator is far less varied than the real clips (1 = as varied; seen:
        # 0.07-0.09 overall, 0.27-0.34 within classes)
        assert 0 < values["diversity"] < 0.5 and 0 < values["diversity_within"] < 1
        assert values["eval_seconds"] > 0
    # the references are of the same real clips at every check; training time adds up
    for key in ("class_fit_real", "fd_real", "fd_resynth"):
        assert rows[0][key] == rows[1][key], key
    assert 0 < rows[0]["train_seconds"] < rows[1]["train_seconds"]
    # the running line the user sees at each check
    assert result.stderr.count("class fit") >= 2 and "real via GL" in result.stderr


def test_resume_keeps_the_judge_and_continues_the_curve(tracked_run, demo_dir, tmp_path):
    run, _ = tracked_run
    copy = tmp_path / "run"
    import shutil

    shutil.copytree(run, copy)
    (copy / "checkpoints" / "latest.pt").unlink()  # resume from step 2: rows after it go
    (copy / "checkpoints" / "step_0000004.pt").unlink()
    judge_bytes = (copy / JUDGE_FILE).read_bytes()
    result = sfxgan("train", demo_dir, "--out", copy, "--resume", "--steps", 6)
    assert result.returncode == 0, result.stderr
    assert "quality judge" not in result.stderr  # not trained again
    assert (copy / JUDGE_FILE).read_bytes() == judge_bytes
    assert [int(r["step"]) for r in read_quality(copy)] == [2, 4, 6]


def test_a_run_shorter_than_the_interval_trains_no_judge(demo_dir, tmp_path):
    run = tmp_path / "run"
    train(demo_dir, run, "tiny", {**QUICK, "steps": 2, "eval_every": 5}, progress=False)
    assert not (run / JUDGE_FILE).exists() and not (run / "quality.csv").exists()


def test_the_figures_are_those_evaluate_gives_for_the_clips_generate_writes(
    tracked_run, demo_dir, tmp_path
):
    """The last row of quality.csv scores the clips `generate --seed 0` writes (as many per
    class as the real data has); evaluate with the run's judge gives the same class fit and,
    up to the 16-bit WAV rounding, the same distances."""
    run, _ = tracked_run
    last = read_quality(run)[-1]
    sampler = Sampler.from_run(run)
    generate_to_folder(sampler, tmp_path / "takes", 6, None, 0, "fast-griffin-lim", 32, False)
    judge = Judge.load(run / JUDGE_FILE)
    overall = evaluate(demo_dir, tmp_path / "takes", judge=judge, progress=False, log=None)
    overall = overall.metrics["overall"]
    assert overall["class_fit"] == pytest.approx(last["class_fit"], abs=1 / 30 + 1e-9)
    assert overall["fd"] == pytest.approx(last["fd"], rel=0.05)
    assert overall["fd_real"] == pytest.approx(last["fd_real"], rel=1e-5)  # 6 digits in the CSV
    assert overall["diversity"] == pytest.approx(last["diversity"], rel=0.05)


def test_evaluate_with_the_run_reuses_its_judge(tracked_run, demo_dir, tmp_path):
    run, _ = tracked_run
    takes, report = tmp_path / "takes", tmp_path / "report"
    assert sfxgan("generate", run, "--out", takes, "--per-class", 4).returncode == 0
    result = sfxgan("evaluate", "--real", demo_dir, "--generated", takes, "--run", run,
                    "--out", report, "--quiet")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "using the judge the run trained" in result.stderr
    assert "training a classifier" not in result.stderr
    saved = Judge.load(report / "classifier.pt")
    assert saved.meta["accuracy"] == Judge.load(run / JUDGE_FILE).meta["accuracy"]
    assert not math.isnan(saved.meta["accuracy"])


def test_experiment_curves_draws_the_quality_of_runs(tracked_run, demo_dir, tmp_path):
    run, _ = tracked_run
    untracked = tmp_path / "untracked"
    train(demo_dir, untracked, "tiny", {**QUICK, "steps": 1, "eval_every": 0}, progress=False)
    quality = tmp_path / "quality.png"
    result = sfxgan(
        "experiment", "curves", run, run, "--out", tmp_path / "losses.png", "--labels", "a,b",
        "--quality", quality, "--groups", "same,same",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert quality.stat().st_size > 10_000
    last = read_quality(run)[-1]
    expected = f"| a | {last['step']:.0f} | {last['class_fit']:.1%} | {last['fd']:.2f} |"
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result.stdout
    missing = sfxgan(
        "experiment", "curves", run, untracked, "--out", tmp_path / "l.png", "--quality", quality
    )
    assert missing.returncode == 2 and "--eval-every" in missing.stderr
    groups = sfxgan(
        "experiment", "curves", run, "--out", tmp_path / "l.png", "--quality", quality,
        "--groups", "x,y",
    )  # fmt: skip
    assert groups.returncode == 2 and "--groups" in groups.stderr
