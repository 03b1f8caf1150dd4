"""A trained generator as one ONNX or TorchScript file for game and audio tools.

    from sfxgan.apps.export import export_run
    model, sidecar = export_run("runs/demo", "onnx", "sfx.onnx")   # sfx.onnx, sfx.onnx.json

The file maps a latent `z` (batch, latent_dim) float32 and a class `label` (batch,) int64 to

- `magnitude` (batch, frames, bins) float32: the linear STFT magnitude, the generator's output
  with the log/normalisation undone (exp(5 (x - 1)) * max_value);
- `audio` (batch, clip_samples) float32: fast Griffin-Lim (32 iterations, momentum 0.99, zero
  initial phase) with each clip scaled to peak 1, what `sfxgan generate` writes.

Griffin-Lim is rewritten here with operations every ONNX runtime has: the STFT is a strided
convolution with fixed windowed cos/sin kernels, the inverse a transposed convolution (the
overlap-add) with the inverse DFT's kernels, divided by the fixed window envelope. No FFT, no
complex numbers, no loop operator: the 32 iterations are unrolled. docs/export.md has the
measured agreement with sfxgan's own FFT-based reconstruction and the timings.

Next to the file goes a JSON sidecar FILE.json with what a tool needs to use it: the classes
(index = label), sample rate, STFT settings, max_value, latent size, input and output names.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfxgan import __version__
from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS, EXPORT_FORMATS, FeatureConfig
from sfxgan.data.audio import peak_normalize
from sfxgan.dsp.features import SILENCE_RANGE_DB, SILENCE_RANGE_NEPERS, STFT, from_log_spec
from sfxgan.dsp.phase import _EPS as PHASE_EPS
from sfxgan.dsp.phase import FAST_MOMENTUM
from sfxgan.errors import SfxganError
from sfxgan.files import atomic_write
from sfxgan.generate import Sampler
from sfxgan.model.networks import Generator

EXPORT_FORMAT = "sfxgan-export"
EXPORT_VERSION = 1
# Below the exporter's default (20 in torch 2.13) for runtimes embedded in tools, which lag
# behind; the graph needs no operator newer than opset 18's Conv, ConvTranspose and ReduceMax.
OPSET = 18
INPUT_NAMES = ("z", "label")
OUTPUT_NAMES = ("magnitude", "audio")
# The batch the graph is traced with. Not 1: torch.export would specialise a size-1 axis.
EXAMPLE_BATCH = 2
EXPORT_EXTRA = "install the export extra: pip install 'sfxgan[export]'"
# the sidecar's description of the graph's magnitude output, by FeatureConfig.log_floor
_LOG_SPEC = "x = log(max(magnitude / max_value, e^-10)) / 5 + 1"
MAGNITUDE_FORMULAS = {
    "constant": "magnitude = exp(5 * (x - 1)) * max_value, x the generator's output in [-1, 1]; "
    f"inverse of {_LOG_SPEC}",
    "silence": "magnitude = max(exp(L) - e^-10 * g, 0) * max_value, L = 5 * (x - 1), x the "
    "generator's output in [-1, 1], g = clip(1 - (max over the frame's bins of L + 10) / "
    f"{SILENCE_RANGE_NEPERS:.6f}, 0, 1): the inverse of {_LOG_SPEC}, a frame whose bins all "
    f"lie at the floor inverting to zero (within {SILENCE_RANGE_DB:g} dB of it, partly)",
}


class GriffinLim(nn.Module):
    """Fast Griffin-Lim on magnitudes (batch, frames, bins) -> peak-normalised audio
    (batch, clip_samples), the same algorithm and STFT as `phase.griffin_lim` +
    `audio.peak_normalize`, with operations that export to ONNX.

    The complex spectrogram is kept as (batch, 2 * bins, frames): real parts, then imaginary
    parts, the layout the convolutions produce, so an iteration needs no transposes.
    """

    def __init__(self, config: FeatureConfig, n_iter: int = DEFAULT_PHASE_ITERS):
        super().__init__()
        self.hop, self.n_iter, self.bins = config.hop_length, n_iter, config.n_bins
        self.length, self.lead = config.clip_samples, config.lead_in
        n_frames = config.n_frames

        # Built in float64 and rounded once, so the float32 kernels are as exact as can be. The
        # DFT matrices, window and envelope are sfxgan's own `STFT`'s, so the two cannot drift
        # apart: the analysis convolution computes `STFT.__call__`, the transposed one
        # `STFT.inverse` (tests/test_stft_frontends.py holds them to it).
        stft = STFT(config)
        analysis = stft.analysis_matrix()  # (win, 2 bins)
        synthesis = stft.synthesis_matrix()  # (2 bins, win)
        # The least-squares inverse divides by the overlap-added squared window (infinite where
        # no window reaches, so those samples stay zero); samples before and past the clip (the
        # lead-in, the end's padding) are zeroed too: `STFT.inverse` crops them and the next
        # analysis pads zeros back.
        inv_envelope = 1.0 / stft.envelope(n_frames, torch.device("cpu"), torch.float64).numpy()
        inv_envelope[: self.lead] = 0.0
        inv_envelope[self.lead + self.length :] = 0.0

        def buffer(array: np.ndarray) -> Tensor:
            return torch.tensor(array, dtype=torch.float32)

        self.register_buffer("analysis", buffer(analysis.T[:, None, :]))  # (2 bins, 1, win)
        self.register_buffer("synthesis", buffer(synthesis[:, None, :]))  # (2 bins, 1, win)
        self.register_buffer("inv_envelope", buffer(inv_envelope))  # (padded,)

    def _inverse(self, spec: Tensor) -> Tensor:  # (B, 2 bins, frames) -> (B, 1, padded)
        return F.conv_transpose1d(spec, self.synthesis, stride=self.hop) * self.inv_envelope

    def forward(self, magnitude: Tensor) -> Tensor:  # (B, frames, bins) -> (B, clip_samples)
        mag = magnitude.transpose(1, 2)  # (B, bins, frames)
        spec = torch.cat([mag, torch.zeros_like(mag)], dim=1)  # zero initial phase
        keep = FAST_MOMENTUM / (1.0 + FAST_MOMENTUM)
        bins = self.bins
        kept = None  # keep * the previous iteration's rebuilt spectrogram
        for _ in range(self.n_iter):  # unrolled in the exported graph
            rebuilt = F.conv1d(self._inverse(spec), self.analysis, stride=self.hop)
            estimate = rebuilt if kept is None else rebuilt - kept
            # |estimate| per bin from the real and imaginary halves; slices rather than a
            # reshape, so the graph has no batch-dependent shape arithmetic
            square = estimate * estimate
            scale = mag / ((square[:, :bins] + square[:, bins:]).sqrt() + PHASE_EPS)
            spec = estimate * torch.cat([scale, scale], dim=1)
            kept = keep * rebuilt
        audio = self._inverse(spec)[:, 0, self.lead : self.lead + self.length]
        return peak_normalize(audio)  # per clip, as `Sampler.to_audio`


class ExportedGenerator(nn.Module):
    """(z, label) -> magnitude (B, frames, bins) [, audio (B, clip_samples)]: the generator, the
    inverse of the log/normalisation and optionally Griffin-Lim."""

    def __init__(
        self,
        generator: Generator,
        max_value: float,
        griffin_lim: GriffinLim | None,
        log_floor: str = "constant",
    ):
        super().__init__()
        self.generator, self.griffin_lim = generator, griffin_lim
        self.max_value, self.log_floor = float(max_value), log_floor

    def forward(self, z: Tensor, label: Tensor) -> tuple[Tensor, ...]:
        log_spec = self.generator(z, label)[:, 0]  # (B, frames, bins) in [-1, 1]
        # max_value and the floor fold into the graph as constants
        magnitude = from_log_spec(log_spec, self.max_value, self.log_floor)
        if self.griffin_lim is None:
            return (magnitude,)
        return magnitude, self.griffin_lim(magnitude)


def build_module(sampler: Sampler, audio: bool = True) -> ExportedGenerator:
    """The module that gets exported, on the CPU in float32 and eval mode (BatchNorm uses the
    statistics the checkpoint carries). A copy: the sampler's own generator stays as it was."""
    generator = copy.deepcopy(sampler.generator).to("cpu", torch.float32).eval()
    features = sampler.spec.features
    griffin_lim = GriffinLim(features) if audio else None
    return ExportedGenerator(
        generator, sampler.spec.max_value, griffin_lim, features.log_floor
    ).eval()


