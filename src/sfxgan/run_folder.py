"""The run folder and its checkpoints: atomic saves, the last K kept, safe loading.

    RUN/
      config.json                 every setting, the preset, classes, max_value, version
      metrics.csv                 one row per step
      checkpoints/step_0000500.pt the last `keep_checkpoints` of them
      checkpoints/latest.pt       the newest, also after Ctrl-C or SIGTERM
      previews/step_0000500/      one WAV and one spectrogram PNG per class
      previews/losses.png         the loss curves so far

A checkpoint is self-contained (it carries the configuration), holds only tensors and plain
Python values, and is loaded with `weights_only=True`: opening one never runs foreign code.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import shutil
import zipfile
from pathlib import Path

import torch

from sfxgan import __version__
from sfxgan.config import FeatureConfig, ModelConfig, TrainConfig
from sfxgan.errors import SfxganError, first_line

FORMAT = "sfxgan-checkpoint"
FORMAT_VERSION = 1
LATEST = "latest.pt"
_STEP_FILE = re.compile(r"step_(\d+)\.pt$")


class CheckpointError(SfxganError):
    """A checkpoint that is missing, damaged or not ours."""


@dataclasses.dataclass
class RunSpec:
    """What defines a run: the preset's shapes, the training settings, the data's classes."""

    preset: str
    features: FeatureConfig
    model: ModelConfig
    train: TrainConfig
    classes: list[str]
    max_value: float
    data: str

    def to_dict(self) -> dict:
        return {
            "sfxgan_version": __version__,
            "preset": self.preset,
            "features": self.features.to_dict(),
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "classes": list(self.classes),
            "max_value": self.max_value,
            "data": self.data,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RunSpec:
        try:
            return cls._from_dict(d)
        except (KeyError, TypeError, ValueError, SfxganError) as exc:
            raise CheckpointError(
                f"the run's configuration is incomplete or from another version ({exc}); "
                "give a run written by this version of sfxgan"
            ) from exc

    @classmethod
    def _from_dict(cls, d: dict) -> RunSpec:
        model = dict(d["model"])
        for key in ("gen_start", "gen_channels", "critic_channels", "kernel"):
            model[key] = tuple(model[key])
        return cls(
            d["preset"],
            FeatureConfig(**d["features"]),
            ModelConfig(**model),
            TrainConfig(**d["train"]),
            list(d["classes"]),
            float(d["max_value"]),
            d.get("data", ""),
        )


def checkpoint_dir(run: Path) -> Path:
    return Path(run) / "checkpoints"


def step_checkpoints(run: Path) -> list[Path]:
    """Step checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as fh:
        torch.save(obj, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def save_checkpoint(run: Path, state: dict, step: int, keep: int) -> Path:
    """Write checkpoints/step_<step>.pt and point latest.pt at it; prune to the last `keep`.

    Each file appears whole or not at all (temporary file, flush, fsync, rename), so a crash
    mid-save leaves the previous checkpoint intact.
    """
    folder = checkpoint_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state}
    path = folder / f"step_{step:07d}.pt"
    _atomic_torch_save(payload, path)
    latest_tmp = folder / f".{LATEST}.tmp"
    latest_tmp.unlink(missing_ok=True)
    try:
        os.link(path, latest_tmp)  # a second name for the same bytes: no second write
    except OSError:
        shutil.copyfile(path, latest_tmp)
    os.replace(latest_tmp, folder / LATEST)
    for old in step_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def find_checkpoint(path: Path) -> Path:
    """A run folder -> its latest checkpoint; a file -> itself."""
    path = Path(path)
    if path.is_dir():
        latest = checkpoint_dir(path) / LATEST
        if latest.is_file():
            return latest
        steps = step_checkpoints(path)
        if steps:
            return steps[-1]
        raise CheckpointError(
            f"'{path}' holds no checkpoint (no checkpoints/{LATEST}); give a "
            "run folder written by 'sfxgan train' or a checkpoint file"
        )
    if not path.exists():
        raise CheckpointError(f"'{path}' does not exist; give a run folder or a checkpoint file")
    return path


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint; a damaged or foreign file is a one-line CheckpointError."""
    path = find_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        OSError,
        AttributeError,
        TypeError,
    ) as exc:
        raise CheckpointError(
            f"'{path}' is not a readable sfxgan checkpoint (damaged or a "
            f"foreign file: {first_line(exc)})"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"'{path}' is not an sfxgan checkpoint (a foreign file); give a "
            "checkpoint written by 'sfxgan train'"
        )
    if state.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(
            f"'{path}' was written by a newer sfxgan "
            f"({state.get('config', {}).get('sfxgan_version', '?')}); upgrade"
        )
    state["path"] = str(path)
    return state
