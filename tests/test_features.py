"""The spectrogram transform: shapes of the presets, exact inverses, range, batching."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from sfxgan.config import PRESETS, FeatureConfig, get_preset
from sfxgan.dsp.features import STFT, Frames, OverlapAdd, from_log_spec, to_log_spec
from sfxgan.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("paper-16k", (256, 128)),
        ("paper-64k", (512, 256)),
        ("tiny", (128, 128)),
        ("cpu-1s", (256, 128)),
    ],
)
def test_preset_spectrogram_shapes(name, shape):
    features = get_preset(name).features
    audio = torch.randn(2, features.clip_samples) * 0.1
    log_spec = STFT(features).log_spec(audio, max_value=10.0)
    assert log_spec.shape == (2, *shape)
    assert (features.n_frames, features.n_bins) == shape
    # the model of every preset produces exactly the feature shape
    assert get_preset(name).model.spectrogram_shape() == shape


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match="paper-16k"):
        get_preset("paper-32k")


def test_invalid_stft_settings_are_rejected():
    with pytest.raises(ConfigError, match="win_length"):
        FeatureConfig(n_fft=128, win_length=256)


def _weak_ends(features: FeatureConfig) -> tuple[int, int]:
    """Samples at the clip's start and end that fewer windows cover than the rest, where the
    floored inverse fades instead of dividing by a vanishing envelope: the reference's framing
    (lead_in 0) leaves them at the start, a lead-in of win - hop moves them to the end."""
    weak = features.win_length - features.hop_length
    return weak - features.lead_in, features.lead_in


@pytest.mark.parametrize("lead_in", ["reference", "preset"])
@pytest.mark.parametrize("name", sorted(PRESETS))
def test_inverse_stft_recovers_the_audio(name, lead_in):
    """STFT -> inverse STFT is exact (float32) except where only one window's edge covers the
    clip: the first samples with the reference's framing, the last ones with the presets'
    lead-in; there they are faded, never amplified."""
    features = get_preset(name).features
    if lead_in == "reference":
        features = dataclasses.replace(features, lead_in=0)
    stft = STFT(features)
    audio = torch.randn(3, features.clip_samples)
    rebuilt = stft.inverse(stft(audio), features.clip_samples)
    assert rebuilt.shape == audio.shape
    weak_start, weak_end = _weak_ends(features)
    # the envelope is floored at 1/10 of full overlap: the Hann squares' sum falls below it
    # within about a quarter of the weak span
    start, stop = weak_start // 3, features.clip_samples - weak_end // 3
    error = (rebuilt - audio).abs()
    assert error[:, start:stop].max() < 1e-4
    faded = torch.cat([rebuilt[:, :start], rebuilt[:, stop:]], 1).abs()
    assert (faded <= torch.cat([audio[:, :start], audio[:, stop:]], 1).abs() + 1e-4).all()
    if features.lead_in == features.win_length - features.hop_length:
        assert error[:, : features.win_length].max() < 1e-4  # the attack's samples are exact


@pytest.mark.parametrize("lead_in", [0, 190])
def test_the_inverse_of_an_inconsistent_spectrogram_has_no_spike_at_either_end(lead_in):
    """Random magnitudes and phases (no signal has them, as no generated spectrogram has): the
    clip's first and last samples stay within a few times the rest (the floored envelope bounds
    the gain where only one window covers them; measured 1.4-2.2x) instead of the 100-400x of
    dividing by the bare envelope."""
    features = dataclasses.replace(get_preset("tiny").features, lead_in=lead_in)
    stft = STFT(features)
    g = torch.Generator().manual_seed(0)
    shape = (4, features.n_frames, features.n_bins)
    spec = torch.polar(
        torch.rand(shape, generator=g), 2 * torch.pi * torch.rand(shape, generator=g)
    )
    audio = stft.inverse(spec, features.clip_samples).abs()
    win = features.win_length
    start, end = audio[:, :win].amax(dim=1), audio[:, -win:].amax(dim=1)
    middle = audio[:, win:-win].amax(dim=1)
    assert (start < 4 * middle).all() and (end < 4 * middle).all(), (start, end, middle)


def test_a_lead_in_keeps_the_shapes_and_delays_the_frames():
    """With a lead-in of L samples the spectrogram has the same frames and bins, and they are
    the first frames of the reference framing's spectrogram of the clip delayed by L samples."""
    features = get_preset("tiny").features
    reference = dataclasses.replace(features, lead_in=0)
    audio = torch.randn(2, features.clip_samples)
    led = STFT(features)(audio)
    assert led.shape == STFT(reference)(audio).shape == (2, 128, 128)
    delayed = STFT(reference)(torch.nn.functional.pad(audio, (features.lead_in, 0)))
    assert torch.allclose(led, delayed[:, : features.n_frames], atol=1e-4)


def test_a_lead_in_longer_than_the_overlap_is_refused():
    with pytest.raises(ConfigError, match="lead_in must be 0 to 190"):
        FeatureConfig(lead_in=191)
    with pytest.raises(ConfigError, match="log_floor must be constant or silence"):
        FeatureConfig(log_floor="zero")


def test_log_spec_round_trip():
    """forward -> inverse -> forward reproduces the features to 1e-5 (float32 rounding)."""
    features = get_preset("paper-16k").features
    spectrogram = STFT(features)
    audio = torch.randn(4, features.clip_samples) * torch.linspace(0.01, 1.0, 4)[:, None]
    magnitude = spectrogram.magnitude(audio)
    max_value = float(magnitude.max())
    log_spec = to_log_spec(magnitude, max_value)
    again = to_log_spec(from_log_spec(log_spec, max_value), max_value)
    assert (again - log_spec).abs().max() < 1e-5
    # and magnitudes above the e^-10 floor come back with relative error below 1e-4
    above = magnitude > max_value * math.exp(-10) * 1.01
    rebuilt = from_log_spec(log_spec, max_value)
    assert ((rebuilt - magnitude).abs() / magnitude)[above].max() < 1e-4


