"""Phase reconstruction: Griffin-Lim, fast Griffin-Lim, and the spectral convergence measure.

Everything is batched and differentiable with respect to the magnitude: the reconstruction loss
back-propagates through every iteration (SPEC section 3).
"""

from __future__ import annotations

import torch

from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS, PHASE_METHODS
from sfxgan.data.audio import peak_normalize
from sfxgan.dsp.features import STFT, from_log_spec

# Perraudin et al. (2013): momentum close to 1 converges much faster than plain Griffin-Lim.
FAST_MOMENTUM = 0.99
_EPS = 1e-16
# Clips per Griffin-Lim call when reconstructing many: a batch whose spectra stay in cache.
# Measured on paper-16k (2-core EPYC): see docs/benchmarks.md.
PHASE_BATCH = 16


def griffin_lim(
    magnitude: torch.Tensor,
    stft: STFT,
    n_iter: int = 32,
    momentum: float = 0.0,
    init: str = "zeros",
    length: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Estimate audio whose STFT magnitude is `magnitude` (..., frames, bins).

    momentum 0 is the classic algorithm (the reference's, with init="zeros"); momentum ~0.99 is
    fast Griffin-Lim. init is "zeros" (zero phase, deterministic, the reference's) or "random"
    (uniform phase from `generator`). Returns (..., length) audio, by default frames * hop.
    """
    if length is None:
        length = magnitude.shape[-2] * stft.hop
    # The spectrogram as real numbers, (..., frames, 2, bins): real parts, then imaginary parts.
    # STFT.analyse / synthesise are one matrix product each way, several times faster on a CPU
    # than the FFT with complex element-wise arithmetic at these frame sizes (docs/benchmarks.md)
    # and the same transform to float rounding.
    magnitude = magnitude.unsqueeze(-2)  # (..., frames, 1, bins)
    if init == "zeros":
        spec = torch.cat([magnitude, torch.zeros_like(magnitude)], dim=-2)
    elif init == "random":
        angles = (
            2
            * torch.pi
            * torch.rand(
                magnitude.shape,
                generator=generator,
                device=magnitude.device if generator is None else generator.device,
                dtype=magnitude.dtype,
            ).to(magnitude.device)
        )
        spec = magnitude * torch.cat([angles.cos(), angles.sin()], dim=-2)
    else:
        raise ValueError(f"init must be 'zeros' or 'random', not {init!r}")

    keep = momentum / (1.0 + momentum)
    previous = None
    for _ in range(n_iter):
        rebuilt = stft.analyse(stft.synthesise(spec, length))
        estimate = rebuilt
        if momentum and previous is not None:
            estimate = rebuilt - keep * previous
        # the magnitude with the estimate's phase: estimate * magnitude / |estimate|
        norm = estimate.square().sum(dim=-2, keepdim=True).sqrt()
        spec = estimate * (magnitude / (norm + _EPS))
        previous = rebuilt
    return stft.synthesise(spec, length)


def reconstruct(
    magnitude: torch.Tensor,
    stft: STFT,
    method: str = "fast-griffin-lim",
    n_iter: int = 32,
    length: int | None = None,
) -> torch.Tensor:
    """Audio from magnitude spectrograms (..., frames, bins) by a named method (see
    PHASE_METHODS), PHASE_BATCH clips at a time."""
    if method not in PHASE_METHODS:
        raise ValueError(f"unknown phase method {method!r}; choose one of {PHASE_METHODS}")
    momentum = FAST_MOMENTUM if method == "fast-griffin-lim" else 0.0
    lead = magnitude.shape[:-2]
    clips = magnitude.reshape(-1, *magnitude.shape[-2:])
    audio = torch.cat(
        [
            griffin_lim(chunk, stft, n_iter=n_iter, momentum=momentum, length=length)
            for chunk in clips.split(PHASE_BATCH)
        ]
    )
    return audio.reshape(*lead, audio.shape[-1])


def audio_from_log_spec(
    log_spec: torch.Tensor,
    stft: STFT,
    max_value: float,
    method: str = DEFAULT_PHASE,
    n_iter: int = DEFAULT_PHASE_ITERS,
) -> torch.Tensor:
    """The model's log-spectrograms (..., frames, bins) to audio (..., clip_samples) the way
    generation makes it: the features' inverse (with their log floor), then phase
    reconstruction with their framing; not normalised."""
    magnitude = from_log_spec(log_spec, max_value, stft.config.log_floor)
    return reconstruct(magnitude, stft, method, n_iter, length=stft.config.clip_samples)


def reference_griffin_lim(magnitude: torch.Tensor, stft: STFT, n_iter: int = 50) -> torch.Tensor:
    """The reference's reconstruction: zero initial phase, plain iterations, rescaled by the
    batch's peak (as its training loss does)."""
    audio = griffin_lim(magnitude, stft, n_iter=n_iter, momentum=0.0, init="zeros")
    return peak_normalize(audio, per="batch")


def spectral_convergence(magnitude: torch.Tensor, audio: torch.Tensor, stft: STFT) -> torch.Tensor:
    """||S - |STFT(audio)|||_F / ||S||_F per clip: how well `audio` realises the magnitude S.

    magnitude (..., frames, bins), audio (..., samples) -> (...). 0 is perfect.
    """
    rebuilt = stft.magnitude(audio)[..., : magnitude.shape[-2], :]
    diff = torch.linalg.vector_norm(magnitude - rebuilt, dim=(-2, -1))
    return diff / torch.linalg.vector_norm(magnitude, dim=(-2, -1)).clamp_min(_EPS)
