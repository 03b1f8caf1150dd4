"""Checkpoint -> sounds. Everything needed (classes, max_value, STFT settings, shapes) comes
from the checkpoint itself.

    from sfxgan.generate import Sampler
    sampler = Sampler.from_run("runs/demo")
    clips = sampler.generate("rain", n=4, seed=0)   # (4, samples) float32 numpy, peak 1
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from sfxgan import threads
from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS, PHASE_METHODS, pick_device
from sfxgan.data.audio import peak_normalize, write_wav
from sfxgan.dsp.features import STFT, from_log_spec
from sfxgan.dsp.phase import reconstruct
from sfxgan.errors import SfxganError, first_line
from sfxgan.model.networks import Generator
from sfxgan.plots import save_spectrograms
from sfxgan.run_folder import RunSpec, inference_weights, load_checkpoint

BATCH = 64  # clips per generator call: bounds memory, keeps the matrix products large


def class_seed(seed: int, class_name: str) -> int:
    """A stable seed per (seed, class): a class's clips do not depend on which others are asked."""
    digest = hashlib.sha256(f"{seed}:{class_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


class Sampler:
    """A trained generator with its spectrogram inverse and phase reconstruction."""

    def __init__(
        self,
        spec: RunSpec,
        generator: Generator,
        device: torch.device,
        checkpoint: str = "",
        step: int = 0,
        weights: str = "raw",
    ):
        self.spec, self.generator, self.device = spec, generator.eval(), device
        self.stft = STFT(spec.features)
        self.checkpoint, self.step = checkpoint, step
        self.weights = weights  # "ema": the moving average of the generator's weights

    @classmethod
    def from_run(cls, path: str | Path, device: str = "auto", ema: bool = True) -> Sampler:
        """Load from a run folder (its latest checkpoint) or a checkpoint file: the moving
        average of the generator's weights when the run kept one and `ema` is true, else the
        trained weights; either with BatchNorm statistics fit for generation when the run
        estimated them."""
        return cls.from_checkpoint(load_checkpoint(Path(path)), device, ema)

    @classmethod
    def from_checkpoint(cls, state: dict, device: str = "auto", ema: bool = True) -> Sampler:
        """From a checkpoint already loaded with `load_checkpoint` (see `from_run`)."""
        try:
            spec = RunSpec.from_dict(state["config"])
            generator = Generator(spec.model, len(spec.classes))
            weights, which = inference_weights(state, ema)
            generator.load_state_dict(weights)
        except (KeyError, TypeError, RuntimeError) as exc:
            raise SfxganError(
                f"'{state['path']}' does not hold a usable generator ({first_line(exc)})"
            ) from exc
        dev = pick_device(device)
        return cls(spec, generator.to(dev), dev, state["path"], int(state["step"]), which)

    @property
    def classes(self) -> list[str]:
        return list(self.spec.classes)

    @property
    def sample_rate(self) -> int:
        return self.spec.features.sample_rate

    def label(self, class_name: str) -> int:
        try:
            return self.spec.classes.index(class_name)
        except ValueError:
            raise SfxganError(
                f"unknown class '{class_name}'; this model knows: {', '.join(self.spec.classes)}"
            ) from None

    def latents(self, class_name: str, n: int, seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(class_seed(seed, class_name))
        return torch.randn(n, self.spec.model.latent_dim, generator=g)

    @torch.inference_mode()
    def log_spec(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(n, latent), (n,) -> (n, T, F) normalised log-spectrograms."""
        out = []
        for i in range(0, len(z), BATCH):
            threads.recheck()  # long requests follow the machine's load (--threads auto)
            z_batch, label_batch = z[i : i + BATCH].to(self.device), labels[i : i + BATCH]
            out.append(self.generator(z_batch, label_batch.to(self.device))[:, 0].float())
        return torch.cat(out)

    @torch.inference_mode()
    def to_audio(
        self,
        log_spec: torch.Tensor,
        phase: str = DEFAULT_PHASE,
        n_iter: int = DEFAULT_PHASE_ITERS,
        normalize: bool = True,
    ) -> torch.Tensor:
        if phase not in PHASE_METHODS:
            raise SfxganError(f"unknown phase method '{phase}'; choose {', '.join(PHASE_METHODS)}")
        magnitude = from_log_spec(log_spec.to(self.device), self.spec.max_value)
        audio = reconstruct(magnitude, self.stft, phase, n_iter)
        return peak_normalize(audio) if normalize else audio

    def generate(
        self,
        class_name: str,
        n: int = 1,
        seed: int = 0,
        phase: str = DEFAULT_PHASE,
        n_iter: int = DEFAULT_PHASE_ITERS,
        normalize: bool = True,
        return_spec: bool = False,
    ):
        """n new clips of a class as a float32 array (n, samples); with return_spec also their
        log-spectrograms (n, T, F). Deterministic for (seed, class)."""
        if n < 1:
            raise SfxganError(f"n must be at least 1, got {n}")
        z = self.latents(class_name, n, seed)
        labels = torch.full((n,), self.label(class_name), dtype=torch.long)
        log_spec = self.log_spec(z, labels)
        audio = self.to_audio(log_spec, phase, n_iter, normalize).cpu().numpy()
        return (audio, log_spec.cpu().numpy()) if return_spec else audio


def generate_to_folder(
    sampler: Sampler,
    out: Path,
    per_class: int,
    classes: list[str] | None,
    seed: int,
    phase: str,
    n_iter: int,
    pictures: bool,
) -> dict[str, list[Path]]:
    """Write OUT/<class>/<class>_<i>.wav (16-bit PCM) and optionally a PNG per clip."""
    names = classes or sampler.classes
    for name in names:
        sampler.label(name)  # every name is checked before anything is written
    written: dict[str, list[Path]] = {}
    for name in names:
        audio, log_spec = sampler.generate(name, per_class, seed, phase, n_iter, return_spec=True)
        paths = []
        try:
            for i in range(per_class):
                path = write_wav(out / name / f"{name}_{i}.wav", audio[i], sampler.sample_rate)
                if pictures:
                    save_spectrograms(
                        out / name / f"{name}_{i}.png",
                        [(f"{name} {i}", log_spec[i])],
                        sampler.spec.features,
                    )
                paths.append(path)
        except OSError as exc:
            raise SfxganError(f"cannot write to '{out}': {exc.strerror or exc}") from exc
        written[name] = paths
    return written
