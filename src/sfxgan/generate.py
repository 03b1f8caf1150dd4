"""Checkpoint -> sounds. Everything needed (classes, max_value, STFT settings, shapes) comes
from the checkpoint itself.

    from sfxgan.generate import Sampler
    sampler = Sampler.from_run("runs/demo")
    clips = sampler.generate("rain", n=4, seed=0)   # (4, samples) float32 numpy, peak 1
    for batch in sampler.stream("rain", 100_000):   # any number, in bounded memory
        ...                                          # batch.indices, batch.audio, batch.log_spec

A take is numbered: take i of a class for a seed is drawn from its own random generator, seeded
by (seed, class, i), so it is the same sound however many takes are asked for and whichever batch
it falls in: 50 takes are the first 50 of 100, and a set can be made, or continued, in pieces.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sfxgan import threads
from sfxgan.config import (
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    PHASE_METHODS,
    pick_device,
    resolve_precision,
)
from sfxgan.data.audio import peak_normalize
from sfxgan.dsp.features import STFT
from sfxgan.dsp.phase import audio_from_log_spec
from sfxgan.errors import SfxganError, first_line
from sfxgan.model.networks import Generator
from sfxgan.run_folder import RunSpec, generation_checkpoint, inference_weights, load_checkpoint

# the record `sfxgan generate` writes beside its takes, which `sfxgan evaluate` reads
RECORD = "generated.json"
RECORD_FORMAT = "sfxgan-takes"
RECORD_VERSION = 1
BATCH = 64  # clips per generator call: bounds memory, keeps the matrix products large
# Working memory of one clip in a batch, in float32 spectrograms: the generator's output, the
# magnitude, Griffin-Lim's complex estimate and its FFT buffers (measured on tiny: ~4.2 at batch
# 1024; twice that, so that a request this passes does fit).
WORK_SPECTROGRAMS = 8
GENERATION_PRECISIONS = ("fp32", "bf16", "auto")


def class_seed(seed: int, class_name: str) -> int:
    """A stable seed per (seed, class): a class's clips do not depend on which others are asked."""
    digest = hashlib.sha256(f"{seed}:{class_name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def take_seed(seed: int, class_name: str, index: int) -> int:
    """The seed of take `index` of a class: one per take, so a take does not depend on how many
    are drawn with it."""
    digest = hashlib.sha256(f"{seed}:{class_name}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def available_memory() -> int:
    """Bytes of memory this process can still take: MemAvailable on Linux (free plus what the
    kernel would drop from its caches), else the free pages."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


@dataclass
class Batch:
    """Consecutive clips of one class from `Sampler.stream`."""

    indices: list[int]  # the takes' numbers
    audio: np.ndarray  # (n, samples) float32
    log_spec: np.ndarray  # (n, T, F) the generator's normalised log-spectrograms


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
        if device.type == "cpu":
            # NHWC activations, which oneDNN's convolutions take without reordering: on a Xeon
            # with AMX the same takes (bit-identical) 1.15-1.25x faster in fp32 and bf16; on a
            # Zen 5 in fp32 within noise (docs/benchmarks.md)
            generator = generator.to(memory_format=torch.channels_last)
        self.spec, self.generator, self.device = spec, generator.eval(), device
        self.stft = STFT(spec.features)
        self.checkpoint, self.step = checkpoint, step
        self.chosen = "the file given"  # why this checkpoint (from_run says)
        self.best: dict | None = None  # a best.pt's quality check: step figures and rule
        self.weights = weights  # "ema": the moving average of the generator's weights
        self.precision = "fp32"  # the generator's arithmetic: fp32 or bf16 (`use_precision`)

    def use_precision(self, precision: str) -> str:
        """Run the generator in `precision` (fp32, bf16, or auto: bf16 where the device computes
        it natively and fast, as training's --precision auto) and say why. bf16 runs the
        paper-16k generator 2.5x faster on a CPU with AMX (docs/benchmarks.md) and its takes
        are judged the same as fp32's (3 seeds), but they are other takes (take i differs by
        bf16 rounding), so the library's default stays fp32. Griffin-Lim stays fp32."""
        if precision not in GENERATION_PRECISIONS:
            raise SfxganError(
                f"unknown precision '{precision}'; choose {', '.join(GENERATION_PRECISIONS)}"
            )
        self.precision, why = resolve_precision(precision, self.device)
        return why

    @classmethod
    def from_run(
        cls, path: str | Path, device: str = "auto", ema: bool = True, checkpoint: str = "auto"
    ) -> Sampler:
        """Load from a run folder or a checkpoint file: the moving average of the generator's
        weights when the run kept one and `ema` is true, else the trained weights; either with
        BatchNorm statistics fit for generation when the run estimated them. `checkpoint`
        picks a run's checkpoint: auto (its best quality check when it kept one, else its
        latest), best, latest or a file (run_folder.generation_checkpoint)."""
        chosen, why = generation_checkpoint(path, checkpoint)
        sampler = cls.from_checkpoint(load_checkpoint(chosen), device, ema)
        sampler.chosen = why
        return sampler

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
        sampler = cls(spec, generator.to(dev), dev, state["path"], int(state["step"]), which)
        sampler.best = state.get("best")
        return sampler

    def describe_checkpoint(self) -> str:
        """One line: which checkpoint, its step, and why it was chosen."""
        line = f"checkpoint: {self.checkpoint} (step {self.step}, {self.chosen}"
        if self.best:
            line += (
                f": FD {self.best['fd']:.3g}, class fit {100 * self.best['class_fit']:.0f} %; "
                f"{self.best['rule']}"
            )
        return line + ")"

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

    def latents(self, class_name: str, clips: int | Sequence[int], seed: int) -> torch.Tensor:
        """The latents of takes `clips` (a count n: takes 0..n-1; or the takes' numbers) of a
        class: (n, latent_dim), row k from a generator seeded by (seed, class, clips[k])."""
        indices = range(clips) if isinstance(clips, int) else clips
        dim = self.spec.model.latent_dim
        self.check_memory(len(indices) * dim * 4, f"the latents of {len(indices)} clips")
        return self._draw(class_name, indices, seed)

    def _draw(self, class_name: str, indices: Sequence[int], seed: int) -> torch.Tensor:
        z = torch.empty(len(indices), self.spec.model.latent_dim)
        g = torch.Generator()
        for row, index in enumerate(indices):
            g.manual_seed(take_seed(seed, class_name, index))
            torch.randn(z.shape[1], generator=g, out=z[row])
        return z

    def clip_bytes(self, with_spec: bool = False) -> int:
        """Bytes a finished clip takes in memory (float32 audio, and its spectrogram)."""
        frames, bins = self.spec.model.spectrogram_shape()
        return 4 * (self.spec.features.clip_samples + (frames * bins if with_spec else 0))

    def batch_bytes(self, batch_size: int) -> int:
        """Working memory of one batch of `stream`: network output, phase reconstruction, audio."""
        frames, bins = self.spec.model.spectrogram_shape()
        return batch_size * (WORK_SPECTROGRAMS * 4 * frames * bins + self.clip_bytes(True))

    def check_memory(self, n_bytes: int, what: str) -> None:
        """Refuse, before any work, a request whose memory the machine does not have."""
        if self.device.type == "cuda":
            free = torch.cuda.mem_get_info(self.device)[0]
            where = f"{gigabytes(free)} is free on {self.device}"
        else:
            free = available_memory()
            where = f"{gigabytes(free)} of memory is available"
        if n_bytes > free:
            raise SfxganError(
                f"{what} need about {gigabytes(n_bytes)} but only {where}; "
                "ask for fewer (takes are written as they are made: `sfxgan generate` or "
                "Sampler.stream keep memory flat at any count)"
            )

    def fingerprint(self) -> str:
        """A short hash of the generator's weights and statistics: the same model, wherever its
        run folder now lies."""
        digest = hashlib.sha256()
        for name, value in self.generator.state_dict().items():
            digest.update(name.encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        return digest.hexdigest()[:16]

    @torch.inference_mode()
    def log_spec(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(n, latent), (n,) -> (n, T, F) normalised log-spectrograms."""
        out = []
        for i in range(0, len(z), BATCH):
            threads.recheck()  # long requests follow the machine's load (--threads auto)
            z_batch, label_batch = z[i : i + BATCH].to(self.device), labels[i : i + BATCH]
            with torch.autocast(self.device.type, torch.bfloat16, self.precision == "bf16"):
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
        audio = audio_from_log_spec(
            log_spec.to(self.device), self.stft, self.spec.max_value, phase, n_iter
        )
        return peak_normalize(audio) if normalize else audio

    def stream(
        self,
        class_name: str,
        clips: int | Sequence[int],
        seed: int = 0,
        phase: str = DEFAULT_PHASE,
        n_iter: int = DEFAULT_PHASE_ITERS,
        normalize: bool = True,
        batch_size: int = BATCH,
    ) -> Iterator[Batch]:
        """Takes `clips` (a count n, or the takes' numbers) of a class, `batch_size` at a time:
        memory holds one batch whatever the count. Take i is the same sound in any request."""
        indices = range(clips) if isinstance(clips, int) else clips  # a range stays lazy
        if len(indices) < 1:
            raise SfxganError(f"ask for at least 1 clip, got {len(indices)}")
        if batch_size < 1:
            raise SfxganError(f"the batch size must be at least 1, got {batch_size}")
        label = self.label(class_name)
        if phase not in PHASE_METHODS:
            raise SfxganError(f"unknown phase method '{phase}'; choose {', '.join(PHASE_METHODS)}")
        self.check_memory(self.batch_bytes(batch_size), f"batches of {batch_size} clips")
        for first in range(0, len(indices), batch_size):
            batch = list(indices[first : first + batch_size])
            z = self._draw(class_name, batch, seed)
            log_spec = self.log_spec(z, torch.full((len(batch),), label, dtype=torch.long))
            audio = self.to_audio(log_spec, phase, n_iter, normalize)
            yield Batch(batch, audio.cpu().numpy(), log_spec.cpu().numpy())

    def generate(
        self,
        class_name: str,
        n: int = 1,
        seed: int = 0,
        phase: str = DEFAULT_PHASE,
        n_iter: int = DEFAULT_PHASE_ITERS,
        normalize: bool = True,
        return_spec: bool = False,
        start: int = 0,
    ):
        """Takes start..start+n-1 of a class as a float32 array (n, samples); with return_spec
        also their log-spectrograms (n, T, F). All in memory: for many clips, use `stream`."""
        if n < 1:
            raise SfxganError(f"n must be at least 1, got {n}")
        self.label(class_name)
        self.check_memory(n * self.clip_bytes(return_spec), f"{n} clips held in memory")
        frames, bins = self.spec.model.spectrogram_shape()
        audio = np.empty((n, self.spec.features.clip_samples), np.float32)
        log_spec = np.empty((n, frames, bins), np.float32) if return_spec else None
        takes = range(start, start + n)
        done = 0
        for batch in self.stream(class_name, takes, seed, phase, n_iter, normalize):
            audio[done : done + len(batch.indices)] = batch.audio
            if log_spec is not None:
                log_spec[done : done + len(batch.indices)] = batch.log_spec
            done += len(batch.indices)
        return (audio, log_spec) if return_spec else audio


# --- the record of a folder of takes ------------------------------------------------------------


def settings_of(sampler: Sampler, seed: int, phase: str, n_iter: int) -> dict:
    """What makes a take's sound, with where the model came from (said in messages)."""
    return {
        "model": sampler.fingerprint(),
        "checkpoint": str(Path(sampler.checkpoint).resolve()) if sampler.checkpoint else "",
        "step": sampler.step,
        "weights": sampler.weights,
        "preset": sampler.spec.preset,
        "seed": seed,
        "precision": sampler.precision,
        "phase": phase,
        "iterations": n_iter,
        "sample_rate": sampler.sample_rate,
        "clip_samples": sampler.spec.features.clip_samples,
    }


def read_takes_record(folder: str | Path) -> dict | None:
    """The folder's generated.json, or None where there is none."""
    path = Path(folder) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        if record.get("format") != RECORD_FORMAT or not isinstance(record.get("settings"), dict):
            raise ValueError("not a record of sfxgan takes")
    except (OSError, ValueError, AttributeError) as exc:
        raise SfxganError(
            f"'{path}' is not a readable record of generated takes ({exc}); remove it and "
            "write the takes again with --overwrite"
        ) from None
    return record


def describe_takes(settings: dict) -> str:
    weights = "moving-average" if settings.get("weights") == "ema" else "trained"
    return (
        f"step {settings.get('step')} of {settings.get('checkpoint') or 'a run'} ({weights} "
        f"weights), seed {settings.get('seed')}, {settings.get('phase')} "
        f"{settings.get('iterations')}"
        + (", bf16 generator" if settings.get("precision") == "bf16" else "")
    )