def export_run(
    run: str | Path,
    fmt: str,
    out: str | Path,
    ema: bool = True,
    audio: bool = True,
    checkpoint: str = "auto",
) -> tuple[Path, Path]:
    """Export a run folder's checkpoint (`checkpoint`: its best by default, see
    Sampler.from_run) or a checkpoint file as `fmt` ("onnx" or "torchscript") to `out`, with
    its settings in `out` + ".json". Returns both paths.

    Both files appear whole or not at all (files.atomic_write): the sidecar is renamed into
    place just before the model file, both after the export succeeded.
    """
    if fmt not in EXPORT_FORMATS:
        raise SfxganError(f"unknown export format '{fmt}'; choose {' or '.join(EXPORT_FORMATS)}")
    if fmt == "onnx":
        _require_onnx()
    out = Path(out)
    sidecar_path = Path(f"{out}.json")  # rain.onnx -> rain.onnx.json: two exports never clash
    if out.is_dir():
        suffix = "onnx" if fmt == "onnx" else "pt"
        raise SfxganError(f"--out '{out}' is a folder; give a file, such as {out / 'sfx'}.{suffix}")
    # Open both files before the (slow) export, so an unwritable --out fails at once.
    with _opened(out) as model_file, _opened(sidecar_path) as sidecar_file:
        sampler = Sampler.from_run(run, device="cpu", ema=ema, checkpoint=checkpoint)
        if out.resolve() == Path(sampler.checkpoint).resolve():
            raise SfxganError(f"--out '{out}' is the checkpoint being exported; choose another")
        module = build_module(sampler, audio)
        settings = sidecar(sampler, fmt, out.name, audio)
        with torch.no_grad():
            data = (
                _to_onnx(module, settings) if fmt == "onnx" else _to_torchscript(module, settings)
            )
        _write(model_file, out, data)
        _write(sidecar_file, sidecar_path, (json.dumps(settings, indent=2) + "\n").encode())
    return out, sidecar_path


