"""Spectrogram pictures (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: works on servers and in CI without a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from sfxgan.config import FeatureConfig  # noqa: E402
from sfxgan.files import save_figure  # noqa: E402


def save_spectrograms(
    path: str | Path,
    panels: Sequence[tuple[str, np.ndarray]],
    features: FeatureConfig,
    title: str | None = None,
) -> Path:
    """Save normalised log-spectrograms (frames, bins) in [-1, 1] side by side as a PNG.

    Time runs left to right in seconds, frequency bottom to top in kHz.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fixed layout: constrained/tight layout would triple the time per picture.
    width = 2.9 * len(panels) + 1.2
    fig, axes = plt.subplots(1, len(panels), figsize=(width, 2.8), squeeze=False)
    fig.subplots_adjust(left=0.7 / width, right=1 - 0.9 / width, bottom=0.17, top=0.8, wspace=0.25)
    extent = (0.0, features.duration, 0.0, features.sample_rate / 2000)
    image = None
    for ax, (name, log_spec) in zip(axes[0], panels, strict=True):
        image = ax.imshow(
            np.asarray(log_spec, dtype=np.float32).T,
            origin="lower",
            aspect="auto",
            extent=extent,
            vmin=-1,
            vmax=1,
            cmap="magma",
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("time (s)", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("frequency (kHz)", fontsize=8)
    if image is not None:
        colorbar_axes = fig.add_axes((1 - 0.75 / width, 0.17, 0.12 / width, 0.63))
        fig.colorbar(image, cax=colorbar_axes).ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


LOSS_PANELS = [
    ("critic_loss", "critic loss"),
    ("wasserstein", "Wasserstein estimate"),
    ("generator_loss", "generator adversarial loss"),
    ("recon_loss", "reconstruction loss"),
]


def smoothing_window(n_rows: int) -> int:
    """Running-mean length that shows the trend under a GAN's step-to-step noise (1: none)."""
    return max(n_rows // 50, 5) if n_rows >= 20 else 1


def running_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of each k consecutive values: len(values) - k + 1 of them."""
    return np.convolve(values, np.ones(k) / k, mode="valid")


def save_loss_curves(path: str | Path, rows: Sequence[dict]) -> Path | None:
    """Critic loss, Wasserstein estimate, generator loss and reconstruction loss against step."""
    return overlay_loss_curves(path, {"": rows})


def overlay_loss_curves(path: str | Path, runs: Mapping[str, Sequence[dict]]) -> Path | None:
    """The loss panels of several runs in one figure, one colour per run (labelled by the keys):
    each step faint, the running mean bold."""
    runs = {label: rows for label, rows in runs.items() if rows}
    if not runs:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(LOSS_PANELS), figsize=(14, 3.2 if len(runs) > 1 else 3))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.18, top=0.85, wspace=0.3)
    for i, (label, rows) in enumerate(runs.items()):
        colour = f"C{i}"
        steps = np.array([r["step"] for r in rows])
        k = smoothing_window(len(rows))
        for ax, (key, _) in zip(axes, LOSS_PANELS, strict=True):
            values = np.array([r[key] for r in rows], dtype=np.float64)
            # too few steps to smooth: the raw curve carries the run's name in the legend
            ax.plot(steps, values, lw=0.5, alpha=0.35, color=colour, label=None if k > 1 else label)
            if k > 1:
                ax.plot(steps[k - 1 :], running_mean(values, k), lw=1.2, color=colour, label=label)
    for ax, (_, title) in zip(axes, LOSS_PANELS, strict=True):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    if len(runs) > 1:
        axes[0].legend(fontsize=7, frameon=False)
    save_figure(fig, path, dpi=80)
    plt.close(fig)
    return path
