"""Settings: every shape and setting of the method, the tables of allowed values, the presets.

A preset names a complete configuration and is a TOML file in `sfxgan/presets/` (docs/config.md):
`paper-16k` and `paper-64k` reproduce the shapes of SPEC section 2; `tiny` keeps the same
structure at a size that trains on two CPU cores in minutes. A config file (`train --config`)
names a base (a preset or another such file) and the changes; a JSON file of settings, flat or a
run's `config.json`, is one too.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import statistics
import time
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from sfxgan.errors import ConfigError

# Every allowed value, in one table each; options, files and checks read these.
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
AUGMENTATIONS = ("shift", "gain", "mask")
PHASE_METHODS = ("griffin-lim", "fast-griffin-lim")
CROP_MODES = ("start", "loudest")  # which part of a clip longer than the preset's is kept
RECON_NORMALIZATIONS = ("batch", "clip")  # the peak normalisation in the reconstruction loss
# What the log floor (e^-10 x max_value) inverts to: the reference's constant, or silence.
LOG_FLOORS = ("constant", "silence")
DEVICES = ("auto", "cpu", "cuda")  # and cuda:N
MODEL_CHOICES = {
    "upsample": ("transpose", "nearest"),
    "gen_conditioning": ("concat", "cbn"),
    "critic_conditioning": ("concat", "projection"),
}
# the ModelConfig fields a user may set like training settings (options, --config keys)
MODEL_OPTIONS = tuple(MODEL_CHOICES)
# the FeatureConfig fields a user may set like training settings: how the STFT frames a clip and
# what the log floor inverts to (the shapes stay the preset's)
FEATURE_OPTIONS = ("lead_in", "log_floor")
# every setting whose value is one of a table's (the CLI's choices, the config files' check)
SETTING_CHOICES: dict[str, tuple[str, ...]] = {
    "recon_phase": PHASE_METHODS,
    "recon_normalize": RECON_NORMALIZATIONS,
    "crop": CROP_MODES,
    "precision": PRECISIONS,
    "log_floor": LOG_FLOORS,
    **MODEL_CHOICES,
}
DEFAULT_PRESET = "tiny"
EXPORT_FORMATS = ("onnx", "torchscript")  # sfxgan export --format
DCASE_CLIPS_PER_CLASS = 100  # DCASE 2023 Task 7 asks for 100 clips of each category
# How spectrograms become audio unless asked otherwise (generate, export, previews, evaluate):
# measured in docs/phase.md, 32 fast iterations beat the reference's 50 plain ones.
DEFAULT_PHASE = "fast-griffin-lim"
DEFAULT_PHASE_ITERS = 32
# `sfxgan vary`: how far takes stray from a fitted sound, 0 (the fit) to 1 (free takes)
DEFAULT_SPREAD = 0.3


def _either(values: tuple[str, ...]) -> str:
    """'a or b', 'a, b or c': a table in a message."""
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def _setting(default, help: str):
    return dataclasses.field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class FeatureConfig:
    """Audio and STFT settings. One STFT definition serves analysis, Griffin-Lim and the loss.

    Frames are `win_length` samples, `hop_length` apart, Hann-windowed and zero-padded to `n_fft`
    for the FFT; the signal is padded at the end so that frames = clip_samples / hop_length.
    The defaults are the paper's; `lead_in` and `log_floor` fix two weaknesses of its framing
    and of its inverse (SPEC section 2), measured in docs/phase.md.
    """

    sample_rate: int = 16_000
    clip_samples: int = 16_384
    n_fft: int = 254
    hop_length: int = 64
    win_length: int = 254
    lead_in: int = _setting(
        0,
        "samples of silence before the clip's first sample in the STFT's frames: 0, the "
        "reference's framing, leaves the first win_length - hop_length samples (where a "
        "one-shot has its attack) to rising window edges; win_length - hop_length (the most "
        "allowed) gives them full overlap; the shapes stay",
    )
    log_floor: str = _setting(
        "constant",
        "what the log floor (e^-10 x max_value) inverts to: constant (the reference: that "
        "magnitude in every bin, so digital silence comes back as a noise floor) or silence "
        "(a frame whose bins all lie at the floor inverts to zero; frames with sound keep the "
        "floor's magnitude in their quiet bins)",
    )

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
        overlap = self.win_length - self.hop_length
        if not 0 <= self.lead_in <= overlap:
            raise ConfigError(
                f"lead_in must be 0 to {overlap} (win_length - hop_length) samples, got "
                f"{self.lead_in}: a longer lead-in would push the clip's end out of the frames"
            )
        if self.log_floor not in LOG_FLOORS:
            raise ConfigError(f"log_floor must be {_either(LOG_FLOORS)}, got {self.log_floor!r}")

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


@dataclass(frozen=True)
class TrainConfig:
    """Everything the training loop reads. Each field is also a command-line option
    (`--n-critic`, `--recon-weight`, ...) and a key of a config file ([train] in TOML)."""

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
    lecam_weight: float = _setting(
        0.0,
        "weight of the LeCam regulariser of the critic (Tseng et al. 2021, for small data): "
        "real scores are pulled towards the moving average of the fake scores and fake scores "
        "towards that of the real ones (decay 0.99), which bounds how far apart the critic can "
        "push a few hundred real clips from the generator's; 0: off, as the paper",
    )
    transition_start: int = _setting(
        0,
        "transitional conditioning (Shahbazi et al. 2022, against the collapse that "
        "conditioning causes on small data): the step at which the class terms (label "
        "embeddings of both networks, the critic's projection, the auxiliary classifier's "
        "weights) start to ramp in from 0; before it the GAN learns unconditionally",
    )
    transition_end: int = _setting(
        0,
        "the step at which the class terms reach full strength (linear ramp from "
        "transition_start); 0: no transition, conditional from the first step, as the paper",
    )
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
    patience: int = _setting(
        0,
        "stop when this many quality checks in a row have not beaten the best one (FD lower "
        "by 2 percent at about the same class fit, or class fit 5 points higher); --steps "
        "stays the ceiling; needs eval_every; 0: train to --steps",
    )
    time_budget: float = _setting(
        0.0,
        "seconds of training (quality checks included) after which the run stops, saving "
        "its checkpoint, e.g. 1800 for 30 minutes; 0: none",
    )
    checkpoint_every: int = _setting(2_000, "steps between checkpoints")
    keep_checkpoints: int = _setting(3, "how many step checkpoints to keep besides 'latest'")
    standing_stats: int = _setting(
        0,
        "batches of 64 used to re-estimate the generator's BatchNorm statistics for generation "
        "at every checkpoint and preview (0: the running averages, as the reference)",
    )
    crop: str = _setting("start", f"which part of a long clip to keep: {_either(CROP_MODES)}")
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
            (self.lecam_weight >= 0, "lecam_weight must be 0 or more"),
            (
                self.transition_end == 0 or 0 <= self.transition_start < self.transition_end,
                "transitional conditioning ramps from transition_start to a later "
                "transition_end (or give transition_end 0 for none)",
            ),
            (0 <= self.lr_decay <= 1, "lr_decay must be in [0, 1]"),
            (self.gp_every >= 1, "gp_every must be at least 1"),
            (self.recon_every >= 1, "recon_every must be at least 1"),
            (self.eval_every >= 0, "eval_every must be 0 (off) or more"),
            (self.patience >= 0, "patience must be 0 (off) or more"),
            (self.time_budget >= 0, "time_budget must be 0 (none) or more seconds"),
            (0 <= self.augment_p <= 1, "augment_p must be in [0, 1]"),
            (
                self.augment == "none" or set(self.augment.split(",")) <= set(AUGMENTATIONS),
                f"augment must be none or a comma-separated subset of {','.join(AUGMENTATIONS)}",
            ),
            (self.recon_iters >= 1, "recon_iters must be at least 1"),
            (self.recon_phase in PHASE_METHODS, f"recon_phase must be {_either(PHASE_METHODS)}"),
            (
                self.recon_normalize in RECON_NORMALIZATIONS,
                f"recon_normalize must be {_either(RECON_NORMALIZATIONS)}",
            ),
            (self.crop in CROP_MODES, f"crop must be {_either(CROP_MODES)}"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (0 <= self.ema_decay < 1, "ema_decay must be in [0, 1): 0 turns the average off"),
            (self.workers >= -1, "workers must be -1 (automatic), 0 or more"),
            (
                self.device in DEVICES or self.device.startswith("cuda:"),
                f"device must be {_either(DEVICES)}",
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


# --- settings by name: the three sections of a preset, with one key space ------------------------

SECTIONS: dict[str, type] = {"features": FeatureConfig, "model": ModelConfig, "train": TrainConfig}
# setting name -> its section; the names are unique across the sections (tests/test_config.py),
# so flat settings (options, JSON files) need no section to say where a key belongs
SECTION_OF = {f.name: section for section, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
_TYPES = {
    name: kind for cls in SECTIONS.values() for name, kind in typing.get_type_hints(cls).items()
}
_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string"}


def _scalar(value: object, kind: type) -> object:
    """`value` as `kind`, or None when it is not one: an int is a number; an integral float
    (JSON's 1e5) an integer; a bool neither."""
    if isinstance(value, bool):
        return None
    if kind is float and isinstance(value, int | float):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, kind) else None


