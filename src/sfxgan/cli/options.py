"""Options that several commands share, each declared once, with defaults and choices read from
the tables in `sfxgan.config`; argument types that turn a wrong value into a usage error."""

from __future__ import annotations

import argparse
from pathlib import Path

from sfxgan.config import (
    CROP_MODES,
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    DEFAULT_PRESET,
    PHASE_METHODS,
    PRESETS,
    TrainConfig,
)

# The part of a long clip kept unless asked otherwise: training's default (the reference's).
DEFAULT_CROP = TrainConfig.crop

DATA_HELP = "class folders or a CSV manifest (path,label)"
RUN_HELP = "run folder (uses its latest checkpoint) or a checkpoint file"
NO_EMA_HELP = (
    "use the trained generator weights, not their moving average (the default when the run "
    "kept one: --ema-decay in training)"
)


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def thread_count(text: str) -> int | str:
    """An argparse type for --threads: `auto` or a positive number."""
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be auto or a number of threads, got {text!r}")
    return int(text)


def class_list(text: str | None) -> list[str] | None:
    """--classes a,b,c -> ["a", "b", "c"]; None (not given) means every class."""
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def add_data_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", help=DATA_HELP)


def add_run_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help=RUN_HELP)


def add_preset_option(
    parser: argparse.ArgumentParser,
    default: str | None = DEFAULT_PRESET,
    help: str = "shapes and default settings (default: %(default)s)",
) -> None:
    parser.add_argument("--preset", default=default, choices=sorted(PRESETS), help=help)


def add_phase_options(parser: argparse.ArgumentParser) -> None:
    """--phase and --iters: how spectrograms become audio."""
    parser.add_argument(
        "--phase",
        default=DEFAULT_PHASE,
        choices=PHASE_METHODS,
        help="how spectrograms become audio (default: %(default)s)",
    )
    parser.add_argument(
        "--iters",
        type=positive_int,
        default=DEFAULT_PHASE_ITERS,
        help="iterations of that method (default: %(default)s)",
    )


def add_crop_option(
    parser: argparse.ArgumentParser, help: str, default: str | None = DEFAULT_CROP
) -> None:
    """--crop; `default` None leaves the choice to the command (the run's crop, the preset's)."""
    parser.add_argument("--crop", choices=CROP_MODES, default=default, help=help)


def add_cache_options(
    parser: argparse.ArgumentParser,
    cache_dir_help: str = "where decoded features are cached "
    "(default: $SFXGAN_CACHE_DIR or ~/.cache/sfxgan)",
) -> None:
    parser.add_argument("--cache-dir", type=Path, default=None, help=cache_dir_help)
    parser.add_argument("--no-cache", action="store_true", help="decode every file again")


def add_weights_options(
    parser: argparse.ArgumentParser, no_ema_help: str = NO_EMA_HELP, device: bool = True
) -> None:
    """--checkpoint (which of a run's checkpoints), --no-ema (which generator weights it gives)
    and, where the command runs the generator itself, --device."""
    parser.add_argument(
        "--checkpoint",
        default="auto",
        metavar="{best,latest,PATH}",
        help="which checkpoint of the run: best (its best quality check, kept when it trained "
        "with --eval-every), latest, or a checkpoint file (default: best when the run has one, "
        "else latest)",
    )
    parser.add_argument("--no-ema", action="store_true", help=no_ema_help)
    if device:
        parser.add_argument("--device", default="auto", help="cpu, cuda or auto")


def add_quiet_option(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)
