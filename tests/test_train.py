"""Training, checkpoints, resume and generation as a user meets them."""

from __future__ import annotations

import csv
import dataclasses
import json
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from torch.optim.swa_utils import AveragedModel

import sfxgan.training.trainer as train_module
from sfxgan import config, threads
from sfxgan.apps.demo import DEMO_CLASSES
from sfxgan.data.batches import EpochSampler
from sfxgan.errors import SfxganError
from sfxgan.generate import Sampler
from sfxgan.run_folder import load_checkpoint, read_metrics, read_stop, step_checkpoints
from sfxgan.training.trainer import TrainingDiverged, ema_average, train
from tests.helpers import (
    LOSSES_PNG_SIZE,
    assert_one_line_error,
    assert_png,
    assert_previews,
    sfxgan,
    wait_for_logged_steps,
)

# Small and quick, but every part of the step runs (critic, penalty, generator, recon loss).
QUICK = {
    "batch_size": 4,
    "n_critic": 2,
    "recon_weight": 0.01,  # the paper's w (tiny leaves the loss off)
    "recon_iters": 3,
    "preview_every": 2,
    "checkpoint_every": 2,
    "keep_checkpoints": 2,
}
QUICK_ARGS = [
    "--batch-size",
    "4",
    "--n-critic",
    "2",
    "--recon-iters",
    "3",
    "--preview-every",
    "2",
    "--checkpoint-every",
    "2",
    "--keep-checkpoints",
    "2",
    "--recon-weight",
    "0.01",
    "--quiet",
]


@pytest.mark.integration
def test_cli_train_resume_generate(demo_dir, tmp_path):
    run, out = tmp_path / "run", tmp_path / "sounds"
    result = sfxgan("train", demo_dir, "--out", run, "--steps", 3, *QUICK_ARGS)
    assert result.returncode == 0, result.stderr

    config = json.loads((run / "config.json").read_text())
    assert config["classes"] == list(DEMO_CLASSES)
    assert config["preset"] == "tiny" and config["max_value"] > 0
    assert config["train"]["n_critic"] == 2 and config["train"]["recon_weight"] == 0.01
    assert config["features"]["sample_rate"] == 16000 and "sfxgan_version" in config
    with open(run / "metrics.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    assert {
        "critic_loss",
        "generator_loss",
        "recon_loss",
        "gradient_penalty",
        "wasserstein",
        "samples_per_s",
    } <= set(rows[0])
    assert all(np.isfinite(float(r["recon_loss"])) and float(r["recon_loss"]) > 0 for r in rows)
    # previews every 2 steps and at the last
    steps = ["step_0000002", "step_0000003"]
    assert sorted(p.name for p in (run / "previews").iterdir()) == ["losses.png", *steps]
    rate, samples = config["features"]["sample_rate"], config["features"]["clip_samples"]
    for step in steps:
        assert_previews(run / "previews" / step, DEMO_CLASSES, rate, samples)
    assert_png(run / "previews" / "losses.png", LOSSES_PNG_SIZE)
    assert [p.name for p in step_checkpoints(run)] == ["step_0000002.pt", "step_0000003.pt"]

    result = sfxgan("train", demo_dir, "--out", run, "--steps", 5, "--resume", *QUICK_ARGS)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run)["step"] == 5
    # only the last K=2 step checkpoints are kept, besides latest.pt
    assert [p.name for p in step_checkpoints(run)] == ["step_0000004.pt", "step_0000005.pt"]
    with open(run / "metrics.csv") as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [1, 2, 3, 4, 5]

    result = sfxgan("generate", run, "--out", out, "--per-class", 2, "--seed", 3, "--png")
    assert result.returncode == 0, result.stderr
    for name in DEMO_CLASSES:
        for i in range(2):
            info = sf.info(out / name / f"{name}_{i}.wav")
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (
                16000,
                1,
                8192,
                "PCM_16",
            )
            assert (out / name / f"{name}_{i}.png").is_file()

    again = sfxgan(
        "generate",
        run,
        "--out",
        tmp_path / "again",
        "--per-class",
        2,
        "--seed",
        3,
        "--classes",
        "rain",
    )
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == ["generated.json", "rain"]
    a, _ = sf.read(out / "rain" / "rain_1.wav")
    b, _ = sf.read(tmp_path / "again" / "rain" / "rain_1.wav")
    assert np.array_equal(a, b)  # deterministic for a seed, whatever other classes are asked