def check_value(key: str, value: object) -> object:
    """A setting's value as its field's type (a list becomes the tuple a shape field holds);
    a value of another type is a user error naming the key. Unknown keys pass unchanged."""
    kind = _TYPES.get(key)
    if kind is None:
        return value
    if typing.get_origin(kind) is tuple:
        items = typing.get_args(kind)
        count = "" if items[-1] is Ellipsis else f"{len(items)} "
        converted = [_scalar(v, items[0]) for v in value] if isinstance(value, list | tuple) else []
        if (
            isinstance(value, list | tuple)
            and None not in converted
            and (not count or len(value) == len(items))
        ):
            return tuple(converted)
        raise ConfigError(f"{key} must be a list of {count}integers, got {value!r}")
    converted = _scalar(value, kind)
    if converted is None:
        raise ConfigError(f"{key} must be {_TYPE_NAMES[kind]}, got {value!r}")
    return converted


def split_settings(settings: Mapping[str, object]) -> tuple[dict, dict, dict]:
    """User settings (options, a config file) -> (FeatureConfig, ModelConfig, TrainConfig)
    changes, each value checked and of its field's type; keys of none are left with the
    training settings, whose check names them."""
    parts: dict[str, dict] = {section: {} for section in SECTIONS}
    for key, value in settings.items():
        parts[SECTION_OF.get(key, "train")][key] = check_value(key, value)
    return parts["features"], parts["model"], parts["train"]


