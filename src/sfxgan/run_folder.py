"""The run folder: its layout, every file in it, and how each is written and read.

    RUN/
      config.json                 every setting, the preset, classes, max_value, version
      metrics.csv                 one row per logged step (METRICS)
      quality.csv                 the quality checks of --eval-every (evaluate/tracking.py)
      judge.pt                    the classifier those checks use (and `evaluate --run` reuses)
      checkpoints/step_0000500.pt the last `keep_checkpoints` of them
      checkpoints/latest.pt       the newest, also after Ctrl-C or SIGTERM
      previews/step_0000500/      one WAV and one spectrogram PNG per class
      previews/losses.png         the loss curves so far
      previews/quality.png        the quality curves so far

Each file appears whole or not at all (`files.atomic_write`); metrics.csv alone also grows by
appended rows during training, each flushed, and is rewritten whole when a run resumes.

A checkpoint is self-contained (it carries the configuration), holds only tensors and plain
Python values, and is loaded with `weights_only=True`: opening one never runs foreign code. The
weights generation uses are stored under INFERENCE_WEIGHTS; training writes them with
`inference_entries` and generation reads them with `inference_weights`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from sfxgan import __version__
from sfxgan.config import FeatureConfig, ModelConfig, TrainConfig, check_value
from sfxgan.errors import SfxganError
from sfxgan.files import (
    TaggedKind,
    atomic_write,
    copy_file_atomic,
    load_tagged,
    save_torch_atomic,
    temporary_name,
    write_json_atomic,
    write_text_atomic,
)

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.csv"
QUALITY_FILE = "quality.csv"
JUDGE_FILE = "judge.pt"
CHECKPOINTS = "checkpoints"
PREVIEWS = "previews"
LATEST = "latest.pt"
STOP_FILE = "stopped.json"  # why and where the run's last session ended (write_stop)
BEST = "best.pt"  # the generator at the run's best quality check (evaluate.tracking.is_better)
# --checkpoint of the commands that generate: auto (best when the run has one), best, latest, or
# a file's path
CHECKPOINT_CHOICES = ("auto", "best", "latest")
FORMAT = "sfxgan-checkpoint"
FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"step_(\d+)\.pt$")

# The columns of metrics.csv, in order.
METRICS = (
    "step",
    "critic_loss",
    "gradient_penalty",
    "wasserstein",
    "generator_loss",
    "recon_loss",
    "samples_per_s",
    "seconds",
)
# A checkpoint's generator weights for generation ("raw": as trained, "ema": their moving
# average), BatchNorm statistics included; "generator" holds the raw weights for training.
INFERENCE_WEIGHTS = {"raw": "generator_inference", "ema": "generator_ema_inference"}
TRAINED_WEIGHTS = "generator"


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
        # JSON (config.json) gives lists where the shape fields hold tuples; config converts
        model = {key: check_value(key, value) for key, value in d["model"].items()}
        return cls(
            d["preset"],
            FeatureConfig(**d["features"]),
            ModelConfig(**model),
            TrainConfig(**d["train"]),
            list(d["classes"]),
            float(d["max_value"]),
            d.get("data", ""),
        )


# -- paths ----------------------------------------------------------------------------------------
def config_path(run: str | Path) -> Path:
    return Path(run) / CONFIG_FILE


def metrics_path(run: str | Path) -> Path:
    return Path(run) / METRICS_FILE


def quality_path(run: str | Path) -> Path:
    return Path(run) / QUALITY_FILE


def judge_path(run: str | Path) -> Path:
    return Path(run) / JUDGE_FILE


def checkpoint_dir(run: str | Path) -> Path:
    return Path(run) / CHECKPOINTS


def previews_dir(run: str | Path) -> Path:
    return Path(run) / PREVIEWS


def preview_dir(run: str | Path, step: int) -> Path:
    """Where the previews of one step go."""
    return previews_dir(run) / f"step_{step:07d}"


def run_of(path: str | Path) -> Path:
    """The run folder of a run folder or of one of its checkpoint files."""
    path = Path(path)
    return path if path.is_dir() else path.parent.parent


# -- config.json ----------------------------------------------------------------------------------
def write_config(run: str | Path, spec: RunSpec) -> Path:
    return write_text_atomic(config_path(run), json.dumps(spec.to_dict(), indent=2))


def read_config(run: str | Path) -> RunSpec:
    """The run's settings as config.json records them."""
    path = config_path(run)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read '{path}': {exc}") from exc
    return RunSpec.from_dict(data)