@pytest.mark.integration
def test_resume_is_exact(demo_dir, tmp_path):
    """N + M steps in one go, and N steps resumed for M, give identical weights on CPU."""
    train(demo_dir, tmp_path / "straight", "tiny", {**QUICK, "steps": 4}, progress=False)
    train(demo_dir, tmp_path / "resumed", "tiny", {**QUICK, "steps": 2}, progress=False)
    train(demo_dir, tmp_path / "resumed", settings={"steps": 4}, resume=True, progress=False)
    straight = load_checkpoint(tmp_path / "straight")
    resumed = load_checkpoint(tmp_path / "resumed")
    assert straight["step"] == resumed["step"] == 4
    for net in ("generator", "critic", "generator_ema"):
        for key, value in straight[net].items():
            assert torch.equal(value, resumed[net][key]), f"{net}.{key} differs"
    one_step = train(
        demo_dir, tmp_path / "other_seed", "tiny", {**QUICK, "steps": 4, "seed": 1}, progress=False
    )
    other = load_checkpoint(one_step.run)
    assert not torch.equal(
        other["generator"]["to_spec.weight"], straight["generator"]["to_spec.weight"]
    )


@pytest.mark.integration
def test_bf16_mixed_precision_trains_the_same_model(demo_dir, tmp_path):
    """--precision bf16 runs the whole step, records the choice, and its first step (same
    initial weights and batch as fp32) measures the same losses up to bfloat16 rounding;
    generation from it works. The weights stay float32."""
    settings = {**QUICK, "steps": 2, "preview_every": 100, "checkpoint_every": 100}
    fp32_settings = {**settings, "precision": "fp32"}  # auto would be bf16 on some CPUs
    fp32 = train(demo_dir, tmp_path / "fp32", "tiny", fp32_settings, progress=False).run
    result = sfxgan(
        "train",
        demo_dir,
        "--out",
        tmp_path / "bf16",
        "--steps",
        2,
        "--precision",
        "bf16",
        *QUICK_ARGS,
    )
    assert result.returncode == 0, result.stderr
    bf16 = tmp_path / "bf16"
    for run, precision in ((fp32, "fp32"), (bf16, "bf16")):
        assert json.loads((run / "config.json").read_text())["train"]["precision"] == precision
    first = [read_metrics(run)[0] for run in (fp32, bf16)]
    for key in ("critic_loss", "gradient_penalty", "wasserstein", "generator_loss"):
        a, b = first[0][key], first[1][key]
        assert abs(a - b) <= 0.05 * abs(a) + 0.02, f"step 1 {key}: fp32 {a} vs bf16 {b}"
    # ... and bf16 really ran: its rounding shows in the first step's numbers
    assert any(first[0][k] != first[1][k] for k in ("critic_loss", "gradient_penalty"))
    state = load_checkpoint(bf16)
    assert all(
        v.dtype == torch.float32 for v in state["generator"].values() if v.is_floating_point()
    )
    clips = Sampler.from_run(bf16).generate("rain", n=2, seed=0)
    assert clips.shape == (2, 8192) and np.isfinite(clips).all()

    bad = sfxgan("train", demo_dir, "--out", tmp_path / "fp64", "--precision", "fp64")
    assert_one_line_error(bad, "precision must be one of fp32, bf16, fp16, auto")


