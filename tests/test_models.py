"""Generator and critic: shapes per preset, sizes of the reference, "same" padding, conditioning,
Keras initialisation, and the double backward of the gradient penalty."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from sfxgan.config import PRESETS, ModelConfig
from sfxgan.errors import ConfigError
from sfxgan.model.networks import (
    Critic,
    Generator,
    SameConv2d,
    SameConvTranspose2d,
    UpsampleConv2d,
    build_models,
    count_parameters,
)

N_CLASSES = 5
# A model small enough for float64 gradient checks: 2 x 1 start map, spectrogram 8 x 4.
MICRO = ModelConfig(
    latent_dim=6,
    embed_dim=3,
    gen_start=(2, 1),
    gen_start_channels=4,
    gen_channels=(3,),
    critic_channels=(2, 3),
)


def inputs(config: ModelConfig, batch: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, config.latent_dim, generator=g)
    labels = torch.arange(batch) % N_CLASSES
    return z, labels


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_models(PRESETS["tiny"].model, N_CLASSES)


@pytest.fixture(scope="module")
def paper16k():
    torch.manual_seed(0)
    return build_models(PRESETS["paper-16k"].model, N_CLASSES)


# ---------------------------------------------------------------------------------------------
# shapes and sizes


@pytest.mark.parametrize("preset", ["tiny", "paper-16k"])
def test_output_shapes(preset, request):
    G, D = request.getfixturevalue(preset.replace("-", ""))
    config = PRESETS[preset].model
    z, labels = inputs(config)
    with torch.no_grad():
        spec = G(z, labels)
        score = D(spec, labels)
    assert spec.shape == (2, 1, *config.spectrogram_shape())
    assert spec.dtype == torch.float32
    assert score.shape == (2,)


def test_paper_64k_shapes_on_meta_device():
    # 516 M parameters: building them for real takes ~7 s, the meta device checks shapes in ~1 s
    config = PRESETS["paper-64k"].model
    with torch.device("meta"):
        G, D = build_models(config, N_CLASSES)
        z, labels = torch.empty(2, config.latent_dim), torch.zeros(2, dtype=torch.long)
        spec = G(z, labels)
        score = D(spec, labels)
    assert spec.shape == (2, 1, 512, 256)
    assert score.shape == (2,)


@pytest.mark.slow
def test_paper_64k_forward():
    config = PRESETS["paper-64k"].model
    G, D = build_models(config, N_CLASSES)
    z, labels = inputs(config)
    with torch.no_grad():
        spec = G(z, labels)
        score = D(spec, labels)
    assert spec.shape == (2, 1, 512, 256)
    assert score.shape == (2,) and torch.isfinite(score).all()


def test_paper_16k_parameter_counts_match_the_reference():
    with torch.device("meta"):
        G, D = build_models(PRESETS["paper-16k"].model, N_CLASSES)
    # Generator, by hand (ConvTranspose kernels 12 x 3 = 36 taps):
    #   embedding 5*50 = 250; dense 50*32 + 32 = 1 632; dense 100*16384 + 16384 = 1 654 784
    #   convT 513->512: 513*512*36 + 512 = 9 456 128     BN 2*512
    #   convT 512->256: 512*256*36 + 256 = 4 718 848     BN 2*256
    #   convT 256->128: 256*128*36 + 128 = 1 179 776     BN 2*128
    #   convT 128->64:  128*64*36  + 64  =   294 976     BN 2*64
    #   convT 64->1:    64*36 + 1        =     2 305
    #   total 17 308 699 + BN 1 920 = 17 310 619 trainable; Keras adds 1 920 moving statistics:
    #   17 312 539, the reference's count.
    assert count_parameters(G) == 17_310_619
    assert sum(b.numel() for n, b in G.named_buffers() if "running" in n) == 1_920
    # Critic: embedding 250; dense 50*32768 + 32768 = 1 671 168
    #   conv 2->64: 4 672; 64->128: 295 040; 128->256: 1 179 904; 256->512: 4 719 104
    #   512->1024: 18 875 392; flatten 1024*8*4 = 32 768 -> dense 32 769
    #   total 26 778 299, the reference's count.
    assert count_parameters(D) == 26_778_299
    assert abs(count_parameters(G) - 17.3e6) / 17.3e6 < 0.02
    assert abs(count_parameters(D) - 26.8e6) / 26.8e6 < 0.02


# ---------------------------------------------------------------------------------------------
# "same" padding, as TensorFlow computes it


@pytest.mark.parametrize("size", [(8, 4), (16, 8), (5, 7)])
def test_generator_layer_doubles_and_critic_layer_halves(size):
    x = torch.randn(1, 3, *size)
    up = SameConvTranspose2d(3, 2, (12, 3), stride=2)(x)
    assert up.shape == (1, 2, 2 * size[0], 2 * size[1])
    down = SameConv2d(3, 2, (12, 3), stride=2)(x)
    assert down.shape == (1, 2, math.ceil(size[0] / 2), math.ceil(size[1] / 2))


def one_hot_kernel(layer: nn.Module, t: int, f: int) -> nn.Module:
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[0, 0, t, f] = 1.0
        layer.bias.zero_()
    return layer


def test_critic_padding_is_tensorflow_same():
    # TF pads an even size with kernel 12 by (5, 5) and with kernel 3 by (0, 1): output (i, j)
    # sees input rows 2i-5 .. 2i+6 and columns 2j .. 2j+2. A single tap at kernel position
    # (5, 0) therefore reads x[2i, 2j] (PyTorch's symmetric padding 1 would read x[2i, 2j - 1]).
    conv = one_hot_kernel(SameConv2d(1, 1, (12, 3), stride=2), 5, 0)
    x = torch.randn(1, 1, 16, 8)
    with torch.no_grad():
        torch.testing.assert_close(conv(x), x[:, :, ::2, ::2])


def test_generator_padding_is_the_adjoint_of_the_critics():
    # TF's "same" transposed convolution is the gradient of its "same" convolution: with the
    # same weights, <conv(x), y> == <x, conv_t(y)>. This pins the asymmetric crop of kernel 3.
    torch.manual_seed(0)
    conv = SameConv2d(3, 2, (12, 3), stride=2).double()
    conv_t = SameConvTranspose2d(2, 3, (12, 3), stride=2).double()
    with torch.no_grad():
        conv_t.weight.copy_(conv.weight)  # (out=2, in=3, k) is (in, out, k) of the transpose
        conv.bias.zero_()
        conv_t.bias.zero_()
        x = torch.randn(1, 3, 16, 8, dtype=torch.float64)
        y = torch.randn(1, 2, 8, 4, dtype=torch.float64)
        torch.testing.assert_close((conv(x) * y).sum(), (x * conv_t(y)).sum())
    # and the single tap at (5, 0) writes y to the even positions only
    up = one_hot_kernel(SameConvTranspose2d(1, 1, (12, 3), stride=2), 5, 0)
    y = torch.randn(1, 1, 8, 4)
    with torch.no_grad():
        out = up(y)
    torch.testing.assert_close(out[:, :, ::2, ::2], y)
    assert out[:, :, 1::2].abs().max() == 0 and out[:, :, :, 1::2].abs().max() == 0


# ---------------------------------------------------------------------------------------------
# behaviour


def test_generator_output_lies_in_minus_one_one(tiny):
    G, _ = tiny
    z, labels = inputs(PRESETS["tiny"].model, batch=4)
    with torch.no_grad():
        spec = G(100.0 * z, labels)  # a huge latent saturates the output
    assert spec.min() >= -1.0 and spec.max() <= 1.0
    assert spec.abs().max() > 0.99  # saturated, so the bound above comes from the tanh


def test_generator_depends_on_the_label(tiny):
    G, _ = tiny
    G.eval()  # running statistics: every example is computed on its own
    z, _ = inputs(PRESETS["tiny"].model, batch=1)
    z = z.expand(3, -1)
    with torch.no_grad():
        spec = G(z, torch.tensor([1, 1, 2]))
    G.train()
    torch.testing.assert_close(spec[0], spec[1])
    # measured 4e-4 on outputs of 0.016 at initialisation; a label-blind generator gives ~6e-9
    assert (spec[0] - spec[2]).abs().max() > 1e-3 * spec.abs().max()


def test_critic_depends_on_the_label(tiny):
    _, D = tiny
    config = PRESETS["tiny"].model
    spec = torch.rand(1, 1, *config.spectrogram_shape()).expand(3, -1, -1, -1) * 2 - 1
    with torch.no_grad():
        score = D(spec, torch.tensor([0, 0, 4]))
    torch.testing.assert_close(score[0], score[1])  # batched convolutions: equal up to ~1e-9
    # at initialisation the label map is small (embedding 0.05 x Glorot weights), the effect
    # too: measured 9e-5 on scores of 0.016; a critic blind to the label differs by ~4e-9
    assert (score[0] - score[2]).abs() > 1e-3 * score.abs().max()


def test_keras_initialisation():
    torch.manual_seed(0)
    G, D = build_models(PRESETS["paper-16k"].model, N_CLASSES)
    for module in [*G.modules(), *D.modules()]:
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(module.weight)
            bound = math.sqrt(6.0 / (fan_in + fan_out))  # glorot_uniform
            assert module.weight.abs().max() <= bound
            assert module.weight.abs().max() > 0.9 * bound  # not PyTorch's smaller default
            assert module.bias.abs().max() == 0
        elif isinstance(module, nn.Embedding):
            assert module.weight.abs().max() <= 0.05
        elif isinstance(module, nn.BatchNorm2d):
            assert (module.weight == 1).all() and (module.bias == 0).all()
            assert module.eps == 1e-3 and module.momentum == pytest.approx(0.01)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())


def test_gradient_penalty_double_backward_reaches_the_critic_weights(tiny):
    _, D = tiny
    D.zero_grad()
    config = PRESETS["tiny"].model
    x = (torch.rand(2, 1, *config.spectrogram_shape()) * 2 - 1).requires_grad_()
    score = D(x, torch.tensor([0, 3])).sum()
    (grad,) = torch.autograd.grad(score, x, create_graph=True)
    assert grad.shape == x.shape
    grad.norm().backward()
    # the input gradient is a product of the conv and head weights (the LeakyReLU masks are
    # piecewise constant, so biases and the label branch get zero second-order gradients)
    for layer in [*D.convs, D.head]:
        assert layer.weight.grad is not None and layer.weight.grad.abs().max() > 0
    D.zero_grad()


def test_critic_second_derivatives_are_exact():
    torch.manual_seed(0)
    D = Critic(MICRO, N_CLASSES).double()
    x = torch.rand(2, 1, *MICRO.spectrogram_shape(), dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1])
    assert torch.autograd.gradgradcheck(lambda x: D(x, labels), (x,))


# ---------------------------------------------------------------------------------------------
# memory format and mixed precision


def test_a_deep_convolution_as_a_matrix_product_is_the_convolution(monkeypatch):
    """SameConv2d's matrix-product path (paper-16k's last critic layer on a CPU) computes the
    convolution, its input gradient and the gradient penalty's double backward to float64
    rounding, on odd and even sizes; and a whole critic scores the same either way."""
    from sfxgan.model import networks

    torch.manual_seed(0)
    for channels, out_channels, t, f in [(8, 6, 16, 8), (5, 3, 7, 5), (4, 4, 4, 4)]:
        conv = SameConv2d(channels, out_channels, (12, 3), 2).double()
        nn.init.normal_(conv.bias)
        x = torch.randn(3, channels, t, f, dtype=torch.float64, requires_grad=True)
        results = []
        monkeypatch.undo()
        for min_channels in (10**9, 1):  # oneDNN's convolution, then the matrix product
            monkeypatch.setattr(networks, "MATMUL_MIN_CHANNELS", min_channels)
            if min_channels == 1:  # the convolution must not run at all
                monkeypatch.setattr(nn.Conv2d, "forward", lambda *a: pytest.fail("conv ran"))
            y = conv(x)
            (grad,) = torch.autograd.grad(y.square().sum(), x, create_graph=True)
            (weight_grad,) = torch.autograd.grad(grad.square().sum(), conv.weight)
            results.append((y, grad, weight_grad))
        for by_conv, by_matmul in zip(*results, strict=True):
            assert by_conv.shape == by_matmul.shape
            torch.testing.assert_close(by_matmul, by_conv, rtol=1e-10, atol=1e-10)

    monkeypatch.undo()
    D = Critic(MICRO, N_CLASSES).double()
    spec = torch.rand(2, 1, *MICRO.spectrogram_shape(), dtype=torch.float64)
    labels = torch.tensor([0, 1])
    monkeypatch.setattr(networks, "MATMUL_MIN_CHANNELS", 10**9)
    want = D(spec, labels)
    monkeypatch.setattr(networks, "MATMUL_MIN_CHANNELS", 1)
    torch.testing.assert_close(D(spec, labels), want, rtol=1e-10, atol=1e-10)
    x = spec.clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(lambda x: D(x, labels), (x,))


def test_channels_last_gives_the_same_result():
    torch.manual_seed(0)
    G, D = build_models(PRESETS["tiny"].model, N_CLASSES)
    z, labels = inputs(PRESETS["tiny"].model)
    G.eval()
    with torch.no_grad():
        spec, score = G(z, labels), D(G(z, labels), labels)
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
        spec_cl = G(z, labels)
        score_cl = D(spec.contiguous(memory_format=torch.channels_last), labels)
    torch.testing.assert_close(spec_cl, spec, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(score_cl, score, atol=1e-4, rtol=1e-4)


def test_bfloat16_autocast_runs_forward_backward_and_penalty():
    torch.manual_seed(0)
    config = PRESETS["tiny"].model
    G, D = build_models(config, N_CLASSES)
    G.to(memory_format=torch.channels_last)
    D.to(memory_format=torch.channels_last)
    z, labels = inputs(config)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        spec = G(z, labels)
        x = spec.detach().float().requires_grad_()
        (grad,) = torch.autograd.grad(D(x, labels).sum(), x, create_graph=True)
        loss = -D(spec, labels).mean() + grad.float().norm()
    assert spec.shape == (2, 1, *config.spectrogram_shape())
    assert torch.isfinite(loss)
    loss.backward()
    assert G.to_spec.weight.grad is not None and D.convs[0].weight.grad is not None


def test_generator_and_critic_classes_are_exported():
    G, D = build_models(MICRO, 3)
    assert isinstance(G, Generator) and isinstance(D, Critic)
    assert G.label_embed.num_embeddings == D.label_embed.num_embeddings == 3


# ---------------------------------------------------------------------------------------------
# the options beside the paper's networks: upsampling, class-conditional BatchNorm, projection


def test_nearest_upsampling_has_no_checkerboard_where_the_transposed_convolution_has_one():
    """A constant map through a layer with constant weights: the transposed convolution with a
    3-bin kernel on a stride of 2 gives alternating values along frequency (every other bin
    gets one or two kernel taps), nearest upsampling + convolution the same value everywhere
    away from the edges."""
    x = torch.ones(1, 1, 4, 8)
    for layer_type, periodic in [(SameConvTranspose2d, True), (UpsampleConv2d, False)]:
        layer = layer_type(1, 1, (12, 3), 2)
        nn.init.constant_(layer.weight, 1.0)
        nn.init.zeros_(layer.bias)
        with torch.no_grad():
            y = layer(x)[0, 0]  # (8, 16)
        assert y.shape == (8, 16)
        inner = y[4, 2:-2]  # one frame, away from the frequency edges
        assert (inner.max() > inner.min()) == periodic, (layer_type.__name__, inner)


@pytest.mark.parametrize("upsample", ["transpose", "nearest"])
def test_both_upsamplings_give_the_preset_shapes_and_parameter_counts(upsample):
    config = dataclasses.replace(PRESETS["tiny"].model, upsample=upsample)
    G = Generator(config, N_CLASSES)
    z, labels = inputs(config)
    with torch.no_grad():
        assert G(z, labels).shape == (2, 1, *config.spectrogram_shape())
    # the same kernels: only the way they are applied differs
    assert count_parameters(G) == count_parameters(Generator(PRESETS["tiny"].model, N_CLASSES))


def test_class_conditional_batchnorm_starts_as_the_paper_generator_and_then_hears_the_class():
    config = dataclasses.replace(MICRO, gen_conditioning="cbn")
    torch.manual_seed(0)
    G = Generator(config, N_CLASSES).eval()
    z = torch.randn(1, config.latent_dim).expand(N_CLASSES, -1)
    labels = torch.arange(N_CLASSES)
    with torch.no_grad():
        before = G(z, labels)
        norms, G.cond_norms = G.cond_norms, None
        torch.testing.assert_close(G(z, labels), before)  # zero-initialised: no effect yet
        G.cond_norms = norms
        G.label_proj.weight.zero_()  # silence the paper's label channel
        G.label_proj.bias.zero_()
        assert torch.allclose(G(z, labels)[0], G(z, labels)[1])
        nn.init.normal_(norms[0].weight)
        out = G(z, labels)
    assert not torch.allclose(out[0], out[1], atol=1e-4)  # the class now sets the scales
    # a blend of two embeddings (the studio) goes through the same path
    mix = torch.lerp(G.label_embed.weight[0], G.label_embed.weight[1], 0.5)
    with torch.no_grad():
        assert G.synthesize(z[:1], mix[None]).shape == out[:1].shape


def test_projection_critic_scores_the_class_through_an_inner_product():
    config = dataclasses.replace(MICRO, critic_conditioning="projection")
    torch.manual_seed(0)
    D = Critic(config, N_CLASSES)
    assert D.convs[0].in_channels == 1  # no label map channel
    x = torch.rand(1, 1, *config.spectrogram_shape()).expand(N_CLASSES, -1, -1, -1)
    labels = torch.arange(N_CLASSES)
    scores = D(x, labels)
    features = x
    for conv in D.convs:
        features = torch.nn.functional.leaky_relu(conv(features), 0.2)
    features = features.flatten(1)
    expected = D.head(features)[:, 0] + (D.label_embed(labels) * features).sum(1)
    torch.testing.assert_close(scores, expected)
    assert len(set(scores.tolist())) == N_CLASSES  # one score per class for the same input


def test_projection_critic_second_derivatives_are_exact():
    torch.manual_seed(0)
    config = dataclasses.replace(MICRO, critic_conditioning="projection")
    D = Critic(config, N_CLASSES).double()
    x = torch.rand(2, 1, *config.spectrogram_shape(), dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1])
    assert torch.autograd.gradgradcheck(lambda x: D(x, labels), (x,))


def test_model_options_are_checked():
    with pytest.raises(ConfigError, match="upsample must be one of transpose, nearest"):
        ModelConfig(upsample="bilinear")
    with pytest.raises(ConfigError, match="critic_conditioning"):
        ModelConfig(critic_conditioning="label")


def test_auxiliary_classifier_names_classes_from_the_label_free_trunk():
    config = dataclasses.replace(MICRO, critic_conditioning="projection")
    D = Critic(config, N_CLASSES, classifier=True)
    x = torch.rand(3, 1, *config.spectrogram_shape())
    score, logits = D(x, torch.tensor([0, 1, 2]), with_logits=True)
    assert score.shape == (3,) and logits.shape == (3, N_CLASSES)
    # the logits do not depend on the label given: the trunk never sees it
    _, other = D(x, torch.tensor([4, 4, 4]), with_logits=True)
    torch.testing.assert_close(other, logits)
    with pytest.raises(ConfigError, match="needs critic_conditioning projection"):
        Critic(MICRO, N_CLASSES, classifier=True)


def test_only_paper_16ks_deep_last_critic_layer_runs_as_a_matrix_product(monkeypatch):
    """The matrix product is for deep layers with few positions: paper-16k's last critic layer
    (512 channels in, 8 x 4 out); tiny's layers all stay oneDNN convolutions."""
    calls = []
    original = SameConv2d._as_matmul

    def recorded(self, *args):
        calls.append(self.in_channels)
        return original(self, *args)

    monkeypatch.setattr(SameConv2d, "_as_matmul", recorded)
    for name, expected in (("tiny", []), ("paper-16k", [512])):
        calls.clear()
        config = PRESETS[name].model
        critic = Critic(config, N_CLASSES)
        with torch.no_grad():
            critic(torch.zeros(1, 1, *config.spectrogram_shape()), torch.tensor([0]))
        assert calls == expected, name
