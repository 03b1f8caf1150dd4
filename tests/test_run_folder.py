"""The run folder (sfxgan.run_folder): where each file is, and that what training writes is what
the readers read."""

from __future__ import annotations

import math

import pytest
import torch

from sfxgan.config import get_preset
from sfxgan.data.dataset import load_dataset
from sfxgan.generate import Sampler
from sfxgan.run_folder import (
    INFERENCE_WEIGHTS,
    LATEST,
    METRICS,
    CheckpointError,
    RunSpec,
    checkpoint_dir,
    config_path,
    inference_weights,
    judge_path,
    load_checkpoint,
    metrics_log,
    metrics_path,
    preview_dir,
    previews_dir,
    quality_path,
    read_config,
    read_metrics,
    run_of,
    save_checkpoint,
    step_checkpoints,
    write_config,
    write_metrics,
)
from sfxgan.training.trainer import Trainer
from tests.helpers import LOSSES_PNG_SIZE, assert_png, assert_previews


def _same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_layout_is_where_training_writes_it(tiny_run):
    assert config_path(tiny_run) == tiny_run / "config.json" and config_path(tiny_run).is_file()
    assert metrics_path(tiny_run) == tiny_run / "metrics.csv" and metrics_path(tiny_run).is_file()
    assert quality_path(tiny_run) == tiny_run / "quality.csv"
    assert judge_path(tiny_run) == tiny_run / "judge.pt"
    assert (checkpoint_dir(tiny_run) / LATEST).is_file()
    assert step_checkpoints(tiny_run)[-1].name == "step_0000006.pt"
    # the tiny run previews its last step only (preview_every 100 > steps 6)
    assert preview_dir(tiny_run, 6) == previews_dir(tiny_run) / "step_0000006"
    spec = read_config(tiny_run)
    rate, samples = spec.features.sample_rate, spec.features.clip_samples
    assert_previews(preview_dir(tiny_run, 6), spec.classes, rate, samples)
    assert_png(previews_dir(tiny_run) / "losses.png", LOSSES_PNG_SIZE)
    assert run_of(tiny_run) == run_of(checkpoint_dir(tiny_run) / LATEST) == tiny_run
    assert not [p for p in tiny_run.rglob(".*")], "no temporary file is left in the run"


def test_config_json_round_trips_and_matches_the_checkpoint(tiny_run, tmp_path):
    spec = read_config(tiny_run)
    assert spec == RunSpec.from_dict(load_checkpoint(tiny_run)["config"])
    write_config(tmp_path, spec)
    assert read_config(tmp_path) == spec
    config_path(tmp_path).write_text('{"preset": "tiny"}')
    with pytest.raises(CheckpointError, match="incomplete or from another version"):
        read_config(tmp_path)


def test_metrics_round_trip_through_the_rewrite_and_the_log(tmp_path):
    rows = [{k: float(step if k == "step" else step / 3) for k in METRICS} for step in (1, 2, 3)]
    write_metrics(tmp_path, rows[:2])
    with metrics_log(tmp_path) as log_row:
        log_row(rows[2])
    read = read_metrics(tmp_path)
    assert [r["step"] for r in read] == [1.0, 2.0, 3.0] and list(read[0]) == list(METRICS)
    assert all(math.isclose(r["wasserstein"], r["step"] / 3, rel_tol=1e-5) for r in read)
    assert [r["step"] for r in read_metrics(tmp_path, up_to_step=2)] == [1.0, 2.0]
    write_metrics(tmp_path, read[:1])  # a resumed run drops the rows after its checkpoint
    assert len(read_metrics(tmp_path)) == 1
    assert read_metrics(tmp_path / "no_run") == []


def test_training_and_generation_share_the_inference_weights(demo_dir):
    preset = get_preset("tiny")
    dataset = load_dataset(demo_dir, preset.features, log=None, progress=False)
    spec = RunSpec(
        "tiny",
        preset.features,
        preset.model,
        preset.train,
        list(dataset.classes),
        dataset.max_value,
        str(demo_dir),
    )
    trainer = Trainer(spec, dataset, torch.device("cpu"))
    trainer.train_step()
    state = {**trainer.state(), "step": trainer.step, "path": "in memory"}
    assert set(INFERENCE_WEIGHTS.values()) <= state.keys()
    for ema, which in ((True, "ema"), (False, "raw")):
        sampler = Sampler.from_checkpoint(state, device="cpu", ema=ema)
        assert sampler.weights == which
        expected = trainer.inference_generator(which).state_dict()
        assert _same_tensors(sampler.generator.state_dict(), expected)


def test_a_checkpoint_without_inference_weights_still_generates(tiny_run):
    state = load_checkpoint(tiny_run)
    for key in INFERENCE_WEIGHTS.values():
        del state[key]  # as a run written before they existed
    weights, which = inference_weights(state)
    assert which == "raw" and _same_tensors(weights, state["generator"])
    sampler = Sampler.from_checkpoint(state, device="cpu")
    assert _same_tensors(sampler.generator.state_dict(), state["generator"])


def test_checkpoints_are_saved_whole_pruned_and_checked(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, {"config": {}, "weights": torch.full((2,), step)}, step, keep=2)
    folder = checkpoint_dir(tmp_path)
    assert [p.name for p in step_checkpoints(tmp_path)] == ["step_0000002.pt", "step_0000003.pt"]
    assert (folder / LATEST).read_bytes() == (folder / "step_0000003.pt").read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == [
        LATEST,
        "step_0000002.pt",
        "step_0000003.pt",
    ]
    state = load_checkpoint(tmp_path)
    assert state["step"] == 3 and state["path"] == str(folder / LATEST)

    newer = {**state, "format_version": 99, "config": {"sfxgan_version": "9.9"}}
    torch.save(newer, tmp_path / "newer.pt")
    with pytest.raises(CheckpointError, match=r"newer sfxgan \(9.9\); upgrade"):
        load_checkpoint(tmp_path / "newer.pt")