@pytest.mark.integration
def test_auto_precision_is_bf16_only_where_the_cpu_computes_it_natively(
    demo_dir, tmp_path, monkeypatch
):
    """The default precision (auto) becomes what this CPU does natively, says why, and the run
    records the concrete choice (a resume keeps it); a CPU without bfloat16 gets fp32."""
    flags = threads.cpu_flags()
    native = bool({"avx512_bf16", "amx_bf16"} & flags)
    shown = [arg for arg in QUICK_ARGS if arg != "--quiet"]  # the choice is a progress line
    result = sfxgan("train", demo_dir, "--out", tmp_path / "auto", "--steps", 1, *shown)
    assert result.returncode == 0, result.stderr
    recorded = json.loads((tmp_path / "auto" / "config.json").read_text())["train"]["precision"]
    line = next(x for x in result.stderr.splitlines() if x.startswith("precision: "))
    if native:
        assert recorded == "bf16" and "native bfloat16, measured" in line, line
        assert config.cpu_bf16_speedup() >= config.BF16_MIN_SPEEDUP
    else:
        assert recorded == "fp32" and "no native bfloat16" in line, line
    # a CPU that lacks the instructions (as a Zen 3 does) is never handed bf16, whose emulation
    # runs over 100x slower there
    monkeypatch.setattr(threads, "cpu_flags", lambda: flags - {"avx512_bf16", "amx_bf16"})
    config.cpu_bf16_speedup.cache_clear()  # measured once per process: ask again
    precision, reason = config.resolve_precision("auto", torch.device("cpu"))
    config.cpu_bf16_speedup.cache_clear()  # the real CPU's answer for the tests after
    assert precision == "fp32" and "no native bfloat16" in reason


@pytest.mark.slow
def test_fp16_with_gradient_scaling_trains_and_resumes(demo_dir, tmp_path):
    """float16 (for GPUs without bfloat16; it also runs on the CPU, slowly): the first step
    measures fp32's losses up to float16 rounding, weights stay float32, the scalers' state is
    checkpointed and restored, and the step whose gradients overflow float16 (the scaler starts
    at 2^16) is skipped, not taken for divergence."""
    settings = {**QUICK, "steps": 2, "preview_every": 100, "checkpoint_every": 1}
    fp32_settings = {**settings, "precision": "fp32"}  # auto would be bf16 on some CPUs
    fp32 = train(demo_dir, tmp_path / "fp32", "tiny", fp32_settings, progress=False).run
    fp16 = train(
        demo_dir, tmp_path / "fp16", "tiny", {**settings, "precision": "fp16"}, progress=False
    ).run
    for run, precision in ((fp32, "fp32"), (fp16, "fp16")):
        assert json.loads((run / "config.json").read_text())["train"]["precision"] == precision
    first = [read_metrics(run)[0] for run in (fp32, fp16)]
    for key in ("critic_loss", "wasserstein", "generator_loss"):
        a, b = first[0][key], first[1][key]
        assert abs(a - b) <= 0.02 * abs(a) + 0.02, f"step 1 {key}: fp32 {a} vs fp16 {b}"
    state = load_checkpoint(fp16)
    assert all(
        v.dtype == torch.float32 for v in state["generator"].values() if v.is_floating_point()
    )
    scale = state["scaler_critic"]["scale"]
    assert 0 < scale < 65536.0  # lowered after overflow: those updates were skipped
    resumed = train(demo_dir, fp16, settings={"steps": 3}, resume=True, progress=False)
    assert resumed.step == 3
    assert load_checkpoint(fp16)["scaler_critic"]["scale"] <= 2 * scale


@pytest.mark.integration
def test_experiment_curves_overlays_runs_and_measures_their_gap(demo_dir, tmp_path):
    settings = {**QUICK, "steps": 3, "preview_every": 100, "checkpoint_every": 100}
    a = train(demo_dir, tmp_path / "a", "tiny", settings, progress=False).run
    b = train(demo_dir, tmp_path / "b", "tiny", {**settings, "seed": 1}, progress=False).run
    out = tmp_path / "curves.png"
    result = sfxgan("experiment", "curves", a, a, b, "--labels", "a,a2,b", "--out", out)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 10_000
    rows = [line.split("|") for line in result.stdout.splitlines() if line.startswith("| critic")]
    gaps = {cells[2].strip(): cells[4].strip() for cells in rows}
    assert gaps["a"] == "" and float(gaps["a2"]) == 0.0 and float(gaps["b"]) > 0.0
    speed = [line.split("|") for line in result.stdout.splitlines() if line.startswith("| a2 ")]
    assert speed[0][5].strip() == "1.00x"  # the same run as the first one

    missing = sfxgan("experiment", "curves", a, tmp_path / "nothing", "--out", out)
    assert_one_line_error(missing, "nothing")
    labels = sfxgan("experiment", "curves", a, b, "--labels", "x", "--out", out)
    assert_one_line_error(labels, "--labels")


