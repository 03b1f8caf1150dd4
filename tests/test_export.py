"""`sfxgan export`: the ONNX and TorchScript files give what sfxgan itself gives, the sidecar
describes them, and the snippet in docs/export.md runs."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from sfxgan.apps import export
from sfxgan.dsp.features import from_log_spec
from sfxgan.errors import SfxganError
from sfxgan.generate import Sampler
from tests.helpers import assert_one_line_error, sfxgan

ort = pytest.importorskip("onnxruntime")

DOC = Path(__file__).resolve().parents[1] / "docs" / "export.md"
# Peak-normalised audio after 32 float32 iterations of fast Griffin-Lim with momentum 0.99,
# which amplify rounding differences: sfxgan's own FFT path is itself up to ~1e-2 away from the
# float64 result on some clips (docs/export.md), so the two float32 implementations are held to
# that, not to rounding error (a wrong window, hop or envelope is off by order 1).
AUDIO_ATOL = 3e-2


@pytest.fixture(scope="module")
def sampler(tiny_run) -> Sampler:
    return Sampler.from_run(tiny_run, device="cpu")


@pytest.fixture(scope="module")
def onnx_file(tiny_run, tmp_path_factory) -> Path:
    """The CLI's ONNX export, written once, into a folder that already holds another file."""
    folder = tmp_path_factory.mktemp("export")
    (folder / "keep.txt").write_text("not ours")
    result = sfxgan("export", tiny_run, "--format", "onnx", "--out", folder / "sfx.onnx")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no exporter chatter reaches the user
    assert "sfx.onnx.json" in result.stdout
    return folder / "sfx.onnx"


def inputs(sampler: Sampler, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """`sfxgan generate`'s own latents for the first classes (seed 3), batch clips."""
    names = [sampler.classes[i % len(sampler.classes)] for i in range(batch)]
    z = torch.cat([sampler.latents(name, 1, seed=3) for name in names])
    labels = torch.tensor([sampler.label(name) for name in names])
    return z.numpy(), labels.numpy()


def pytorch_outputs(sampler: Sampler, z: np.ndarray, labels: np.ndarray):
    """The magnitude and audio sfxgan's `Sampler` makes of the same inputs."""
    log_spec = sampler.log_spec(torch.from_numpy(z), torch.from_numpy(labels))
    features = sampler.spec.features
    magnitude = from_log_spec(log_spec, sampler.spec.max_value, features.log_floor)
    return magnitude.numpy(), sampler.to_audio(log_spec).numpy()


def assert_matches(sampler, magnitude, audio, z, labels):
    want_magnitude, want_audio = pytorch_outputs(sampler, z, labels)
    scale = sampler.spec.max_value
    np.testing.assert_allclose(magnitude, want_magnitude, rtol=1e-4, atol=1e-5 * scale)
    assert audio.shape == want_audio.shape
    assert np.abs(audio - want_audio).max() < AUDIO_ATOL
    assert np.abs(audio - want_audio).mean() < 1e-3  # most samples agree much more closely
    np.testing.assert_allclose(np.abs(audio).max(axis=1), 1.0, atol=1e-5)  # peak 1 per clip


@pytest.mark.slow
def test_onnx_export_writes_the_file_and_its_sidecar(onnx_file, tiny_run, sampler):
    folder = onnx_file.parent
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt", "sfx.onnx", "sfx.onnx.json"]
    assert (folder / "keep.txt").read_text() == "not ours"
    settings = json.loads((folder / "sfx.onnx.json").read_text())
    config = json.loads((tiny_run / "config.json").read_text())
    features = sampler.spec.features
    assert settings["format"] == "sfxgan-export" and settings["model_file"] == "sfx.onnx"
    assert settings["classes"] == config["classes"] == sampler.classes
    assert settings["sample_rate"] == features.sample_rate == 16000
    assert settings["clip_samples"] == features.clip_samples
    assert settings["max_value"] == pytest.approx(sampler.spec.max_value, rel=1e-12)
    assert settings["latent_dim"] == sampler.spec.model.latent_dim
    stft = settings["stft"]
    assert (stft["n_fft"], stft["hop_length"], stft["win_length"]) == (
        features.n_fft,
        features.hop_length,
        features.win_length,
    )
    assert (stft["window"], stft["window_periodic"], stft["centered"]) == ("hann", True, False)
    assert (stft["frames"], stft["bins"]) == (features.n_frames, features.n_bins)
    assert settings["run"] == {
        "checkpoint": sampler.checkpoint,
        "step": sampler.step,
        "weights": "ema",
    }
    # the graph's declared inputs and outputs are the sidecar's
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    declared = [(i.name, i.shape) for i in session.get_inputs() + session.get_outputs()]
    described = [(d["name"], d["shape"]) for d in settings["inputs"] + settings["outputs"]]
    assert declared == described
    assert [d["name"] for d in settings["outputs"]] == ["magnitude", "audio"]
    assert settings["audio"]["phase"] == "fast-griffin-lim"
    assert settings["audio"]["iterations"] == 32
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["sfxgan"]) == settings


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 5])
def test_onnxruntime_matches_sfxgan(onnx_file, sampler, batch):
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    z, labels = inputs(sampler, batch)
    magnitude, audio = session.run(["magnitude", "audio"], {"z": z, "label": labels})
    assert magnitude.shape == (batch, *sampler.spec.model.spectrogram_shape())
    assert audio.shape == (batch, sampler.spec.features.clip_samples)
    assert_matches(sampler, magnitude, audio, z, labels)


