"""The training loop: critic steps, then the generator step, in order, in one loop.

One step = `n_critic` critic updates (WGAN-GP) followed by one generator update (adversarial
loss + recon_weight * audio reconstruction loss). Everything a step draws at random comes from
generators whose state is checkpointed, so a resumed run continues exactly, on any number of
processes: under torchrun each process trains on its share of every global batch (see
`distributed`), and rank 0 alone writes the run folder.
"""

from __future__ import annotations

import math
import shutil
import signal
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel
from tqdm import tqdm

from sfxgan import threads
from sfxgan.config import (
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    DEFAULT_PRESET,
    TrainConfig,
    get_preset,
    resolve_precision,
    split_settings,
)
from sfxgan.data import augment
from sfxgan.data.audio import write_wav
from sfxgan.data.batches import BatchShares, stream_batches
from sfxgan.data.dataset import SoundDataset, load_dataset, to_stderr
from sfxgan.dsp.features import STFT
from sfxgan.dsp.phase import FAST_MOMENTUM
from sfxgan.errors import ConfigError, SfxganError
from sfxgan.evaluate.tracking import (
    QualityTracker,
    best_check,
    best_record,
    read_quality,
    save_quality_curves,
    write_quality,
)
from sfxgan.generate import Sampler
from sfxgan.model.losses import (
    class_loss,
    critic_loss,
    generator_adversarial_loss,
    gradient_penalty,
    interpolate,
    lecam_penalty,
    reconstruction_loss,
)
from sfxgan.model.networks import Generator, build_models
from sfxgan.plots import save_loss_curves, save_spectrograms
from sfxgan.run_folder import (
    TRAINED_WEIGHTS,
    RunSpec,
    clear_stop,
    config_path,
    find_checkpoint,
    inference_entries,
    load_checkpoint,
    metrics_log,
    preview_dir,
    previews_dir,
    read_metrics,
    save_best,
    save_checkpoint,
    step_checkpoints,
    write_config,
    write_metrics,
    write_stop,
)
from sfxgan.training import distributed

# What may change when a run is resumed; everything else would make it another experiment.
RESUMABLE = {
    "steps",
    "patience",  # when to stop: the checks' figures are the same whatever it is
    "time_budget",
    "log_every",
    "preview_every",
    "eval_every",
    "checkpoint_every",
    "keep_checkpoints",
    "device",
    "precision",  # the same model in other arithmetic, e.g. resumed on a GPU with bf16
    "ema_decay",  # an average kept beside the training, which it does not change
    "workers",
}
PREVIEW_PHASE = (DEFAULT_PHASE, DEFAULT_PHASE_ITERS)
# float16 gradient scaling skips the update of a step whose gradients overflowed (and lowers the
# scale); this many skipped steps in a row is no longer overflow but divergence.
MAX_SKIPPED_STEPS = 20
BUDGET_PROBE_STEPS = 2  # steps timed before a time budget is checked against the first check
LECAM_DECAY = 0.99  # of the moving averages of the critic's scores, as Tseng et al.


class TrainingDiverged(SfxganError):
    """A loss became NaN or infinite."""


@contextmanager
def _stop_on_signals(announce: bool = True):
    """The first Ctrl-C or SIGTERM asks the loop to stop after the current step (and save), and
    says so at once (`announce`: the process that reports); a second Ctrl-C interrupts at once."""
    requested = {"signal": None}

    def handler(signum, frame):
        if requested["signal"] is None and announce:
            # a step of paper-64k takes a minute: the user must not wonder whether it heard
            print(
                "\nsfxgan: stopping: finishing the current step and saving a checkpoint "
                "(Ctrl-C again stops at once, without saving)",
                file=sys.stderr,
                flush=True,
            )
        requested["signal"] = signum
        signal.signal(signal.SIGINT, signal.default_int_handler)

    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in old:
            signal.signal(s, handler)
    except ValueError:  # not the main thread: no handlers, Ctrl-C behaves as usual
        old = {}
    try:
        yield requested
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def adam(module: torch.nn.Module, lr: float, cfg: TrainConfig) -> torch.optim.Adam:
    """Adam with the fused kernel: one pass over all parameters instead of a loop of small
    element-wise ops. Same update up to rounding; measured 5.5x faster per step on CPU for
    paper-16k's 44M parameters (236 -> 43 ms), which at n_critic 5 is ~10 % of a batch-4 step."""
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2), fused=True)