def test_moving_average_of_the_generator_ramps_up_its_decay():
    """After n updates the average moves by 1 - min(decay, (1 + n) / (10 + n)) towards the
    weights; the first update copies them."""
    net = torch.nn.Linear(1, 1, bias=False)
    average = AveragedModel(net, multi_avg_fn=ema_average(0.2))
    betas, expected = [], 0.0
    for n, value in enumerate([4.0, 8.0, 2.0, 6.0]):
        net.weight.data.fill_(value)
        average.update_parameters(net)
        beta = min(0.2, (1 + n) / (10 + n))  # 0.1, 0.18, then the decay 0.2
        expected = value if n == 0 else beta * expected + (1 - beta) * value
        assert average.module.weight.item() == pytest.approx(expected)
        betas.append(beta)
    assert betas[1:] == [pytest.approx(2 / 11), 0.2, 0.2]


@pytest.mark.integration
def test_generation_uses_the_moving_average_when_the_run_kept_one(demo_dir, tmp_path):
    settings = {**QUICK, "steps": 2, "preview_every": 100, "ema_decay": 0.9}
    run = train(demo_dir, tmp_path / "ema", "tiny", settings, progress=False).run
    state = load_checkpoint(run)
    ema = state["generator_ema_inference"]
    assert not torch.equal(ema["to_spec.weight"], state["generator"]["to_spec.weight"])
    assert Sampler.from_run(run).weights == "ema"
    assert Sampler.from_run(run, ema=False).weights == "raw"
    averaged = Sampler.from_run(run).generate("rain", n=2)
    trained = Sampler.from_run(run, ema=False).generate("rain", n=2)
    assert averaged.shape == trained.shape and not np.allclose(averaged, trained)
    result = sfxgan("generate", run, "--out", tmp_path / "raw", "--per-class", 1, "--no-ema")
    assert result.returncode == 0 and "(trained weights)" in result.stdout, result.stderr
    assert "(moving-average weights)" in sfxgan("generate", run, "--out", tmp_path / "e").stdout

    plain = train(
        demo_dir, tmp_path / "plain", "tiny", {**settings, "ema_decay": 0.0}, progress=False
    ).run
    assert "generator_ema" not in load_checkpoint(plain)
    assert Sampler.from_run(plain).weights == "raw"


@pytest.mark.integration
def test_sampler_api(demo_dir, tmp_path):
    train(demo_dir, tmp_path / "run", "tiny", {**QUICK, "steps": 1}, progress=False)
    sampler = Sampler.from_run(tmp_path / "run")
    clips = sampler.generate("rain", n=4)
    assert clips.shape == (4, 8192) and clips.dtype == np.float32
    assert np.allclose(np.abs(clips).max(axis=1), 1.0, atol=1e-4)  # peak-normalised
    assert np.array_equal(clips, sampler.generate("rain", n=4))
    assert not np.array_equal(clips, sampler.generate("rain", n=4, seed=1))
    assert sampler.sample_rate == 16000 and sampler.classes == list(DEMO_CLASSES)
    with pytest.raises(SfxganError, match="unknown class 'thunder'.*birds, engine"):
        sampler.generate("thunder")


@pytest.mark.integration
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(demo_dir, tmp_path, monkeypatch):
    real_loss = train_module.reconstruction_loss
    calls = {"n": 0}

    def poisoned(*args, **kwargs):  # the data path is real; the loss turns NaN at step 3
        calls["n"] += 1
        loss = real_loss(*args, **kwargs)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(train_module, "reconstruction_loss", poisoned)
    with pytest.raises(TrainingDiverged, match="non-finite recon_loss at step 3"):
        train(demo_dir, tmp_path / "run", "tiny", {**QUICK, "steps": 6}, progress=False)
    kept = load_checkpoint(tmp_path / "run")
    assert kept["step"] == 2
    assert all(torch.isfinite(v).all() for v in kept["generator"].values() if v.is_floating_point())


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_continues(demo_dir, tmp_path):
    run = tmp_path / "run"
    args = [
        sys.executable,
        "-m",
        "sfxgan",
        "train",
        str(demo_dir),
        "--out",
        str(run),
        "--steps",
        "1000",
        *QUICK_ARGS,
        "--checkpoint-every",
        "500",
        "--preview-every",
        "500",
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    metrics = run / "metrics.csv"
    wait_for_logged_steps(metrics, 2, timeout=120)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "--resume" in stdout
    # said when the signal came, not only after the step and the checkpoint
    assert "stopping: finishing the current step and saving a checkpoint" in stderr
    state = load_checkpoint(run)
    with open(metrics) as fh:
        logged = [int(r["step"]) for r in csv.DictReader(fh)]
    assert state["step"] == logged[-1] >= 2  # the checkpoint holds the last completed step
    assert read_stop(run)["why"] == "signal" and read_stop(run)["step"] == state["step"]
    result = sfxgan(
        "train", demo_dir, "--out", run, "--resume", "--steps", state["step"] + 1, *QUICK_ARGS
    )
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run)["step"] == state["step"] + 1