# -- metrics.csv ----------------------------------------------------------------------------------
def read_metrics(run: str | Path, up_to_step: float = math.inf) -> list[dict]:
    """The rows of a run folder's metrics.csv as floats, up to a step (empty when it has none)."""
    path = metrics_path(run)
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        return [
            {k: float(v) for k, v in row.items()}
            for row in csv.DictReader(fh)
            if int(float(row["step"])) <= up_to_step
        ]


def write_metrics(run: str | Path, rows: list[dict]) -> None:
    """metrics.csv whole: its header and `rows`."""
    with atomic_write(metrics_path(run), "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRICS)
        writer.writeheader()
        for row in rows:
            writer.writerow(_metrics_cells(row))


@contextmanager
def metrics_log(run: str | Path) -> Iterator[Callable[[dict], None]]:
    """A function that appends one row to metrics.csv (written by `write_metrics` first) and
    flushes it, so that the file follows training while it runs."""
    with open(metrics_path(run), "a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=METRICS)

        def log_row(row: dict) -> None:
            writer.writerow(_metrics_cells(row))
            fh.flush()

        yield log_row


def _metrics_cells(row: dict) -> dict[str, str]:
    return {k: _fmt(row[k]) for k in METRICS}


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


# -- the weights generation uses -----------------------------------------------------------------
def inference_entries(raw: dict, ema: dict | None) -> dict[str, dict]:
    """A checkpoint's entries for the generator weights generation uses (see inference_weights)."""
    entries = {INFERENCE_WEIGHTS["raw"]: raw}
    if ema is not None:
        entries[INFERENCE_WEIGHTS["ema"]] = ema
    return entries


def inference_weights(checkpoint: dict, ema: bool = True) -> tuple[dict, str]:
    """The generator's state dict that generation uses and which it is ("ema" or "raw"): the
    moving average when the run kept one and `ema` is true, else the trained weights; either
    with the BatchNorm statistics estimated for generation when the run estimated them.
    Raises KeyError for a checkpoint without a generator."""
    which = "ema" if ema and INFERENCE_WEIGHTS["ema"] in checkpoint else "raw"
    state = checkpoint.get(INFERENCE_WEIGHTS[which])
    return (state if state is not None else checkpoint[TRAINED_WEIGHTS]), which


# -- checkpoints ----------------------------------------------------------------------------------
CHECKPOINT_KIND = TaggedKind(
    tag=FORMAT,
    missing="'{path}' does not exist; give a run folder or a checkpoint file",
    unreadable="'{path}' is not a readable sfxgan checkpoint (damaged or a foreign file: {reason})",
    foreign="'{path}' is not an sfxgan checkpoint (a foreign file); give a checkpoint written "
    "by 'sfxgan train'",
    version_key="format_version",
    version=FORMAT_VERSION,
    newer="'{path}' was written by a newer sfxgan ({sfxgan_version}); upgrade",
    error=CheckpointError,
)


def step_checkpoints(run: str | Path) -> list[Path]:
    """Step checkpoints of a run, oldest first."""
    folder = checkpoint_dir(run)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run: str | Path, state: dict, step: int, keep: int) -> Path:
    """Write checkpoints/step_<step>.pt and point latest.pt at it; prune to the last `keep`.

    Each file appears whole or not at all, so a crash mid-save leaves the previous checkpoint
    intact.
    """
    folder = checkpoint_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state}
    path = save_torch_atomic(payload, folder / f"step_{step:07d}.pt")
    # latest.pt: a second name for the same bytes (no second write), put in place by a rename
    # like every other file; a copy where the file system has no hard links
    latest_tmp = temporary_name(folder / LATEST)
    try:
        os.link(path, latest_tmp)
        os.replace(latest_tmp, folder / LATEST)
    except OSError:
        latest_tmp.unlink(missing_ok=True)
        copy_file_atomic(path, folder / LATEST)
    for old in step_checkpoints(run)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def find_checkpoint(path: str | Path) -> Path:
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
            f"'{path}' holds no checkpoint (no {CHECKPOINTS}/{LATEST}); give a "
            "run folder written by 'sfxgan train' or a checkpoint file"
        )
    if not path.exists():
        raise CheckpointError(CHECKPOINT_KIND.missing.format(path=path))
    return path


