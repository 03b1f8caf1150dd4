"""`sfxgan experiment compare`: the paper's comparison, measured.

For every reconstruction-loss weight w and seed: train with the same preset, step budget and seed,
generate as many clips per class as the real data has, and evaluate them with one shared judge.
The table gives, per weight, the mean and spread (sample standard deviation) over seeds.

OUT/
    classifier.pt                  the judge, trained once on DATA (also each run's judge.pt)
    runs/w=<w>-seed=<s>/           each run folder, with generated/ and evaluation/ inside
    results.md, results.csv, results.json, results.png
    curves.png                     every run's quality.csv (--eval-every) against steps and time

Everything is resumable: a finished run or evaluation is kept, an unfinished one is resumed, so
the same command continues after an interruption (Ctrl-C saves the training run in progress).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sfxgan.config import (
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    DEFAULT_PRESET,
    FeatureConfig,
    get_preset,
)
from sfxgan.errors import ConfigError, SfxganError
from sfxgan.files import (
    atomic_write,
    copy_file_atomic,
    save_figure,
    write_json_atomic,
    write_text_atomic,
)
from sfxgan.run_folder import JUDGE_FILE

# (metrics key, column header, better): the overall figures compared across weights
COMPARED = [
    ("class_fit", "class fit", "higher"),
    ("inception_score", "IS", "higher"),
    ("fd", "FD", "lower"),
    ("kid", "KID", "lower"),
    ("ndb_k", "NDB/K", "lower"),
    ("diversity", "diversity", "near 1"),
    ("memorisation", "near copies", "lower"),
    ("attack_ms", "attack ms", "near real"),
    ("floor_db", "floor dB", "near real"),
    ("phase_sc", "phase SC", "lower"),
]

# the reference figures printed under the table
REFERENCES = [
    ("FD between real halves", "fd_real"),
    ("FD of Griffin-Lim resynthesised real clips", "fd_resynth"),
    ("KID between real halves", "kid_real"),
    ("NDB/K between real halves", "ndb_k_real"),
    ("near copies among real clips", "memorisation_real"),
    ("phase SC of real clips", "phase_sc_real"),
    ("attack of real clips (ms)", "attack_ms_real"),
    ("attack of real clips via the phase path (ms)", "attack_ms_resynth"),
    ("floor of real clips (dB)", "floor_db_real"),
    ("floor of real clips via the phase path (dB)", "floor_db_resynth"),
]


@dataclass(frozen=True)
class Trial:
    weight: float
    seed: int

    @property
    def name(self) -> str:
        return f"w={self.weight:g}-seed={self.seed}"


def parse_floats(text: str, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{what} must be comma-separated numbers, got '{text}'") from None
    if not values or any(v < 0 for v in values):
        raise ConfigError(f"--{what} needs one or more numbers >= 0, got '{text}'")
    return values


def parse_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{what} must be comma-separated integers, got '{text}'") from None
    if not values:
        raise ConfigError(f"--{what} needs at least one integer")
    return values


def _run_step(run: Path) -> int:
    """The step of a run's latest checkpoint, 0 when there is none."""
    from sfxgan.run_folder import find_checkpoint, load_checkpoint

    try:
        return int(load_checkpoint(find_checkpoint(run))["step"])
    except SfxganError:
        return 0


@dataclass(frozen=True)
class _Plan:
    """What every trial of one comparison shares."""

    data: str | Path
    preset: str
    steps: int
    per_class: int
    settings: dict
    judge_path: Path
    progress: bool
    log: Callable[[str], None]