def test_epoch_sampler_visits_every_clip_once_per_epoch():
    sampler = EpochSampler(10, 3, seed=0)
    first_epoch = torch.cat([sampler.batch(k) for k in range(3)])
    assert len(set(first_epoch.tolist())) == 9  # 3 full batches, no repeats
    assert torch.equal(EpochSampler(10, 3, seed=0).batch(4), sampler.batch(4))  # pure in k
    small = EpochSampler(2, 5, seed=0)  # fewer clips than a batch: repeated, still a batch
    assert len(small.batch(0)) == 5


# -- user errors: one line, exit code 2, nothing lost ----------------------------------------


@pytest.mark.integration
def test_existing_run_is_never_overwritten(demo_dir, tmp_path):
    run = tmp_path / "run"
    train(demo_dir, run, "tiny", {**QUICK, "steps": 1}, progress=False)
    before = (run / "checkpoints" / "latest.pt").read_bytes()
    result = sfxgan("train", demo_dir, "--out", run, "--steps", 2, *QUICK_ARGS)
    assert_one_line_error(result, "already holds a training run", "--resume")
    assert (run / "checkpoints" / "latest.pt").read_bytes() == before


@pytest.mark.integration
def test_resume_refuses_to_change_the_experiment(demo_dir, tmp_path):
    run = tmp_path / "run"
    train(demo_dir, run, "tiny", {**QUICK, "steps": 1}, progress=False)
    before = (run / "checkpoints" / "latest.pt").read_bytes()
    result = sfxgan("train", demo_dir, "--out", run, "--resume", "--n-critic", "5", *QUICK_ARGS[4:])
    assert_one_line_error(result, "cannot change n_critic", "n_critic=2, not 5")
    result = sfxgan("train", demo_dir, "--out", run, "--resume", "--preset", "paper-16k")
    assert_one_line_error(result, "cannot change the preset", "used tiny, not paper-16k")
    # fewer steps than the run has (or as many) is no training: said, and nothing changes
    config = (run / "config.json").read_bytes()
    result = sfxgan("train", demo_dir, "--out", run, "--resume", "--steps", "1", "--quiet")
    assert_one_line_error(result, "is at step 1 already", "--steps 1 is the total", "above 1")
    result = sfxgan("train", demo_dir, "--out", run, "--resume", "--quiet")
    assert_one_line_error(result, "has reached its last step (1)", "--steps above 1")
    assert (run / "config.json").read_bytes() == config
    assert (run / "checkpoints" / "latest.pt").read_bytes() == before


@pytest.mark.integration
def test_resume_with_the_first_command_line_repeated_is_accepted(demo_dir, tmp_path):
    """The up-arrow case: the command that started the run, with --resume and more steps. Its
    --preset and options equal the run's own settings, so they are no change."""
    run = tmp_path / "run"
    first = ["train", demo_dir, "--out", run, "--preset", "tiny", *QUICK_ARGS]
    assert sfxgan(*first, "--steps", 2).returncode == 0
    config = tmp_path / "tiny.toml"
    config.write_text('base = "tiny"\n[train]\nn_critic = 2\n')
    result = sfxgan(*first, "--steps", 3, "--resume", "--config", config)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run)["step"] == 3
    assert json.loads((run / "config.json").read_text())["train"]["n_critic"] == 2