@pytest.mark.slow
def test_onnx_audio_is_what_sfxgan_generate_writes(onnx_file, sampler):
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    name = sampler.classes[2]
    z = sampler.latents(name, 3, seed=11).numpy()
    labels = np.full(3, sampler.label(name), dtype=np.int64)
    (audio,) = session.run(["audio"], {"z": z, "label": labels})
    assert np.abs(audio - sampler.generate(name, 3, seed=11)).max() < AUDIO_ATOL


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_loads_and_matches(tiny_run, tmp_path):
    out = tmp_path / "raw.pt"
    result = sfxgan("export", tiny_run, "--format", "torchscript", "--out", out, "--no-ema")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    settings = json.loads((tmp_path / "raw.pt.json").read_text())
    assert settings["model_format"] == "torchscript" and settings["run"]["weights"] == "raw"
    raw = Sampler.from_run(tiny_run, device="cpu", ema=False)
    module = torch.jit.load(str(out))
    for batch in (1, 5):
        z, labels = inputs(raw, batch)
        with torch.no_grad():
            magnitude, audio = module(torch.from_numpy(z), torch.from_numpy(labels))
        assert_matches(raw, magnitude.numpy(), audio.numpy(), z, labels)


@pytest.mark.parametrize(
    "config",
    [(16000, 65536, 510, 128, 256), (16000, 4096, 255, 64, 200)],
    ids=["paper-64k window shorter than n_fft", "odd n_fft"],
)
def test_graph_griffin_lim_is_sfxgan_s_for_other_stft_settings(config):
    from sfxgan.config import FeatureConfig
    from sfxgan.data.audio import peak_normalize
    from sfxgan.dsp.features import STFT
    from sfxgan.dsp.phase import reconstruct

    features = FeatureConfig(*config)
    stft = STFT(features)
    t = torch.arange(features.clip_samples) / features.sample_rate
    g = torch.Generator().manual_seed(0)
    clip = torch.sin(2 * torch.pi * (300 + 2000 * t) * t) * torch.exp(-3 * t)
    magnitude = stft.magnitude(clip + 0.1 * torch.randn(2, len(t), generator=g))
    with torch.inference_mode():
        want = peak_normalize(reconstruct(magnitude, stft, "fast-griffin-lim", 32))
        got = export.GriffinLim(features)(magnitude)
    assert got.shape == want.shape
    assert (got - want).abs().max() < AUDIO_ATOL


@pytest.mark.integration
def test_a_foreign_file_as_run_is_a_one_line_error(tmp_path):
    foreign = tmp_path / "model.pt"
    foreign.write_bytes(b"not a checkpoint at all")
    out = tmp_path / "out" / "sfx.onnx"
    result = sfxgan("export", foreign, "--format", "onnx", "--out", out)
    assert_one_line_error(result, "model.pt")
    assert list(out.parent.iterdir()) == []  # no temporary file left behind


