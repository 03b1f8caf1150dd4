"""Quality during training (`sfxgan train --eval-every N`): learning curves, not one end point.

The judge (evaluate/judge.py) is trained once, on the run's own training clips, and kept in the
run folder (`RUN/judge.pt`; `evaluate --run RUN` reuses it). Every N steps the generator that
generation uses (the moving average, with its standing BatchNorm statistics) makes clips from
fixed latents, as many per class as the real data has (up to MAX_PER_CLASS), through the phase
reconstruction `generate` uses; they are scored with the functions `sfxgan evaluate` uses:

    RUN/quality.csv        step, training seconds, class fit (overall and per class), FD, KID,
                           diversity (overall, and within classes), near copies, attack time
                           and noise floor (overall and per class), the real-data references
    RUN/previews/quality.png   each figure against steps and training time, references as lines

Fixed latents make consecutive rows differ by the weights only, so the curve shows training,
not the sampling noise of new latents.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from sfxgan.data.dataset import SoundDataset
from sfxgan.errors import SfxganError
from sfxgan.evaluate import metrics
from sfxgan.evaluate.envelope import envelope_figures
from sfxgan.evaluate.evaluation import (
    MEMORISATION_QUANTILE,
    N_SPLITS,
    copy_features,
    distribution_figures,
    diversity,
)
from sfxgan.evaluate.judge import Judge, JudgeConfig, prepare, resynthesised, train_judge
from sfxgan.files import atomic_write, save_figure
from sfxgan.run_folder import RunSpec, judge_path, quality_path, run_of

if TYPE_CHECKING:
    from sfxgan.generate import Sampler

MAX_PER_CLASS = 64  # generated clips per class: enough for the FD at a few dozen real clips
# generated clips per class in the near-copy search: it resynthesises them (the costly part of
# a check, 70 % more time with all of them); a copying generator shows in 16 as in 40
NEAR_COPY_CLIPS = 16
LATENT_SEED = 0  # the latents of `sfxgan generate --seed 0`: the curve ends at what it writes

# The best check (RUN/checkpoints/best.pt, what generate uses by default): FD to the real clips
# decides, since it sees the spectrum, the envelope and the variety at once, but not at the cost
# of the class: a check is better than the best so far when its FD is lower by MIN_FD_GAIN at a
# class fit at most CLASS_FIT_SLACK below the best's, or when its class fit is higher by more
# than CLASS_FIT_SLACK. The gain keeps the FD's wobble between checks (a few %, from the fixed
# latents' finite sample) from counting as progress, so --patience counts real stalls.
MIN_FD_GAIN = 0.02
CLASS_FIT_SLACK = 0.05
BEST_RULE = (
    f"lowest FD (by {100 * MIN_FD_GAIN:.0f} %) at a class fit at most "
    f"{100 * CLASS_FIT_SLACK:.0f} points below the highest so far, or a class fit more than "
    f"{100 * CLASS_FIT_SLACK:.0f} points above the best's"
)
# the overall columns of quality.csv; the PER_CLASS ones follow as <figure>:<class name>
FIGURES = (
    "class_fit",
    "fd",
    "kid",
    "diversity",
    "diversity_within",
    "near_copies",
    "attack_ms",
    "floor_db",
)
PER_CLASS = ("class_fit", "near_copies", "attack_ms", "floor_db")
# the real-data references (constant over a run); the LISTENER ones also per class
REFERENCES = ("class_fit_real", "fd_real", "fd_resynth", "near_copies_real")
LISTENER = tuple(
    f"{key}_{kind}" for key in ("attack_ms", "floor_db") for kind in ("real", "resynth")
)


def load_or_train_judge(
    run: Path, spec: RunSpec, dataset: SoundDataset, log: Callable[[str], None] | None
) -> Judge:
    """The run's judge: RUN/judge.pt when it exists and fits the run (classes, clip length),
    else one trained on the training clips and saved there."""
    features = spec.features
    path = judge_path(run)
    if path.is_file():
        judge = Judge.load(path)
        if (
            judge.classes == list(spec.classes)
            and judge.config.clip_samples == features.clip_samples
            and judge.config.sample_rate == features.sample_rate
        ):
            return judge
        if log:
            log(f"{path} does not fit this run's classes or clip length; training a new one")
    config = JudgeConfig(sample_rate=features.sample_rate, clip_samples=features.clip_samples)
    start = time.perf_counter()
    judge = train_judge(
        np.asarray(dataset.audio),
        np.asarray(dataset.labels),
        list(spec.classes),
        config,
        seed=spec.train.seed,
        progress=False,
    )
    judge.meta.update({"source": str(Path(dataset.source).resolve()), "crop": dataset.crop})
    judge.save(path)
    if log:
        meta = judge.meta
        log(
            f"quality judge: held-out accuracy {100 * meta['accuracy']:.1f} % on "
            f"{meta['n_held_out']} clips ({100 * meta['accuracy_resynthesised']:.1f} % after "
            f"Griffin-Lim), trained in {time.perf_counter() - start:.0f} s; saved {path}"
        )
    return judge


def run_judge(run: str | Path, real_source: str | Path, classes: list[str], clip_samples: int):
    """The judge a run trained for its quality checks, when it fits an evaluation: trained on
    the same real data (the same folder or manifest), with these classes, at this clip length.
    None otherwise (evaluate then trains its own)."""
    path = judge_path(run_of(run))
    if not path.is_file():
        return None
    judge = Judge.load(path)
    source = judge.meta.get("source")
    same_data = source is not None and Path(source).resolve() == Path(real_source).resolve()
    fits = judge.classes == list(classes) and judge.config.clip_samples == clip_samples
    return judge if same_data and fits else None


@dataclass
class QualityTracker:
    """Scores a generator on fixed latents against the run's real clips with the run's judge."""

    judge: Judge
    classes: list[str]
    real_embeddings: np.ndarray  # (n, d) judge embeddings of the real training clips
    real_labels: np.ndarray  # (n,) indexing classes
    resynth_embeddings: np.ndarray  # (n, d) the same clips after Griffin-Lim
    real_copy: np.ndarray  # (n, f) the near-copy search's view of them (copy_features)
    per_class: list[int]  # generated clips per class
    references: dict[str, float]  # the constant columns: near copies, attack and floor of real

    @classmethod
    def start(
        cls,
        run: Path,
        spec: RunSpec,
        dataset: SoundDataset,
        log: Callable[[str], None] | None = None,
    ) -> QualityTracker:
        judge = load_or_train_judge(run, spec, dataset, log)
        audio = prepare(np.asarray(dataset.audio), judge.config.clip_samples)
        real = judge.outputs(audio)
        resynth = judge.outputs(resynthesised(audio, judge.config.sample_rate))
        labels = np.asarray(dataset.labels, dtype=np.int64)
        counts = np.bincount(labels, minlength=len(spec.classes))
        per_class = [int(min(max(c, 2), MAX_PER_CLASS)) for c in counts]
        real_copy = copy_features(resynth.log_mel)
        references = _real_references(spec, dataset, real_copy, labels, list(spec.classes))
        return cls(
            judge,
            list(spec.classes),
            real.embeddings,
            labels,
            resynth.embeddings,
            real_copy,
            per_class,
            references,
        )

    @property
    def fields(self) -> list[str]:
        return [
            "step",
            "train_seconds",
            "eval_seconds",
            *FIGURES,
            *[f"{key}:{name}" for key in PER_CLASS for name in self.classes],
            *REFERENCES,
            *LISTENER,
            *[f"{key}:{name}" for key in LISTENER for name in self.classes],
        ]

    def score(self, sampler: Sampler, phase: tuple[str, int]) -> dict[str, float]:
        """The figures of a Sampler's generator (its clips for `generate --seed 0`)."""
        start = time.perf_counter()
        audio, labels = [], []
        for i, (name, n) in enumerate(zip(self.classes, self.per_class, strict=True)):
            z = sampler.latents(name, n, LATENT_SEED)
            log_spec = sampler.log_spec(z, torch.full((n,), i, dtype=torch.long))
            audio.append(sampler.to_audio(log_spec, *phase).cpu().numpy())
            labels.append(np.full(n, i, dtype=np.int64))
        generated = self.judge.outputs(np.concatenate(audio))
        gen_labels = np.concatenate(labels)
        predicted = generated.probs.argmax(axis=1)
        row: dict[str, float] = {
            "class_fit": float(np.mean(predicted == gen_labels)),
        }
        figures = distribution_figures(
            self.real_embeddings,
            generated.embeddings,
            seed=0,
            n_splits=N_SPLITS,
            real_labels=self.real_labels,
            resynthesised=self.resynth_embeddings,
        )
        row.update({k: figures[k] for k in ("fd", "kid", "fd_real", "fd_resynth")})
        row["diversity"] = diversity(self.real_embeddings, generated.embeddings)
        within = []
        for i, name in enumerate(self.classes):
            own = gen_labels == i
            row[f"class_fit:{name}"] = float(np.mean(predicted[own] == i))
            real_own = self.real_embeddings[self.real_labels == i]
            value = diversity(real_own, generated.embeddings[own])
            if value is not None:
                within.append(value)
        row["diversity_within"] = float(np.mean(within)) if within else float("nan")
        row.update(self._listener_figures(np.concatenate(audio), gen_labels, sampler))
        accuracy = self.judge.meta.get("accuracy_resynthesised") or self.judge.accuracy
        row["class_fit_real"] = float(accuracy) if accuracy is not None else float("nan")
        row.update(self.references)
        row["eval_seconds"] = time.perf_counter() - start
        return {k: float("nan") if v is None else float(v) for k, v in row.items()}

    def _listener_figures(
        self, audio: np.ndarray, labels: np.ndarray, sampler: Sampler
    ) -> dict[str, float]:
        """Near copies (the share of all clips; per class), attack and floor (per class; overall
        the mean over classes) of the generated clips, as `sfxgan evaluate` computes them."""
        rate = self.judge.config.sample_rate
        searched = np.concatenate(
            [np.flatnonzero(labels == i)[:NEAR_COPY_CLIPS] for i in range(len(self.classes))]
        )
        clips = prepare(audio[searched], self.judge.config.clip_samples)
        generated_copy = copy_features(self.judge.outputs(resynthesised(clips, rate)).log_mel)
        row: dict[str, float] = {}
        flagged = 0
        for i, name in enumerate(self.classes):
            own, real_own = labels[searched] == i, self.real_labels == i
            if real_own.sum() >= 3:
                memo = metrics.memorisation(
                    generated_copy[own], self.real_copy[real_own], MEMORISATION_QUANTILE
                )
                row[f"near_copies:{name}"] = memo.share
                flagged += int(memo.flagged.sum())
            heard = envelope_figures(audio[labels == i], sampler.sample_rate)
            for key, value in heard.items():
                row[f"{key}:{name}"] = value
        row["near_copies"] = flagged / len(searched)
        for key in ("attack_ms", "floor_db"):
            row[key] = _class_mean(row, key, self.classes)
        return row


