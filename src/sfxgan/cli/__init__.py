"""The `sfxgan` command.

User errors (SfxganError) print one line and exit with code 2; argparse does the same for wrong
arguments. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sfxgan import __version__, threads
from sfxgan.config import (
    CROP_MODES,
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    DEFAULT_PRESET,
    MODEL_CHOICES,
    MODEL_OPTIONS,
    PHASE_METHODS,
    PRESETS,
    ModelConfig,
    TrainConfig,
    get_preset,
)
from sfxgan.data.audio import write_wav
from sfxgan.errors import SfxganError


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _threads(text: str) -> int | str:
    if text == "auto":
        return text
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be auto or a number of threads, got {text!r}")
    return int(text)


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
    from sfxgan.apps.demo import DEMO_CLASSES, write_demo_dataset

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
    from sfxgan.data.dataset import load_dataset
    from sfxgan.dsp.features import STFT, from_log_spec, to_log_spec
    from sfxgan.dsp.phase import reconstruct, spectral_convergence
    from sfxgan.plots import save_spectrograms

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


def _setting_fields() -> list[dataclasses.Field]:
    """The settings a user gives as options or --config keys: every TrainConfig field and the
    model options (MODEL_OPTIONS) of ModelConfig."""
    model = [f for f in dataclasses.fields(ModelConfig) if f.name in MODEL_OPTIONS]
    return model + list(dataclasses.fields(TrainConfig))


def _add_train_settings(parser: argparse.ArgumentParser) -> None:
    """One option per setting; None means 'not given' (the preset or file decides)."""
    choices = {
        "recon_phase": PHASE_METHODS,
        "recon_normalize": ("batch", "clip"),
        "crop": CROP_MODES,
        **MODEL_CHOICES,
    }
    for f in _setting_fields():
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
    from sfxgan.training.trainer import read_config_file, train

    preset_name, settings = args.preset, {}
    if args.config:
        file_preset, settings = read_config_file(args.config)
        preset_name = preset_name or file_preset
    given = {
        f.name: getattr(args, f.name)
        for f in _setting_fields()
        if getattr(args, f.name) is not None
    }
    settings.update(given)
    if args.resume and args.preset:
        raise SfxganError("--preset cannot change when resuming; the run keeps its own")
    result = train(
        args.data,
        args.out,
        preset_name or DEFAULT_PRESET,
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
    print(
        f"trained {result.run} to step {result.step} in {result.seconds:.0f} s "
        f"({result.samples_per_s:.1f} samples/s); previews in {result.run}/previews"
    )
    print(f"generate sounds with: sfxgan generate {result.run} --out <folder>")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    from sfxgan.generate import Sampler, generate_to_folder

    sampler = Sampler.from_run(args.run, device=args.device, ema=not args.no_ema)
    classes = _class_list(args.classes)
    start = time.perf_counter()
    if args.dcase:
        from sfxgan.apps.dcase import DCASE_CLIPS_PER_CLASS, write_dcase

        if args.png:
            raise SfxganError(
                "--png is not part of the DCASE layout (audio only); drop it, or write the "
                "pictures with a plain `sfxgan generate --png` into another folder"
            )

        per_class = args.per_class or DCASE_CLIPS_PER_CLASS
        written = write_dcase(
            sampler, Path(args.out), per_class, classes, args.seed, args.phase, args.iters
        )
    else:
        per_class = args.per_class or 10
        written = generate_to_folder(
            sampler,
            Path(args.out),
            per_class,
            classes,
            args.seed,
            args.phase,
            args.iters,
            pictures=args.png,
        )
    total = sum(len(v) for v in written.values())
    seconds = time.perf_counter() - start
    weights = "moving-average" if sampler.weights == "ema" else "trained"
    layout = " in the DCASE 2023 Task 7 layout" if args.dcase else ""
    print(
        f"wrote {total} clips ({per_class} per class: {', '.join(written)}) from step "
        f"{sampler.step} ({weights} weights) to {args.out}{layout} in {seconds:.1f} s "
        f"({total / seconds:.1f} clips/s)"
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from sfxgan.apps.export import export_run

    model_path, sidecar_path = export_run(args.run, args.format, args.out, ema=not args.no_ema)
    print(f"wrote {model_path} and its settings {sidecar_path}")
    return 0


def cmd_studio(args: argparse.Namespace) -> int:
    from sfxgan.apps.studio import serve

    serve(args.run, host=args.host, port=args.port, device=args.device, ema=not args.no_ema)
    return 0


def _class_list(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def cmd_classifier_train(args: argparse.Namespace) -> int:
    from sfxgan.evaluate.judge import JudgeConfig, train_judge_on_folder

    out = Path(args.out)
    if out.is_dir() or out.suffix.lower() == ".json":
        raise SfxganError(f"--out '{out}': give a classifier file name such as judge.pt")
    config = JudgeConfig(
        sample_rate=args.sample_rate, clip_samples=round(args.seconds * args.sample_rate)
    )
    start = time.perf_counter()
    judge = train_judge_on_folder(
        args.data,
        config,
        crop=args.crop,
        epochs=args.epochs,
        seed=args.seed,
        progress=not args.quiet,
    )
    judge.save(out)
    meta = judge.meta
    per_class = ", ".join(f"{k} {100 * v:.0f} %" for k, v in meta["per_class_accuracy"].items())
    print(
        f"classifier: held-out accuracy {100 * meta['accuracy']:.1f} % on {meta['n_held_out']} "
        f"clips ({per_class}"
        + (
            f"; {100 * meta['accuracy_resynthesised']:.1f} % after Griffin-Lim resynthesis"
            if meta.get("accuracy_resynthesised") is not None
            else ""
        )
        + f"); trained on {meta['n_train']} clips in "
        f"{time.perf_counter() - start:.0f} s"
    )
    print(f"saved {out} (and {out.with_suffix('.json')})")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sfxgan.evaluate.evaluation import evaluate
    from sfxgan.evaluate.judge import Judge
    from sfxgan.evaluate.report import check_report_folder, table_rows, write_report

    check_report_folder(Path(args.out))
    judge = Judge.load(args.classifier) if args.classifier else None
    vggish = None
    if args.vggish:
        from sfxgan.evaluate.vggish import load_vggish

        vggish = load_vggish(None if args.vggish == "auto" else args.vggish)
    start = time.perf_counter()
    evaluation = evaluate(
        args.real,
        args.generated,
        judge=judge,
        run=args.run,
        classes=_class_list(args.classes),
        crop=args.crop,
        seed=args.seed,
        vggish=vggish,
        progress=not args.quiet,
        ema=not args.no_ema,
    )
    out = Path(args.out)
    report = write_report(evaluation, out, run=args.run)
    if judge is None:
        evaluation.judge.save(out / "classifier.pt")
    headers, rows = table_rows(evaluation)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    overall = evaluation.metrics["overall"]
    print(
        f"Inception Score {overall['inception_score']:.2f} "
        f"(real {overall['inception_score_real']:.2f}); "
        f"classifier held-out accuracy {100 * (evaluation.judge.accuracy or 0):.1f} %"
    )
    print(
        f"report: {report}  metrics: {out / 'metrics.json'}  ({time.perf_counter() - start:.0f} s)"
    )
    return 0


def cmd_experiment_compare(args: argparse.Namespace) -> int:
    from sfxgan.apps.experiment import compare, parse_floats, parse_ints, table_markdown

    weights = parse_floats(args.weights, "weights")
    seeds = parse_ints(args.seeds, "seeds")
    start = time.perf_counter()
    try:
        results = compare(
            args.data,
            args.out,
            weights,
            seeds,
            args.steps,
            preset=args.preset,
            per_class=args.per_class,
            progress=not args.quiet,
        )
    except KeyboardInterrupt:
        print(
            f"interrupted; finished runs are kept in {args.out}/runs and the run in progress was "
            "checkpointed: run the same command again to continue",
            file=sys.stderr,
        )
        return 130
    print(table_markdown(results))
    print(
        f"wrote {args.out}/results.md, results.csv, results.json and results.png "
        f"in {time.perf_counter() - start:.0f} s"
    )
    return 0


def cmd_experiment_curves(args: argparse.Namespace) -> int:
    from sfxgan.apps.experiment import curve_gaps, curves_markdown, speed_markdown
    from sfxgan.plots import overlay_loss_curves
    from sfxgan.training.trainer import read_metrics

    labels = args.labels.split(",") if args.labels else [Path(r).name for r in args.runs]
    if len(labels) != len(args.runs) or len(set(labels)) != len(labels):
        raise SfxganError(
            f"--labels needs {len(args.runs)} different names, one per run, separated by commas"
        )
    runs = {}
    for label, run in zip(labels, args.runs, strict=True):
        rows = read_metrics(run)
        if not rows:
            raise SfxganError(f"'{run}' has no metrics.csv; give training run folders")
        runs[label] = rows
    print(curves_markdown(curve_gaps(runs), labels[0]))
    print()
    print(speed_markdown(runs))
    print(f"wrote {overlay_loss_curves(args.out, runs)}")
    if args.quality:
        write_quality_curves(args, labels)
    return 0


def write_quality_curves(args: argparse.Namespace, labels: list[str]) -> None:
    """The runs' quality.csv (train --eval-every) in one figure, one colour per group, and the
    last check of each run as a table."""
    from sfxgan.evaluate.tracking import read_quality, save_quality_curves

    groups = args.groups.split(",") if args.groups else labels
    if len(groups) != len(labels):
        raise SfxganError(f"--groups needs {len(labels)} names, one per run, separated by commas")
    quality = {label: read_quality(run) for label, run in zip(labels, args.runs, strict=True)}
    missing = [str(run) for run, rows in zip(args.runs, quality.values(), strict=True) if not rows]
    if missing:
        raise SfxganError(
            f"no quality.csv in {', '.join(missing)}: train with --eval-every N to track quality"
        )
    print()
    print("| run | step | class fit | FD | KID | diversity | minutes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, rows in quality.items():
        last = rows[-1]
        print(
            f"| {label} | {last['step']:.0f} | {last['class_fit']:.1%} | {last['fd']:.2f} | "
            f"{last['kid']:.3f} | {last['diversity']:.2f} | {last['train_seconds'] / 60:.1f} |"
        )
    references = next(iter(quality.values()))[-1]
    print(
        f"references: FD between real halves {references['fd_real']:.2f}, real via Griffin-Lim "
        f"{references['fd_resynth']:.2f}, the judge on the real clips "
        f"{references['class_fit_real']:.1%}"
    )
    group_of = dict(zip(labels, groups, strict=True))
    print(f"wrote {save_quality_curves(args.quality, quality, group_of)}")


def cmd_bench(args: argparse.Namespace) -> int:
    from sfxgan.apps.bench import default_plan, format_tables, run_bench, write_json

    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    result = run_bench(default_plan(quick=args.quick), log=log)
    print(format_tables(result))
    path = write_json(result, args.out)
    print(f"wrote {path}")
    return 0


def _add_weights_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-ema",
        action="store_true",
        help="use the trained generator weights, not their moving average (the default when "
        "the run kept one: --ema-decay in training)",
    )
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sfxgan", description="Conditional sound-effect generation with a regularized WGAN."
    )
    parser.add_argument("--version", action="version", version=f"sfxgan {__version__}")
    parser.add_argument(
        "--threads",
        type=_threads,
        default="auto",
        help="CPU threads for torch, or auto (the default): one per core that other processes "
        "leave free, checked again every few seconds during long work. A fixed N keeps results "
        "bit-identical between runs; more threads than free cores makes every step wait",
    )
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
    p.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS))
    p.add_argument("--phase", default=DEFAULT_PHASE, choices=PHASE_METHODS)
    p.add_argument("--iters", type=_positive_int, default=DEFAULT_PHASE_ITERS)
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
    p.add_argument(
        "--per-class",
        type=_positive_int,
        default=None,
        help="clips per class (default: 10; 100 with --dcase)",
    )
    p.add_argument("--classes", help="comma-separated class names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--phase", default=DEFAULT_PHASE, choices=PHASE_METHODS)
    p.add_argument("--iters", type=_positive_int, default=DEFAULT_PHASE_ITERS)
    p.add_argument("--png", action="store_true", help="also write a spectrogram PNG per clip")
    p.add_argument(
        "--dcase",
        action="store_true",
        help="write the DCASE 2023 Task 7 layout: OUT/<Category>/0001.wav..., 4 s, mono, "
        "16-bit, 22 050 Hz (resampled and padded or cropped)",
    )
    _add_weights_options(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser(
        "export",
        help="the generator as an ONNX or TorchScript file for game and audio tools",
        description="Write the generator plus the inverse of the log/normalisation (latent and "
        "class in, magnitude spectrogram out) and a JSON sidecar FILE.json with the classes, "
        "sample rate, STFT settings, max_value and latent size.",
    )
    p.add_argument("run", help="run folder (uses its latest checkpoint) or a checkpoint file")
    p.add_argument("--format", required=True, choices=("onnx", "torchscript"))
    p.add_argument("--out", required=True, type=Path, help="file to write, e.g. rain.onnx")
    p.add_argument(
        "--no-ema",
        action="store_true",
        help="export the trained generator weights, not their moving average",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "studio",
        help="a web page to audition, vary, blend and download generated clips",
        description="Serve a local web page (needs the studio extra: pip install "
        "'sfxgan[studio]'): pick a class, a number of variations and a seed, hear and see "
        "each clip, regenerate one, blend two classes, morph between two clips, download "
        "WAVs or a ZIP.",
    )
    p.add_argument("run", help="run folder (uses its latest checkpoint) or a checkpoint file")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: this machine only; 0.0.0.0 opens it to the network)",
    )
    p.add_argument("--port", type=int, default=7860)
    _add_weights_options(p)
    p.set_defaults(func=cmd_studio)

    p = sub.add_parser(
        "classifier",
        help="the judge network used by evaluate",
        description="A small CNN on log-mel spectrograms trained on your real data; its "
        "penultimate layer is the embedding for the distribution metrics.",
    )
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser("train", help="train the judge on class folders or a manifest")
    c.add_argument("data", help="class folders or a CSV manifest (path,label)")
    c.add_argument("--out", required=True, type=Path, help="classifier file, e.g. judge.pt")
    c.add_argument(
        "--seconds",
        type=float,
        default=1.024,
        help="clip length it listens to; match your generated clips (default: %(default)s)",
    )
    c.add_argument("--sample-rate", type=_positive_int, default=16000)
    c.add_argument("--epochs", type=_positive_int, default=40)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--crop", choices=CROP_MODES, default="start", help="part of long clips to keep")
    c.add_argument("--quiet", action="store_true", help="no progress bar")
    c.set_defaults(func=cmd_classifier_train)

    p = sub.add_parser(
        "evaluate",
        help="quality, diversity and memorisation metrics of generated clips, with a report",
        description="Compare generated clips (class sub-folders, as generate writes them) with "
        "the real data; write metrics.json, report.html and report.md.",
    )
    p.add_argument("--real", required=True, help="real class folders or a CSV manifest")
    p.add_argument("--generated", required=True, type=Path, help="generated class folders")
    p.add_argument("--out", required=True, type=Path, help="report folder")
    p.add_argument(
        "--classifier",
        type=Path,
        help="judge from `sfxgan classifier train` (default: train one on --real, saved in --out)",
    )
    p.add_argument(
        "--run",
        type=Path,
        help="the run that generated the clips: adds phase consistency and its loss curves",
    )
    p.add_argument(
        "--no-ema",
        action="store_true",
        help="the clips came from `generate --no-ema`: check the run's trained generator",
    )
    p.add_argument("--classes", help="comma-separated subset of classes to evaluate")
    p.add_argument(
        "--crop",
        choices=CROP_MODES,
        default=None,
        help="part of long real clips to keep (default: the run's, else start)",
    )
    p.add_argument(
        "--vggish",
        nargs="?",
        const="auto",
        metavar="WEIGHTS",
        help="add FAD with VGGish from local weights (a path, or $SFXGAN_VGGISH_WEIGHTS, or "
        "the torch hub cache); nothing is downloaded",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "experiment",
        help="controlled comparisons, e.g. of the reconstruction-loss weight",
        description="Run a set of trainings with the same budget and seeds and compare them.",
    )
    esub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    e = esub.add_parser(
        "compare",
        help="train, generate and evaluate per reconstruction weight and seed; one table",
        description="For every weight and seed: train, generate as many clips per class as the "
        "real data has, evaluate with one shared judge; write results.md/.csv/.json/.png. "
        "Rerunning the command continues where it stopped.",
    )
    e.add_argument("data", help="class folders or a CSV manifest (path,label)")
    e.add_argument("--out", required=True, type=Path, help="experiment folder")
    e.add_argument("--weights", default="0,1e-3,1e-2,1e-1", help="reconstruction weights w")
    e.add_argument("--seeds", default="0,1", help="seeds, one run per weight and seed")
    e.add_argument("--steps", type=_positive_int, default=600, help="steps per run")
    e.add_argument("--preset", default=DEFAULT_PRESET, choices=sorted(PRESETS))
    e.add_argument(
        "--per-class",
        type=_positive_int,
        default=None,
        help="generated clips per class (default: the smallest real class's count)",
    )
    e.add_argument("--quiet", action="store_true", help="no progress bars")
    e.set_defaults(func=cmd_experiment_compare)
    e = esub.add_parser(
        "curves",
        help="overlay the loss curves of several runs; how far apart they are, how fast each ran",
        description="Plot the runs' loss curves in one figure and print, per metric, each run's "
        "RMS gap to the first run. Compare a setting's gap with the gap between two seeds.",
    )
    e.add_argument("runs", nargs="+", help="training run folders (the first is the reference)")
    e.add_argument("--out", required=True, type=Path, help="PNG file to write")
    e.add_argument("--labels", help="names for the runs, comma-separated (default: folder names)")
    e.add_argument(
        "--quality",
        type=Path,
        help="also draw the runs' quality curves (train --eval-every) into this PNG and print "
        "each run's last check",
    )
    e.add_argument(
        "--groups",
        help="with --quality: a group name per run, comma-separated; runs of one group (e.g. "
        "the seeds of one setting) share a colour",
    )
    e.set_defaults(func=cmd_experiment_curves)

    p = sub.add_parser(
        "bench",
        help="training and generation throughput, Griffin-Lim cost, FLOPs and the CPU's peak",
        description="Time training steps, generation and Griffin-Lim (medians after a warm-up), "
        "count FLOPs and measure the matrix-product peak; print tables and write JSON.",
    )
    p.add_argument("--out", type=Path, default=Path("bench.json"), help="JSON results file")
    p.add_argument("--quick", action="store_true", help="a short run (tiny only) for checks")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    threads.configure(args.threads, log=lambda message: print(message, file=sys.stderr))
    try:
        return args.func(args)
    except SfxganError as exc:
        # under torchrun every process meets the same error: rank 0 says it
        if os.environ.get("RANK", "0") == "0":
            print(f"sfxgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sfxgan: interrupted", file=sys.stderr)
        return 130
