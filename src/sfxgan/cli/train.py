"""`sfxgan train DATA --out RUN`: one option per training setting, read from the settings
dataclasses (TrainConfig, the model options of ModelConfig and the framing options of
FeatureConfig) so that none is typed twice."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from sfxgan.cli.options import (
    add_cache_options,
    add_data_argument,
    add_preset_option,
    add_quiet_option,
)
from sfxgan.config import (
    DEFAULT_PRESET,
    FEATURE_OPTIONS,
    MODEL_OPTIONS,
    SETTING_CHOICES,
    FeatureConfig,
    ModelConfig,
    TrainConfig,
)

# argparse checks the settings with a fixed set of values against config's tables; precision is
# left to TrainConfig, whose message says what each choice (auto included) means
OPTION_CHOICES = {k: v for k, v in SETTING_CHOICES.items() if k != "precision"}


def setting_fields() -> list[dataclasses.Field]:
    """The settings a user gives as options or --config keys: every TrainConfig field, the
    model options (MODEL_OPTIONS) of ModelConfig and the framing options (FEATURE_OPTIONS) of
    FeatureConfig."""
    features = [f for f in dataclasses.fields(FeatureConfig) if f.name in FEATURE_OPTIONS]
    model = [f for f in dataclasses.fields(ModelConfig) if f.name in MODEL_OPTIONS]
    return features + model + list(dataclasses.fields(TrainConfig))


def add_setting_options(parser: argparse.ArgumentParser) -> None:
    """One option per setting; None means 'not given' (the preset or file decides)."""
    for f in setting_fields():
        kind = {"int": int, "float": float, "str": str}[
            f.type if isinstance(f.type, str) else f.type.__name__
        ]
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            type=kind,
            default=None,
            choices=OPTION_CHOICES.get(f.name),
            help=f"{f.metadata['help']} (default: the preset's)",
        )


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a conditional WGAN-GP (with the reconstruction loss)",
        description="Train on class folders or a CSV manifest. Settings come from "
        "the preset, then --config FILE (a TOML file naming a base and its changes, see "
        "docs/config.md, or JSON training settings), then the options.",
    )
    add_data_argument(p)
    p.add_argument("--out", required=True, type=Path, help="run folder")
    # None: not given, so that a --config file's preset, or a resumed run's own, decides
    add_preset_option(
        p, default=None, help=f"shapes and default settings (default: {DEFAULT_PRESET})"
    )
    p.add_argument(
        "--config", type=Path, help="settings file: TOML base + changes, or JSON (docs/config.md)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    add_cache_options(p, cache_dir_help="feature cache folder")
    add_quiet_option(p)
    add_setting_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from sfxgan.config import read_config_file
    from sfxgan.training.trainer import train

    preset_name, settings = args.preset, {}
    if args.config:
        file_preset, settings = read_config_file(args.config)
        preset_name = preset_name or file_preset
    given = {
        f.name: getattr(args, f.name) for f in setting_fields() if getattr(args, f.name) is not None
    }
    settings.update(given)
    result = train(
        args.data,
        args.out,
        preset_name,  # on resume: None, or the run's own (a change is refused)
        settings,
        resume=args.resume,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
        use_cache=not args.no_cache,
    )
    if not result.main_process:  # another process of a torchrun: rank 0 reports
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(
            f"interrupted at step {result.step}; checkpoint saved in {result.run}/checkpoints; "
            f"continue with: sfxgan train {args.data} --out {result.run} --resume"
        )
        return 130
    if result.stopped:
        print(f"stopped at step {result.step}: {result.stopped}")
    elif result.best is not None:
        best = result.best
        print(
            f"the best quality check: step {best['step']:.0f} (FD {best['fd']:.3g}, class fit "
            f"{100 * best['class_fit']:.0f} %), in {result.run}/checkpoints/best.pt"
        )
    print(
        f"trained {result.run} to step {result.step} in {result.seconds:.0f} s "
        f"({result.samples_per_s:.1f} samples/s); previews in {result.run}/previews"
    )
    print(f"generate sounds with: sfxgan generate {result.run} --out <folder>")
    return 0