@dataclass(frozen=True)
class Preset:
    name: str
    description: str
    features: FeatureConfig
    model: ModelConfig
    train: TrainConfig = TrainConfig()

    def __post_init__(self) -> None:
        made, given = self.model.spectrogram_shape(), (self.features.n_frames, self.features.n_bins)
        if made != given:
            raise ConfigError(
                f"the model makes {made[0]} x {made[1]} spectrograms but the features give "
                f"{given[0]} x {given[1]} (frames x bins); change [model] gen_start or "
                "gen_channels with the features"
            )

    def with_settings(self, settings: Mapping[str, object]) -> Preset:
        """This preset with user settings (any section's keys, flat) applied and checked."""
        features, model, train = split_settings(settings)
        return dataclasses.replace(
            self,
            features=dataclasses.replace(self.features, **features),
            model=dataclasses.replace(self.model, **model),
            train=self.train.replace(**train),
        )


# --- TOML files: presets and config files ---------------------------------------------------------

PRESET_FOLDER = resources.files("sfxgan") / "presets"  # package data (pyproject.toml)
# The top-level keys: a preset's changes apply to the dataclasses' defaults (the paper's), a
# config file's to its base.
PRESET_FILE_KEYS = ("description", *SECTIONS)
CONFIG_FILE_KEYS = ("base", "description", *SECTIONS)


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file '{path}' is not valid TOML: {exc}") from exc