def compare(
    data: str | Path,
    out: str | Path,
    weights: list[float],
    seeds: list[int],
    steps: int,
    preset: str = DEFAULT_PRESET,
    per_class: int | None = None,
    settings: dict | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Train, generate and evaluate every (weight, seed); write the tables. Returns results."""
    from sfxgan.data.dataset import list_source
    from sfxgan.evaluate.tracking import read_quality, save_quality_curves

    if steps < 1:
        raise ConfigError(f"--steps must be at least 1, got {steps}")
    features = get_preset(preset).features
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    listing = list_source(data)
    if per_class is None:
        counts = [sum(e.label == c for e in listing.entries) for c in listing.classes]
        per_class = max(2, min(counts)) if counts else 2
    plan = _Plan(
        data, preset, steps, per_class, settings or {}, out / "classifier.pt", progress, log
    )
    judge = _shared_judge(plan, features)

    trials = [Trial(w, s) for w in weights for s in seeds]
    rows = []
    for i, trial in enumerate(trials, start=1):
        run = out / "runs" / trial.name
        if not (run / "evaluation" / "metrics.json").is_file():
            _train_trial(plan, trial, run, f"[{i}/{len(trials)}]")
            log(f"[{i}/{len(trials)}] generating and evaluating {trial.name}")
            _evaluate_trial(plan, trial, run, judge)
        rows.append(_trial_row(trial, run))
    results = summarise(rows, weights)
    curves = {t.name: read_quality(out / "runs" / t.name) for t in trials}
    save_quality_curves(out / "curves.png", curves, {t.name: f"w={t.weight:g}" for t in trials})
    write_results(
        out,
        rows,
        results,
        judge.accuracy,
        dict(data=str(data), preset=preset, steps=steps, seeds=seeds, per_class=per_class),
    )
    return results


def _shared_judge(plan: _Plan, features: FeatureConfig):
    """The comparison's one judge: loaded when an earlier call trained it, else trained on the
    data at the preset's clip length and saved."""
    from sfxgan.evaluate.judge import Judge, JudgeConfig, train_judge_on_folder

    if plan.judge_path.is_file():
        judge = Judge.load(plan.judge_path)
    else:
        plan.log(f"training the judge on {plan.data}")
        config = JudgeConfig(
            clip_samples=round(
                features.clip_samples * JudgeConfig.sample_rate / features.sample_rate
            )
        )
        judge = train_judge_on_folder(plan.data, config, seed=0, progress=plan.progress)
        judge.save(plan.judge_path)
    plan.log(f"judge held-out accuracy {100 * (judge.accuracy or 0):.1f} %")
    return judge


def _train_trial(plan: _Plan, trial: Trial, run: Path, counter: str) -> None:
    """Train the trial's run up to the planned steps, resuming what an earlier call left."""
    from sfxgan.training.trainer import train

    step = _run_step(run)
    if step >= plan.steps:
        return
    plan.log(f"{counter} training {trial.name} ({plan.steps} steps)")
    # the quality checks during training use the shared judge too: every curve and every
    # final figure comes from one judge
    run.mkdir(parents=True, exist_ok=True)
    if not (run / JUDGE_FILE).is_file():
        copy_file_atomic(plan.judge_path, run / JUDGE_FILE)
    result = train(
        plan.data,
        run,
        plan.preset,
        # every trial trains the planned steps, as the paper's comparison does, unless the
        # user asks for a patience: a preset's (tiny's) would stop trials at different steps
        {
            "patience": 0,
            **plan.settings,
            "steps": plan.steps,
            "recon_weight": trial.weight,
            "seed": trial.seed,
        },
        resume=step > 0,
        progress=plan.progress,
    )
    if result.interrupted:
        raise KeyboardInterrupt
    write_text_atomic(run / "train_seconds.txt", f"{result.seconds:.1f}\n")


def _evaluate_trial(plan: _Plan, trial: Trial, run: Path, judge) -> None:
    """Generate the trial's clips into RUN/generated and evaluate them into RUN/evaluation."""
    from sfxgan.apps.takes import generate_to_folder
    from sfxgan.evaluate.evaluation import evaluate
    from sfxgan.evaluate.report import write_report
    from sfxgan.generate import Sampler

    sampler = Sampler.from_run(run)
    generated = run / "generated"
    # the trial's own scratch folder: takes of an earlier, interrupted attempt are replaced
    generate_to_folder(
        sampler,
        generated,
        plan.per_class,
        None,
        trial.seed,
        DEFAULT_PHASE,
        DEFAULT_PHASE_ITERS,
        overwrite=True,
    )
    evaluation = evaluate(plan.data, generated, judge=judge, run=run, progress=False, log=None)
    write_report(evaluation, run / "evaluation", run=run)


def _trial_row(trial: Trial, run: Path) -> dict:
    """The trial's line of the tables: its weight, seed, training time and overall figures."""
    overall = json.loads((run / "evaluation" / "metrics.json").read_text())["overall"]
    seconds_file = run / "train_seconds.txt"
    train_seconds = float(seconds_file.read_text()) if seconds_file.is_file() else None
    return {"weight": trial.weight, "seed": trial.seed, "train_seconds": train_seconds, **overall}


def summarise(rows: list[dict], weights: list[float]) -> dict:
    """Per weight and compared figure: mean, sample std over seeds, and the seeds' values."""
    summary = {}
    keys = [k for k, _, _ in COMPARED] + [k for _, k in REFERENCES] + ["train_seconds"]
    for weight in weights:
        group = [r for r in rows if r["weight"] == weight]
        summary[f"{weight:g}"] = {}
        for key in keys:
            values = [r[key] for r in group if r.get(key) is not None]
            if not values:
                continue
            summary[f"{weight:g}"][key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
                "values": values,
            }
    return summary


def _cell(stats: dict | None, key: str) -> str:
    if stats is None:
        return "n/a"
    scale, unit = (100, " %") if key in ("class_fit", "memorisation") else (1, "")
    digits = 3 if key == "kid" else 1 if key in ("attack_ms", "floor_db") else 2
    return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}{unit}"


