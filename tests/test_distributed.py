"""Training over several processes (torchrun, gloo on the CPU) is the same training as on one.

The end-to-end tests start the real `torchrun` the README tells users to run; the unit tests
start two gloo processes with torch.multiprocessing.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from sfxgan.apps.demo import DEMO_CLASSES
from sfxgan.config import get_preset, split_settings
from sfxgan.data.batches import BatchShares, stream_batches
from sfxgan.data.dataset import load_dataset
from sfxgan.model.losses import critic_loss, gradient_penalty, interpolate
from sfxgan.model.networks import build_models
from sfxgan.run_folder import load_checkpoint, step_checkpoints
from sfxgan.training import distributed
from sfxgan.training.trainer import train
from tests.helpers import (
    LOSSES_PNG_SIZE,
    assert_one_line_error,
    assert_png,
    assert_previews,
    wait_for_logged_steps,
)
from tests.helpers import free_port as _free_port

# Every part of a step runs: two critic updates with the penalty, the generator with the
# reconstruction loss (batch-peak normalisation), BatchNorm, the moving average. The paper's
# optimiser (tiny's lr 1e-3 with beta1 0 is chaotic enough that any two runs whose rounding
# differs part within three steps).
SETTINGS = {
    "batch_size": 8,
    "n_critic": 2,
    "recon_weight": 1e-2,  # the paper's w (tiny leaves the loss off)
    "recon_iters": 3,
    "lr_generator": 1e-4,
    "lr_critic": 1e-4,
    "beta1": 0.5,
    "ema_decay": 0.9,
    # constant learning rates: a decay's schedule depends on the run's steps, and the runs
    # compared here are 3 and 5 steps long
    "lr_decay": 0.0,
    # the paper's conditioning, for which MAX_GAP below was measured (with tiny's CBN,
    # projection and classifier, the 2-process run resumed in 1 process drifts to 0.21)
    "gen_conditioning": "concat",
    "critic_conditioning": "concat",
    "class_weight": 0.0,
    "standing_stats": 1,  # BatchNorm statistics for generation: cheap, not what is compared
    "preview_every": 2,
    "checkpoint_every": 1,
    "keep_checkpoints": 5,
    "precision": "fp32",  # the bounds below were measured in fp32 (auto picks bf16 on some CPUs)
}
# Why the weights of two equivalent runs are not equal to the last bit: two processes round
# differently (BatchNorm statistics combined from halves, gradients summed in another order);
# a difference of 3e-6 in a generated spectrogram flips a few LeakyReLU slopes of the critic
# whose inputs sit at zero, which moves the penalty's second-order gradient of the first layer
# by up to 3e-3, and Adam steps lr * sign(g) however small g is. So the test measures the gap
# between the runs' weights relative to how far training moved them. Measured after 3 steps:
# generator 0.020, critic 0.005 for this implementation; with each process's own BatchNorm
# statistics 0.75 and 0.24, with each process's own batch peak 0.73 and 0.07.
MAX_GAP = {"generator": 0.1, "critic": 0.05, "generator_ema": 0.1}


def torchrun(*args, processes: int = 2, **popen) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={processes}",
        "-m",
        "sfxgan",
        *map(str, args),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, **popen
    )


def options(settings: dict) -> list[str]:
    return [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()] + ["--quiet"]


def initial_weights(seed: int = 0) -> dict:
    torch.manual_seed(seed)  # as the Trainer builds them
    _, model_settings, _ = split_settings(SETTINGS)
    model = dataclasses.replace(get_preset("tiny").model, **model_settings)
    generator, critic = build_models(model, len(DEMO_CLASSES))
    g = generator.state_dict()
    return {"generator": g, "critic": critic.state_dict(), "generator_ema": g}


def weight_gap(a: dict, b: dict, start: dict) -> float:
    """||a - b|| / ||a - start|| over the weights (BatchNorm statistics left out)."""
    gap = moved = 0.0
    for key, value in a.items():
        key = key.removeprefix("module.")
        if value.is_floating_point() and "running" not in key:
            other = b[key] if key in b else b[f"module.{key}"]
            gap += (value - other).square().sum().item()
            moved += (value - start[key]).square().sum().item()
    assert moved > 0
    return (gap / moved) ** 0.5


def assert_same_weights(a: dict, b: dict, what: str) -> None:
    start = initial_weights()
    for net, limit in MAX_GAP.items():
        gap = weight_gap(a[net], b[net], start[net])
        assert gap < limit, f"{what}: {net} weights differ by {gap:.3f} of their movement"


@pytest.mark.slow
def test_two_processes_train_the_same_model_as_one_and_resume_in_one(demo_dir, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    train(demo_dir, one, "tiny", {**SETTINGS, "steps": 5}, progress=False)

    proc = torchrun("train", demo_dir, "--out", two, "--steps=3", *options(SETTINGS))
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert stdout.count("trained ") == 1  # rank 0 reports, rank 1 says nothing

    # one run folder, written once: by rank 0 alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert sorted(p.name for p in two.iterdir()) == [
        "checkpoints",
        "config.json",
        "metrics.csv",
        "previews",
        "stopped.json",
    ]
    assert sorted(p.name for p in (two / "checkpoints").iterdir()) == [
        "latest.pt",
        "step_0000001.pt",
        "step_0000002.pt",
        "step_0000003.pt",
    ]
    assert sorted(p.name for p in (two / "previews").iterdir()) == [
        "losses.png",
        "step_0000002",
        "step_0000003",
    ]
    features = get_preset("tiny").features
    for step in ("step_0000002", "step_0000003"):
        previews = two / "previews" / step
        assert_previews(previews, DEMO_CLASSES, features.sample_rate, features.clip_samples)
    assert_png(two / "previews" / "losses.png", LOSSES_PNG_SIZE)
    with open(two / "metrics.csv") as fh:
        rows_two = list(csv.DictReader(fh))
    with open(one / "metrics.csv") as fh:
        rows_one = list(csv.DictReader(fh))[:3]
    assert [int(r["step"]) for r in rows_two] == [1, 2, 3]
    # the losses logged are the global batch's, as in the one-process run: equal up to
    # rounding at step 1 (the first critic update's losses: before any weight moved) ...
    for key in ("critic_loss", "gradient_penalty", "wasserstein"):
        a, b = float(rows_one[0][key]), float(rows_two[0][key])
        assert abs(a - b) <= 1e-5 * abs(a), f"step 1 {key}: {a} vs {b}"
    # ... and close after
    for r1, r2 in zip(rows_one, rows_two, strict=True):
        for key in ("critic_loss", "gradient_penalty", "wasserstein", "recon_loss"):
            a, b = float(r1[key]), float(r2[key])
            assert abs(a - b) <= 0.01 * abs(a) + 1e-3, f"step {r1['step']} {key}: {a} vs {b}"

    state_two = load_checkpoint(two)
    state_one = load_checkpoint(one / "checkpoints" / "step_0000003.pt")
    assert state_two["processes"] == 2 and state_two["batches_drawn"] == 9  # 3 x (2 + 1)
    assert_same_weights(state_one, state_two, "2 processes vs 1 after 3 steps")

    # the two-process run goes on in one process, and lands where the one-process run did
    train(demo_dir, two, settings={"steps": 5}, resume=True, progress=False)
    assert_same_weights(load_checkpoint(one), load_checkpoint(two), "resumed in 1 process")


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_process_after_the_same_step(demo_dir, tmp_path):
    """torchrun passes a SIGTERM on to every process (and its loader workers); they agree on
    the step to stop after, rank 0 saves it, and the run resumes from there."""
    run = tmp_path / "run"
    settings = {**SETTINGS, "checkpoint_every": 1000, "preview_every": 1000, "workers": 1}
    proc = torchrun("train", demo_dir, "--out", run, "--steps=2000", *options(settings))
    metrics = run / "metrics.csv"
    wait_for_logged_steps(metrics, 3, timeout=300)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    state = load_checkpoint(run)
    with open(metrics) as fh:
        logged = [int(r["step"]) for r in csv.DictReader(fh)]
    assert state["step"] == logged[-1] >= 3
    assert [p.name for p in step_checkpoints(run)] == [f"step_{state['step']:07d}.pt"]
    train(demo_dir, run, settings={"steps": state["step"] + 1}, resume=True, progress=False)
    assert load_checkpoint(run)["step"] == state["step"] + 1


@pytest.mark.integration
def test_a_batch_that_does_not_split_over_the_processes_is_refused(demo_dir, tmp_path):
    """Checked before any process joins the group: a one-line error, exit code 2."""
    env = {**os.environ, "WORLD_SIZE": "3", "RANK": "0", "LOCAL_RANK": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "sfxgan", "train", str(demo_dir), "--out", str(tmp_path / "r")]
        + ["--batch-size", "8", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert_one_line_error(result, "batch_size 8", "3 processes", "multiple of 3")
    assert not (tmp_path / "r").exists()


@pytest.mark.integration
def test_processes_that_cannot_meet_say_how_to_start_them(demo_dir, tmp_path):
    """WORLD_SIZE set by hand, without torchrun's rendezvous: one line, exit code 2."""
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}
    env.pop("MASTER_ADDR", None)
    result = subprocess.run(
        [sys.executable, "-m", "sfxgan", "train", str(demo_dir), "--out", str(tmp_path / "r")]
        + ["--quiet"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert_one_line_error(result, "could not join", "torchrun")
    assert not (tmp_path / "r").exists()


def test_shares_of_a_global_batch_are_its_slices(demo_dir):
    dataset = load_dataset(demo_dir, get_preset("tiny").features, log=None, progress=False)
    whole = BatchShares(dataset, batch_size=8, seed=3)
    halves = [BatchShares(dataset, 8, 3, rank=r, world_size=2) for r in (0, 1)]
    for k in (0, 1, 7):  # 30 clips: 3 batches per epoch, so k = 7 is in the third epoch
        expected = whole[k]
        for part, got in zip(expected, zip(*(h[k] for h in halves), strict=True), strict=True):
            assert torch.equal(part, torch.cat(got))
    assert len(halves[0][0][2]) == 4
    with pytest.raises(ValueError, match="multiple of 3"):
        BatchShares(dataset, batch_size=8, seed=0, world_size=3)


def test_loader_workers_read_the_same_batches(demo_dir):
    dataset = load_dataset(demo_dir, get_preset("tiny").features, log=None, progress=False)
    shares = BatchShares(dataset, batch_size=4, seed=0, rank=1, world_size=2)
    inline = stream_batches(shares, start=5, workers=0)
    ahead = stream_batches(shares, start=5, workers=2)
    for k in range(5, 12):
        for a, b, c in zip(next(inline), next(ahead), shares[k], strict=True):
            assert torch.equal(a, b) and torch.equal(a, c)


def test_batch_shares_travel_to_loader_workers_as_file_names(demo_dir):
    """Workers started by spawn get the cache's file names, not a copy of the whole data."""
    load_dataset(demo_dir, get_preset("tiny").features, log=None, progress=False)
    cached = load_dataset(demo_dir, get_preset("tiny").features, log=None, progress=False)
    assert cached.from_cache and isinstance(cached.log_spec, np.memmap)
    shares = BatchShares(cached, batch_size=4, seed=0)
    blob = pickle.dumps(shares)
    assert len(blob) < cached.audio.nbytes / 10
    copy = pickle.loads(blob)
    for a, b in zip(shares[5], copy[5], strict=True):
        assert torch.equal(a, b)


# -- the pieces that make N processes one batch, against the whole batch in one process ----


def _critic_step(critic, real, fake, labels, alpha) -> None:
    x_hat = interpolate(real, fake, alpha)
    scores = critic(torch.cat([real, fake, x_hat]), labels.repeat(3))
    d_real, d_fake, d_hat = scores.split(len(labels))
    (critic_loss(d_real, d_fake) + 10 * gradient_penalty(d_hat, x_hat)).backward()


def _global_pieces(rank: int, world: int, port: int, inputs: dict, results) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        share = len(inputs["x"]) // world
        mine = slice(rank * share, (rank + 1) * share)
        norm = distributed.use_global_batchnorm(nn.Sequential(nn.BatchNorm2d(3, momentum=0.3)))
        norm[0].load_state_dict(inputs["norm"])
        x = inputs["x"][mine].clone().requires_grad_(True)
        y = norm(x)
        audio = inputs["audio"][mine].clone().requires_grad_(True)
        peak = distributed.global_max(audio.abs().amax())
        # this share's part of a loss summed over the batch: the parts add up to the whole
        loss = (y * inputs["w"][mine]).sum() + (audio / peak).square().sum()
        loss.backward()
        # the critic step under DistributedDataParallel: real, fake and interpolates in one
        # forward, the penalty's double backward, one backward for the update
        torch.manual_seed(0)
        _, critic = build_models(get_preset("tiny").model, len(DEMO_CLASSES))
        critic_update = distributed.wrap(critic, torch.device("cpu"))
        half = len(inputs["critic_batch"]["labels"]) // world
        batch = {k: v[rank * half : (rank + 1) * half] for k, v in inputs["critic_batch"].items()}
        _critic_step(critic_update, **batch)
        results[rank] = {
            "critic_grads": {n: p.grad.clone() for n, p in critic.named_parameters()},
            "y": y.detach(),
            "x_grad": x.grad,
            "audio_grad": audio.grad,
            "peak": peak.detach(),
            "weight_grad": norm[0].weight.grad,
            "running_var": norm[0].running_var.clone(),
            "average": distributed.average(torch.tensor([float(rank), 1.0])),
        }
    finally:
        dist.destroy_process_group()


@pytest.mark.integration
def test_critic_step_batchnorm_and_batch_peak_over_two_processes_are_the_whole_batchs():
    """Under gloo with two processes: DDP's critic gradient (with the penalty's double
    backward), the generator's BatchNorm and the reconstruction loss's batch peak give what
    one process computes on the whole batch, to float rounding."""
    torch.manual_seed(0)
    norm = nn.BatchNorm2d(3, momentum=0.3)
    nn.init.uniform_(norm.weight, 0.5, 2.0)
    nn.init.uniform_(norm.bias, -1.0, 1.0)
    inputs = {
        "x": torch.randn(6, 3, 5, 4) * 3 + 10,  # a large mean: E[x^2] - E[x]^2 would lose digits
        "w": torch.randn(6, 3, 5, 4),
        "audio": torch.randn(6, 50),
        "norm": {k: v.clone() for k, v in norm.state_dict().items()},
        "critic_batch": {
            "real": torch.rand(8, 1, 128, 128) * 2 - 1,
            "fake": torch.rand(8, 1, 128, 128) * 2 - 1,
            "labels": torch.randint(0, len(DEMO_CLASSES), (8,)),
            "alpha": torch.rand(8),
        },
    }
    torch.manual_seed(0)
    _, critic = build_models(get_preset("tiny").model, len(DEMO_CLASSES))
    _critic_step(critic, **inputs["critic_batch"])
    inputs["audio"][4, 7] = 9.0  # the batch's peak is in the second process's share

    x = inputs["x"].clone().requires_grad_(True)
    audio = inputs["audio"].clone().requires_grad_(True)
    y = norm(x)
    peak = audio.abs().amax()
    ((y * inputs["w"]).sum() + (audio / peak).square().sum()).backward()

    results = mp.Manager().dict()
    mp.spawn(_global_pieces, args=(2, _free_port(), inputs, results), nprocs=2)
    for name, p in critic.named_parameters():
        for r in (0, 1):  # DDP's averaged gradient, the same on both processes
            gap = (results[r]["critic_grads"][name] - p.grad).abs().max()
            assert gap <= 1e-4 * p.grad.abs().max() + 1e-12, f"critic {name}: {gap}"
    got = {key: torch.cat([results[r][key] for r in (0, 1)]) for key in ("y", "x_grad")}
    assert torch.allclose(got["y"], y, atol=1e-5)
    assert torch.allclose(got["x_grad"], x.grad, atol=1e-5)
    weight_grad = results[0]["weight_grad"] + results[1]["weight_grad"]
    assert torch.allclose(weight_grad, norm.weight.grad, rtol=1e-5)
    for r in (0, 1):
        assert torch.allclose(results[r]["running_var"], norm.running_var, rtol=1e-5)
        assert results[r]["peak"].item() == 9.0
        assert torch.equal(results[r]["average"], torch.tensor([0.5, 1.0]))
    audio_grad = torch.cat([results[r]["audio_grad"] for r in (0, 1)])
    assert torch.allclose(audio_grad, audio.grad, atol=1e-6)  # also through the global peak
    assert audio_grad[4, 7] != 0 and audio.grad[4, 7] != 0


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_two_gpus_with_nccl_train_the_same_model_as_one_process(demo_dir, tmp_path):
    settings = {**SETTINGS, "device": "cuda"}
    one, two = tmp_path / "one", tmp_path / "two"
    train(demo_dir, one, "tiny", {**settings, "steps": 3}, progress=False)
    proc = torchrun("train", demo_dir, "--out", two, "--steps=3", *options(settings))
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    state = load_checkpoint(two)
    assert state["processes"] == 2
    assert_same_weights(load_checkpoint(one), state, "2 GPUs vs 1")


@pytest.mark.slow
def test_two_processes_stop_together_when_rank_0_runs_out_of_patience(demo_dir, tmp_path):
    """Only rank 0 scores the quality checks; the stop it decides reaches the other process at
    the same step (a process left training would wait for its partner for ever)."""
    from sfxgan.evaluate.tracking import best_check, read_quality

    run = tmp_path / "run"
    settings = {**SETTINGS, "checkpoint_every": 100, "preview_every": 100}
    proc = torchrun(
        "train", demo_dir, "--out", run, "--steps=30", "--eval-every=2", "--patience=1",
        *options(settings),
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    rows = read_quality(run)
    stalls = [int(r["step"]) for i, r in enumerate(rows) if best_check(rows[: i + 1])[1] >= 1]
    final = int(load_checkpoint(run)["step"])
    assert final == (stalls[0] if stalls else 30) == int(rows[-1]["step"])
    assert stdout.count("trained ") == 1
    if stalls:
        assert f"stopped at step {final}" in stdout