def _toml_sections(path: Path, data: dict, keys: tuple[str, ...]) -> dict[str, dict]:
    """A TOML file's [features] [model] [train] tables, every key known and every value of its
    field's type and, where it has one, in its table; otherwise a one-line error naming the
    file and the key."""
    where = f"config file '{path}'"
    for key in data:
        if key not in keys:
            raise ConfigError(f"{where}: unknown key {key}; known: {', '.join(keys)}")
    for key in ("base", "description"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"{where}: {key} must be a string, got {data[key]!r}")
    sections = {}
    for section, cls in SECTIONS.items():
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section} must be a table, [{section}]")
        known = [f.name for f in dataclasses.fields(cls)]
        sections[section] = {}
        for key, value in table.items():
            if key not in known:
                raise ConfigError(
                    f"{where}: unknown key {key} in [{section}]; known: {', '.join(known)}"
                )
            try:
                value = check_value(key, value)
            except ConfigError as exc:
                raise ConfigError(f"{where}: [{section}] {exc}") from None
            allowed = SETTING_CHOICES.get(key)
            if allowed and value not in allowed:
                raise ConfigError(
                    f"{where}: [{section}] {key} must be one of {', '.join(allowed)}, got {value!r}"
                )
            sections[section][key] = value
    return sections


def load_preset(path: Path) -> Preset:
    """A preset file (PRESET_FOLDER/NAME.toml): a description and what the preset changes from
    the defaults."""
    data = _read_toml(path)
    sections = _toml_sections(path, data, PRESET_FILE_KEYS)
    if "description" not in data:
        raise ConfigError(f"config file '{path}': a preset needs a description")
    try:
        return Preset(
            Path(path.name).stem,
            data["description"],
            FeatureConfig(**sections["features"]),
            ModelConfig(**sections["model"]),
            TrainConfig(**sections["train"]),
        )
    except ConfigError as exc:
        raise ConfigError(f"config file '{path}': {exc}") from None


def _load_presets() -> dict[str, Preset]:
    files = sorted(
        (p for p in PRESET_FOLDER.iterdir() if p.name.endswith(".toml")), key=lambda p: p.name
    )
    return {preset.name: preset for preset in map(load_preset, files)}


PRESETS: dict[str, Preset] = _load_presets()


def get_preset(name: str) -> Preset:
    """Look a preset up by name; an unknown name is a user error listing the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS))
        raise ConfigError(f"unknown preset '{name}'; choose one of: {known}") from None


def _read_toml_config(path: Path, seen: tuple[Path, ...] = ()) -> tuple[str | None, dict]:
    """A TOML config file -> (the preset at the root of its bases, or None when it names none;
    the settings of its chain, flat, each file's over its base's)."""
    if path.resolve() in seen:
        raise ConfigError(f"config file '{path}': its chain of bases comes back to itself")
    data = _read_toml(path)
    sections = _toml_sections(path, data, CONFIG_FILE_KEYS)
    changes = {k: v for section in sections.values() for k, v in section.items()}
    base = data.get("base")
    if base is None:
        return None, changes
    if base.endswith(".toml"):  # another config file, relative to this one
        preset, inherited = _read_toml_config(path.parent / base, (*seen, path.resolve()))
        return preset, {**inherited, **changes}
    if base not in PRESETS:
        raise ConfigError(
            f"config file '{path}': base '{base}' is neither a preset "
            f"({', '.join(sorted(PRESETS))}) nor a .toml file"
        )
    return base, changes


def _read_json_config(path: Path) -> tuple[str | None, dict]:
    """A JSON file of training settings: flat, or a run's config.json ({"preset", "train"})."""
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"cannot read config file '{path}': {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' must hold a JSON object of settings")
    if "train" not in data:
        return data.get("preset"), {k: v for k, v in data.items() if k != "preset"}
    # A run's config.json: its training settings and model options, and the features and other
    # model fields where they differ from its preset's, so that a new run from it has the
    # run's shapes (a run of a preset as it ships gives only the former, as before).
    model = data.get("model", {})
    settings = {k: model[k] for k in MODEL_OPTIONS if k in model}
    preset = PRESETS.get(data.get("preset"))
    if preset is not None:
        for section in ("features", "model"):
            ours = getattr(preset, section).to_dict()
            for key, value in data.get(section, {}).items():
                if key in ours and check_value(key, value) != ours[key]:
                    settings[key] = value
    return data.get("preset"), {**settings, **data["train"]}