def _class_mean(row: dict, key: str, classes: list[str]) -> float:
    """The mean over classes of a per-class column (NaN where a class has none)."""
    values = [row.get(f"{key}:{name}") for name in classes]
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(values)) if len(values) == len(classes) else float("nan")


def _real_references(
    spec: RunSpec,
    dataset: SoundDataset,
    real_copy: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
) -> dict[str, float]:
    """The columns that describe the real clips: the near-copy share a generator that never
    copies would get, and per class (overall the mean over classes) the attack and floor of
    the training clips and of the same clips taken the generator's way to audio (the cached
    log-spectrograms through the run's inverse and phase reconstruction)."""
    from sfxgan.dsp.features import STFT
    from sfxgan.dsp.phase import audio_from_log_spec

    out: dict[str, float] = {
        "near_copies_real": _real_near_copy_floor(real_copy, labels, len(classes))
    }
    stft = STFT(spec.features)
    rate = spec.features.sample_rate
    for i, name in enumerate(classes):
        index = np.flatnonzero(labels == i)[:MAX_PER_CLASS]
        log_spec = torch.from_numpy(np.asarray(dataset.log_spec[index], dtype=np.float32))
        with torch.inference_mode():
            via = audio_from_log_spec(log_spec, stft, spec.max_value).numpy()
        real = np.asarray(dataset.audio[index], dtype=np.float32)
        for clips, kind in ((real, "real"), (via, "resynth")):
            for key, value in envelope_figures(clips, rate).items():
                out[f"{key}_{kind}:{name}"] = float("nan") if value is None else value
    for key in LISTENER:
        out[key] = _class_mean(out, key, classes)
    return out


