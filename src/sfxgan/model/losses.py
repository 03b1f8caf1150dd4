"""The losses of SPEC section 6, apart from the loop: WGAN-GP terms and the reconstruction loss.

Shapes: spectrograms (B, 1, T, F) in [-1, 1]; audio (B, samples); labels (B,).
"""

from __future__ import annotations

import torch
from torch import Tensor

from sfxgan.data.audio import peak_normalize
from sfxgan.dsp.features import STFT, from_log_spec
from sfxgan.dsp.phase import griffin_lim
from sfxgan.training.distributed import global_max


def critic_loss(d_real: Tensor, d_fake: Tensor) -> Tensor:
    """mean(D(fake)) - mean(D(real)): minimising it widens the critic's Wasserstein estimate."""
    return d_fake.mean() - d_real.mean()


def generator_adversarial_loss(d_fake: Tensor) -> Tensor:
    return -d_fake.mean()


def lecam_penalty(d_real: Tensor, d_fake: Tensor, ema_real: Tensor, ema_fake: Tensor) -> Tensor:
    """LeCam regulariser (Tseng et al. 2021): real scores above the moving average of the fake
    scores, and fake scores below that of the real ones, are penalised quadratically, which keeps
    the critic's scores of real and generated clips within reach of each other when it could
    otherwise memorise a small training set."""
    return (d_real - ema_fake).relu().square().mean() + (ema_real - d_fake).relu().square().mean()


def class_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy of the critic's auxiliary classifier (AC-GAN), batch mean."""
    return torch.nn.functional.cross_entropy(logits.float(), labels)


def interpolate(real: Tensor, fake: Tensor, alpha: Tensor) -> Tensor:
    """x_hat = real + a (fake - real), a leaf that requires grad for the gradient penalty.

    `alpha` (B,) is drawn from U(0, 1) by the caller (the reference drew it from N(0, 1), a
    defect).
    """
    alpha = alpha.view(-1, *([1] * (real.dim() - 1)))
    return (real + alpha * (fake - real)).detach().requires_grad_(True)


def gradient_penalty(scores: Tensor, x_hat: Tensor, grad_scale: float = 1.0) -> Tensor:
    """mean over the batch of (||grad_x D(x_hat, y)||_2 - 1)^2, from the critic's scores (B,)
    of the interpolates `x_hat` (which the caller puts through the critic with the real and
    fake batches: one forward, as DistributedDataParallel needs).

    create_graph=True so the penalty itself is differentiated w.r.t. the critic. In float16,
    `grad_scale` (the GradScaler's scale) lifts small gradients above float16's underflow before
    differentiation and is divided out after, as PyTorch's AMP recipe for gradient penalties.
    """
    (grad,) = torch.autograd.grad(scores.sum() * grad_scale, x_hat, create_graph=True)
    norm = (grad / grad_scale).flatten(1).norm(2, dim=1)  # float32: x_hat is float32
    return (norm - 1.0).square().mean()


def reconstruction_loss(
    fake_log_spec: Tensor,
    real_audio: Tensor,
    stft: STFT,
    max_value: float,
    n_iter: int = 50,
    momentum: float = 0.0,
    normalize: str = "batch",
) -> Tensor:
    """The paper's regularizer: generated spectrogram -> audio by differentiable Griffin-Lim,
    peak-normalised (by the batch's peak, as the reference, or per clip), compared with the real
    clips of the same batch: sum of squared differences over samples, averaged over the batch.
    When the batch is split over processes, the batch's peak is the global batch's.
    """
    log_spec = fake_log_spec.squeeze(1).float()  # (B, T, F)
    magnitude = from_log_spec(log_spec, max_value, stft.config.log_floor)
    length = real_audio.shape[-1]
    audio = griffin_lim(magnitude, stft, n_iter=n_iter, momentum=momentum, length=length)
    audio = peak_normalize(audio, per=normalize, batch_peak=global_max)
    return (audio - real_audio).square().sum(dim=-1).mean()