@pytest.mark.integration
def test_bad_checkpoints_and_requests(demo_dir, tmp_path):
    run = tmp_path / "run"
    train(demo_dir, run, "tiny", {**QUICK, "steps": 1}, progress=False)
    out = tmp_path / "out"

    assert_one_line_error(
        sfxgan("generate", run, "--out", out, "--classes", "thunder"), "unknown class 'thunder'"
    )
    assert not out.exists()  # nothing half-written
    assert_one_line_error(sfxgan("generate", tmp_path / "nowhere", "--out", out), "does not exist")
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert_one_line_error(sfxgan("generate", empty, "--out", out), "holds no checkpoint")

    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes((run / "checkpoints" / "latest.pt").read_bytes()[:5000])
    assert_one_line_error(sfxgan("generate", damaged, "--out", out), "not a readable")
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    assert_one_line_error(sfxgan("generate", foreign, "--out", out), "not an sfxgan checkpoint")
    for size in (0, 1):  # an empty file and a truncated one whose error has no message
        cut = tmp_path / f"cut_{size}.pt"
        cut.write_bytes((run / "checkpoints" / "latest.pt").read_bytes()[:size])
        assert_one_line_error(sfxgan("generate", cut, "--out", out), "not a readable")
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "sfxgan-checkpoint", "evil": EpochSampler(1, 1, 0)}, pickled)
    assert_one_line_error(sfxgan("generate", pickled, "--out", out), "not a readable")

    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(sfxgan("generate", run, "--out", blocker / "sub"), "cannot write")
    assert_one_line_error(
        sfxgan("train", tmp_path / "no_data", "--out", tmp_path / "r2"), "does not exist"
    )
    assert_one_line_error(
        sfxgan("train", demo_dir, "--out", tmp_path / "r3", "--preset", "big"), "big"
    )


@pytest.mark.integration
def test_config_file_then_options_override_the_preset(demo_dir, tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps(
            {
                "n_critic": 3,
                "recon_weight": 0.0,
                "gp_weight": 5.0,
                "batch_size": 4,
                "steps": 1,
                "lr_generator": 2e-4,
            }
        )
    )
    run = tmp_path / "run"
    result = sfxgan(
        "train", demo_dir, "--out", run, "--config", settings, "--n-critic", 2, "--quiet"
    )
    assert result.returncode == 0, result.stderr
    train_config = json.loads((run / "config.json").read_text())["train"]
    assert train_config["n_critic"] == 2  # the option beats the file
    assert train_config["gp_weight"] == 5.0 and train_config["recon_weight"] == 0.0  # the file
    assert train_config["lr_generator"] == 2e-4 and train_config["steps"] == 1
    assert train_config["beta2"] == 0.9  # the preset
    # a run's own config.json is a valid config file for a new run
    again = sfxgan(
        "train", demo_dir, "--out", tmp_path / "again", "--config", run / "config.json", "--quiet"
    )
    assert again.returncode == 0, again.stderr
    assert json.loads((tmp_path / "again" / "config.json").read_text())["train"] == train_config
    # and a checkpoint file, not only a run folder, generates
    out = tmp_path / "sounds"
    result = sfxgan(
        "generate",
        run / "checkpoints" / "step_0000001.pt",
        "--out",
        out,
        "--per-class",
        1,
        "--classes",
        "birds",
    )
    assert result.returncode == 0, result.stderr
    assert (out / "birds" / "birds_0.wav").is_file()
    bad = tmp_path / "bad.json"
    bad.write_text('{"n_critics": 3}')
    assert_one_line_error(
        sfxgan("train", demo_dir, "--out", tmp_path / "r", "--config", bad),
        "unknown training setting(s) n_critics",
    )


@pytest.mark.integration
def test_interpolation_weights_are_uniform_on_0_1(demo_dir, tmp_path, monkeypatch):
    """WGAN-GP's a ~ U(0, 1), not the reference's N(0, 1) (which also gives a < 0 and a > 1)."""
    real_interpolate = train_module.interpolate
    drawn = []

    def recording(real, fake, alpha):
        drawn.append(alpha.detach().clone())
        return real_interpolate(real, fake, alpha)

    monkeypatch.setattr(train_module, "interpolate", recording)
    train(
        demo_dir, tmp_path / "run", "tiny", {**QUICK, "steps": 4, "batch_size": 16}, progress=False
    )
    alpha = torch.cat(drawn)
    assert len(alpha) == 4 * 2 * 16  # steps x n_critic x batch
    assert alpha.min() >= 0 and alpha.max() <= 1
    assert 0.35 < alpha.mean() < 0.65 and alpha.std() > 0.2  # spread like U(0, 1), std 0.29