def _real_near_copy_floor(real_copy: np.ndarray, labels: np.ndarray, n_classes: int) -> float:
    """The share of real clips their own class's near-copy test flags against the others."""
    flagged, counted = 0.0, 0
    for i in range(n_classes):
        own = real_copy[labels == i]
        if len(own) >= 4:
            flagged += metrics.memorisation_floor(own, MEMORISATION_QUANTILE) * len(own)
            counted += len(own)
    return flagged / counted if counted else float("nan")


def is_better(row: dict, best: dict | None, top_fit: float = 0.0) -> bool:
    """Whether a quality check beats the best one so far (BEST_RULE); a check without a finite
    FD or class fit never does. `top_fit`: the highest class fit of the checks before it. The
    floor hangs from it, not from the best's class fit: measured from each new best, a run
    whose FD kept falling while its class fit slid 2-3 points a check had its best ratchet
    from 91 % to 80 % class fit (0 A.D., tiny, seed 1)."""
    fd, fit = row.get("fd", math.nan), row.get("class_fit", math.nan)
    if not (math.isfinite(fd) and math.isfinite(fit)):
        return False
    if best is None:
        return True
    if fit > best["class_fit"] + CLASS_FIT_SLACK:
        return True
    floor = max(best["class_fit"], top_fit) - CLASS_FIT_SLACK
    return fit >= floor and fd < best["fd"] * (1 - MIN_FD_GAIN)