def save_best(run: str | Path, state: dict, step: int, best: dict) -> Path:
    """Write checkpoints/best.pt: the generator weights generation uses (not the critic or
    the optimisers: a run resumes from latest.pt) and `best`, the quality check's figures and
    the rule that chose it. Whole or not at all, like every checkpoint."""
    folder = checkpoint_dir(run)
    folder.mkdir(parents=True, exist_ok=True)
    names = ("config", TRAINED_WEIGHTS, *INFERENCE_WEIGHTS.values())
    kept = {k: state[k] for k in names if k in state}
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **kept}
    payload["best"] = best
    return save_torch_atomic(payload, folder / BEST)


def write_stop(run: str | Path, step: int, why: str, said: str) -> None:
    """Record how the run's last session ended: `why` is steps (it reached --steps), patience,
    budget or signal, `said` the sentence the terminal showed. Generation and the report read
    it; a resumed session replaces it when it ends."""
    record = {"step": step, "why": why, "said": said}
    write_json_atomic(Path(run) / STOP_FILE, record)


def read_stop(run: str | Path) -> dict | None:
    """The record of write_stop, or None for a run still training or written before it."""
    try:
        return json.loads((run_of(run) / STOP_FILE).read_text())
    except (OSError, ValueError):
        return None


def clear_stop(run: str | Path) -> None:
    (Path(run) / STOP_FILE).unlink(missing_ok=True)


def generation_checkpoint(path: str | Path, which: str = "auto") -> tuple[Path, str]:
    """The checkpoint that generation uses, and why: `which` is auto (the run's best.pt when
    it has one, else its latest), best, latest, or a checkpoint file's path. `path` is a run
    folder or a checkpoint file (which then is the one used, unless `which` names a file)."""
    path = Path(path)
    if which not in CHECKPOINT_CHOICES:
        given = Path(which)
        if not given.is_file():
            raise CheckpointError(
                f"--checkpoint '{which}' is neither a file nor one of "
                f"{', '.join(CHECKPOINT_CHOICES)}; give a checkpoint file or one of those"
            )
        return given, "the file given"
    if not path.is_dir():
        if which == "best" and path.exists():
            raise CheckpointError(
                f"--checkpoint best needs a run folder, not the file '{path}'; give the run folder"
            )
        return path, "the file given"
    best = checkpoint_dir(path) / BEST
    if best.is_file() and which in ("auto", "best"):
        return best, "the best quality check"
    if which == "best":
        raise CheckpointError(
            f"'{path}' has no best checkpoint ({CHECKPOINTS}/{BEST}: a run keeps one when it "
            "trains with quality checks, --eval-every N); use --checkpoint latest"
        )
    reason = "asked for" if which == "latest" else "the run has no best checkpoint"
    return find_checkpoint(path), f"the latest ({reason})"


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Load and check a checkpoint (of a run folder: its latest); a missing, damaged or foreign
    file is a one-line CheckpointError. The file's path is added as "path"."""
    path = find_checkpoint(path)
    state = load_tagged(path, CHECKPOINT_KIND, map_location)
    state["path"] = str(path)
    return state
