"""The losses of SPEC section 6 against direct computations."""

from __future__ import annotations

import torch
from torch import nn

from sfxgan.config import get_preset
from sfxgan.data.audio import peak_normalize
from sfxgan.dsp.features import STFT, from_log_spec
from sfxgan.dsp.phase import griffin_lim
from sfxgan.model.losses import critic_loss, gradient_penalty, interpolate, reconstruction_loss
from sfxgan.model.networks import build_models


class TinyCritic(nn.Module):
    """A small nonlinear critic whose input gradient is easy to get another way."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, 1))
        self.embed = nn.Embedding(3, 12)

    def forward(self, x, labels):
        return self.net(x + self.embed(labels).view_as(x)).squeeze(-1)


def test_gradient_penalty_matches_a_direct_per_example_computation():
    critic = TinyCritic()
    real, fake = torch.randn(5, 1, 3, 4), torch.randn(5, 1, 3, 4)
    labels = torch.tensor([0, 1, 2, 1, 0])
    alpha = torch.rand(5)
    x_hat = interpolate(real, fake, alpha)
    penalty = gradient_penalty(critic(x_hat, labels), x_hat)

    expected = []
    for i in range(5):  # one example at a time, gradient by autograd on that example alone
        x = (real[i] + alpha[i] * (fake[i] - real[i])).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x, labels[i : i + 1]).sum(), x)
        expected.append((g.norm() - 1) ** 2)
    assert torch.allclose(penalty, torch.stack(expected).mean(), atol=1e-6)


def test_gradient_penalty_is_differentiable_wrt_the_critic():
    critic = TinyCritic()
    x_hat = interpolate(torch.randn(4, 1, 3, 4), torch.randn(4, 1, 3, 4), torch.rand(4))
    penalty = gradient_penalty(critic(x_hat, torch.tensor([0, 1, 2, 0])), x_hat)
    penalty.backward()
    assert critic.net[1].weight.grad.abs().sum() > 0


def test_gradient_penalty_with_a_loss_scale_is_the_same_penalty():
    """fp16 training scales the scores before differentiation (GradScaler's scale) so small
    gradients survive in float16; the penalty divides it out again."""
    critic = TinyCritic()
    x_hat = interpolate(torch.randn(4, 1, 3, 4), torch.randn(4, 1, 3, 4), torch.rand(4))
    labels = torch.tensor([0, 1, 2, 0])
    plain = gradient_penalty(critic(x_hat, labels), x_hat)
    scaled = gradient_penalty(critic(x_hat, labels), x_hat, grad_scale=65536.0)
    assert torch.allclose(plain, scaled, rtol=1e-5)


def test_critic_loss_is_fake_minus_real():
    assert critic_loss(torch.tensor([1.0, 3.0]), torch.tensor([0.5, 0.5])).item() == -1.5


def _generator_grads(recon_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    preset = get_preset("tiny")
    torch.manual_seed(0)
    generator, critic = build_models(preset.model, 5)
    stft = STFT(preset.features)
    z, labels = torch.randn(2, 100), torch.tensor([0, 3])
    real_audio = torch.randn(2, preset.features.clip_samples) * 0.1
    fake = generator(z, labels)
    adversarial = -critic(fake, labels).mean()
    recon = reconstruction_loss(fake, real_audio, stft, max_value=20.0, n_iter=3)
    loss = adversarial + recon_weight * recon if recon_weight else adversarial
    weight = generator.to_spec.weight
    (total,) = torch.autograd.grad(loss, weight, retain_graph=True)
    (recon_only,) = torch.autograd.grad(recon, weight)
    return total, recon_only


def test_reconstruction_loss_sends_gradient_to_the_generator():
    total_with, recon_grad = _generator_grads(1e-2)
    total_without, _ = _generator_grads(0.0)
    assert recon_grad.abs().sum() > 0 and torch.isfinite(recon_grad).all()
    # with w = 0 the generator's gradient is the adversarial one alone ...
    # ... and with w > 0 it differs from it by exactly w times the reconstruction gradient
    difference = total_with - total_without
    assert torch.allclose(difference, 1e-2 * recon_grad, atol=1e-5 * difference.abs().max())
    assert not torch.allclose(total_with, total_without)


def test_reconstruction_loss_is_sum_over_samples_mean_over_batch():
    preset = get_preset("tiny")
    stft = STFT(preset.features)
    audio = torch.randn(3, preset.features.clip_samples)
    magnitude = stft.magnitude(audio)
    max_value = float(magnitude.max())
    log_spec = (torch.log(magnitude / max_value).clamp_min(-10) / 5 + 1).unsqueeze(1)
    # a real batch equal to the (peak-normalised) reconstruction gives ~0: the magnitude the
    # loss inverts is the features' inverse of the log-spectrogram (floor included)
    floored = from_log_spec(log_spec[:, 0], max_value, preset.features.log_floor)
    rebuilt = peak_normalize(griffin_lim(floored, stft, n_iter=4), per="batch")
    assert reconstruction_loss(log_spec, rebuilt, stft, max_value, n_iter=4) < 1e-6
    shifted = rebuilt + 0.1
    expected = 0.1**2 * preset.features.clip_samples
    loss = reconstruction_loss(log_spec, shifted, stft, max_value, n_iter=4)
    assert abs(loss.item() - expected) / expected < 1e-3