def best_check(rows: list[dict]) -> tuple[dict | None, int]:
    """The best of a run's quality checks (in order) and how many checks came after it: the
    same answer from quality.csv as during training, so a resumed run goes on counting its
    patience where it stopped."""
    best, since, top_fit = None, 0, 0.0
    for row in rows:
        if is_better(row, best, top_fit):
            best, since = row, 0
        else:
            since += 1
        if math.isfinite(row.get("class_fit", math.nan)):
            top_fit = max(top_fit, row["class_fit"])
    return best, since


def best_record(row: dict) -> dict:
    """What best.pt keeps of its check: the step, the figures that chose it, and the rule."""
    keys = ("step", "fd", "class_fit", "fd_resynth", "diversity", "near_copies")
    return {**{k: float(row.get(k, math.nan)) for k in keys}, "rule": BEST_RULE}


def read_quality(run: str | Path, up_to_step: float = float("inf")) -> list[dict]:
    """The rows of RUN/quality.csv as floats (empty when there is none)."""
    path = quality_path(run)
    if not path.is_file():
        return []
    with open(path, newline="") as fh:
        rows = [
            {k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
            for row in csv.DictReader(fh)
        ]
    return [r for r in rows if r["step"] <= up_to_step]


def write_quality(run: Path, rows: list[dict], fields: list[str]) -> None:
    """Write RUN/quality.csv whole."""
    path = quality_path(run)
    try:
        with atomic_write(path, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: f"{row.get(k, float('nan')):.6g}" for k in fields})
    except OSError as exc:
        raise SfxganError(f"cannot write '{path}': {exc.strerror or exc}") from exc