def table_markdown(results: dict) -> str:
    headers = ["w"] + [f"{h} ({better})" for _, h, better in COMPARED] + ["train s"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---:|" * len(headers)]
    for weight, stats in results.items():
        cells = [weight] + [_cell(stats.get(k), k) for k, _, _ in COMPARED]
        seconds = stats.get("train_seconds")
        cells.append(f"{seconds['mean']:.0f}" if seconds else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    floors = []
    for label, key in REFERENCES:
        values = [s[key]["mean"] for s in results.values() if key in s]
        if values:
            shown = (
                f"{100 * np.mean(values):.1f} %"
                if key == "memorisation_real"
                else (f"{np.mean(values):.3f}")
            )
            floors.append(f"{label} {shown}")
    if floors:
        lines += ["", "Reference figures of the real data: " + "; ".join(floors) + "."]
    return "\n".join(lines)


def write_results(out: Path, rows: list[dict], results: dict, judge_accuracy, setup: dict) -> None:
    fields = (
        ["weight", "seed", "train_seconds"]
        + [k for k, _, _ in COMPARED]
        + [k for _, k in REFERENCES]
    )
    with atomic_write(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    write_json_atomic(
        out / "results.json",
        {
            "setup": setup,
            "judge_held_out_accuracy": judge_accuracy,
            "summary": results,
            "runs": rows,
        },
    )
    text = [
        "# sfxgan experiment compare",
        "",
        f"Data `{setup['data']}`, preset `{setup['preset']}`, {setup['steps']} steps, seeds "
        f"{', '.join(map(str, setup['seeds']))}, {setup['per_class']} generated clips per class; "
        f"judge held-out accuracy {100 * (judge_accuracy or 0):.1f} %. Mean ± standard deviation "
        "over seeds of the overall figures.",
        "",
        table_markdown(results),
        "",
        "![results](results.png)",
        "",
        "Quality during training (one colour per weight, one line per seed; dashed: the "
        "real-data references):",
        "",
        "![curves](curves.png)",
    ]
    write_text_atomic(out / "results.md", "\n".join(text) + "\n")
    plot_results(out / "results.png", results)


def plot_results(path: Path, results: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sfxgan.evaluate.report import FLOORS, SECOND_FLOORS

    weights = list(results)
    fig, axes = plt.subplots(2, (len(COMPARED) + 1) // 2, figsize=(3.5 * len(COMPARED) / 2, 6))
    fig.subplots_adjust(left=0.05, right=0.99, bottom=0.1, top=0.92, wspace=0.3, hspace=0.45)
    x = np.arange(len(weights))
    for ax in axes.flat[len(COMPARED) :]:
        ax.set_visible(False)
    for ax, (key, header, better) in zip(axes.flat, COMPARED, strict=False):
        stats = [results[w].get(key) for w in weights]
        shown = [(i, s) for i, s in enumerate(stats) if s is not None]
        if shown:
            xs = [x[i] for i, _ in shown]
            ax.errorbar(
                xs,
                [s["mean"] for _, s in shown],
                yerr=[s["std"] for _, s in shown],
                marker="o",
                capsize=4,
            )
            for i, s in shown:
                ax.scatter([x[i]] * len(s["values"]), s["values"], s=10, color="grey", zorder=3)
        lines = [(FLOORS.get(key), "real data", "tab:green")]
        if key in SECOND_FLOORS:
            lines.append((SECOND_FLOORS[key], "real via Griffin-Lim", "tab:orange"))
        drawn = [v for _, s in shown for v in s["values"]]
        drawn += [s["mean"] + sign * s["std"] for _, s in shown for sign in (-1, 1)]
        for floor, label, colour in lines:
            floors = [results[w][floor]["mean"] for w in weights if floor in results[w]]
            if floors:
                level = float(np.mean(floors))
                ax.axhline(level, color=colour, ls="--", lw=1, label=label)
                drawn.append(level)
                ax.legend(fontsize=7)
        if drawn:  # keep the reference lines in view
            low, high = min(drawn), max(drawn)
            pad = 0.08 * (high - low) or 0.05 * max(abs(high), 1e-3)
            ax.set_ylim(low - pad, high + pad)
        ax.set_xticks(x, weights)
        ax.set_xlabel("reconstruction weight w", fontsize=8)
        ax.set_title(f"{header} ({better} is better)", fontsize=9)
        ax.tick_params(labelsize=7)
    save_figure(fig, path, dpi=90)
    plt.close(fig)
    return path


# --- loss curves of several runs ------------------------------------------------------------------


def curve_gaps(runs: Mapping[str, Sequence[dict]]) -> list[dict]:
    """How far each run's loss curves lie from the first run's, per metric.

    For each metric: the mean over the last fifth of the steps, and the RMS difference between
    the running means of this run and the first one over the steps both logged. Comparing the
    gap of a changed setting with the gap between two seeds tells whether a change is within
    the noise of training.
    """
    from sfxgan.plots import LOSS_PANELS, running_mean, smoothing_window

    labels = list(runs)
    first = {r["step"]: r for r in runs[labels[0]]}
    rows = []
    shared = {label: [r for r in runs[label] if r["step"] in first] for label in labels}
    for key, title in LOSS_PANELS:
        for label in labels:
            mine = runs[label]
            tail = np.array([r[key] for r in mine[-max(1, len(mine) // 5) :]], dtype=np.float64)
            row = {"metric": title, "run": label, "tail_mean": float(tail.mean()), "gap": 0.0}
            if label != labels[0] and shared[label]:
                k = smoothing_window(len(shared[label]))
                a = running_mean(np.array([r[key] for r in shared[label]], dtype=np.float64), k)
                b = running_mean(np.array([first[r["step"]][key] for r in shared[label]]), k)
                row["gap"] = float(np.sqrt(np.mean((a - b) ** 2)))
            rows.append(row)
    return rows


WARM_UP_STEPS = 3  # the first steps of a process allocate and warm caches: not its speed


def speed_markdown(runs: Mapping[str, Sequence[dict]]) -> str:
    """Each run's median seconds per step and samples/s (after the warm-up steps), and its
    speed relative to the first run."""
    lines = [
        "| run | steps timed | median s/step | samples/s | speed vs first |",
        "|---|---:|---:|---:|---:|",
    ]
    first = None
    for label, rows in runs.items():
        timed = rows[WARM_UP_STEPS:] or rows
        seconds = float(np.median([r["seconds"] for r in timed]))
        first = first or seconds
        samples = float(np.median([r["samples_per_s"] for r in timed]))
        lines.append(
            f"| {label} | {len(timed)} | {seconds:.3g} | {samples:.3g} | {first / seconds:.2f}x |"
        )
    return "\n".join(lines)


def curves_markdown(rows: list[dict], first: str) -> str:
    lines = [
        f"| metric | run | mean, last fifth of steps | RMS gap to {first} (running means) |",
        "|---|---|---:|---:|",
    ]
    for r in rows:
        gap = "" if r["run"] == first else f"{r['gap']:.3g}"
        lines.append(f"| {r['metric']} | {r['run']} | {r['tail_mean']:.4g} | {gap} |")
    return "\n".join(lines)
