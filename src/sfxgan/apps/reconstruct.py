"""Phase reconstruction on real clips: spectrogram -> Griffin-Lim -> audio.

What it gives is the ceiling that phase reconstruction puts on any model trained with a preset's
features, audible (original and rebuilt WAVs side by side) and measured per clip and class:
spectral convergence, how well the RMS envelope survives at the attack (the first 16 ms) and
after it (evaluate/envelope.py), and the noise floor before and after. Writes
OUT/<class>/<stem>_original.wav, <stem>_reconstructed.wav, <stem>.png and OUT/summary.json.

The clips take the path a generated spectrogram takes to audio: the model's log-spectrogram
(with its floor), its inverse (`from_log_spec` with the features' `log_floor`), then phase
reconstruction with the features' framing (`lead_in`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from sfxgan.config import (
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    DEFAULT_PRESET,
    FeatureConfig,
    get_preset,
)
from sfxgan.data.audio import peak_normalize, write_wav
from sfxgan.data.dataset import SoundDataset, load_dataset
from sfxgan.dsp.features import STFT, from_log_spec, to_log_spec
from sfxgan.dsp.phase import audio_from_log_spec, spectral_convergence
from sfxgan.errors import SfxganError
from sfxgan.evaluate.envelope import (
    ends_in_silence,
    envelope_error,
    noise_floors,
)
from sfxgan.files import write_text_atomic
from sfxgan.plots import save_spectrograms

ATTACK_SPAN_S = 0.016  # the start of a clip whose envelope error is the attack error


def rebuild(
    log_spec: torch.Tensor,
    features: FeatureConfig,
    max_value: float,
    phase: str = DEFAULT_PHASE,
    n_iter: int = DEFAULT_PHASE_ITERS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-spectrograms (n, frames, bins) -> (magnitude, audio (n, clip_samples)): the inverse
    of the features and phase reconstruction, as generation does it (before normalisation)."""
    stft = STFT(features)
    with torch.inference_mode():
        magnitude = from_log_spec(log_spec, max_value, features.log_floor)
        audio = audio_from_log_spec(log_spec, stft, max_value, phase, n_iter)
    return magnitude, audio


def round_trip_figures(original: np.ndarray, rebuilt: np.ndarray, sample_rate: int) -> dict:
    """Per clip (n,) arrays: the envelope error over the attack and over the rest, the noise
    floor (dB) of the original and of the rebuilt clip, and whether the original ends in
    digital silence."""
    span = round(ATTACK_SPAN_S * sample_rate)
    return {
        "attack_error": envelope_error(original, rebuilt, 0, span),
        "rest_error": envelope_error(original, rebuilt, span),
        "floor_db_original": noise_floors(original, sample_rate),
        "floor_db": noise_floors(rebuilt, sample_rate),
        "ends_in_silence": ends_in_silence(original, sample_rate),
    }


def reconstruct_dataset(
    data: str | Path,
    out: str | Path,
    preset: str = DEFAULT_PRESET,
    phase: str = DEFAULT_PHASE,
    n_iter: int = DEFAULT_PHASE_ITERS,
    per_class: int = 4,
    crop: str = "start",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    lead_in: int | None = None,
    log_floor: str | None = None,
) -> dict:
    """Rebuild the first `per_class` clips of every class of `data` from their log-spectrograms
    (the preset's features, with `lead_in` and `log_floor` when given); write the sounds,
    pictures and summary.json to `out`. Returns the summary: preset, lead_in, log_floor, phase,
    iterations, per class the means of spectral_convergence, attack_error and rest_error and
    the medians of floor_db and floor_db_original, silence_floor_db (the median floor, rebuilt
    and original, of the clips that end in digital silence), the means over all clips, and
    clips (how many per class)."""
    features = (
        get_preset(preset)
        .with_settings(
            {k: v for k, v in {"lead_in": lead_in, "log_floor": log_floor}.items() if v is not None}
        )
        .features
    )
    dataset = load_dataset(data, features, crop=crop, cache_dir=cache_dir, use_cache=use_cache)
    out = Path(out)
    per_clip: dict[str, dict[str, np.ndarray]] = {}
    for label, name in enumerate(dataset.classes):
        index = np.flatnonzero(dataset.labels == label)[:per_class]
        per_clip[name] = _reconstruct_class(
            dataset, index, name, features, phase, n_iter, out / name
        )
    summary = {
        "preset": preset,
        "lead_in": features.lead_in,
        "log_floor": features.log_floor,
        "phase": phase,
        "iterations": n_iter,
        **_summarise(per_clip),
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    return {**summary, "clips": {k: len(v["spectral_convergence"]) for k, v in per_clip.items()}}


def _summarise(per_clip: dict[str, dict[str, np.ndarray]]) -> dict:
    """The per-class and overall figures of summary.json from the per-clip ones."""

    def median(values: np.ndarray) -> float | None:
        return float(np.median(values)) if len(values) else None

    out: dict = {}
    for key in ("spectral_convergence", "attack_error", "rest_error"):
        out[key] = {name: float(np.mean(v[key])) for name, v in per_clip.items()}
        out[f"mean_{key}"] = float(np.mean(np.concatenate([v[key] for v in per_clip.values()])))
    for key in ("floor_db", "floor_db_original"):
        out[key] = {name: median(v[key]) for name, v in per_clip.items()}
    silent = {name: v["ends_in_silence"] for name, v in per_clip.items()}
    out["silence_floor_db"] = {
        name: {
            "clips": int(silent[name].sum()),
            "floor_db": median(v["floor_db"][silent[name]]),
            "floor_db_original": median(v["floor_db_original"][silent[name]]),
        }
        for name, v in per_clip.items()
    }
    return out


def _reconstruct_class(
    dataset: SoundDataset,
    index: np.ndarray,
    name: str,
    features: FeatureConfig,
    phase: str,
    n_iter: int,
    folder: Path,
) -> dict[str, np.ndarray]:
    """The clips of class `name` at `index` through phase reconstruction, written to `folder`;
    returns their per-clip figures (`round_trip_figures` and spectral_convergence)."""
    log_spec = torch.from_numpy(np.asarray(dataset.log_spec[index], dtype=np.float32))
    magnitude, audio = rebuild(log_spec, features, dataset.max_value, phase, n_iter)
    stft = STFT(features)
    with torch.inference_mode():
        sc = spectral_convergence(magnitude, audio, stft)
        rebuilt = stft.magnitude(audio)
    rebuilt_log = to_log_spec(rebuilt, dataset.max_value).numpy()
    original = np.asarray(dataset.audio[index], dtype=np.float32)
    figures = round_trip_figures(original, audio.numpy(), features.sample_rate)
    # scaled down only where Griffin-Lim overshoots full scale, so levels stay comparable
    audible = peak_normalize(audio, min_peak=1.0)
    for k, i in enumerate(index):
        stem = Path(dataset.paths[i]).stem
        try:
            write_wav(folder / f"{stem}_original.wav", dataset.audio[i], features.sample_rate)
            write_wav(
                folder / f"{stem}_reconstructed.wav",
                audible[k].numpy(),
                features.sample_rate,
            )
            save_spectrograms(
                folder / f"{stem}.png",
                [("original", log_spec[k].numpy()), (f"{phase}, {n_iter} it.", rebuilt_log[k])],
                features,
                title=f"{name}: spectral convergence {sc[k]:.3f}",
            )
        except OSError as exc:
            raise SfxganError(f"cannot write to '{folder.parent}': {exc.strerror or exc}") from exc
    return {"spectral_convergence": sc.numpy(), **figures}