# (column, panel title, reference columns drawn as lines, log scale)
PANELS = [
    ("class_fit", "class fit (judge)", [("class_fit_real", "judge on real via GL")], False),
    ("fd", "FD to the real clips", [("fd_resynth", "real via GL"), ("fd_real", "halves")], True),
    ("diversity", "diversity (1 = real)", [], False),
    ("diversity_within", "diversity within classes", [], False),
    ("near_copies", "near copies", [("near_copies_real", "real")], False),
    (
        "attack_ms",
        "attack 10-90 % (ms)",
        [("attack_ms_resynth", "real via GL"), ("attack_ms_real", "real")],
        True,
    ),
    (
        "floor_db",
        "noise floor (dB)",
        [("floor_db_resynth", "real via GL"), ("floor_db_real", "real")],
        False,
    ),
]


def save_quality_curves(
    path: str | Path,
    runs: dict[str, list[dict]],
    groups: dict[str, str] | None = None,
    mark_best: bool = False,
) -> Path | None:
    """Each figure against steps (top row) and training time (bottom row), one colour per run
    (or per group of runs, e.g. the seeds of one setting: `groups` maps a run's label to its
    group's), the real-data references as dashed lines; with `mark_best`, each run's best
    check (best_check) as a ring on every panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {label: rows for label, rows in runs.items() if rows}
    if not runs:
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, len(PANELS), figsize=(2.6 * len(PANELS), 6), squeeze=False)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.09, top=0.93, wspace=0.3, hspace=0.4)
    groups = groups or {label: label for label in runs}
    colours = {group: f"C{i}" for i, group in enumerate(dict.fromkeys(groups.values()))}
    labelled = set()
    for label, rows in runs.items():
        group = groups[label]
        legend = group if group not in labelled and group else None
        labelled.add(group)
        best = rows.index(b) if mark_best and (b := best_check(rows)[0]) is not None else None
        for row_axes, x_key in zip(axes, ("step", "train_seconds"), strict=True):
            x = np.array([r[x_key] for r in rows]) / (60 if x_key == "train_seconds" else 1)
            for ax, (key, _, _, _) in zip(row_axes, PANELS, strict=True):
                y = np.array([r.get(key, np.nan) for r in rows], dtype=np.float64)
                ax.plot(x, y, marker="o", ms=3, lw=1.2, color=colours[group], label=legend)
                if best is not None:
                    ax.plot(
                        x[best],
                        y[best],
                        marker="o",
                        ms=9,
                        mfc="none",
                        color="tab:red",
                        label="best" if ax is row_axes[0] and x_key == "step" else None,
                    )
    first = next(iter(runs.values()))
    for row_axes, x_label in zip(axes, ("step", "training time (min)"), strict=True):
        for ax, (key, title, references, log_scale) in zip(row_axes, PANELS, strict=True):
            for j, (ref, ref_label) in enumerate(references):
                level = np.nanmean([r.get(ref, np.nan) for r in first])
                if np.isfinite(level):
                    ax.axhline(level, ls="--", lw=1, color=("tab:green", "tab:grey")[j])
                    ax.text(
                        0.01, level, ref_label, transform=ax.get_yaxis_transform(), fontsize=7,
                        va="bottom", color=("tab:green", "tab:grey")[j],
                    )  # fmt: skip
            if key.startswith("diversity"):
                ax.axhline(1.0, ls="--", lw=1, color="tab:green")
            if log_scale:
                ax.set_yscale("log")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel(x_label, fontsize=8)
            ax.tick_params(labelsize=7)
    if len(colours) > 1 or mark_best:
        axes[0][0].legend(fontsize=7, frameon=False)
    save_figure(fig, path, dpi=80)
    plt.close(fig)
    return path