@pytest.mark.slow
def test_fp16_skips_an_overflowed_update_and_stops_when_it_keeps_overflowing(
    demo_dir, tmp_path, monkeypatch
):
    """A critic update whose loss overflows (made infinite here, with its gradients) is skipped
    by the scaler and logged as nan, and training goes on; overflowing MAX_SKIPPED_STEPS steps in
    a row is divergence."""
    real_penalty = train_module.gradient_penalty
    calls = {"n": 0, "poison": {2}}  # the last critic update of step 1 (n_critic 2)

    def overflowing(scores, x_hat, grad_scale=1.0):
        calls["n"] += 1
        penalty = real_penalty(scores, x_hat, grad_scale)
        poisoned = calls["poison"] is None or calls["n"] in calls["poison"]
        return penalty * float("inf") if poisoned else penalty

    monkeypatch.setattr(train_module, "gradient_penalty", overflowing)
    settings = {**QUICK, "steps": 2, "preview_every": 100, "precision": "fp16"}
    run = train(demo_dir, tmp_path / "once", "tiny", settings, progress=False).run
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert np.isnan(rows[0]["critic_loss"]) and np.isnan(rows[0]["gradient_penalty"])
    assert np.isfinite(rows[1]["critic_loss"])
    assert all(torch.isfinite(v).all() for v in load_checkpoint(run)["critic"].values())

    calls.update(n=0, poison=None)  # every update overflows
    monkeypatch.setattr(train_module, "MAX_SKIPPED_STEPS", 1)
    with pytest.raises(TrainingDiverged, match="non-finite critic_loss.* at step 2"):
        train(demo_dir, tmp_path / "always", "tiny", settings, progress=False)


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
def test_training_on_a_gpu_in_each_precision(demo_dir, tmp_path, precision):
    """The CUDA path (pinned, asynchronous draws; loader workers with pinned memory; autocast;
    gradient scaling): trains, checkpoints, resumes and generates."""
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    settings = {**QUICK, "steps": 3, "device": "cuda", "precision": precision, "workers": 2}
    run = train(demo_dir, tmp_path / "run", "tiny", settings, progress=False).run
    rows = read_metrics(run)
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    train(demo_dir, run, settings={"steps": 4}, resume=True, progress=False)
    assert load_checkpoint(run)["step"] == 4
    clips = Sampler.from_run(run, device="cuda").generate("rain", n=2)
    assert clips.shape == (2, 8192) and np.isfinite(clips).all()


@pytest.mark.integration
def test_lazy_gradient_penalty_runs_on_every_kth_critic_update_with_k_times_the_weight(
    demo_dir, tmp_path, monkeypatch
):
    real_penalty = train_module.gradient_penalty
    calls = []  # (batch, penalty) of each penalty computed, passed through unchanged

    def recording(scores, x_hat, grad_scale=1.0):
        penalty = real_penalty(scores, x_hat, grad_scale)
        calls.append((len(x_hat), penalty.item()))
        return penalty

    monkeypatch.setattr(train_module, "gradient_penalty", recording)
    # no auxiliary classifier, so that the critic's loss is the Wasserstein term and the penalty
    settings = {**QUICK, "steps": 3, "n_critic": 2, "gp_every": 3, "class_weight": 0.0}
    settings["lecam_weight"] = 0.0  # nor LeCam's term
    train(demo_dir, tmp_path / "run", "tiny", settings, progress=False)
    assert [batch for batch, _ in calls] == [4, 4]  # critic updates 0 and 3 of 0..5
    with open(tmp_path / "run" / "metrics.csv", newline="") as fh:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(fh)]
    # a row logs its step's last critic update: 1 (no penalty), 3 (penalty), 5 (no penalty),
    # with the latest penalty computed: update 0's, then update 3's twice
    first, second = calls[0][1], calls[1][1]
    assert [r["gradient_penalty"] for r in rows] == pytest.approx([first, second, second], 1e-5)
    assert second > 0
    # the loss of update 3 carries k = 3 times the penalty at gp_weight 10; the others none
    # (6 digits in the CSV; with 1 x the penalty row 1 would be off by 20 x penalty)
    expected = [-rows[0]["wasserstein"], -rows[1]["wasserstein"] + 10 * 3 * second]
    expected.append(-rows[2]["wasserstein"])
    for row, loss in zip(rows, expected, strict=True):
        scale = abs(row["wasserstein"]) + 30 * second
        assert row["critic_loss"] == pytest.approx(loss, abs=1e-5 * scale), row


