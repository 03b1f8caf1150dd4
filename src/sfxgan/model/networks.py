"""The generator and the critic of the conditional WGAN-GP (SPEC sections 4-5).

Spectrograms are NCHW tensors with H = time frames and W = frequency bins, (B, 1, T, F); the
12 x 3 kernels are time x frequency. Both networks reproduce the Keras reference (TF 2.6): its
layers, its "same" padding (to the pixel, including the asymmetric case) and its initialisation.
Two choices of the reference are relabellings rather than differences and are not copied:
Keras reshapes a dense output to (H, W, C) and flattens NHWC, we reshape to (C, H, W) and flatten
NCHW; with every dense weight drawn i.i.d. the two networks are the same family.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sfxgan.config import ModelConfig
from sfxgan.errors import ConfigError

STRIDE = 2  # every layer doubles (generator) or halves (critic) both sizes
# A deep convolution (this many input channels or more) with few output positions per example
# runs as one matrix product on a CPU (SameConv2d._as_matmul): paper-16k's last critic layer
# (512 -> 1024 channels, 32 positions), which made a training step 1.2-1.4x faster; at 128
# positions, and on tiny's 128-channel last layer, oneDNN's convolution was as fast or faster
# (docs/benchmarks.md)
MATMUL_POSITIONS = 32
MATMUL_MIN_CHANNELS = 512
LEAK = 0.2  # LeakyReLU slope of the latent branch and the critic, as in the reference
# Keras BatchNormalization eps. Its momentum (0.99 in Keras, the weight of the *old* running
# statistic) is `ModelConfig.bn_momentum` in PyTorch's convention: 1 - 0.99 = 0.01.
BN_EPS = 1e-3


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding of one dimension: (before, after), the smaller half before.

    TF pads so that the output has ceil(size / stride) positions: the total is
    max(kernel - stride, 0) when size is a multiple of stride, max(kernel - size % stride, 0)
    otherwise. An odd total puts the extra zero *after*, which PyTorch's symmetric `padding`
    cannot express (kernel 3, stride 2 pads (0, 1)).
    """
    total = max(kernel - (size % stride or stride), 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d with TF "same" padding: output (ceil(T / s), ceil(F / s))."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: int):
        super().__init__(in_channels, out_channels, kernel, stride, padding=0)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, T, F) -> (B, C_out, T/s, F/s)
        (kt, kf), (st, sf) = self.kernel_size, self.stride
        t_before, t_after = same_padding(x.shape[-2], kt, st)
        f_before, f_after = same_padding(x.shape[-1], kf, sf)
        # F.pad lists the last dimension first; it allocates a new tensor (no in-place), so the
        # critic stays twice differentiable for the gradient penalty.
        x = F.pad(x, (f_before, f_after, t_before, t_after))
        t_out, f_out = (x.shape[-2] - kt) // st + 1, (x.shape[-1] - kf) // sf + 1
        deep = self.in_channels >= MATMUL_MIN_CHANNELS and t_out * f_out <= MATMUL_POSITIONS
        if deep and x.device.type == "cpu":
            return self._as_matmul(x, t_out, f_out)
        return super().forward(x)

    def _as_matmul(self, x: Tensor, t_out: int, f_out: int) -> Tensor:
        """The same convolution as one matrix product over the kernel's patches (im2col): on a
        deep layer with few output positions, whose backward oneDNN runs far below its
        matrix-product rate (paper-16k's last critic layer: 8 % of the bf16 peak), and which a
        product of (C_out x C_in k k) by (C_in k k x positions) runs near it. Twice
        differentiable, as the gradient penalty needs (unfold's backward is fold)."""
        dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
        B = x.shape[0]
        patches = F.unfold(x.to(dtype), self.kernel_size, stride=self.stride)  # (B, C k k, L)
        # one product for the whole batch, (C_out, C k k) x (C k k, B L): a batched product
        # would copy the weight once per example
        patches = patches.transpose(0, 1).reshape(patches.shape[1], -1)  # (C k k, B L)
        weight = self.weight.to(dtype).flatten(1)  # (C_out, C k k)
        out = torch.addmm(self.bias.to(dtype)[:, None], weight, patches)  # (C_out, B L)
        return out.view(-1, B, t_out, f_out).transpose(0, 1)  # (B, C_out, t_out, f_out)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """ConvTranspose2d with Keras "same" padding: output exactly (s * T, s * F).

    TF computes a "same" transposed convolution as the gradient (adjoint) of the "same"
    convolution that maps (s*T, s*F) to (T, F): it crops the full output of size
    (T - 1) * s + k by the padding of that convolution, before and after. PyTorch's `padding`
    crops both ends equally, so we let it crop the symmetric part and slice off the rest.
    For kernel 12: crop (5, 5), all done by padding=5. For kernel 3: crop (0, 1), done by
    slicing off the last frequency bin. (padding=1, output_padding=1 also doubles the size but
    crops (1, 0): the map would sit one bin away from the reference's.)
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: int):
        # the adjoint convolution sees an input that is a multiple of the stride
        crops = [same_padding(stride, k, stride) for k in kernel]  # [(before, after)] per dim
        symmetric = tuple(min(before, after) for before, after in crops)
        super().__init__(in_channels, out_channels, kernel, stride, padding=symmetric)
        # what padding= leaves to crop at the start (0 here: TF puts the odd crop at the end)
        self.crop_start = tuple(before - min(before, after) for before, after in crops)

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, T, F) -> (B, C_out, s*T, s*F)
        t, f = x.shape[-2] * self.stride[0], x.shape[-1] * self.stride[1]
        x = super().forward(x)  # (B, C_out, s*T + 0 or 1, s*F + 0 or 1)
        t0, f0 = self.crop_start
        return x[..., t0 : t0 + t, f0 : f0 + f]