def test_log_spec_range_and_floor():
    magnitude = torch.tensor([[[0.0, 1e-9, 0.5, 2.0]]])
    log_spec = to_log_spec(magnitude, max_value=2.0)
    assert log_spec.min() >= -1.0 and log_spec.max() <= 1.0
    assert log_spec[0, 0, 0] == pytest.approx(-1.0)  # silence sits on the floor
    assert log_spec[0, 0, -1] == pytest.approx(1.0)  # the training set's maximum maps to 1
    assert log_spec[0, 0, 2] == pytest.approx(math.log(0.25) / 5 + 1, abs=1e-6)


def test_batched_equals_one_by_one():
    features = get_preset("tiny").features
    spectrogram = STFT(features)
    audio = torch.randn(3, features.clip_samples)
    batched = spectrogram.magnitude(audio)
    for i in range(3):
        assert torch.allclose(batched[i], spectrogram.magnitude(audio[i]), atol=1e-5)


def test_frames_are_samples_over_hop_for_any_length():
    features = get_preset("tiny").features
    stft = STFT(features)
    assert stft(torch.zeros(features.clip_samples)).shape[-2] == features.clip_samples // 64
    assert stft(torch.zeros(1000)).shape[-2] == math.ceil(1000 / 64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    features = get_preset("paper-16k").features
    spectrogram = STFT(features)
    audio = torch.randn(2, features.clip_samples)
    cpu = spectrogram.log_spec(audio, 5.0)
    gpu = spectrogram.log_spec(audio.cuda(), 5.0).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-4)


@pytest.mark.parametrize("win,hop", [(10, 4), (8, 4), (7, 3), (5, 5), (3, 5)])
def test_overlap_add_matches_fold_and_framing_is_its_adjoint(win, hop):
    """The fast overlap-add gives F.fold's result; both directions are twice differentiable
    (gradcheck in float64), so Griffin-Lim inside the loss back-propagates exactly."""
    n = 4
    frames = torch.randn(2, n, win, dtype=torch.double, requires_grad=True)
    fold = torch.nn.functional.fold(
        frames.detach().transpose(1, 2), (1, (n - 1) * hop + win), (1, win), stride=(1, hop)
    )
    assert torch.allclose(OverlapAdd.apply(frames.detach(), hop), fold.reshape(2, -1))
    audio = torch.randn(2, (n - 1) * hop + win, dtype=torch.double, requires_grad=True)
    window = torch.rand(win, dtype=torch.double)
    assert torch.autograd.gradcheck(lambda a: OverlapAdd.apply(a, hop), (frames,))
    assert torch.autograd.gradgradcheck(lambda a: OverlapAdd.apply(a, hop), (frames,))
    assert torch.autograd.gradcheck(lambda a: Frames.apply(a, win, hop, window), (audio,))
    assert torch.autograd.gradgradcheck(lambda a: Frames.apply(a, win, hop, window), (audio,))
    # <OLA(f), a> == <f, frames(a)>: the backward of one is the other
    lhs = (OverlapAdd.apply(frames.detach(), hop) * audio.detach()).sum()
    rhs = (frames.detach() * Frames.apply(audio.detach(), win, hop, None)).sum()
    assert torch.allclose(lhs, rhs)


def test_an_stft_first_used_in_inference_mode_still_trains():
    """Generation (inference mode) and the reconstruction loss (autograd) may share one STFT:
    its cached window and envelope must not be inference tensors."""
    stft = STFT(get_preset("tiny").features)
    audio = torch.randn(2, 4096)
    with torch.inference_mode():
        stft.inverse(stft(audio), 4096)
    magnitude = stft.magnitude(audio).requires_grad_()
    rebuilt = stft.inverse(magnitude.to(torch.complex64), 4096)
    rebuilt.square().sum().backward()
    assert magnitude.grad is not None and torch.isfinite(magnitude.grad).all()


def test_the_silent_floor_zeroes_silent_frames_and_keeps_the_floor_beside_sound():
    """log_floor "silence": a frame whose bins all lie at the floor inverts to zero; a frame
    with a bin 10 dB or more above it keeps the floor's magnitude (the reference's inverse) in
    its quiet bins; in between, part of it. "constant" is the reference's everywhere."""
    max_value = 3.0
    floor = math.exp(-10) * max_value
    log_floor = -1.0
    ten_db = log_floor + math.log(10**0.5) / 5  # a bin 10 dB (magnitude) above the floor
    log_spec = torch.full((1, 3, 4), log_floor)
    log_spec[0, 1, 0] = 1.0  # a loud bin in frame 1
    log_spec[0, 2, 0] = (log_floor + ten_db) / 2  # frame 2's loudest bin 5 dB above the floor
    silent = from_log_spec(log_spec, max_value, "silence")
    assert torch.all(silent[0, 0] == 0)  # all at the floor: silence
    assert silent[0, 1, 1:] == pytest.approx(torch.full((3,), floor), rel=1e-5)
    assert silent[0, 1, 0] == pytest.approx(max_value, rel=1e-5)
    assert 0 < silent[0, 2, 1] < floor  # half the way: part of the floor subtracted
    constant = from_log_spec(log_spec, max_value, "constant")
    assert constant[0, 0] == pytest.approx(torch.full((4,), floor), rel=1e-5)
