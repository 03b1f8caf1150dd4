"""Augmentation of the critic's input: what each transformation does to a spectrogram, that it
is differentiable, and that the same draws give the same result."""

from __future__ import annotations

import pytest
import torch

from sfxgan.config import TrainConfig
from sfxgan.data.augment import MAX_GAIN, augment, draw, parse_ops
from sfxgan.errors import ConfigError

B, T, F = 6, 32, 16


def spectrograms(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 1, T, F, generator=g) * 1.8 - 0.9  # inside (-1, 1): no value is -1


def test_probability_zero_changes_nothing_and_one_changes_every_clip():
    x = spectrograms()
    g = torch.Generator().manual_seed(0)
    assert torch.equal(augment(x, draw(B, 0.0, g), ("shift", "gain", "mask")), x)
    y = augment(x, draw(B, 1.0, g), ("shift", "gain", "mask"))
    assert all(not torch.equal(y[i], x[i]) for i in range(B))


def test_shift_moves_the_clip_in_time_and_fills_with_silence():
    x = spectrograms()
    draws = draw(B, 1.0, torch.Generator().manual_seed(1))
    draws[:, 1] = 1.0  # the largest shift, later in time: T / 8 = 4 frames
    y = augment(x, draws, ("shift",))
    assert torch.equal(y[:, :, 4:], x[:, :, :-4])
    assert torch.all(y[:, :, :4] == -1.0)  # silence where nothing came from


def test_gain_adds_a_constant_in_the_log_domain_within_its_bound():
    x = spectrograms()
    y = augment(x, draw(B, 1.0, torch.Generator().manual_seed(2)), ("gain",))
    shift = (y - x).flatten(1)
    assert torch.allclose(shift, shift[:, :1].expand_as(shift), atol=1e-6)  # one gain per clip
    assert shift.abs().max() <= MAX_GAIN + 1e-6


def test_mask_silences_one_band_in_time_and_one_in_frequency_at_most_an_eighth_each():
    x = spectrograms()
    draws = draw(B, 1.0, torch.Generator().manual_seed(3))
    draws[:, 5:7] = 0.99  # wide bands
    y = augment(x, draws, ("mask",))
    silenced = y == -1.0
    frames = silenced.all(dim=3)[:, 0]  # (B, T): frames silenced across all bins
    bins = silenced.all(dim=2)[:, 0]  # (B, F)
    assert torch.all(frames.sum(1) >= 1) and torch.all(frames.sum(1) <= T // 8)
    assert torch.all(bins.sum(1) >= 1) and torch.all(bins.sum(1) <= F // 8)
    assert torch.equal(y[~silenced], x[~silenced])


def test_augmentation_is_differentiable_and_repeatable():
    x = spectrograms().requires_grad_()
    draws = draw(B, 0.7, torch.Generator().manual_seed(4))
    ops = parse_ops("shift,gain,mask")
    y = augment(x, draws, ops)
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.testing.assert_close(augment(x.detach(), draws, ops), y.detach())


def test_augment_setting_is_checked():
    assert parse_ops("none") == ()
    assert TrainConfig(augment="shift,mask").augment == "shift,mask"
    with pytest.raises(ConfigError, match="augment must be none or"):
        TrainConfig(augment="shift,flip")
    with pytest.raises(ConfigError, match="augment_p"):
        TrainConfig(augment_p=1.5)
