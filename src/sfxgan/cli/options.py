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
from sfxgan.dsp.finish import (
    DEFAULT_FADE_MS,
    DEFAULT_TRUE_PEAK,
    LOUDNESS_EXTRA,
    LOUDNESS_RANGE,
    RATES,
    TRUE_PEAK_RANGE,
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


def add_finish_options(p: argparse.ArgumentParser) -> None:
    """--rate, --loudness, --true-peak, --fade-ms, --keep-dc: takes ready for a session."""
    group = p.add_argument_group(
        "takes ready for a session",
        "Without these options the takes are the paper's: peak-normalised at the model's rate. "
        "Any of --rate, --loudness or --fade-ms finishes them instead: DC removed (unless "
        f"--keep-dc), a {DEFAULT_FADE_MS:g} ms fade-out at the end (unless --fade-ms says "
        "otherwise), then the rate and the level asked. docs/finish.md has the figures.",
    )
    group.add_argument(
        "--rate",
        type=int,
        metavar="HZ",
        help=f"write the takes at this sample rate, {RATES[0]} to {RATES[1]} (e.g. 44100 or "
        "48000), resampled with soxr; their sound still ends at the model's Nyquist frequency "
        "(8 kHz for a 16 kHz model): resampling adds no high frequencies. Not with --dcase, "
        "whose rate is fixed",
    )
    group.add_argument(
        "--loudness",
        type=float,
        metavar="LUFS",
        help=f"bring each take to this integrated loudness ({LOUDNESS_RANGE[0]:g} to "
        f"{LOUDNESS_RANGE[1]:g} LUFS, ITU-R BS.1770-4 measured by pyloudnorm: "
        f"{LOUDNESS_EXTRA}) instead of peak-normalising it; a take whose true peak would pass "
        "--true-peak stays quieter (unless --limit): the command says how many, generated.json "
        "which",
    )
    group.add_argument(
        "--true-peak",
        type=float,
        metavar="DBTP",
        help=f"the true-peak ceiling of --loudness, {TRUE_PEAK_RANGE[0]:g} to "
        f"{TRUE_PEAK_RANGE[1]:g} dBTP (default: {DEFAULT_TRUE_PEAK:g})",
    )
    group.add_argument(
        "--limit",
        action="store_true",
        help="bring every take to --loudness: a take whose true peak would pass the ceiling has "
        "its peaks turned down by a look-ahead limiter (1.5 ms look-ahead, 50 ms release) "
        "instead of staying quieter; one-shots lose some of their attack's punch",
    )
    group.add_argument(
        "--fade-ms",
        type=float,
        metavar="MS",
        help="raised-cosine fade-out over the last MS milliseconds of each take, so that none "
        f"ends in a click (default: {DEFAULT_FADE_MS:g} with --rate or --loudness, else none; "
        "0: no fade)",
    )
    group.add_argument(
        "--keep-dc",
        action="store_true",
        help="keep the takes' DC offset (finished takes have their mean removed)",
    )


def finish_from(args: argparse.Namespace):
    """The finish the options ask for; Finish() (today's takes) when none is given."""
    from sfxgan.dsp.finish import Finish

    return Finish.session(
        args.rate, args.loudness, args.true_peak, args.fade_ms, args.keep_dc, args.limit
    )