@pytest.mark.integration
@pytest.mark.parametrize(
    "settings",
    [
        {"critic_conditioning": "projection", "class_weight": 1.0, "gen_class_weight": 1.0},
        {"gen_conditioning": "cbn", "upsample": "nearest", "augment": "shift,gain,mask"},
        # the ramp spans the resume, and LeCam's moving averages must come back with it
        {"lecam_weight": 0.01, "transition_start": 1, "transition_end": 3},
    ],
    ids=["auxiliary-classifier", "cbn-nearest-augment", "lecam-transition"],
)
def test_the_recipe_options_train_resume_exactly_and_generate(demo_dir, tmp_path, settings):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(demo_dir, straight, "tiny", {**QUICK, **settings, "steps": 4}, progress=False)
    train(demo_dir, split, "tiny", {**QUICK, **settings, "steps": 2}, progress=False)
    train(demo_dir, split, "tiny", {"steps": 4}, resume=True, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(split)
    for name in ("generator", "critic"):
        for key in a[name]:
            torch.testing.assert_close(a[name][key], b[name][key], msg=f"{name}.{key}")
    config = json.loads((straight / "config.json").read_text())
    for key, value in settings.items():
        assert {**config["model"], **config["train"]}[key] == value
    clips = Sampler.from_run(straight).generate(DEMO_CLASSES[0], n=2, seed=0)
    assert clips.shape == (2, 8192) and np.isfinite(clips).all()


@pytest.mark.integration
def test_model_options_cannot_change_on_resume_and_the_classifier_needs_projection(
    demo_dir, tmp_path
):
    run = tmp_path / "run"
    result = sfxgan("train", demo_dir, "--out", run, "--steps", 2, *QUICK_ARGS)
    assert result.returncode == 0, result.stderr
    result = sfxgan("train", demo_dir, "--out", run, "--resume", "--upsample", "nearest")
    assert_one_line_error(result, "cannot change upsample", "upsample=transpose")
    result = sfxgan(
        "train", demo_dir, "--out", tmp_path / "ac", "--critic-conditioning", "concat",
        "--class-weight", "1",
    )  # fmt: skip
    assert_one_line_error(result, "needs --critic-conditioning projection")
    assert not (tmp_path / "ac").exists()


@pytest.mark.parametrize("term", ["gen_class_weight", "recon_weight"])
def test_every_generator_loss_term_reaches_the_generator_update(demo_dir, term):
    """From the same weights and draws, one generator update with a term weighted 10x more
    gives other weights: the term is part of the loss that is differentiated (a loss computed
    and then dropped from the sum would leave them equal)."""
    from sfxgan.config import get_preset
    from sfxgan.data.dataset import load_dataset
    from sfxgan.run_folder import RunSpec
    from sfxgan.training.trainer import Trainer

    preset = get_preset("tiny")
    dataset = load_dataset(demo_dir, preset.features, log=None, progress=False)
    model = dataclasses.replace(preset.model, critic_conditioning="projection")
    updated = []
    for scale in (1.0, 10.0):
        settings = {"class_weight": 1.0, "gen_class_weight": 1.0, "recon_weight": 1e-2}
        # fp32: Adam's first update is lr * sign(gradient), so the check needs a term whose
        # 10x flips some signs, which bf16's rounding of the small terms can hide
        settings |= {"recon_iters": 3, "batch_size": 4, "precision": "fp32"}
        settings[term] *= scale
        spec = RunSpec(
            "tiny", preset.features, model, preset.train.replace(**settings),
            list(dataset.classes), dataset.max_value, str(demo_dir),
        )  # fmt: skip
        trainer = Trainer(spec, dataset, torch.device("cpu"))
        trainer.generator_step()
        updated.append(trainer.generator.to_spec.weight.detach().clone())
    assert not torch.allclose(updated[0], updated[1])