def ema_average(decay: float):
    """AveragedModel's update for an exponential moving average with a ramp-up: after n
    updates the decay is min(decay, (1 + n) / (10 + n)), so that a short run's average is not
    dominated by the random initial weights (with 0.999 and no ramp, 55 % of the average after
    600 steps would still be the first step's weights)."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n_averaged) -> None:
        n = int(n_averaged)
        beta = min(decay, (1 + n) / (10 + n))
        torch._foreach_lerp_(averaged, current, 1 - beta)

    return update


def check_device_support(precision: str, device: torch.device) -> None:
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(
            f"this GPU ({torch.cuda.get_device_name(device)}) has no bfloat16; "
            "use --precision fp16 (with gradient scaling) or fp32"
        )


class Trainer:
    """Holds the networks, optimisers, data stream and random state of one run, in this process.

    With several processes (torchrun), the networks are wrapped in DistributedDataParallel for
    their updates, the generator's BatchNorm uses the global batch's statistics, and each
    process trains on its share of every global batch (see `distributed`).
    """

    def __init__(self, spec: RunSpec, dataset: SoundDataset, device: torch.device):
        self.spec, self.device = spec, device
        if spec.train.precision == "auto":  # built directly (bench, tests), not through train()
            spec.train = spec.train.replace(precision=resolve_precision("auto", device)[0])
        cfg = spec.train
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        torch.manual_seed(cfg.seed)
        self.generator, self.critic = build_models(
            spec.model, len(spec.classes), classifier=cfg.class_weight > 0
        )
        if distributed.active():
            distributed.use_global_batchnorm(self.generator)
        self.generator.to(device)
        self.critic.to(device)
        # DDP wrappers where a weight update follows; the plain modules where only the input
        # gradient (critic in the generator step) or no gradient (generator in the critic
        # step) is needed, so DDP never waits for a reduction that does not come.
        self.generator_update = distributed.wrap(self.generator, device)
        self.critic_update = distributed.wrap(self.critic, device)
        self.opt_g = adam(self.generator, cfg.lr_generator, cfg)
        self.opt_d = adam(self.critic, cfg.lr_critic, cfg)
        fp16 = cfg.precision == "fp16"
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=fp16)
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = AveragedModel(self.generator, multi_avg_fn=ema_average(cfg.ema_decay))
            self.ema.requires_grad_(False)
        self.stft = STFT(spec.features)
        log_shift = 0.0
        if dataset.max_value != spec.max_value:  # resumed on changed data: keep the run's scale
            log_shift = float(np.log(dataset.max_value / spec.max_value) / 5)
        self.shares = BatchShares(
            dataset, cfg.batch_size, cfg.seed, self.rank, self.world_size, log_shift
        )
        workers = cfg.workers if cfg.workers >= 0 else (2 if device.type == "cuda" else 0)
        self._stream_options = {"workers": workers, "pin_memory": device.type == "cuda"}
        self._batches = None
        self.batches_drawn = 0
        self.noise = torch.Generator().manual_seed(cfg.seed + 1)
        self.augment_ops = augment.parse_ops(cfg.augment)
        # LeCam's moving averages of the critic's mean real and fake scores, and how many
        # updates they have seen (for the bias correction of a zero start)
        self.lecam_state = torch.zeros(3, device=device)
        self.last_penalty = torch.zeros((), device=device)
        self.last_recon = torch.zeros((), device=device)
        self.step = 0
        self.skipped_in_a_row = 0
        self._inference_states: dict[str, tuple[int, dict]] = {}

    def autocast(self) -> torch.autocast:
        """Mixed precision around the networks when asked; a no-op context for fp32."""
        precision = self.spec.train.precision
        dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        return torch.autocast(self.device.type, dtype=dtype, enabled=precision != "fp32")

    # -- random draws: the global batch's, from one CPU generator (identical on every device
    # and process), of which this process takes its share ----------------------------------
    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self._batches is None:
            self._batches = stream_batches(self.shares, self.batches_drawn, **self._stream_options)
        log_spec, audio, labels = next(self._batches)
        self.batches_drawn += 1
        to = {"device": self.device, "non_blocking": True}
        spec = log_spec.to(**to).float().unsqueeze(1)  # (b, 1, T, F)
        return spec, audio.to(**to), labels.to(**to)

    def _mine(self, drawn: torch.Tensor) -> torch.Tensor:
        """This process's slice of a draw for the global batch, on the device. On CUDA through
        pinned memory without waiting: a plain copy from pageable memory synchronises the
        stream, and the host would wait for the GPU at every critic update."""
        mine = self.shares.mine(drawn)
        if self.device.type == "cuda":
            return mine.pin_memory().to(self.device, non_blocking=True)
        return mine

    def latents(self) -> torch.Tensor:
        batch, latent_dim = self.spec.train.batch_size, self.spec.model.latent_dim
        return self._mine(torch.randn(batch, latent_dim, generator=self.noise))

    # -- one step -----------------------------------------------------------------------------
    def augmented(self, spec: torch.Tensor) -> torch.Tensor:
        """The critic's view of real or generated spectrograms: augmented when asked (the same
        kind of random draw for both sides, made for the global batch)."""
        if not self.augment_ops:
            return spec
        cfg = self.spec.train
        draws = self._mine(augment.draw(cfg.batch_size, cfg.augment_p, self.noise))
        return augment.augment(spec, draws, self.augment_ops)

    def critic_step(self, with_penalty: bool = True) -> dict[str, torch.Tensor]:
        """One critic update; `with_penalty` False skips the gradient penalty (lazy penalty)."""
        cfg = self.spec.train
        real, _, labels = self.next_batch()
        z = self.latents()
        alpha = self._mine(torch.rand(cfg.batch_size, generator=self.noise))  # U(0, 1)
        with self.autocast(), torch.no_grad():
            fake = self.generator(z, labels).float()
        real, fake = self.augmented(real), self.augmented(fake)
        batch = [real, fake]
        if with_penalty:
            x_hat = interpolate(real, fake, alpha)
            batch.append(x_hat)
        classify = cfg.class_weight > 0
        with self.autocast():
            scores, logits = self._critic_scores(batch, labels, classify)
        d_real, d_fake, *d_hat = scores.split(len(labels))
        loss = critic_loss(d_real, d_fake)
        if classify:  # the auxiliary classifier learns from the real clips only
            weight = cfg.class_weight * self.class_strength()
            loss = loss + weight * class_loss(logits[: len(labels)], labels)
        if cfg.lecam_weight > 0:
            ema_real, ema_fake = self._lecam_anchors(d_real, d_fake)
            loss = loss + cfg.lecam_weight * lecam_penalty(d_real, d_fake, ema_real, ema_fake)
        if with_penalty:
            gp = gradient_penalty(d_hat[0], x_hat, self.scaler_d.get_scale())
            # lazy: every gp_every-th update carries the penalty of all gp_every of them
            loss = loss + cfg.gp_weight * cfg.gp_every * gp
            self.last_penalty = gp.detach()
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        return {
            "critic_loss": loss.detach(),
            "gradient_penalty": self.last_penalty,  # the latest one computed
            "wasserstein": (d_real.mean() - d_fake.mean()).detach(),
        }

    def _lecam_anchors(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        """Update LeCam's moving averages with this batch's mean scores (the global batch's:
        every process holds the same averages) and return them, bias-corrected: (real, fake)."""
        means = torch.stack([d_real.mean(), d_fake.mean()]).detach().float()
        means = distributed.average(means)
        state = self.lecam_state
        state[:2] = LECAM_DECAY * state[:2] + (1 - LECAM_DECAY) * means
        state[2] += 1
        return state[:2] / (1 - LECAM_DECAY ** state[2])

    def class_strength(self, step: int | None = None) -> float:
        """How much of the class terms is on at `step` (default: this step): 1 without
        transitional conditioning, else 0 until transition_start, rising linearly to 1 at
        transition_end (a function of the step alone, so a resumed run ramps the same)."""
        cfg = self.spec.train
        if cfg.transition_end == 0:
            return 1.0
        step = self.step if step is None else step
        ramp = (step - cfg.transition_start) / (cfg.transition_end - cfg.transition_start)
        return min(1.0, max(0.0, ramp))

    def _critic_scores(
        self, batch: list[torch.Tensor], labels: torch.Tensor, classify: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The critic's scores (and class logits) of [real, fake(, interpolates)], in that
        order. Under DDP in one pass (it needs one forward per backward). In one process, real
        and fake in one pass and the interpolates in another: the penalty's backward and double
        backward then run over the interpolates alone, where in one pass they ran over all
        three batches (with zeros for two): a paper-16k step is 1.3x faster in fp32 (batch 4
        4.3-4.7 -> 3.4-3.6 s, batch 16 16.5-18.3 -> 13.4 s, docs/benchmarks.md). The critic
        has no batch normalisation, so both compute the same scores."""
        passes = [batch] if distributed.active() else [batch[:2], batch[2:]]
        outs = [
            self.critic_update(torch.cat(part), labels.repeat(len(part)), with_logits=classify)
            for part in passes
            if part
        ]
        if not classify:
            return torch.cat(outs), None
        return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])

    def generator_step(self) -> dict[str, torch.Tensor]:
        cfg = self.spec.train
        _, real_audio, labels = self.next_batch()  # the fake batch takes the real batch's labels
        z = self.latents()
        self.critic.requires_grad_(False)  # no critic weight gradients in the generator step
        classify = cfg.class_weight > 0 and cfg.gen_class_weight > 0  # the critic has the head
        with self.autocast():
            fake = self.generator_update(z, labels).float()
            out = self.critic(self.augmented(fake), labels, with_logits=classify)
        scores, logits = out if classify else (out, None)
        adversarial = generator_adversarial_loss(scores)
        self.critic.requires_grad_(True)
        loss = adversarial
        if classify:  # clips the critic's classifier names as the class they were made for
            weight = cfg.gen_class_weight * self.class_strength()
            loss = loss + weight * class_loss(logits, labels)
        recon = self.last_recon
        if cfg.recon_weight > 0 and self.step % cfg.recon_every == 0:
            momentum = FAST_MOMENTUM if cfg.recon_phase == "fast-griffin-lim" else 0.0
            recon = reconstruction_loss(
                fake,
                real_audio,
                self.stft,
                self.spec.max_value,
                n_iter=cfg.recon_iters,
                momentum=momentum,
                normalize=cfg.recon_normalize,
            )
            # lazy: every recon_every-th generator update carries the loss of all of them
            loss = loss + cfg.recon_weight * cfg.recon_every * recon
            self.last_recon = recon.detach()
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        if self.ema is not None:
            self.ema.update_parameters(self.generator)
        return {"generator_loss": adversarial.detach(), "recon_loss": recon.detach()}

    def train_step(
        self, stop_requested: bool = False, budget_spent: bool = False
    ) -> tuple[dict[str, float], str | None]:
        """One step; returns its losses (of the global batch, averaged over processes) and why
        all processes stop after it: "signal" when any was asked to stop (Ctrl-C, SIGTERM),
        "budget" when any found the time budget spent, else None."""
        scalers = (self.scaler_d, self.scaler_g)
        scales = [scaler.get_scale() for scaler in scalers]
        cfg = self.spec.train
        self.set_learning_rates()
        strength = self.class_strength()
        self.generator.class_strength = self.critic.class_strength = strength
        for i in range(cfg.n_critic):
            update = self.step * cfg.n_critic + i  # critic updates so far: resumes exactly
            critic_metrics = self.critic_step(with_penalty=update % cfg.gp_every == 0)
        metrics = {**critic_metrics, **self.generator_step()}
        self.step += 1
        # a lower scale means a float16 overflow made a scaler skip an update
        skipped = any(s.get_scale() < before for s, before in zip(scalers, scales, strict=True))
        self.skipped_in_a_row = self.skipped_in_a_row + 1 if skipped else 0
        # filled on the device: no host-to-device copy on the step's path
        flags = [
            torch.full((), float(flag), device=self.device)
            for flag in (stop_requested, budget_spent)
        ]
        values = torch.stack([*metrics.values(), *flags]).float()
        values = distributed.average(values).tolist()  # one device sync for all of them
        signalled, spent = values[-2] > 0, values[-1] > 0
        stop = "signal" if signalled else "budget" if spent else None
        return dict(zip(metrics, values[:-2], strict=True)), stop

    def set_learning_rates(self) -> None:
        """Constant learning rates (the paper), or with `lr_decay` f > 0 a linear decay to zero
        over the last fraction f of the steps: a function of (step, steps) alone, so a resumed
        run follows the same schedule."""
        cfg = self.spec.train
        scale = 1.0
        if cfg.lr_decay > 0:
            start = cfg.steps * (1 - cfg.lr_decay)
            scale = min(1.0, max(0.0, (cfg.steps - self.step) / (cfg.steps - start)))
        for optimiser, lr in ((self.opt_g, cfg.lr_generator), (self.opt_d, cfg.lr_critic)):
            for group in optimiser.param_groups:
                group["lr"] = lr * scale

    # -- state --------------------------------------------------------------------------------
    def state(self) -> dict:
        state = {
            "config": self.spec.to_dict(),
            TRAINED_WEIGHTS: self.generator.state_dict(),
            **inference_entries(
                self.inference_generator_state("raw"),
                self.inference_generator_state("ema") if self.ema is not None else None,
            ),
            "critic": self.critic.state_dict(),
            "opt_generator": self.opt_g.state_dict(),
            "opt_critic": self.opt_d.state_dict(),
            "batches_drawn": self.batches_drawn,
            "noise_rng": self.noise.get_state(),
            "processes": self.world_size,
        }
        if self.ema is not None:
            state["generator_ema"] = self.ema.state_dict()
        if self.spec.train.lecam_weight > 0:
            state["lecam"] = self.lecam_state.cpu()
        if self.scaler_g.is_enabled():
            state["scaler_generator"] = self.scaler_g.state_dict()
            state["scaler_critic"] = self.scaler_d.state_dict()
        return state

    def load_state(self, state: dict) -> None:
        self.generator.load_state_dict(state[TRAINED_WEIGHTS])
        self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_generator"])
        self.opt_d.load_state_dict(state["opt_critic"])
        if self.ema is not None and "generator_ema" in state:
            self.ema.load_state_dict(state["generator_ema"])
        # else a new average starts from the loaded weights at its first update
        if "lecam" in state:
            self.lecam_state = state["lecam"].to(self.device)
        if self.scaler_g.is_enabled() and "scaler_generator" in state:
            self.scaler_g.load_state_dict(state["scaler_generator"])
            self.scaler_d.load_state_dict(state["scaler_critic"])
        self.batches_drawn = int(state["batches_drawn"])
        self._batches = None  # the stream restarts at the next batch of the run
        self.noise.set_state(state["noise_rng"])
        self.step = int(state["step"])

    # -- the generator used for sounds ---------------------------------------------------------
    def _plain_generator(self) -> Generator:
        """A generator with ordinary BatchNorm: it runs in this process alone."""
        return Generator(self.spec.model, len(self.spec.classes)).to(self.device)

    def inference_generator(self, weights: str = "ema") -> Generator:
        """A plain generator (eval mode, ordinary BatchNorm) with the weights generation uses:
        the moving average when there is one and `weights` is "ema", else the trained ones."""
        generator = self._plain_generator()
        which = "ema" if weights == "ema" and self.ema is not None else "raw"
        generator.load_state_dict(self.inference_generator_state(which))
        return generator.eval()

    def inference_generator_state(self, which: str = "raw") -> dict:
        """The generator's weights ("raw" or "ema") with BatchNorm statistics fit for generation.

        With `standing_stats` > 0, the statistics are re-estimated for these weights on fresh
        latents with uniform labels (BigGAN's "standing statistics") in a plain copy, so the
        training state is untouched: running averages lag behind weights that move fast, which
        in short runs makes eval-mode output differ from what the critic judged. Runs in this
        process alone (no collective): the main process calls it for previews and checkpoints.
        """
        source = self.ema.module if which == "ema" else self.generator
        n_batches = self.spec.train.standing_stats
        if n_batches == 0:
            return source.state_dict()
        cached = self._inference_states.get(which)
        if cached is not None and cached[0] == self.step:  # previews and checkpoint share one
            return cached[1]
        generator = self._plain_generator()
        generator.load_state_dict(source.state_dict())
        norms = [m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None  # cumulative average over the batches below
        g = torch.Generator().manual_seed(self.spec.train.seed + 3)
        n_classes = len(self.spec.classes)
        generator.train()
        with torch.no_grad():
            for _ in range(n_batches):
                z = torch.randn(64, self.spec.model.latent_dim, generator=g).to(self.device)
                labels = torch.randint(0, n_classes, (64,), generator=g).to(self.device)
                # up to the last BatchNorm: the output layer, which has none, would change
                # nothing (the same statistics, 1.2x faster on tiny)
                embedding = generator.embed(labels)
                generator.upsample(generator.start_map(z, embedding), embedding)
        for norm in norms:
            norm.momentum = self.spec.model.bn_momentum
        self._inference_states[which] = (self.step, generator.state_dict())
        return self._inference_states[which][1]

    # -- quality during training ---------------------------------------------------------------
    def track_quality(
        self, tracker: QualityTracker, run: Path, rows: list[dict], quality: list[dict]
    ) -> dict:
        """Score the generator that generation uses; append it to quality.csv and redraw
        previews/quality.png."""
        sampler = Sampler(self.spec, self.inference_generator(), self.device)
        row = {
            "step": self.step,
            "train_seconds": float(sum(r["seconds"] for r in rows)),
            **tracker.score(sampler, PREVIEW_PHASE),
        }
        write_quality(run, [*quality, row], tracker.fields)
        save_quality_curves(
            previews_dir(run) / "quality.png", {"": [*quality, row]}, mark_best=True
        )
        return row

    # -- previews -----------------------------------------------------------------------------
    def write_previews(self, run: Path, rows: list[dict]) -> None:
        """One WAV and one PNG per class from the same latent, and the loss curves."""
        folder = preview_dir(run, self.step)
        n = len(self.spec.classes)
        z = torch.Generator().manual_seed(self.spec.train.seed + 2)
        z = torch.randn(1, self.spec.model.latent_dim, generator=z).expand(n, -1).to(self.device)
        labels = torch.arange(n, device=self.device)
        # the generator and phase reconstruction `generate` uses: previews are what it will give
        sampler = Sampler(self.spec, self.inference_generator(), self.device)
        log_spec = sampler.log_spec(z, labels)  # (n, T, F)
        audio = sampler.to_audio(log_spec, *PREVIEW_PHASE)
        features = self.spec.features
        for i, name in enumerate(self.spec.classes):
            write_wav(folder / f"{name}.wav", audio[i].cpu().numpy(), features.sample_rate)
            save_spectrograms(
                folder / f"{name}.png",
                [(name, log_spec[i].cpu().numpy())],
                features,
                title=f"step {self.step}",
            )
        save_loss_curves(previews_dir(run) / "losses.png", rows)


@dataclass
class TrainResult:
    run: Path
    step: int
    interrupted: bool
    samples_per_s: float
    seconds: float
    main_process: bool = True  # False in the other processes of a torchrun: they print nothing
    stopped: str = ""  # why the run ended before --steps (patience, time budget); "" otherwise
    best: dict | None = None  # the best quality check (best_record), when the run has one


def train(
    data: str | Path,
    run: str | Path,
    preset_name: str | None = None,
    settings: dict | None = None,
    resume: bool = False,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    use_cache: bool = True,
) -> TrainResult:
    """Train (or resume) a run. `settings` override the preset's (DEFAULT_PRESET when None):
    TrainConfig fields, and the FeatureConfig and ModelConfig fields a config file may change
    (flat, see config.SECTION_OF). On resume, settings and a preset equal to the run's own are
    accepted (a command line repeated with --resume); a change is refused unless resumable.

    Under torchrun every process calls this with the same arguments: all of them check the
    inputs and read the data (the feature cache is built once, by whichever comes first), then
    join the process group; only rank 0 writes the run folder and shows progress.
    """
    processes = distributed.Processes.from_environ()
    run = Path(run)
    spec, resumed_state = _run_spec(run, data, preset_name, dict(settings or {}), resume)
    cfg = spec.train
    # a patience asked for with the quality log off cannot count; a preset's patience (or a
    # run's config.json given as a config file) rests on runs too short for a check
    if (settings or {}).get("patience", 0) > 0 and cfg.eval_every == 0:
        raise ConfigError(
            "patience counts quality checks, and this run has none: give --eval-every N "
            "with --patience, or drop --patience"
        )
    if cfg.class_weight > 0 and spec.model.critic_conditioning != "projection":
        raise ConfigError(
            "class_weight > 0 (the auxiliary classifier) needs --critic-conditioning projection: "
            "a critic that sees the label map could read the class off its input"
        )
    if cfg.batch_size % processes.world_size:
        raise ConfigError(
            f"batch_size {cfg.batch_size} cannot be split evenly over {processes.world_size} "
            f"processes; use a multiple of {processes.world_size} (it is the global batch)"
        )
    device = processes.device(cfg.device)
    precision, precision_reason = resolve_precision(cfg.precision, device)
    if precision != cfg.precision:  # the run records what it used, so a resume uses the same
        spec.train = cfg = cfg.replace(precision=precision)
    if progress and processes.is_main and precision_reason != "asked":
        to_stderr(f"precision: {precision} ({precision_reason})")
    check_device_support(cfg.precision, device)
    dataset = load_dataset(
        data,
        spec.features,
        crop=cfg.crop,
        cache_dir=cache_dir,
        use_cache=use_cache,
        progress=progress and (processes.is_main or use_cache),  # the cache builder shows it
        log=to_stderr if processes.is_main else None,
    )
    if resumed_state is not None:
        if dataset.classes != spec.classes:
            raise SfxganError(
                f"the data's classes {dataset.classes} differ from the run's "
                f"{spec.classes}; resume with the data the run was trained on"
            )
    else:
        spec.classes, spec.max_value = list(dataset.classes), dataset.max_value

    # Every process has checked its inputs before any joins the group, so none writes before
    # all have looked at the run folder as the user left it.
    processes.start(device)
    try:
        return _train_loop(spec, dataset, device, run, resumed_state, progress, processes)
    finally:
        processes.stop()


def _run_spec(
    run: Path, data: str | Path, preset_name: str | None, settings: dict, resume: bool
) -> tuple[RunSpec, dict | None]:
    """The run's settings: the checkpoint's (resume, with the resumable changes applied) or
    the preset's with the user's settings (a new run, in a folder that holds none)."""
    if resume:
        resumed_state = load_checkpoint(find_checkpoint(run))
        spec = RunSpec.from_dict(resumed_state["config"])
        if preset_name is not None and preset_name != spec.preset:
            raise ConfigError(
                f"cannot change the preset when resuming (the run used {spec.preset}, not "
                f"{preset_name}); resume without --preset, or start a new run with another --out"
            )
        feature_settings, model_settings, settings = split_settings(settings)
        current = {**spec.features.to_dict(), **spec.model.to_dict(), **spec.train.to_dict()}
        changed = {k: v for k, v in settings.items() if k not in current or current[k] != v}
        # features and model are the run's shapes and data: never changed by a resume
        changed_shape = {
            k: v for k, v in {**feature_settings, **model_settings}.items() if current[k] != v
        }
        # (an unknown key is left to the training settings' check, which names it)
        frozen = sorted(k for k in changed if k in current and k not in RESUMABLE)
        frozen += sorted(changed_shape)
        if frozen:
            given = {**settings, **feature_settings, **model_settings}
            raise ConfigError(
                f"cannot change {', '.join(frozen)} when resuming (the run used "
                f"{', '.join(f'{k}={current[k]}, not {given[k]}' for k in frozen)}); "
                "resume without it, or start a new run with another --out"
            )
        spec.train = spec.train.replace(**changed)
        reached = int(resumed_state["step"])
        if spec.train.steps <= reached:
            if "steps" in settings:
                said = (
                    f"is at step {reached} already; --steps {spec.train.steps} is the total to "
                    "train to, not steps to add"
                )
            else:
                said = f"has reached its last step ({reached})"
            raise ConfigError(f"'{run}' {said}: give --steps above {reached} to train it further")
        return spec, resumed_state
    if config_path(run).exists() or step_checkpoints(run):
        raise SfxganError(
            f"'{run}' already holds a training run; continue it with --resume "
            "or choose another --out"
        )
    # the config.json the run writes holds these resolved settings, whatever file they came from
    preset = get_preset(preset_name or DEFAULT_PRESET).with_settings(settings)
    spec = RunSpec(preset.name, preset.features, preset.model, preset.train, [], 0.0, str(data))
    return spec, None


def _train_loop(
    spec: RunSpec,
    dataset: SoundDataset,
    device: torch.device,
    run: Path,
    resumed_state: dict | None,
    progress: bool,
    processes: distributed.Processes,
) -> TrainResult:
    main = processes.is_main
    if main:
        _create_run_folder(run, spec)
        clear_stop(run)  # a resumed session is training again until it says otherwise
    trainer = Trainer(spec, dataset, device)
    created = resumed_state is None  # this command made the run folder
    if resumed_state is not None:
        trainer.load_state(resumed_state)
        del resumed_state
    cfg = spec.train
    rows, tracker, quality = [], None, []
    if main:
        rows, tracker, quality = _session_logs(run, spec, dataset, trainer.step, progress)
    if progress and main:
        to_stderr(f"torch threads: {threads.current_choice()}")
    start_step, start_time = trainer.step, time.perf_counter()
    last_saved = trainer.step
    interrupted, stopped = False, ""
    checks_on = 0 < cfg.eval_every <= cfg.steps  # as every process reckons it
    # the time budget counts the run's earlier sessions (their steps and checks) and this one's
    # wall time since the loop began
    spent_before = sum(r["seconds"] for r in rows) + sum(q["eval_seconds"] for q in quality)
    bar = tqdm(
        total=cfg.steps,
        initial=trainer.step,
        unit="step",
        disable=not (progress and main),
        dynamic_ncols=True,
    )
    if progress and main:
        threads.set_log(lambda message: bar.write(message, file=sys.stderr))
    log = metrics_log(run) if main else nullcontext()
    with _stop_on_signals(announce=main) as stop, log as log_row:
        while trainer.step < cfg.steps:
            t0 = time.perf_counter()
            metrics, stop_now = trainer.train_step(
                stop_requested=stop["signal"] is not None,
                budget_spent=main
                and cfg.time_budget > 0
                and spent_before + time.perf_counter() - start_time >= cfg.time_budget,
            )
            seconds = time.perf_counter() - t0
            threads.recheck()  # follow the machine's load (--threads auto); after the timing
            row = {
                "step": trainer.step,
                **_finite_or_skipped(trainer, run, metrics),
                "samples_per_s": cfg.batch_size / seconds,
                "seconds": seconds,
            }
            if trainer.step == start_step + BUDGET_PROBE_STEPS:
                spent = spent_before + time.perf_counter() - start_time
                _check_budget_reaches_a_check(cfg, rows, row, spent, created, run, device, bar)
            patience_out = False
            if main:
                rows.append(row)
                if _after_step(trainer, run, rows, log_row, bar, tracker, quality):
                    last_saved = trainer.step
                patience_out = _patience_spent(cfg, quality, trainer.step)
            if checks_on and _is_check_step(cfg, trainer.step):
                # rank 0 alone scored the check; all stop after this same step
                patience_out = distributed.from_main(patience_out, device)
            if stop_now == "signal":
                interrupted = True
                break
            if (stop_now == "budget" or patience_out) and trainer.step < cfg.steps:
                stopped = _stop_reason(cfg, quality, stop_now == "budget")
                break
    bar.close()
    if main and (interrupted or stopped) and last_saved != trainer.step:
        save_checkpoint(run, trainer.state(), trainer.step, cfg.keep_checkpoints)
    if main:
        _record_stop(run, cfg, trainer.step, interrupted, stopped, quality)
    # no process ends (which torchrun takes for the end of the run) before rank 0 has saved
    distributed.barrier()
    elapsed = time.perf_counter() - start_time
    done = trainer.step - start_step
    return TrainResult(
        run,
        trainer.step,
        interrupted,
        done * cfg.batch_size / elapsed if elapsed > 0 else 0.0,
        elapsed,
        main,
        stopped,
        best_record(best) if (best := best_check(quality)[0]) is not None else None,
    )


def _session_logs(
    run: Path, spec: RunSpec, dataset: SoundDataset, step: int, progress: bool
) -> tuple[list[dict], QualityTracker | None, list[dict]]:
    """Rank 0's logs at the start of a session: the metrics rows and quality checks up to
    `step` (rows logged after the checkpoint we resume from are dropped), and the quality
    tracker when the run has checks (every eval_every steps and at the end; a run shorter than
    eval_every has none: its judge would cost more than it says)."""
    cfg = spec.train
    rows = read_metrics(run, step)
    write_metrics(run, rows)
    tracker, quality = None, []
    if 0 < cfg.eval_every <= cfg.steps:
        tracker = QualityTracker.start(run, spec, dataset, log=to_stderr if progress else None)
        quality = read_quality(run, step)
        write_quality(run, quality, tracker.fields)
    return rows, tracker, quality


def _check_budget_reaches_a_check(
    cfg: TrainConfig,
    rows: list[dict],
    row: dict,
    spent: float,
    created: bool,
    run: Path,
    device: torch.device,
    bar: tqdm,
) -> None:
    """After the first steps of a session: refuse a time budget that cannot reach the next
    quality check even at the fastest step measured so far (a run that stops before it has no
    best checkpoint and nothing to say about its quality). Decided on rank 0, for all. A run
    folder this command `created` is removed: it holds nothing but its settings."""
    if not (0 < cfg.eval_every <= cfg.steps and cfg.time_budget > 0):
        return
    probe = [r["seconds"] for r in rows[-BUDGET_PROBE_STEPS + 1 :]] + [row["seconds"]]
    step_time = min(probe)
    next_check = min(cfg.steps, (row["step"] // cfg.eval_every + 1) * cfg.eval_every)
    needed = spent + (next_check - row["step"]) * step_time
    if not distributed.from_main(needed > cfg.time_budget, device):
        return
    if created and distributed.rank() == 0:
        shutil.rmtree(run, ignore_errors=True)
    bar.leave = False  # the error is the last line the user sees
    bar.close()
    raise ConfigError(
        f"--time-budget {cfg.time_budget:g} s cannot reach the quality check at step "
        f"{next_check}: a step takes {step_time:.2g} s here, so that check needs about "
        f"{needed:.0f} s; give a larger --time-budget or a smaller --eval-every"
    )


def _is_check_step(cfg: TrainConfig, step: int) -> bool:
    """Whether a quality check follows this step (every eval_every steps and at the last)."""
    return step % cfg.eval_every == 0 or step == cfg.steps


def _patience_spent(cfg: TrainConfig, quality: list[dict], step: int) -> bool:
    """Whether this step's check made `patience` checks in a row without a new best."""
    if cfg.patience <= 0 or not quality or quality[-1]["step"] != step:
        return False
    return best_check(quality)[1] >= cfg.patience


def _stop_reason(cfg: TrainConfig, quality: list[dict], budget: bool) -> str:
    best = best_check(quality)[0]
    checks = "quality check" if cfg.patience == 1 else f"{cfg.patience} quality checks"
    said = (
        f"the time budget ({cfg.time_budget:.3g} s) is spent"
        if budget
        else f"the last {checks} did not beat the best (--patience {cfg.patience})"
    )
    if best is None:
        return said + "; no quality check was reached, so the run has no best checkpoint"
    return (
        f"{said}; the best check, step {best['step']:.0f} (FD {best['fd']:.3g}, class fit "
        f"{100 * best['class_fit']:.0f} %), is in checkpoints/best.pt"
    )


def _record_stop(
    run: Path, cfg: TrainConfig, step: int, interrupted: bool, stopped: str, quality: list[dict]
) -> None:
    """Write down why this session ended (run_folder.write_stop) for generation and reports."""
    if interrupted:
        why, said = "signal", "interrupted; --resume continues it"
    elif stopped:
        why = "budget" if stopped.startswith("the time budget") else "patience"
        said = stopped
    else:
        best = best_check(quality)[0]
        why, said = "steps", f"reached --steps {cfg.steps}"
        if best is not None:
            said += f"; the best check was step {best['step']:.0f}"
    write_stop(run, step, why, said)


def _create_run_folder(run: Path, spec: RunSpec) -> None:
    try:
        run.mkdir(parents=True, exist_ok=True)
        write_config(run, spec)
    except OSError as exc:
        raise SfxganError(f"cannot write the run folder '{run}': {exc.strerror or exc}") from exc


def _finite_or_skipped(trainer: Trainer, run: Path, metrics: dict[str, float]) -> dict:
    """A step's losses; NaN in place of the non-finite ones of a step whose update float16
    gradient scaling skipped (an overflow: it lowers its scale). Any other non-finite loss, or
    too many skipped steps in a row, is divergence."""
    if all(math.isfinite(v) for v in metrics.values()):
        return metrics
    if 0 < trainer.skipped_in_a_row <= MAX_SKIPPED_STEPS:
        return {k: v if math.isfinite(v) else math.nan for k, v in metrics.items()}
    raise _diverged(run, trainer.step, metrics)


def _after_step(
    trainer: Trainer,
    run: Path,
    rows: list[dict],
    log_row: Callable[[dict], None],
    bar: tqdm,
    tracker: QualityTracker | None,
    quality: list[dict],
) -> bool:
    """The main process's work after a step, each at its interval and at the last step: the
    metrics row, previews, the quality check, the checkpoint. True when it saved one."""
    cfg, step, row = trainer.spec.train, trainer.step, rows[-1]
    last = step == cfg.steps
    if step % cfg.log_every == 0 or last:
        log_row(row)
        bar.set_postfix(
            critic=f"{row['critic_loss']:.3f}",
            gen=f"{row['generator_loss']:.3f}",
            rec=f"{row['recon_loss']:.3g}",
            sps=f"{row['samples_per_s']:.1f}",
            refresh=False,
        )
    bar.update(1)
    if step % cfg.preview_every == 0 or last:
        trainer.write_previews(run, rows)
    if tracker and _is_check_step(cfg, step):
        quality.append(trainer.track_quality(tracker, run, rows, quality))
        line = quality_line(quality[-1], step)
        if best_check(quality)[1] == 0:  # this check is the new best
            save_best(run, trainer.state(), step, best_record(quality[-1]))
            line += "; the best so far (checkpoints/best.pt)"
        bar.write(line, file=sys.stderr)
    if step % cfg.checkpoint_every == 0 or last:
        save_checkpoint(run, trainer.state(), step, cfg.keep_checkpoints)
        return True
    return False


def quality_line(row: dict, step: int) -> str:
    return (
        f"step {step}: class fit {100 * row['class_fit']:.0f} % (judge on real "
        f"{100 * row['class_fit_real']:.0f} %), FD {row['fd']:.3g} (real via GL "
        f"{row['fd_resynth']:.3g}), diversity {row['diversity']:.2f} "
        f"(within classes {row['diversity_within']:.2f}), near copies "
        f"{100 * row['near_copies']:.0f} % (real {100 * row['near_copies_real']:.0f} %), attack "
        f"{row['attack_ms']:.3g} ms (real {row['attack_ms_real']:.3g}), floor "
        f"{row['floor_db']:.0f} dB (real {row['floor_db_real']:.0f})"
    )


def _diverged(run: Path, step: int, metrics: dict[str, float]) -> TrainingDiverged:
    bad = ", ".join(k for k, v in metrics.items() if not math.isfinite(v))
    last = find_checkpoint(run) if step_checkpoints(run) else None
    where = f"the last good checkpoint is '{last}'" if last else "no checkpoint yet"
    return TrainingDiverged(
        f"non-finite {bad} at step {step}; training stopped ({where}); "
        "try a lower learning rate or recon_weight"
    )
