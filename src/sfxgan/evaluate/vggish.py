"""Frechet Audio Distance (Kilgour et al. 2019) on VGGish embeddings: an optional backend.

VGGish (Hershey et al. 2017) is the embedding network of the original FAD and of the DCASE 2023
Task 7 (Foley sound synthesis) evaluation, so a score from here can be put next to theirs. It is
used only when the user already has the weights on disk: `vggish-10086976.pth`, the PyTorch port
of Google's TensorFlow checkpoint from github.com/harritaylor/torchvggish. Nothing is downloaded
here; `find_weights` says where to put the file when it is missing.

Pipeline, for each mono clip:

1. `log_mel_examples`: the VGGish front end (Google's `vggish_input.py` / `mel_features.py`),
   re-implemented in numpy: 16 kHz, 25 ms periodic-Hann frames every 10 ms, |rfft| of size 512,
   64 HTK-mel bands over 125-7500 Hz, log(mel + 0.01), cut into non-overlapping examples of
   96 frames (0.96 s). Each example is (96, 64).
2. `VGGish`: one 128-d embedding per example.
3. `frechet_audio_distance`: the Frechet distance between Gaussians fitted to the per-example
   embeddings of the real and of the generated set (as in the FAD paper: every 0.96 s example is
   one sample, not one mean per clip).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import soxr
import torch
from torch import nn

from sfxgan.dsp.features import mel_filterbank
from sfxgan.errors import SfxganError
from sfxgan.files import TaggedKind, load_tagged

# Front end (the values of Google's vggish_params.py).
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 400  # 25 ms
HOP_SAMPLES = 160  # 10 ms
FFT_SIZE = 512  # the next power of two above the window
MEL_BANDS = 64
MEL_LOW_HZ = 125.0
MEL_HIGH_HZ = 7500.0
LOG_OFFSET = 0.01
EXAMPLE_FRAMES = 96  # 0.96 s; examples do not overlap (hop = window)
# The fewest samples whose STFT has EXAMPLE_FRAMES frames (0.975 s at 16 kHz); shorter clips are
# zero-padded to this length.
MIN_SAMPLES = WINDOW_SAMPLES + (EXAMPLE_FRAMES - 1) * HOP_SAMPLES
EMBEDDING_SIZE = 128

WEIGHTS_FILE = "vggish-10086976.pth"
WEIGHTS_ENV = "SFXGAN_VGGISH_WEIGHTS"
WEIGHTS_URL = "https://github.com/harritaylor/torchvggish/releases/download/v0.1/" + WEIGHTS_FILE


# --- front end --------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def mel_matrix() -> np.ndarray:
    """(FFT_SIZE // 2 + 1, MEL_BANDS) weights from |rfft| bins to mel bands.

    As in `mel_features.spectrogram_to_mel_matrix`: band edges equally spaced on the HTK mel
    scale between 125 and 7500 Hz, each band a triangle in mel space (peak 1, no area
    normalisation), and the DC bin weighted 0.
    """
    weights = mel_filterbank(SAMPLE_RATE, FFT_SIZE, MEL_BANDS, MEL_LOW_HZ, MEL_HIGH_HZ)
    weights = weights.astype(np.float64)
    weights[0, :] = 0.0
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=1)
def _periodic_hann() -> np.ndarray:
    n = np.arange(WINDOW_SAMPLES)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WINDOW_SAMPLES)
    window.flags.writeable = False
    return window


def stft_magnitude(audio: np.ndarray) -> np.ndarray:
    """VGGish's |STFT| of a 16 kHz clip (samples,) of at least one window: (frames, 257)
    float64, one frame per whole 25 ms window every 10 ms (no padding: a tail shorter than a
    window is dropped, as Google's `mel_features.stft_magnitude` does).

    Kept in numpy, to the published recipe, rather than derived from `features.STFT`: that one
    pads the end to ceil(samples / hop) frames, and its float rounding is torch's. The frames it
    shares with `STFT(n_fft=512, hop_length=160, win_length=400)` agree to float64 rounding
    (tests/test_stft_frontends.py).
    """
    frames = np.lib.stride_tricks.sliding_window_view(audio, WINDOW_SAMPLES)[::HOP_SAMPLES]
    return np.abs(np.fft.rfft(frames * _periodic_hann(), n=FFT_SIZE))


def log_mel_examples(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """The VGGish input for one mono clip: (n_examples, 96, 64) float32 log-mel examples.

    The clip is resampled to 16 kHz (soxr) when needed. Examples are consecutive, non-overlapping
    0.96 s windows; a trailing part shorter than one example is dropped, as VGGish does. Unlike
    VGGish, which returns no example at all for such a clip, a clip too short for one example
    (under 0.975 s: 0.96 s of frames plus the last window's tail) is zero-padded at the end before
    the STFT, so every clip contributes at least one example; the padding reads as silence
    (log 0.01) in the frames it fills.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"expected one mono clip of shape (samples,), got {audio.shape}")
    audio = audio.astype(np.float64, copy=False)
    if sample_rate != SAMPLE_RATE:
        audio = soxr.resample(audio, sample_rate, SAMPLE_RATE, quality="HQ")
    if len(audio) < MIN_SAMPLES:
        audio = np.pad(audio, (0, MIN_SAMPLES - len(audio)))

    log_mel = np.log(stft_magnitude(audio) @ mel_matrix() + LOG_OFFSET)

    n_examples = len(log_mel) // EXAMPLE_FRAMES
    examples = log_mel[: n_examples * EXAMPLE_FRAMES].reshape(n_examples, EXAMPLE_FRAMES, MEL_BANDS)
    return examples.astype(np.float32)


# --- network ----------------------------------------------------------------------------------


class VGGish(nn.Module):
    """VGGish: (n, 1, 96, 64) log-mel examples -> (n, 128) embeddings.

    Module and parameter names are those of the torchvggish port, so its `vggish-10086976.pth`
    loads with `strict=True`: `features.{0,3,6,8,11,13}` (3x3 convolutions) and
    `embeddings.{0,2,4}` (fully connected).

    Embedding choice: the raw 128-d output of the last fully connected layer, before its ReLU and
    without the PCA whitening and 8-bit quantisation of the released AudioSet embeddings. FAD
    fits a Gaussian to the embeddings; the quantisation only adds rounding noise, and the ReLU
    (present in the torchvggish port, since removed from Google's VGGish) clips many dimensions to
    a point mass at 0. This is also what DCASE 2023 Task 7 computed (the `frechet_audio_distance`
    package with `use_pca=False, use_activation=False`). `final_relu=True` gives the torchvggish
    output instead; the ReLU module stays in `embeddings` either way (it holds no parameters).
    """

    def __init__(self, final_relu: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for spec in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
            if spec == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(channels, int(spec), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(spec)
        self.features = nn.Sequential(*layers)
        self.embeddings = nn.Sequential(
            nn.Linear(512 * 4 * 6, 4096),
            nn.ReLU(),
            nn.Linear(4096, 4096),
            nn.ReLU(),
            nn.Linear(4096, EMBEDDING_SIZE),
            nn.ReLU(),
        )
        self.final_relu = final_relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:  # (n, 96, 64)
            x = x.unsqueeze(1)
        x = self.features(x)  # (n, 512, 6, 4)
        # The fully connected weights come from TensorFlow, which flattens channels-last: flatten
        # in (height, width, channel) order, as torchvggish does with its two transposes.
        x = x.permute(0, 2, 3, 1).flatten(1)
        head = self.embeddings if self.final_relu else self.embeddings[:-1]
        return head(x)


# --- weights ----------------------------------------------------------------------------------


# a plain state dict, as torchvggish saves it: no format tag of ours to check
WEIGHTS_KIND = TaggedKind(
    tag=None,
    missing="VGGish weights not found: {path} is not a file",
    unreadable="{path} is not a readable torch weights file ({reason})",
    foreign="{path} is not a VGGish state dict (not a dict of tensors)",
    reason_chars=120,
)


def _hub_weights() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE


def find_weights(path: str | Path | None = None) -> Path:
    """The VGGish weights file: `path`, else $SFXGAN_VGGISH_WEIGHTS, else torch hub's cache.

    Raises SfxganError when the given path or the variable's path is not a file, or when neither
    is given and the hub cache (`torch.hub.get_dir()/checkpoints/vggish-10086976.pth`, where
    torchvggish saves them) has no copy. Nothing is downloaded.
    """
    enable = (
        f"FAD-VGGish is optional: on a machine with internet download {WEIGHTS_FILE} "
        f"(the torchvggish port of Google's VGGish, {WEIGHTS_URL}), "
        f"then pass --vggish PATH or set {WEIGHTS_ENV}"
    )
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise SfxganError(f"VGGish weights not found: {path} is not a file; {enable}")
        return path
    env = os.environ.get(WEIGHTS_ENV, "").strip()
    if env:
        env_path = Path(env).expanduser()
        if not env_path.is_file():
            raise SfxganError(
                f"VGGish weights not found: {WEIGHTS_ENV}={env} is not a file; {enable}"
            )
        return env_path
    hub = _hub_weights()
    if hub.is_file():
        return hub
    raise SfxganError(
        f"VGGish weights not found (no --vggish path, {WEIGHTS_ENV} unset, no {hub}); {enable}"
    )


def _expected_shapes() -> dict[str, torch.Size]:
    with torch.device("meta"):
        return {name: t.shape for name, t in VGGish().state_dict().items()}


def _short_list(names: Iterable[str], limit: int = 3) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_vggish(
    path: str | Path | None = None, device: str | torch.device = "cpu", final_relu: bool = False
) -> VGGish:
    """VGGish with the weights found by `find_weights(path)`, in eval mode on `device`.

    Raises SfxganError naming the file when it is not a torch file or not a VGGish state dict.
    """
    weights = find_weights(path)
    state = load_tagged(weights, WEIGHTS_KIND)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise SfxganError(WEIGHTS_KIND.foreign.format(path=weights))

    expected = _expected_shapes()
    missing, unexpected = expected.keys() - state.keys(), state.keys() - expected.keys()
    if missing or unexpected:
        parts = [f"missing {_short_list(missing)}" if missing else ""]
        parts.append(f"unexpected {_short_list(unexpected)}" if unexpected else "")
        detail = "; ".join(p for p in parts if p)
        raise SfxganError(f"{weights} is not a VGGish state dict ({detail})")
    wrong = [k for k, shape in expected.items() if state[k].shape != shape]
    if wrong:
        k = wrong[0]
        raise SfxganError(
            f"{weights} is not a VGGish state dict ({k} has shape {tuple(state[k].shape)}, "
            f"expected {tuple(expected[k])})"
        )
    if not all(t.is_floating_point() for t in state.values()):
        raise SfxganError(f"{weights} is not a VGGish state dict (non-float tensors)")

    # Built on the meta device and filled by assignment: no 290 MB random initialisation first.
    with torch.device("meta"):
        model = VGGish(final_relu=final_relu)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True, assign=True)
    return model.requires_grad_(False).eval().to(device)


# --- embeddings and FAD -----------------------------------------------------------------------


def _example_batches(
    clips: Sequence[np.ndarray] | np.ndarray, sample_rate: int, batch: int
) -> Iterator[np.ndarray]:
    """The examples of all clips in order, regrouped into arrays of at most `batch` examples."""
    pending: list[np.ndarray] = []
    count = 0
    for clip in clips:
        examples = log_mel_examples(clip, sample_rate)
        while len(examples):
            take = examples[: batch - count]
            examples = examples[len(take) :]
            pending.append(take)
            count += len(take)
            if count == batch:
                yield np.concatenate(pending)
                pending, count = [], 0
    if count:
        yield np.concatenate(pending)


def vggish_embeddings(
    model: VGGish,
    clips: Sequence[np.ndarray] | np.ndarray,
    sample_rate: int,
    batch: int = 64,
) -> np.ndarray:
    """(n_total_examples, 128) float32: the embeddings of every 0.96 s example of every clip.

    `clips` is a list of mono clips (any lengths) or an array (n_clips, samples); a 1-D array is
    taken as a single clip.
    """
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if isinstance(clips, np.ndarray) and clips.ndim == 1:
        clips = [clips]
    device = next(model.parameters()).device
    out: list[np.ndarray] = []
    with torch.inference_mode():
        for examples in _example_batches(clips, sample_rate, batch):
            x = torch.from_numpy(examples).to(device).unsqueeze(1)
            out.append(model(x).float().cpu().numpy())
    if not out:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def frechet_audio_distance(
    model: VGGish,
    real_clips: Sequence[np.ndarray] | np.ndarray,
    generated_clips: Sequence[np.ndarray] | np.ndarray,
    sample_rate: int,
) -> float:
    """FAD between two sets of clips at `sample_rate`: lower is closer, 0 for identical sets.

    Each 0.96 s example of each clip is one sample of its set's embedding distribution.
    """
    from sfxgan.evaluate.metrics import (
        frechet_distance,  # imported here: optional backend, light module import
    )

    real = vggish_embeddings(model, real_clips, sample_rate)
    generated = vggish_embeddings(model, generated_clips, sample_rate)
    return float(frechet_distance(real, generated))