@pytest.mark.integration
def test_an_unwritable_out_is_a_one_line_error(tmp_path, tiny_run):
    blocker = tmp_path / "file.txt"
    blocker.write_text("a file where a folder should be")
    result = sfxgan("export", tiny_run, "--format", "torchscript", "--out", blocker / "sfx.pt")
    assert_one_line_error(result, "file.txt/sfx.pt", "writable")
    result = sfxgan("export", tiny_run, "--format", "torchscript", "--out", tmp_path)
    assert_one_line_error(result, "is a folder")


def test_onnx_without_the_export_extra_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    # checked before the run is even opened
    with pytest.raises(SfxganError, match=re.escape("pip install 'sfxgan[export]'")):
        export.export_run(tmp_path / "run", "onnx", tmp_path / "sfx.onnx")
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_export_leaves_the_old_file(tmp_path, tiny_run, monkeypatch):
    out = tmp_path / "sfx.pt"
    out.write_bytes(b"the previous export")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "_to_torchscript", interrupted)
    with pytest.raises(KeyboardInterrupt):
        export.export_run(tiny_run, "torchscript", out)
    assert out.read_bytes() == b"the previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sfx.pt"]


def doc_code_blocks(doc: Path = DOC) -> list[str]:
    return re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)


def onnx_snippet(doc: Path) -> str:
    """The ONNX snippet of a page: the first python block that opens an InferenceSession."""
    return next(block for block in doc_code_blocks(doc) if "InferenceSession" in block)


@pytest.mark.slow
@pytest.mark.parametrize("doc", [DOC, DOC.parent.parent / "README.md"], ids=["export.md", "README"])
def test_the_snippets_write_wavs_from_another_folder(doc, onnx_file, tmp_path, monkeypatch):
    """The game-tool snippet of docs/export.md and of the README, with its `sidecar` path set to
    the export and run from another folder: the model file is found beside the sidecar, not in
    the working folder."""
    snippet = onnx_snippet(doc)
    said = 'sidecar = Path("sfx.onnx.json")'
    assert said in snippet
    snippet = snippet.replace(said, f"sidecar = Path({str(onnx_file) + '.json'!r})")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    namespace = {}
    if doc == DOC:  # the page's numpy Griffin-Lim, for a magnitude-only export
        exec(compile(doc_code_blocks(doc)[1], str(doc), "exec"), namespace)
    exec(compile(snippet, str(doc), "exec"), namespace)
    settings = json.loads(Path(f"{onnx_file}.json").read_text())
    written = sorted(elsewhere.glob("*.wav"))
    assert written, "the snippet wrote no WAV"
    assert [p.name for p in written] == (
        [f"rain_{i}.wav" for i in range(4)] if doc == DOC else ["rain.wav"]
    )
    for path in written:
        info = sf.info(path)
        assert (info.samplerate, info.channels) == (settings["sample_rate"], 1)
        assert (info.frames, info.subtype) == (settings["clip_samples"], "PCM_16")
        audio, _ = sf.read(path)
        assert 0.9 < np.abs(audio).max() <= 1.0


@pytest.mark.slow
def test_the_numpy_griffin_lim_of_the_docs_gives_the_graphs_audio(onnx_file):
    """For exports without `audio`: the page's numpy Griffin-Lim on the graph's magnitudes."""
    settings = json.loads(Path(f"{onnx_file}.json").read_text())
    namespace: dict = {}
    exec(compile(doc_code_blocks()[1], str(DOC), "exec"), namespace)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    z = np.random.default_rng(0).standard_normal((2, settings["latent_dim"])).astype(np.float32)
    magnitude, want = session.run(None, {"z": z, "label": np.array([0, 4])})
    for i in range(2):
        got = namespace["griffin_lim"](magnitude[i], settings)
        assert got.shape == want[i].shape
        assert np.abs(got - want[i]).max() < AUDIO_ATOL
