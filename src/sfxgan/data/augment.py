"""Augmentation of the critic's input for small datasets (the idea of DiffAugment, Zhao et al.
2020, and StyleGAN2-ADA, Karras et al. 2020): real and generated spectrograms go through the
same random, differentiable transformations before the critic, so the critic cannot memorise a
few hundred real clips, and the generator still learns the un-augmented distribution (every
transformation is applied to both sides, and none of them leaks: each is applied with a
probability below 1 and can be told apart from the data only in distribution).

Spectrograms are (B, 1, T, F) in the normalised log scale [-1, 1], where -1 is silence.
The random draws are made for the whole global batch by the caller's generator (checkpointed),
so a resumed run and every process of a distributed one see the same augmentations.
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfxgan.dsp.features import LOG_SCALE

MAX_SHIFT = 1 / 8  # of the frames, either way
MAX_GAIN = 1.0 / LOG_SCALE  # one unit of natural log: +-8.7 dB
MAX_MASK = 1 / 8  # of the frames (time mask) and of the bins (frequency mask)


def draw(batch: int, p: float, generator: torch.Generator) -> Tensor:
    """The random numbers of one augmentation pass for a global batch: (batch, 9) uniforms in
    [0, 1): for shift, gain and mask, whether to apply it (columns 0, 2, 4: 1 when drawn below
    p) and its amounts (shift 1; gain 3; mask widths 5, 6 and starts 7, 8)."""
    values = torch.rand(batch, 9, generator=generator)
    values[:, [0, 2, 4]] = (values[:, [0, 2, 4]] < p).float()
    return values


def augment(spec: Tensor, draws: Tensor, ops: tuple[str, ...]) -> Tensor:
    """Apply `ops` (a subset of shift, gain, mask) to spec (B, 1, T, F) with the draws of
    `draw` (B, 9) for these clips; differentiable with respect to `spec`."""
    B, _, T, Fq = spec.shape
    d = draws.to(spec.device, spec.dtype)
    frames = torch.arange(T, device=spec.device, dtype=spec.dtype)
    bins = torch.arange(Fq, device=spec.device, dtype=spec.dtype)
    if "shift" in ops:
        # move the clip by up to T/8 frames, filling with silence (no wrap-around: a sound
        # effect's onset would appear at its end)
        shift = torch.round((2 * d[:, 1] - 1) * MAX_SHIFT * T) * d[:, 0]  # (B,) frames
        source = frames[None, :] - shift[:, None]  # (B, T) where each frame comes from
        inside = (source >= 0) & (source < T)
        index = source.clamp(0, T - 1).long()[:, None, :, None].expand(B, 1, T, Fq)
        moved = torch.gather(spec, 2, index)
        spec = torch.where(inside[:, None, :, None], moved, torch.full_like(moved, -1.0))
    if "gain" in ops:
        gain = (2 * d[:, 3] - 1) * MAX_GAIN * d[:, 2]  # (B,) in the [-1, 1] log scale
        spec = spec + gain[:, None, None, None]
    if "mask" in ops:
        # one time band and one frequency band, each up to 1/8 of its axis, at random places
        width_t, width_f = d[:, 5] * MAX_MASK * T * d[:, 4], d[:, 6] * MAX_MASK * Fq * d[:, 4]
        start_t, start_f = d[:, 7] * (T - width_t), d[:, 8] * (Fq - width_f)
        in_t = (frames[None] >= start_t[:, None]) & (frames[None] < (start_t + width_t)[:, None])
        in_f = (bins[None] >= start_f[:, None]) & (bins[None] < (start_f + width_f)[:, None])
        masked = in_t[:, None, :, None] | in_f[:, None, None, :]  # (B, 1, T, F)
        spec = torch.where(masked, torch.full_like(spec, -1.0), spec)
    return spec


def parse_ops(text: str) -> tuple[str, ...]:
    return () if text == "none" else tuple(text.split(","))