class UpsampleConv2d(SameConv2d):
    """Nearest-neighbour upsampling by the stride, then a "same" convolution of stride 1:
    output (s * T, s * F), like SameConvTranspose2d, but every output position sees the same
    number of input values, so no periodic (checkerboard) pattern is built in (Odena et al.
    2016, "Deconvolution and checkerboard artifacts")."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: int):
        super().__init__(in_channels, out_channels, kernel, 1)
        self.scale = stride

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, T, F) -> (B, C_out, s*T, s*F)
        return super().forward(F.interpolate(x, scale_factor=self.scale, mode="nearest"))


UPSAMPLERS = {"transpose": SameConvTranspose2d, "nearest": UpsampleConv2d}


class Generator(nn.Module):
    """(z, label) -> log-spectrogram in [-1, 1], shape (B, 1, *config.spectrogram_shape())."""

    def __init__(self, config: ModelConfig, n_classes: int):
        super().__init__()
        self.config = config
        t0, f0 = config.gen_start
        upsampler = UPSAMPLERS[config.upsample]
        # label branch: one extra channel of the start map, learned per class
        self.label_embed = nn.Embedding(n_classes, config.embed_dim)
        self.label_proj = nn.Linear(config.embed_dim, t0 * f0)
        # latent branch: the start map itself
        self.latent_proj = nn.Linear(config.latent_dim, config.gen_start_channels * t0 * f0)
        # each block doubles time and frequency; ReLU *then* BatchNorm, in the reference's order
        blocks = []
        in_channels = config.gen_start_channels + 1
        for out_channels in config.gen_channels:
            blocks.append(
                nn.Sequential(
                    upsampler(in_channels, out_channels, config.kernel, STRIDE),
                    nn.ReLU(),
                    nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=config.bn_momentum),
                )
            )
            in_channels = out_channels
        self.blocks = nn.ModuleList(blocks)
        # class-conditional BatchNorm (as in SNGAN-projection and BigGAN): per block, the label
        # embedding gives a scale and a shift for every channel, applied after the block's own
        # BatchNorm. Zero-initialised, so training starts from the paper's generator.
        self.cond_norms = None
        if config.gen_conditioning == "cbn":
            self.cond_norms = nn.ModuleList(
                nn.Linear(config.embed_dim, 2 * c) for c in config.gen_channels
            )
        self.to_spec = upsampler(in_channels, 1, config.kernel, STRIDE)
        self.apply(_init_weights)
        for norm in self.cond_norms or ():
            nn.init.zeros_(norm.weight)
        # transitional conditioning: the trainer ramps this from 0 (every class alike) to 1;
        # not a weight, so checkpoints and generation never see it
        self.class_strength = 1.0

    def forward(self, z: Tensor, labels: Tensor) -> Tensor:
        # z (B, latent_dim) float, labels (B,) int64
        return self.synthesize(z, self.embed(labels))

    def embed(self, labels: Tensor) -> Tensor:
        """(B,) labels -> (B, embed_dim) label embeddings, at the transitional class strength."""
        embedding = self.label_embed(labels)
        if self.class_strength != 1.0:
            embedding = self.class_strength * embedding
        return embedding

    def synthesize(self, z: Tensor, embedding: Tensor) -> Tensor:
        """The generator from a label *embedding* (B, embed_dim) instead of a label: a mix of
        two classes' rows of `label_embed` blends the classes (the studio's class blend)."""
        return self.decode(self.start_map(z, embedding), embedding)

    def start_map(self, z: Tensor, embedding: Tensor) -> Tensor:
        """(B, latent_dim), (B, embed_dim) -> the start map (B, C0 + 1, t0, f0) that the
        blocks upsample: the latent's channels and the label's one. `sfxgan vary` fits an
        offset to it (apps/vary.py)."""
        B = z.shape[0]
        t0, f0 = self.config.gen_start
        label_map = self.label_proj(embedding)  # (B, t0*f0)
        label_map = label_map.view(B, 1, t0, f0)  # (B, 1, t0, f0)
        x = F.leaky_relu(self.latent_proj(z), LEAK)  # (B, C0*t0*f0)
        x = x.view(B, self.config.gen_start_channels, t0, f0)  # (B, C0, t0, f0)
        return torch.cat([x, label_map], dim=1)  # (B, C0 + 1, t0, f0)

    def decode(self, x: Tensor, embedding: Tensor) -> Tensor:
        """A start map (B, C0 + 1, t0, f0) -> log-spectrogram (B, 1, T, F)."""
        return torch.tanh(self.to_spec(self.upsample(x, embedding)))  # (B, 1, T, F)

    def upsample(self, x: Tensor, embedding: Tensor) -> Tensor:
        """The blocks: a start map -> the last block's activations (B, C_last, T / 2, F / 2),
        where every BatchNorm has seen its input (the trainer's standing statistics stop here:
        the output layer has no statistics)."""
        B = x.shape[0]
        for i, block in enumerate(self.blocks):
            x = block(x)  # (B, C_i, 2^i t0, 2^i f0)
            if self.cond_norms is not None:
                scale, shift = self.cond_norms[i](embedding).view(B, 2, -1, 1, 1).unbind(1)
                x = x * (1 + scale) + shift  # (B, C_i, ...), per class and channel
        return x


class Critic(nn.Module):
    """(log-spectrogram, label) -> one unbounded score per example, shape (B,)."""

    def __init__(self, config: ModelConfig, n_classes: int, classifier: bool = False):
        super().__init__()
        self.config = config
        t, f = config.spectrogram_shape()
        self.projection = config.critic_conditioning == "projection"
        if not self.projection:
            # label branch: a full-size (T, F) map, stacked with the spectrogram as a channel
            self.label_embed = nn.Embedding(n_classes, config.embed_dim)
            self.label_proj = nn.Linear(config.embed_dim, t * f)
        # no normalisation: the gradient penalty is per example, batch norm would couple them
        convs = []
        in_channels = 1 if self.projection else 2
        for out_channels in config.critic_channels:
            convs.append(SameConv2d(in_channels, out_channels, config.kernel, STRIDE))
            in_channels = out_channels
            t, f = math.ceil(t / STRIDE), math.ceil(f / STRIDE)
        self.convs = nn.ModuleList(convs)
        features = in_channels * t * f
        self.head = nn.Linear(features, 1)
        # the auxiliary classifier (AC-GAN, Odena et al. 2017): class logits from the same
        # features. Only on a trunk that does not see the label (projection conditioning): with
        # the label map as an input channel it could read the answer off its input.
        self.classifier = None
        if classifier:
            if not self.projection:
                raise ConfigError(
                    "the auxiliary classifier (class_weight > 0) needs "
                    "critic_conditioning projection"
                )
            self.classifier = nn.Linear(features, n_classes)
        self.apply(_init_weights)
        if self.projection:
            # one vector per class, dotted with the flattened features: a class-specific linear
            # term on top of the shared head, at the head's own initial scale
            self.label_embed = nn.Embedding(n_classes, features)
            bound = math.sqrt(6 / (features + 1))  # Glorot, as the head (fan_in D, fan_out 1)
            nn.init.uniform_(self.label_embed.weight, -bound, bound)
        self.class_strength = 1.0  # as the generator's: the trainer's transitional ramp

    def forward(self, spec: Tensor, labels: Tensor, with_logits: bool = False):
        """Scores (B,); with `with_logits`, also the auxiliary classifier's class logits
        (B, n_classes). spec (B, 1, T, F) in [-1, 1], labels (B,) int64."""
        B, _, t, f = spec.shape
        expected = self.config.spectrogram_shape()
        assert (t, f) == expected, f"critic expects (B, 1, {expected}), got {tuple(spec.shape)}"
        x = spec
        if not self.projection:
            embedding = self.label_embed(labels)
            if self.class_strength != 1.0:
                embedding = self.class_strength * embedding
            label_map = self.label_proj(embedding).view(B, 1, t, f)  # (B, 1, T, F)
            x = torch.cat([spec, label_map], dim=1)  # (B, 2, T, F)
        for conv in self.convs:
            # not inplace: the gradient penalty differentiates through these activations twice
            x = F.leaky_relu(conv(x), LEAK)  # (B, C_i, T / 2^i, F / 2^i)
        # flatten(1) follows the logical NCHW order whatever the memory format (a copy if needed).
        # The score stays in float32 under bf16 autocast: the Wasserstein estimate is a small
        # difference of large scores, which bfloat16's 8-bit mantissa would round away.
        x = x.flatten(1)  # (B, D)
        if x.device.type in ("cpu", "cuda") and torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self._outputs(x.float(), labels, with_logits)
        return self._outputs(x, labels, with_logits)

    def _outputs(self, features: Tensor, labels: Tensor, with_logits: bool):
        score = self.head(features).squeeze(1)  # (B,)
        if self.projection:
            score = score + self.class_strength * (self.label_embed(labels) * features).sum(dim=1)
        if not with_logits:
            return score
        if self.classifier is None:
            raise ValueError("this critic has no auxiliary classifier")
        return score, self.classifier(features)  # (B,), (B, n_classes)


def _init_weights(module: nn.Module) -> None:
    """Keras defaults: glorot_uniform kernels, zero biases, uniform(-0.05, 0.05) embeddings."""
    # Glorot depends on fan_in + fan_out only, so PyTorch's (in, out) vs Keras's (out, in) order
    # of a transposed-convolution kernel does not change the bound.
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.uniform_(module.weight, -0.05, 0.05)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def build_models(
    config: ModelConfig, n_classes: int, classifier: bool = False
) -> tuple[Generator, Critic]:
    """A freshly initialised generator and critic for `n_classes` classes (the critic with an
    auxiliary classifier when asked)."""
    return Generator(config, n_classes), Critic(config, n_classes, classifier)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
