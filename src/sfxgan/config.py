"""Presets: every shape and setting of the method, in one place.

A preset names a complete configuration. `paper-16k` and `paper-64k` reproduce the shapes of
SPEC section 2; `tiny` keeps the same structure at a size that trains on two CPU cores in minutes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from sfxgan.errors import ConfigError


@dataclass(frozen=True)
class FeatureConfig:
    """Audio and STFT settings. One STFT definition serves analysis, Griffin-Lim and the loss.

    Frames are `win_length` samples, `hop_length` apart, Hann-windowed and zero-padded to `n_fft`
    for the FFT; the signal is padded at the end so that frames = clip_samples / hop_length.
    """

    sample_rate: int = 16_000
    clip_samples: int = 16_384
    n_fft: int = 254
    hop_length: int = 64
    win_length: int = 254

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ConfigError(f"win_length {self.win_length} exceeds n_fft {self.n_fft}")
        if self.hop_length > self.win_length:
            raise ConfigError(f"hop_length {self.hop_length} exceeds win_length {self.win_length}")
        if self.clip_samples % self.hop_length:
            raise ConfigError(
                f"clip_samples {self.clip_samples} must be a multiple of "
                f"hop_length {self.hop_length}"
            )

    @property
    def n_frames(self) -> int:
        return self.clip_samples // self.hop_length

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1

    @property
    def duration(self) -> float:
        return self.clip_samples / self.sample_rate

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _setting(default, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


MODEL_CHOICES = {
    "upsample": ("transpose", "nearest"),
    "gen_conditioning": ("concat", "cbn"),
    "critic_conditioning": ("concat", "projection"),
}
# the ModelConfig fields a user may set like training settings (options, --config keys)
MODEL_OPTIONS = tuple(MODEL_CHOICES)


@dataclass(frozen=True)
class ModelConfig:
    """Generator and critic shapes (SPEC sections 4-5). Spatial sizes are (time, frequency).

    The generator maps a latent (latent_dim) and a class label to a `gen_start` map with
    `gen_start_channels` channels, then doubles both sizes with one transposed convolution per
    entry of `gen_channels` and a last one to a single channel: the spectrogram is
    gen_start * 2 ** (len(gen_channels) + 1). The critic halves both sizes with one convolution
    per entry of `critic_channels`.
    """

    latent_dim: int = 100
    embed_dim: int = 50
    gen_start: tuple[int, int] = (8, 4)
    gen_start_channels: int = 512
    gen_channels: tuple[int, ...] = (512, 256, 128, 64)
    critic_channels: tuple[int, ...] = (64, 128, 256, 512, 1024)
    kernel: tuple[int, int] = (12, 3)
    # PyTorch convention (weight of the new batch statistic): 0.01 is Keras's 0.99, the
    # reference's. Running statistics then lag ~100 updates behind the weights, harmless over
    # 100 000 steps but wrong for generation after a few hundred (short runs use 0.1).
    bn_momentum: float = 0.01
    # The options below default to the paper's networks; each alternative is measured in
    # docs/training.md. They are also command-line options (MODEL_OPTIONS).
    upsample: str = _setting(
        "transpose",
        "how the generator doubles its maps: transpose (the paper's transposed convolutions; "
        "a 3-bin kernel on a stride of 2 leaves a checkerboard along frequency) or nearest "
        "(nearest-neighbour upsampling, then a convolution with the same kernel)",
    )
    gen_conditioning: str = _setting(
        "concat",
        "how the generator hears the class: concat (the paper's label map, one channel of the "
        "start map) or cbn (also a class-conditional scale and shift after every BatchNorm)",
    )
    critic_conditioning: str = _setting(
        "concat",
        "how the critic hears the class: concat (the paper's full-size label map as a second "
        "input channel) or projection (Miyato & Koyama 2018: the score adds the inner product "
        "of a class embedding with the critic's features)",
    )

    def __post_init__(self) -> None:
        for name, allowed in MODEL_CHOICES.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}")

    def spectrogram_shape(self) -> tuple[int, int]:
        scale = 2 ** (len(self.gen_channels) + 1)
        return (self.gen_start[0] * scale, self.gen_start[1] * scale)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Every allowed value, in one table each; options, files and checks read these.
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
AUGMENTATIONS = ("shift", "gain", "mask")
PHASE_METHODS = ("griffin-lim", "fast-griffin-lim")
CROP_MODES = ("start", "loudest")  # which part of a clip longer than the preset's is kept
DEFAULT_PRESET = "tiny"
# How spectrograms become audio unless asked otherwise (generate, export, previews, evaluate):
# measured in docs/phase.md, 32 fast iterations beat the reference's 50 plain ones.
DEFAULT_PHASE = "fast-griffin-lim"
DEFAULT_PHASE_ITERS = 32


@dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop reads. Each field is also a command-line option
    (`--n-critic`, `--recon-weight`, ...) and a key of a JSON config file."""

    steps: int = _setting(100_000, "generator updates to train for")
    batch_size: int = _setting(4, "clips per batch")
    n_critic: int = _setting(5, "critic updates per generator update (the reference: 1)")
    lr_generator: float = _setting(1e-4, "Adam learning rate of the generator")
    lr_critic: float = _setting(1e-4, "Adam learning rate of the critic")
    lr_decay: float = _setting(
        0.0,
        "fraction of the steps, at the end, over which both learning rates fall linearly to "
        "zero (0: constant, as the paper)",
    )
    beta1: float = _setting(0.5, "Adam beta1")
    beta2: float = _setting(0.9, "Adam beta2")
    gp_weight: float = _setting(10.0, "weight of the gradient penalty")
    gp_every: int = _setting(
        1,
        "lazy gradient penalty: computed on every k-th critic update only, weighted k * "
        "gp_weight (StyleGAN2's lazy regularisation); 1: every update, as WGAN-GP",
    )
    augment: str = _setting(
        "none",
        "augmentation of real and generated spectrograms alike before the critic "
        "(differentiable, as DiffAugment): none, or a comma-separated subset of shift (in time, "
        "by up to 1/8 of the clip), gain (+-8.7 dB in the log domain), mask (a band of up to "
        "1/8 of the frames and one of the bins set to silence)",
    )
    augment_p: float = _setting(0.5, "probability of each augmentation, per clip and step")
    recon_weight: float = _setting(1e-2, "weight w of the audio reconstruction loss; 0 = baseline")
    class_weight: float = _setting(
        0.0,
        "weight of an auxiliary classifier on the critic's features: the critic also learns to "
        "name the class of real clips (cross-entropy), which makes its features tell the "
        "classes apart; needs critic_conditioning projection; 0: off, as the paper",
    )
    gen_class_weight: float = _setting(
        0.0,
        "weight of the generator's term of that classifier (AC-GAN): make clips the critic's "
        "classifier names as the class they were made for; off while class_weight is 0",
    )
    recon_every: int = _setting(
        1,
        "lazy reconstruction loss: on every k-th generator update only, weighted k * "
        "recon_weight; 1: every update, as the paper",
    )
    recon_iters: int = _setting(50, "Griffin-Lim iterations inside the reconstruction loss")
    recon_phase: str = _setting(
        "griffin-lim",
        "phase method in the loss (griffin-lim is the "
        "reference's; fast-griffin-lim converges in fewer iterations)",
    )
    recon_normalize: str = _setting(
        "batch",
        "peak normalisation of the reconstructed audio: over the batch (the reference) or per clip",
    )
    seed: int = _setting(0, "seed of initialisation, batches and latents")
    log_every: int = _setting(1, "steps between rows of metrics.csv")
    preview_every: int = _setting(2_000, "steps between previews (one WAV and PNG per class)")
    eval_every: int = _setting(
        2_000,
        "steps between quality checks of the generator (class fit, FD, diversity by a judge "
        "trained once on the training clips) in quality.csv and previews/quality.png; 0: none",
    )
    checkpoint_every: int = _setting(2_000, "steps between checkpoints")
    keep_checkpoints: int = _setting(3, "how many step checkpoints to keep besides 'latest'")
    standing_stats: int = _setting(
        0,
        "batches of 64 used to re-estimate the generator's BatchNorm statistics for generation "
        "at every checkpoint and preview (0: the running averages, as the reference)",
    )
    crop: str = _setting("start", "which part of a long clip to keep: start or loudest")
    device: str = _setting("auto", "cuda, cpu, or auto (CUDA when present)")
    precision: str = _setting(
        "auto",
        "fp32, or mixed precision: the networks' matrix work in bf16 (GPUs since Ampere; CPUs "
        "with AVX-512 BF16 or AMX) or fp16 with gradient scaling (older GPUs; slow on CPUs); "
        "weights, losses and Griffin-Lim stay float32. auto: bf16 where the device computes it "
        "natively and (on a CPU) measurably faster than fp32, else fp32; the run records which",
    )
    ema_decay: float = _setting(
        0.999,
        "decay per step of an exponential moving average of the generator's weights, which "
        "generation then uses (ramped up as min(decay, (1 + t) / (10 + t)) at step t); 0: off",
    )
    workers: int = _setting(
        -1,
        "data loader processes per training process, reading batches ahead (-1: 2 on CUDA, to "
        "hide disk reads of a cache not yet or not wholly in memory; 0 on the CPU: a batch "
        "read from a cache in memory costs 0.1 to 7 ms, about what taking it from a worker "
        "costs)",
    )

    def __post_init__(self) -> None:
        checks = [
            (self.steps >= 1, "steps must be at least 1"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.n_critic >= 1, "n_critic must be at least 1"),
            (self.recon_weight >= 0, "recon_weight must be 0 or more"),
            (self.class_weight >= 0, "class_weight must be 0 or more"),
            (self.gen_class_weight >= 0, "gen_class_weight must be 0 or more"),
            (0 <= self.lr_decay <= 1, "lr_decay must be in [0, 1]"),
            (self.gp_every >= 1, "gp_every must be at least 1"),
            (self.recon_every >= 1, "recon_every must be at least 1"),
            (self.eval_every >= 0, "eval_every must be 0 (off) or more"),
            (0 <= self.augment_p <= 1, "augment_p must be in [0, 1]"),
            (
                self.augment == "none" or set(self.augment.split(",")) <= set(AUGMENTATIONS),
                f"augment must be none or a comma-separated subset of {','.join(AUGMENTATIONS)}",
            ),
            (self.recon_iters >= 1, "recon_iters must be at least 1"),
            (
                self.recon_phase in PHASE_METHODS,
                "recon_phase must be griffin-lim or fast-griffin-lim",
            ),
            (self.recon_normalize in ("batch", "clip"), "recon_normalize must be batch or clip"),
            (self.crop in ("start", "loudest"), "crop must be start or loudest"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1): 0 turns the average off"),
            (self.workers >= -1, "workers must be -1 (automatic), 0 or more"),
            (
                self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                "device must be auto, cpu or cuda",
            ),
            (
                min(
                    self.log_every, self.preview_every, self.checkpoint_every, self.keep_checkpoints
                )
                >= 1,
                "intervals and keep_checkpoints must be at least 1",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def replace(self, **changes) -> TrainConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            known = ", ".join(f.name for f in dataclasses.fields(self))
            raise ConfigError(
                f"unknown training setting(s) {', '.join(sorted(unknown))}; known: {known}"
            )
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    features: FeatureConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "paper-16k",
            "the paper's 1.024 s model: 256 frames x 128 bins",
            FeatureConfig(
                sample_rate=16_000, clip_samples=16_384, n_fft=254, hop_length=64, win_length=254
            ),
            ModelConfig(),
        ),
        Preset(
            "paper-64k",
            "the paper's 4.1 s model: 512 frames x 256 bins",
            FeatureConfig(
                sample_rate=16_000, clip_samples=65_536, n_fft=510, hop_length=128, win_length=256
            ),
            ModelConfig(
                gen_start_channels=2048,
                gen_channels=(1024, 512, 256, 128, 64),
                critic_channels=(128, 256, 512, 1024, 2048, 4096),
            ),
        ),
        # tiny: the paper-16k STFT unchanged (n_fft 254, hop 64: 4x overlap, so Griffin-Lim
        # behaves as in the paper and the demo says something about the real model) on half the
        # clip (0.512 s): the spectrogram is 128 x 128, half of paper-16k; sounds of the demo
        # classes (a shot, a chirp, two steps) fit in 0.5 s.
        Preset(
            "tiny",
            "CPU demo size: 0.512 s, 128 frames x 128 bins, the paper-16k STFT",
            FeatureConfig(
                sample_rate=16_000, clip_samples=8_192, n_fft=254, hop_length=64, win_length=254
            ),
            # The same layers as paper-16k from a 4 x 4 start map, a quarter of the widths:
            # about 1/30 of the FLOPs per sample, so the demo trains in minutes on two cores.
            # Conditioning beyond the paper's label channels (docs/training.md, 3 seeds each on
            # the demo data): class-conditional BatchNorm in the generator and a projection
            # critic with an auxiliary classifier learn the classes in a few hundred steps where the
            # paper's label maps left one or two classes unlearned on most seeds.
            ModelConfig(
                gen_start=(4, 4),
                gen_start_channels=128,
                gen_channels=(128, 64, 32, 16),
                critic_channels=(16, 32, 64, 128, 256),
                bn_momentum=0.1,
                gen_conditioning="cbn",
                critic_conditioning="projection",
            ),
            # A few hundred steps instead of 100 000 must reach class-conditional sound, so the
            # optimiser is bolder than the paper's (measured on the demo data: with lr 1e-4 the
            # generator still ignored the label after 400 steps; with 1e-3 and beta1 0 it
            # learned it). Batch 8 gives twice the updates of batch 16 in the same time, which
            # mattered more than the batch (docs/training.md). One critic update per generator
            # update, as the reference actually ran; the loss's Griffin-Lim is the fast variant
            # with 16 iterations, which beats the spectral convergence of the reference's 50
            # plain ones (docs/phase.md) at a third of the cost. Standing BatchNorm statistics
            # make generation match training after so few steps. An auxiliary classifier on
            # the critic's features, trained on the real clips and on the generator's (AC-GAN,
            # weight 1 on both sides), gives the generator a class signal that the critic's
            # score alone barely carried; the learning rates fall to zero over the second half,
            # so the moving average ends on a settled generator (docs/training.md).
            # The paper's reconstruction loss is off here (w = 0, the paper's baseline): with
            # this recipe it did not help on either data set in a CPU budget (3 seeds each,
            # docs/results.md: on the demo class fit 84 / 85 / 74 % without it against
            # 86 / 66 / 82 % with w = 1e-2, where it sent seed 1 into a one-texture start; on
            # the real set 35-47 % against 20-30 %, FD 13-16 against 23-31) and it costs 1.6x
            # per step. Without it the class fit peaks at 400-500 steps, so the run stops at
            # 400 (89 / 87 / 89 %). --recon-weight 1e-2 turns the paper's loss on.
            TrainConfig(
                steps=400,
                recon_weight=0.0,
                lr_decay=0.5,
                class_weight=1.0,
                gen_class_weight=1.0,
                batch_size=8,
                n_critic=1,
                lr_generator=1e-3,
                lr_critic=1e-3,
                beta1=0.0,
                recon_iters=16,
                recon_phase="fast-griffin-lim",
                preview_every=200,
                eval_every=100,
                checkpoint_every=200,
                standing_stats=16,
            ),
        ),
    )
}


def split_settings(settings: dict) -> tuple[dict, dict]:
    """User settings (options, a --config file) -> (ModelConfig changes, TrainConfig changes);
    keys of neither are left with the training settings, whose check names them."""
    model = {k: v for k, v in settings.items() if k in MODEL_OPTIONS}
    return model, {k: v for k, v in settings.items() if k not in MODEL_OPTIONS}


def get_preset(name: str) -> Preset:
    """Look a preset up by name; an unknown name is a user error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(f"unknown preset '{name}'; choose one of: {known}") from None


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but CUDA is not available; use --device cpu")
    return torch.device(name)