def sidecar(sampler: Sampler, fmt: str, model_file: str, audio: bool = True) -> dict:
    """The JSON sidecar: everything a tool needs besides the model file."""
    spec, features = sampler.spec, sampler.spec.features
    frames, bins = features.n_frames, features.n_bins
    outputs = [{"name": "magnitude", "dtype": "float32", "shape": ["batch", frames, bins]}]
    if audio:
        outputs.append(
            {"name": "audio", "dtype": "float32", "shape": ["batch", spec.features.clip_samples]}
        )
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "sfxgan_version": __version__,
        "model_file": model_file,
        "model_format": fmt,
        **({"opset": OPSET} if fmt == "onnx" else {}),
        "classes": list(spec.classes),
        "sample_rate": features.sample_rate,
        "clip_samples": features.clip_samples,
        "stft": {
            "n_fft": features.n_fft,
            "hop_length": features.hop_length,
            "win_length": features.win_length,
            "window": "hann",
            "window_periodic": True,
            "centered": False,
            "lead_in": features.lead_in,
            "padding": f"{features.lead_in} zeros before the clip (lead_in), zeros at the end, "
            "to (frames - 1) * hop_length + win_length samples",
            "frames": frames,
            "bins": bins,
        },
        "max_value": spec.max_value,
        "latent_dim": spec.model.latent_dim,
        "latent_distribution": "standard normal",
        "log_floor": features.log_floor,
        "magnitude_formula": MAGNITUDE_FORMULAS[features.log_floor],
        "inputs": [
            {"name": "z", "dtype": "float32", "shape": ["batch", spec.model.latent_dim]},
            {"name": "label", "dtype": "int64", "shape": ["batch"]},
        ],
        "outputs": outputs,
        "audio": {
            "phase": DEFAULT_PHASE,
            "iterations": DEFAULT_PHASE_ITERS,
            "momentum": FAST_MOMENTUM,
            "initial_phase": "zeros",
            "normalization": "each clip scaled to peak 1",
        }
        if audio
        else None,
        "run": {"checkpoint": sampler.checkpoint, "step": sampler.step, "weights": sampler.weights},
    }


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise SfxganError(f"--format onnx needs {exc.name or 'onnx'}: {EXPORT_EXTRA}") from None


def _example_inputs(module: ExportedGenerator) -> tuple[Tensor, Tensor]:
    latent_dim = module.generator.config.latent_dim
    return torch.zeros(EXAMPLE_BATCH, latent_dim), torch.zeros(EXAMPLE_BATCH, dtype=torch.long)


def _output_names(module: ExportedGenerator) -> list[str]:
    return list(OUTPUT_NAMES if module.griffin_lim is not None else OUTPUT_NAMES[:1])


def _to_onnx(module: ExportedGenerator, settings: dict) -> bytes:
    import onnx

    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    with _quiet_onnx_exporter():
        program = torch.onnx.export(
            module,
            _example_inputs(module),
            None,  # serialised here, so the bytes can be written atomically
            input_names=list(INPUT_NAMES),
            output_names=_output_names(module),
            dynamic_shapes={"z": {0: batch}, "label": {0: batch}},
            opset_version=OPSET,
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    model = program.model_proto
    # the settings travel inside the file too, for tools that receive only the .onnx
    entry = model.metadata_props.add()
    entry.key, entry.value = "sfxgan", json.dumps(settings)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _to_torchscript(module: ExportedGenerator, settings: dict) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 2.9+ marks TorchScript deprecated; that is advice to us, not to the user
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        traced = torch.jit.trace(module, _example_inputs(module), check_trace=False)
        torch.jit.save(traced, buffer, _extra_files={"sfxgan.json": json.dumps(settings)})
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_onnx_exporter() -> Iterator[None]:
    """Silence what the exporter tells its own developers: that torchvision's operators are not
    registered (logged) and notes on how it named the dynamic axis and traced the model."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"# The axis name", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[BinaryIO]:
    """`files.atomic_write` on `path`, its folder created, a failure to start writing a
    one-line error."""
    with contextlib.ExitStack() as stack:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = stack.enter_context(atomic_write(path))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if isinstance(exc, (FileExistsError, NotADirectoryError)):  # mkdir met a file
                reason = "part of its folder path is a file"
            raise SfxganError(
                f"cannot write '{path}': {reason}; give --out in a writable folder"
            ) from None
        yield fh


def _write(fh: BinaryIO, path: Path, data: bytes) -> None:
    try:
        fh.write(data)
    except OSError as exc:
        raise SfxganError(f"cannot write '{path}': {exc.strerror or exc}") from None


__all__ = ["ExportedGenerator", "GriffinLim", "build_module", "export_run", "sidecar"]
