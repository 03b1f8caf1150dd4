from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sfxgan.errors import SfxganError
from sfxgan.evaluate.vggish import (
    VGGish,
    find_weights,
    frechet_audio_distance,
    load_vggish,
    log_mel_examples,
    vggish_embeddings,
)
from tests.helpers import tone


def htk_mel(hz: float) -> float:
    return 1127.0 * np.log(1.0 + hz / 700.0)


def band_of(hz: float) -> int:
    """The mel band whose triangle peaks nearest to `hz`: 64 bands over 125-7500 Hz."""
    edges = np.linspace(htk_mel(125.0), htk_mel(7500.0), 64 + 2)
    return int(np.argmin(np.abs(edges[1:-1] - htk_mel(hz))))


def noise(seconds: float, seed: int, rate: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (0.3 * rng.standard_normal(int(seconds * rate))).astype(np.float32)


# --- front end ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "n_examples"),
    [(0.5, 1), (0.96, 1), (2.0, 2), (3.0, 3)],
)
def test_examples_are_096_s_and_short_clips_are_padded_to_one(seconds, n_examples):
    examples = log_mel_examples(tone(1000.0, seconds), 16000)
    assert examples.shape == (n_examples, 96, 64)
    assert examples.dtype == np.float32
    assert np.isfinite(examples).all()


def test_padding_reads_as_silence():
    examples = log_mel_examples(tone(1000.0, 0.5), 16000)
    # Frames past the clip's end (0.5 s + one window) hold only zeros: log(0 + 0.01).
    np.testing.assert_allclose(examples[0, 60:], np.log(0.01), atol=1e-6)
    assert examples[0, :40].max() > 0.0


@pytest.mark.parametrize("rate", [16000, 22050])
def test_tone_energy_peaks_in_its_mel_band(rate):
    examples = log_mel_examples(tone(1000.0, 2.0, rate=rate), rate)
    assert examples.shape == (2, 96, 64)
    expected = band_of(1000.0)
    assert 0 < expected < 63
    assert int(examples.mean(axis=(0, 1)).argmax()) == expected
    # A different tone peaks elsewhere: the band follows the frequency.
    other = log_mel_examples(tone(3000.0, 1.0, rate=rate), rate)
    assert int(other.mean(axis=(0, 1)).argmax()) == band_of(3000.0) != expected


def test_front_end_rejects_multichannel():
    with pytest.raises(ValueError, match="mono"):
        log_mel_examples(tone(channels=2), 16000)


