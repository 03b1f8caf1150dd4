"""The small-data options of the critic and the conditioning: LeCam's regulariser and
transitional conditioning (what each computes, and the settings' checks). That they train and
resume exactly is in test_train (test_the_recipe_options_train_resume_exactly_and_generate)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from sfxgan.config import TrainConfig, get_preset
from sfxgan.errors import ConfigError
from sfxgan.model.losses import lecam_penalty
from sfxgan.model.networks import Critic, Generator
from sfxgan.run_folder import RunSpec
from sfxgan.training.trainer import Trainer


def test_lecam_penalises_only_scores_beyond_the_other_sides_average():
    d_real = torch.tensor([3.0, 0.5])  # 3.0 lies 2 above the fake average, 0.5 below it
    d_fake = torch.tensor([-1.0, 2.5])  # -1.0 lies 3 below the real average, 2.5 above it
    ema_real, ema_fake = torch.tensor(2.0), torch.tensor(1.0)
    expected = (2.0**2 + 0.0) / 2 + (3.0**2 + 0.0) / 2
    assert lecam_penalty(d_real, d_fake, ema_real, ema_fake).item() == pytest.approx(expected)
    # a critic whose scores already agree with the averages pays nothing
    assert lecam_penalty(torch.tensor([1.0]), torch.tensor([2.0]), ema_real, ema_fake) == 0


def trainer(demo_dir, **settings) -> Trainer:
    from sfxgan.data.dataset import load_dataset

    preset = get_preset("tiny")
    dataset = load_dataset(demo_dir, preset.features, log=None, progress=False)
    spec = RunSpec(
        "tiny", preset.features, preset.model, preset.train.replace(**settings),
        list(dataset.classes), dataset.max_value, str(demo_dir),
    )  # fmt: skip
    return Trainer(spec, dataset, torch.device("cpu"))


def test_lecam_averages_are_bias_corrected_moving_averages_of_the_mean_scores(demo_dir):
    t = trainer(demo_dir, lecam_weight=0.01)
    first = t._lecam_anchors(torch.tensor([4.0, 2.0]), torch.tensor([-1.0, -3.0]))
    # after one update the bias-corrected average is that batch's mean, not 1 % of it
    assert first.tolist() == pytest.approx([3.0, -2.0])
    second = t._lecam_anchors(torch.tensor([5.0]), torch.tensor([0.0]))
    # (0.99 * 0.01 * m1 + 0.01 * m2) / (1 - 0.99^2)
    expected = [(0.99 * 0.01 * m1 + 0.01 * m2) / (1 - 0.99**2) for m1, m2 in ((3, 5), (-2, 0))]
    assert second.tolist() == pytest.approx(expected, rel=1e-5)  # float32 state


def test_transitional_conditioning_ramps_the_class_terms_from_nothing(demo_dir):
    t = trainer(demo_dir, transition_start=10, transition_end=30)
    assert [t.class_strength(s) for s in (0, 10, 20, 30, 400)] == [0, 0, 0.5, 1, 1]
    assert trainer(demo_dir).class_strength(0) == 1.0  # off: conditional from the first step


@pytest.mark.parametrize("conditioning", ["cbn", "concat"])
def test_at_strength_zero_both_networks_ignore_the_class(conditioning):
    model = dataclasses.replace(
        get_preset("tiny").model,
        gen_conditioning=conditioning,
        critic_conditioning="projection" if conditioning == "cbn" else "concat",
    )
    torch.manual_seed(0)
    generator, critic = Generator(model, 3).eval(), Critic(model, 3)
    for net in generator.cond_norms or ():  # zero-initialised: give them a class effect
        torch.nn.init.normal_(net.weight)
    z = torch.randn(1, model.latent_dim).repeat(3, 1)
    labels = torch.tensor([0, 1, 2])
    spec = torch.rand(1, 1, *model.spectrogram_shape()).repeat(3, 1, 1, 1) * 2 - 1
    with torch.no_grad():
        conditional = generator(z, labels), critic(spec, labels)
        generator.class_strength = critic.class_strength = 0.0
        unconditional = generator(z, labels), critic(spec, labels)
    for full, none in zip(conditional, unconditional, strict=True):
        assert (full[1:] - full[:1]).abs().max() > 1e-4  # the class changes the output ...
        torch.testing.assert_close(none[1:], none[:1].expand_as(none[1:]))  # ... until 0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"lecam_weight": -1.0}, "lecam_weight"),
        ({"transition_start": 50, "transition_end": 50}, "transition_end"),
        ({"transition_start": 50, "transition_end": 20}, "transition_end"),
    ],
)
def test_small_data_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**settings)
