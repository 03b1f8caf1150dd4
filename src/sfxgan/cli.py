"""The `sfxgan` command.

User errors (SfxganError) print one line and exit with code 2; argparse does the same for wrong
arguments. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from . import __version__
from .audio import CROP_MODES, write_wav
from .config import PRESETS, TrainConfig, get_preset
from .errors import SfxganError
from .phase import PHASE_METHODS


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--crop",
        choices=CROP_MODES,
        default="start",
        help="which part of a long clip to keep: its start (the reference) or "
        "the loudest window (default: %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="where decoded features are cached (default: $SFXGAN_CACHE_DIR or ~/.cache/sfxgan)",
    )
    parser.add_argument("--no-cache", action="store_true", help="decode every file again")


def cmd_demo_data(args: argparse.Namespace) -> int:
    from .demo import DEMO_CLASSES, write_demo_dataset

    out = Path(args.dir)
    if out.exists() and not out.is_dir():
        raise SfxganError(f"'{out}' exists and is not a folder; choose a new folder")
    if out.is_dir():
        foreign = sorted(p.name for p in out.iterdir() if p.name not in DEMO_CLASSES)
        if foreign:
            raise SfxganError(
                f"'{out}' already holds other files ({', '.join(foreign[:3])}); "
                "choose an empty or new folder for the demo data"
            )
    start = time.perf_counter()
    try:
        written = write_demo_dataset(out, per_class=args.per_class, seed=args.seed)
    except OSError as exc:
        raise SfxganError(f"cannot write the demo data to '{out}': {exc.strerror or exc}") from exc
    total = sum(len(paths) for paths in written.values())
    print(
        f"wrote {total} synthetic clips ({args.per_class} per class: {', '.join(written)}) "
        f"to {out} in {time.perf_counter() - start:.1f} s"
    )
    return 0


def cmd_reconstruct(args: argparse.Namespace) -> int:
    """Spectrogram -> Griffin-Lim -> audio on real clips: the ceiling phase reconstruction puts
    on any model trained with these features, audible and measured."""
    from .data import load_dataset
    from .features import STFT, from_log_spec, to_log_spec
    from .phase import reconstruct, spectral_convergence
    from .plots import save_spectrograms

    preset = get_preset(args.preset)
    features = preset.features
    dataset = load_dataset(
        args.data, features, crop=args.crop, cache_dir=args.cache_dir, use_cache=not args.no_cache
    )
    stft = STFT(features)
    out = Path(args.out)
    per_class_sc: dict[str, list[float]] = {}
    for label, name in enumerate(dataset.classes):
        index = np.flatnonzero(dataset.labels == label)[: args.per_class]
        log_spec = torch.from_numpy(np.asarray(dataset.log_spec[index], dtype=np.float32))
        with torch.inference_mode():
            magnitude = from_log_spec(log_spec, dataset.max_value)
            audio = reconstruct(
                magnitude, stft, method=args.phase, n_iter=args.iters, length=features.clip_samples
            )
            sc = spectral_convergence(magnitude, audio, stft)
            rebuilt = stft.magnitude(audio)
        rebuilt_log = to_log_spec(rebuilt, dataset.max_value).numpy()
        per_class_sc[name] = sc.tolist()
        for k, i in enumerate(index):
            stem = Path(dataset.paths[i]).stem
            peak = float(audio[k].abs().max()) or 1.0
            try:
                write_wav(
                    out / name / f"{stem}_original.wav", dataset.audio[i], features.sample_rate
                )
                write_wav(
                    out / name / f"{stem}_reconstructed.wav",
                    audio[k].numpy() / max(peak, 1.0),
                    features.sample_rate,
                )
                save_spectrograms(
                    out / name / f"{stem}.png",
                    [
                        ("original", log_spec[k].numpy()),
                        (f"{args.phase}, {args.iters} it.", rebuilt_log[k]),
                    ],
                    features,
                    title=f"{name}: spectral convergence {sc[k]:.3f}",
                )
            except OSError as exc:
                raise SfxganError(f"cannot write to '{out}': {exc.strerror or exc}") from exc

    print(f"spectral convergence ({args.phase}, {args.iters} iterations, preset {preset.name}):")
    for name, values in per_class_sc.items():
        print(f"  {name:<16} {np.mean(values):.4f}  ({len(values)} clips)")
    overall = float(np.mean([v for values in per_class_sc.values() for v in values]))
    print(f"  {'mean':<16} {overall:.4f}")
    summary = {
        "preset": preset.name,
        "phase": args.phase,
        "iterations": args.iters,
        "spectral_convergence": {k: float(np.mean(v)) for k, v in per_class_sc.items()},
        "mean_spectral_convergence": overall,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote original and reconstructed WAVs and spectrogram PNGs to {out}")
    return 0


def _add_train_settings(parser: argparse.ArgumentParser) -> None:
    """One option per TrainConfig field; None means 'not given' (the preset or file decides)."""
    choices = {
        "recon_phase": PHASE_METHODS,
        "recon_normalize": ("batch", "clip"),
        "crop": CROP_MODES,
    }
    for f in dataclasses.fields(TrainConfig):
        kind = {"int": int, "float": float, "str": str}[
            f.type if isinstance(f.type, str) else f.type.__name__
        ]
        parser.add_argument(
            f"--{f.name.replace('_', '-')}",
            dest=f.name,
            type=kind,
            default=None,
            choices=choices.get(f.name),
            help=f"{f.metadata['help']} (default: the preset's)",
        )


def cmd_train(args: argparse.Namespace) -> int:
    from .train import read_config_file, train

    preset_name, settings = args.preset, {}
    if args.config:
        file_preset, settings = read_config_file(args.config)
        preset_name = preset_name or file_preset
    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name) is not None
    }
    settings.update(given)
    if args.resume and args.preset:
        raise SfxganError("--preset cannot change when resuming; the run keeps its own")
    result = train(
        args.data,
        args.out,
        preset_name or "tiny",
        settings,
        resume=args.resume,
        cache_dir=args.cache_dir,
        progress=not args.quiet,
        use_cache=not args.no_cache,
    )
    if result.interrupted:
        print(
            f"interrupted at step {result.step}; checkpoint saved in {result.run}/checkpoints; "
            f"continue with: sfxgan train {args.data} --out {result.run} --resume"
        )
        return 130
    print(
        f"trained {result.run} to step {result.step} in {result.seconds:.0f} s "
        f"({result.samples_per_s:.1f} samples/s); previews in {result.run}/previews"
    )
    print(f"generate sounds with: sfxgan generate {result.run} --out <folder>")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from .generate import Sampler, generate_to_folder

    sampler = Sampler.from_run(args.run, device=args.device)
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    start = time.perf_counter()
    written = generate_to_folder(
        sampler,
        Path(args.out),
        args.per_class,
        classes,
        args.seed,
        args.phase,
        args.iters,
        pictures=args.png,
    )
    total = sum(len(v) for v in written.values())
    seconds = time.perf_counter() - start
    print(
        f"wrote {total} clips ({args.per_class} per class: {', '.join(written)}) from step "
        f"{sampler.step} to {args.out} in {seconds:.1f} s ({total / seconds:.1f} clips/s)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfxgan", description="Conditional sound-effect generation with a regularized WGAN."
    )
    parser.add_argument("--version", action="version", version=f"sfxgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "demo-data",
        help="write the built-in synthetic demo dataset",
        description="Write a procedurally synthesised dataset (footsteps, "
        "gunshots, rain, engine, birds) so everything runs offline.",
    )
    p.add_argument("dir", help="output folder (new or empty)")
    p.add_argument("--per-class", type=_positive_int, default=40)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser(
        "reconstruct",
        help="spectrogram -> Griffin-Lim -> audio on real clips",
        description="Turn real clips into spectrograms and back with phase "
        "reconstruction; write WAVs and PNGs and print the spectral "
        "convergence.",
    )
    p.add_argument("data", help="class folders or a CSV manifest (path,label)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    p.add_argument("--phase", default="fast-griffin-lim", choices=PHASE_METHODS)
    p.add_argument("--iters", type=_positive_int, default=32)
    p.add_argument("--per-class", type=_positive_int, default=4)
    _add_data_options(p)
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser(
        "train",
        help="train a conditional WGAN-GP (with the reconstruction loss)",
        description="Train on class folders or a CSV manifest. Settings come from "
        "the preset, then --config FILE (JSON), then the options.",
    )
    p.add_argument("data", help="class folders or a CSV manifest (path,label)")
    p.add_argument("--out", required=True, type=Path, help="run folder")
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="shapes and default settings (default: tiny)",
    )
    p.add_argument("--config", type=Path, help="JSON file of training settings")
    p.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its latest checkpoint"
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="feature cache folder")
    p.add_argument("--no-cache", action="store_true", help="decode every file again")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_train_settings(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "generate",
        help="write new clips per class from a trained run",
        description="Write OUT/<class>/<class>_<i>.wav (16-bit PCM) from a run "
        "folder or checkpoint file.",
    )
    p.add_argument("run", help="run folder (uses its latest checkpoint) or a checkpoint file")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--per-class", type=_positive_int, default=10)
    p.add_argument("--classes", help="comma-separated class names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phase", default="fast-griffin-lim", choices=PHASE_METHODS)
    p.add_argument("--iters", type=_positive_int, default=32)
    p.add_argument("--png", action="store_true", help="also write a spectrogram PNG per clip")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    p.set_defaults(func=cmd_generate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SfxganError as exc:
        print(f"sfxgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfxgan: interrupted", file=sys.stderr)
        return 130