# --- network and loading ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> VGGish:
    """A randomly initialised VGGish, saved as a state dict and loaded back (once per module)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vggish") / "random-vggish.pth"
    torch.save(VGGish().state_dict(), path)
    loaded = load_vggish(path)
    path.unlink()  # ~290 MB
    return loaded


def test_parameter_count_is_vggish(model):
    convs = [(1, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512)]
    fcs = [(512 * 4 * 6, 4096), (4096, 4096), (4096, 128)]
    expected = sum(i * o * 9 + o for i, o in convs) + sum(i * o + o for i, o in fcs)
    assert expected == 72_141_184  # ~72.1 M, the published VGGish size
    assert sum(p.numel() for p in model.parameters()) == expected
    assert set(model.state_dict()) == {
        f"{part}.{i}.{kind}"
        for part, idx in (("features", (0, 3, 6, 8, 11, 13)), ("embeddings", (0, 2, 4)))
        for i in idx
        for kind in ("weight", "bias")
    }
    assert not model.training


def test_embeddings_shape_order_and_determinism(model):
    clips = [tone(1000.0, 0.5), tone(440.0, 2.0), noise(3.0, seed=1)]
    emb = vggish_embeddings(model, clips, 16000)
    assert emb.shape == (1 + 2 + 3, 128)
    assert emb.dtype == np.float32
    assert np.isfinite(emb).all()
    assert np.array_equal(emb, vggish_embeddings(model, clips, 16000))
    # Batching does not change anything; rows follow the clips in order.
    np.testing.assert_allclose(vggish_embeddings(model, clips, 16000, batch=4), emb, atol=1e-5)
    np.testing.assert_allclose(vggish_embeddings(model, clips[2:], 16000), emb[3:], atol=1e-5)
    assert vggish_embeddings(model, [], 16000).shape == (0, 128)


def test_flattens_channels_last_and_drops_final_relu(model):
    x = torch.from_numpy(log_mel_examples(noise(2.0, seed=2), 16000)).unsqueeze(1)
    with torch.inference_mode():
        features = model.features(x)
        assert features.shape == (2, 512, 6, 4)
        # The TF weights expect (height, width, channel) order.
        expected = model.embeddings[:5](features.permute(0, 2, 3, 1).reshape(2, -1))
        np.testing.assert_allclose(model(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)


# --- finding and validating weights -------------------------------------------------------------


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    """No explicit path, no environment variable, an empty torch hub cache."""
    monkeypatch.delenv("SFXGAN_VGGISH_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path


def test_missing_weights_say_how_to_enable(no_weights):
    with pytest.raises(SfxganError, match="SFXGAN_VGGISH_WEIGHTS") as err:
        find_weights()
    message = str(err.value)
    assert "\n" not in message
    assert "vggish-10086976.pth" in message
    assert str(no_weights / "torch") in message  # the hub cache it looked in


def test_weights_from_env_hub_cache_and_explicit_path(no_weights, monkeypatch):
    hub = no_weights / "torch" / "hub" / "checkpoints" / "vggish-10086976.pth"
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"x")
    assert find_weights() == hub

    env_file = no_weights / "env.pth"
    env_file.write_bytes(b"x")
    monkeypatch.setenv("SFXGAN_VGGISH_WEIGHTS", str(env_file))
    assert find_weights() == env_file

    explicit = no_weights / "explicit.pth"
    explicit.write_bytes(b"x")
    assert find_weights(explicit) == explicit


def test_given_paths_that_do_not_exist_are_named(no_weights, monkeypatch):
    missing = no_weights / "nope.pth"
    with pytest.raises(SfxganError, match="nope.pth"):
        find_weights(missing)
    monkeypatch.setenv("SFXGAN_VGGISH_WEIGHTS", str(missing))
    with pytest.raises(SfxganError, match="SFXGAN_VGGISH_WEIGHTS=.*nope.pth"):
        find_weights()


def test_wrong_files_are_named(no_weights):
    text = no_weights / "notes.txt"
    text.write_text("not weights\n")
    with pytest.raises(SfxganError, match="notes.txt") as err:
        load_vggish(text)
    assert "\n" not in str(err.value)

    other = no_weights / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, other)
    with pytest.raises(SfxganError, match="other.pth.*not a VGGish state dict.*missing"):
        load_vggish(other)

    # The right keys with the wrong shapes (kept tiny).
    with torch.device("meta"):
        keys = list(VGGish().state_dict())
    shapes = no_weights / "shapes.pth"
    torch.save({k: torch.zeros(2) for k in keys}, shapes)
    with pytest.raises(SfxganError, match="shapes.pth.*expected"):
        load_vggish(shapes)


# --- FAD ----------------------------------------------------------------------------------------


def test_fad_is_zero_for_the_same_set_and_larger_for_different_sounds(model):
    rng = np.random.default_rng(0)
    tones = [
        tone(float(f), 2.0, level=float(a))
        for f, a in zip(rng.uniform(200, 4000, 12), rng.uniform(0.1, 0.8, 12), strict=True)
    ]
    noises = [noise(2.0, seed=s) for s in range(12)]
    same = frechet_audio_distance(model, tones, tones, 16000)
    different = frechet_audio_distance(model, tones, noises, 16000)
    assert different > 0.0
    assert abs(same) < 1e-3 * different


# --- through `sfxgan evaluate` ------------------------------------------------------------------


@pytest.fixture
def model_file(model, tmp_path):
    path = tmp_path / "vggish.pth"
    torch.save(model.state_dict(), path)
    yield path
    path.unlink(missing_ok=True)  # ~290 MB


@pytest.mark.integration
def test_evaluate_adds_fad_columns_with_local_weights_and_says_how_without(
    model, model_file, tmp_path, monkeypatch
):
    import soundfile as sf

    from sfxgan.apps.demo import write_demo_dataset
    from sfxgan.data.audio import fit_length
    from sfxgan.evaluate.judge import Judge
    from tests.helpers import assert_one_line_error, sfxgan

    real, generated = tmp_path / "real", tmp_path / "generated"
    write_demo_dataset(real, per_class=4, seed=0)
    write_demo_dataset(generated, per_class=2, seed=1)
    classes = "birds,rain"
    common = ["--real", real, "--generated", generated, "--classes", classes, "--quiet"]

    missing = sfxgan("evaluate", *common, "--out", tmp_path / "r0", "--vggish", tmp_path / "no.pth")
    assert_one_line_error(missing, "no.pth")
    assert not (tmp_path / "r0" / "metrics.json").exists()

    result = sfxgan("evaluate", *common, "--out", tmp_path / "r1", "--vggish", model_file)
    assert result.returncode == 0, result.stderr
    assert "FAD VGGish" in result.stdout
    metrics = json.loads((tmp_path / "r1" / "metrics.json").read_text())
    # worked out apart: FAD of the same clips (at the length of the judge evaluate trained)
    # with the same weights, all examples of a set embedded at once. Seen: equal within 3e-7
    # (random weights put every FAD near 1e-5), where the real halves' figure is 0.5 % to 3x off
    length = Judge.load(tmp_path / "r1" / "classifier.pt").config.clip_samples

    def clips(folder, names):
        paths = [p for name in names for p in sorted((folder / name).glob("*.wav"))]
        return [fit_length(sf.read(p, dtype="float32")[0], length) for p in paths]

    for name in [*classes.split(","), "overall"]:
        names = classes.split(",") if name == "overall" else [name]
        row = metrics["overall"] if name == "overall" else metrics["per_class"][name]
        expected = frechet_audio_distance(model, clips(real, names), clips(generated, names), 16000)
        assert row["fad_vggish"] == pytest.approx(expected, rel=1e-4), name
        assert row["fad_vggish_real"] is not None
