"""Phase reconstruction on real clips: spectrogram -> Griffin-Lim -> audio.

What it gives is the ceiling that phase reconstruction puts on any model trained with a preset's
features, audible (original and rebuilt WAVs side by side) and measured (spectral convergence
per clip and class). Writes OUT/<class>/<stem>_original.wav, <stem>_reconstructed.wav, <stem>.png
and OUT/summary.json.
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
from sfxgan.dsp.phase import reconstruct, spectral_convergence
from sfxgan.errors import SfxganError
from sfxgan.files import write_text_atomic
from sfxgan.plots import save_spectrograms


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
) -> dict:
    """Rebuild the first `per_class` clips of every class of `data` from their magnitude
    spectrograms; write the sounds, pictures and summary.json to `out`. Returns the summary:
    preset, phase, iterations, spectral_convergence (mean per class), mean_spectral_convergence
    (over all clips) and clips (how many per class)."""
    features = get_preset(preset).features
    dataset = load_dataset(data, features, crop=crop, cache_dir=cache_dir, use_cache=use_cache)
    stft = STFT(features)
    out = Path(out)
    per_class_sc: dict[str, list[float]] = {}
    for label, name in enumerate(dataset.classes):
        index = np.flatnonzero(dataset.labels == label)[:per_class]
        per_class_sc[name] = _reconstruct_class(
            dataset, index, name, features, stft, phase, n_iter, out / name
        )
    overall = float(np.mean([v for values in per_class_sc.values() for v in values]))
    summary = {
        "preset": preset,
        "phase": phase,
        "iterations": n_iter,
        "spectral_convergence": {k: float(np.mean(v)) for k, v in per_class_sc.items()},
        "mean_spectral_convergence": overall,
    }
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    return {**summary, "clips": {k: len(v) for k, v in per_class_sc.items()}}


def _reconstruct_class(
    dataset: SoundDataset,
    index: np.ndarray,
    name: str,
    features: FeatureConfig,
    stft: STFT,
    phase: str,
    n_iter: int,
    folder: Path,
) -> list[float]:
    """The clips of class `name` at `index` through phase reconstruction, written to `folder`;
    returns their spectral convergence."""
    log_spec = torch.from_numpy(np.asarray(dataset.log_spec[index], dtype=np.float32))
    with torch.inference_mode():
        magnitude = from_log_spec(log_spec, dataset.max_value)
        audio = reconstruct(
            magnitude, stft, method=phase, n_iter=n_iter, length=features.clip_samples
        )
        sc = spectral_convergence(magnitude, audio, stft)
        rebuilt = stft.magnitude(audio)
    rebuilt_log = to_log_spec(rebuilt, dataset.max_value).numpy()
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
    return sc.tolist()