def read_config_file(path: str | Path) -> tuple[str | None, dict]:
    """A `--config` file -> (the preset it builds on, or None; its settings, flat).

    A .toml file names a base and the changes (docs/config.md); its settings are checked on
    that base here, so that an error names the file. Any other file is JSON: flat training
    settings, or a run's config.json.
    """
    path = Path(path)
    if path.suffix != ".toml":
        return _read_json_config(path)
    preset, settings = _read_toml_config(path)
    if preset is not None:
        try:
            get_preset(preset).with_settings(settings)
        except ConfigError as exc:
            raise ConfigError(f"config file '{path}': {exc}") from None
    return preset, settings


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but CUDA is not available; use --device cpu")
    return torch.device(name)


BF16_MIN_SPEEDUP = 1.2  # what bf16 must gain in a matrix product for auto to pick it on a CPU


@functools.cache
def cpu_bf16_speedup(n: int = 512, repeats: int = 5) -> float | None:
    """How much faster a bf16 matrix product runs than fp32 on this CPU (medians of alternating
    runs), or None when the CPU has no native bfloat16: there, bf16 is emulated and over 100x
    slower (docs/benchmarks.md), not worth timing. Measured once per process: every Trainer
    built with `auto` asks again."""
    from sfxgan.threads import cpu_flags

    if not {"avx512_bf16", "amx_bf16"} & cpu_flags():
        return None
    a32, b32 = torch.randn(n, n), torch.randn(n, n)
    a16, b16 = a32.bfloat16(), b32.bfloat16()
    times: dict[torch.dtype, list[float]] = {torch.float32: [], torch.bfloat16: []}
    for _ in range(repeats + 1):  # the first round warms both kernels up
        for a, b in ((a32, b32), (a16, b16)):
            start = time.perf_counter()
            a @ b
            times[a.dtype].append(time.perf_counter() - start)
    fp32, bf16 = (statistics.median(times[t][1:]) for t in (torch.float32, torch.bfloat16))
    return fp32 / bf16


def resolve_precision(precision: str, device: torch.device) -> tuple[str, str]:
    """The arithmetic a run uses and why: `auto` becomes bf16 where the device computes it
    natively (a GPU with bfloat16; a CPU with AVX-512 BF16 or AMX on which it measures at least
    BF16_MIN_SPEEDUP faster), else fp32. Other values stay as asked."""
    if precision != "auto":
        return precision, "asked"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", "auto: the GPU computes bfloat16 natively"
        return "fp32", "auto: the GPU has no bfloat16"
    speedup = cpu_bf16_speedup()
    if speedup is None:
        return "fp32", "auto: this CPU has no native bfloat16 (AVX-512 BF16 or AMX)"
    if speedup < BF16_MIN_SPEEDUP:
        return "fp32", f"auto: bfloat16 measured only {speedup:.1f}x as fast as fp32 here"
    return "bf16", f"auto: native bfloat16, measured {speedup:.1f}x as fast as fp32 here"
