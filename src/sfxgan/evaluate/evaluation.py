"""`sfxgan evaluate`: how good, how varied and how original generated sounds are, per class.

Every distribution figure comes with the same figure computed between two halves of the real
data: with a few dozen clips per class, a Frechet distance has a large small-sample bias, and only
the real-vs-real floor says what a perfect generator would score. The model's figure is computed
at the same sample sizes as the floor (a random subset of generated clips of the size of a real
half, against the other half), averaged over several random splits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf
import torch

from sfxgan.data.dataset import Listing, decode_clips, list_source, scan_folder, to_stderr
from sfxgan.errors import DataError
from sfxgan.evaluate import metrics
from sfxgan.evaluate.envelope import envelope_figures
from sfxgan.evaluate.judge import (
    Judge,
    JudgeConfig,
    JudgeOutputs,
    prepare,
    resynthesised,
    train_judge,
)
from sfxgan.generate import RECORD, describe_takes, read_takes_record
from sfxgan.run_folder import read_stop

if TYPE_CHECKING:
    from sfxgan.generate import Sampler

N_SPLITS = 5  # random real halves per figure: enough to steady the mean at a few dozen clips
MEMORISATION_QUANTILE = 0.05
COPY_RANGE_DB = 50.0  # the dynamic range the near-copy search compares (copy_features)
PHASE_CLIPS = 32  # generated per class for the phase-consistency figure
# the figures `phase_consistency` adds with --run, and `listener_figures` always; overall: the
# mean over classes
PHASE_KEYS = ("phase_sc", "phase_sc_real", "attack_ms_resynth", "floor_db_resynth")
LISTENER_KEYS = ("attack_ms", "attack_ms_real", "floor_db", "floor_db_real")


@dataclass
class ClipSet:
    """Decoded clips at the judge's rate and length, with labels indexing `classes`."""

    audio: np.ndarray
    labels: np.ndarray
    classes: list[str]
    paths: list[str]
    source: Path
    skipped: list = field(default_factory=list)

    def of(self, name: str) -> np.ndarray:
        return np.flatnonzero(self.labels == self.classes.index(name))


def generated_listing(folder: str | Path) -> Listing:
    """A folder of generated clips, one sub-folder per class (what `sfxgan generate` writes)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(
            f"generated folder '{folder}' does not exist; write clips with: "
            f"sfxgan generate RUN --out {folder}"
        )
    listing = scan_folder(folder)
    # generate --png writes a picture beside every clip, and generate its record beside the
    # class folders: not worth a "skipped" line each
    listing.skipped = [
        s for s in listing.skipped if s.path.suffix.lower() != ".png" and s.path != folder / RECORD
    ]
    counts = {name: 0 for name in listing.classes}
    for entry in listing.entries:
        counts[entry.label] += 1
    listing.classes = [name for name, n in counts.items() if n > 0]
    if not listing.classes:
        raise DataError(
            f"generated folder '{folder}' holds no audio in class sub-folders; write clips "
            f"with: sfxgan generate RUN --out {folder}"
        )
    return listing


def clip_length(listing: Listing, sample_rate: int) -> int:
    """The length of the first readable clip of a listing, in samples at `sample_rate`."""
    for entry in listing.entries:
        try:
            info = sf.info(str(entry.path))
        except (sf.LibsndfileError, RuntimeError, OSError):
            continue
        if info.frames > 0:
            return int(round(info.frames * sample_rate / info.samplerate))
    raise DataError(f"no readable audio file in '{listing.source}'")


def load_clip_set(
    listing: Listing,
    classes: list[str],
    config: JudgeConfig,
    crop: str,
    what: str,
    progress: bool,
) -> ClipSet:
    """Decode the clips of `classes` (in that order); a class without a usable clip is an
    error naming it."""
    listing = Listing(
        listing.source,
        [e for e in listing.entries if e.label in classes],
        listing.skipped,
        list(classes),
        listing.is_manifest,
    )
    clips, labels, paths, skipped = decode_clips(
        listing, config.sample_rate, config.clip_samples, crop, progress
    )
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(classes))
    for name, count in zip(classes, counts, strict=True):
        if count == 0:
            reasons = [s.reason for s in skipped if Path(s.path).parent.name == name][:1]
            why = f" (skipped: {reasons[0]})" if reasons else ""
            raise DataError(f"class '{name}' has no usable {what} clip in '{listing.source}'{why}")
    return ClipSet(
        np.stack(clips),
        np.asarray(labels, dtype=np.int64),
        list(classes),
        paths,
        listing.source,
        listing.skipped + skipped,
    )


def match_classes(real: Listing, generated: Listing, wanted: list[str] | None) -> list[str]:
    """The classes to evaluate: every generated class must exist in the real data and, unless
    the user picks a subset with --classes, every real class must have generated clips."""
    real_classes = set(real.classes)
    if wanted:
        for name in wanted:
            if name not in real_classes:
                raise DataError(f"class '{name}' is not in the real data '{real.source}'")
            if name not in generated.classes:
                raise DataError(f"class '{name}' has no generated clips in '{generated.source}'")
        return sorted(set(wanted))
    foreign = [name for name in generated.classes if name not in real_classes]
    if foreign:
        raise DataError(
            f"generated class '{foreign[0]}' has no real clips in '{real.source}' "
            f"(real classes: {', '.join(real.classes)}); rename the folder or remove it"
        )
    missing = [name for name in real.classes if name not in generated.classes]
    if missing:
        raise DataError(
            f"class '{missing[0]}' has real clips but no generated clips in "
            f"'{generated.source}'; generate it, or evaluate a subset with --classes"
        )
    return list(real.classes)


def _halves(
    n: int, rng: np.random.Generator, labels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random halves of range(n); with labels, each class is halved separately so
    that the halves differ by chance in their clips, not in their class mix."""
    if labels is None:
        labels = np.zeros(n, dtype=np.int64)
    first, second = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        half = len(members) // 2
        first.append(members[:half])
        second.append(members[half : 2 * half])
    return np.concatenate(first), np.concatenate(second)


def distribution_figures(
    real: np.ndarray,
    generated: np.ndarray,
    seed: int = 0,
    n_splits: int = N_SPLITS,
    real_labels: np.ndarray | None = None,
    resynthesised: np.ndarray | None = None,
) -> dict[str, float | None]:
    """FD and KID of generated vs real and of real half vs real half, at equal sample sizes,
    averaged over random splits. None where there are too few clips (under 4 real, 2 generated).

    `resynthesised`: embeddings of the real clips after Griffin-Lim resynthesis (aligned with
    `real`); adds fd_resynth, one real half resynthesised against the other half: what a
    generator that reproduced real spectrograms exactly would score after phase reconstruction.
    """
    keys = ("fd", "fd_real", "kid", "kid_real", "fd_resynth")
    if len(real) < 4 or len(generated) < 2:
        return {k: None for k in keys}
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {k: [] for k in keys}
    for _ in range(n_splits):
        a, b = _halves(len(real), rng, real_labels)
        g = rng.permutation(len(generated))[: len(a)]
        # each KID uses the whole of both sets: one subset is all there is at these sizes
        values["fd_real"].append(metrics.frechet_distance(real[a], real[b]))
        values["fd"].append(metrics.frechet_distance(generated[g], real[b]))
        values["kid_real"].append(
            metrics.kernel_inception_distance(real[a], real[b], n_subsets=1)[0]
        )
        values["kid"].append(
            metrics.kernel_inception_distance(generated[g], real[b], n_subsets=1)[0]
        )
        if resynthesised is not None:
            values["fd_resynth"].append(metrics.frechet_distance(resynthesised[a], real[b]))
    return {k: float(np.mean(v)) if v else None for k, v in values.items()}


def ndb_figures(
    real: np.ndarray,
    generated: np.ndarray,
    k: int,
    seed: int = 0,
    real_labels: np.ndarray | None = None,
) -> dict[str, float | int | None]:
    """NDB/K of generated vs real and of one real half vs the other (k-means on the reference)."""
    k = min(k, len(real) // 2)
    if k < 2 or len(generated) < 2:
        return {"ndb_k": None, "ndb_k_real": None, "ndb_bins": None}
    model = metrics.ndb(real, generated, k, seed=seed)
    rng = np.random.default_rng(seed)
    floor = []
    for _ in range(N_SPLITS):
        a, b = _halves(len(real), rng, real_labels)
        floor.append(metrics.ndb(real[a], real[b], k, seed=seed).ndb_over_k)
    return {"ndb_k": model.ndb_over_k, "ndb_k_real": float(np.mean(floor)), "ndb_bins": k}


def diversity(real: np.ndarray, generated: np.ndarray) -> float | None:
    """Mean pairwise embedding distance of generated clips over that of real clips: 1 is as
    varied as the real data, below 1 less varied (towards mode collapse)."""
    if len(real) < 2 or len(generated) < 2:
        return None
    return metrics.mean_pairwise_distance(generated) / max(
        metrics.mean_pairwise_distance(real), 1e-12
    )


def copy_features(log_mel: np.ndarray, range_db: float = COPY_RANGE_DB) -> np.ndarray:
    """The near-copy search's view of clips: their log-mel pictures (n, frames, mels) in dB,
    each raised to at least its own maximum - `range_db`, flattened to (n, frames * mels).

    Without the floor, the distance is ruled by how silent the silences are (the judge's
    pictures reach -100 dB), so a copy with hiss at -40 dB under it was as far from its source
    as another clip (measured on the demo's footsteps: 0 of 10 such copies flagged; with a
    50 dB range, 10 of 10), while what a listener hears lies within a few tens of dB of the
    loudest part."""
    log_mel = np.asarray(log_mel, dtype=np.float64)
    loudest = log_mel.max(axis=(1, 2), keepdims=True)
    return np.maximum(log_mel, loudest - range_db).reshape(len(log_mel), -1)


def group_metrics(
    real: JudgeOutputs,
    generated: JudgeOutputs,
    real_copy: np.ndarray,
    generated_copy: np.ndarray,
    label: int | None,
    n_bins: int,
    seed: int,
    real_labels: np.ndarray | None = None,
    real_resynthesised: np.ndarray | None = None,
) -> tuple[dict, metrics.Memorisation | None]:
    """All figures for one class (label) or for everything (label None, with the real clips'
    labels so that real halves keep the class mix)."""
    row: dict = {"n_real": len(real.embeddings), "n_generated": len(generated.embeddings)}
    predicted = generated.probs.argmax(axis=1)
    if label is not None:
        row["class_fit"] = float(np.mean(predicted == label))
    row.update(
        distribution_figures(
            real.embeddings,
            generated.embeddings,
            seed,
            N_SPLITS,
            real_labels,
            real_resynthesised,
        )
    )
    row.update(ndb_figures(real.embeddings, generated.embeddings, n_bins, seed, real_labels))
    row["diversity"] = diversity(real.embeddings, generated.embeddings)
    # near copies are a test within one class (metrics.memorisation): the overall figure is
    # made from the classes' own (see _judged_figures)
    memo = None
    row["memorisation"] = row["memorisation_real"] = None
    if label is not None and len(real_copy) >= 3:
        memo = metrics.memorisation(generated_copy, real_copy, MEMORISATION_QUANTILE)
        row["memorisation"] = memo.share
        row["memorisation_real"] = metrics.memorisation_floor(real_copy, MEMORISATION_QUANTILE)
    return row, memo


def _subset(outputs: JudgeOutputs, index: np.ndarray) -> JudgeOutputs:
    return JudgeOutputs(outputs.embeddings[index], outputs.probs[index], outputs.log_mel[index])


def listener_figures(
    real: ClipSet, generated: ClipSet, name: str, rate: int
) -> dict[str, float | None]:
    """A class's median attack time and noise floor (evaluate/envelope.py), generated and real
    (clips at `rate`): what a listener hears first in a one-shot."""
    out = {}
    for clips, suffix in ((generated, ""), (real, "_real")):
        for key, value in envelope_figures(clips.audio[clips.of(name)], rate).items():
            out[key + suffix] = value
    return out


def phase_consistency(
    sampler: Sampler,
    classes: list[str],
    real_source: str | Path,
    n: int = PHASE_CLIPS,
) -> dict[str, dict[str, float]]:
    """Per class, spectral convergence between the generator's magnitude and the magnitude of
    the audio reconstructed from it (generate's default phase method), next to the same figure
    for real clips' magnitudes (what Griffin-Lim reaches on consistent spectrograms); and the
    attack time and noise floor of real clips taken the generator's way to audio (the run's
    log-spectrogram, its inverse, phase reconstruction): what a generator that reproduced the
    real spectrograms exactly would sound like. `sampler`: the run's generator that made the
    clips (`generate` uses the moving average by default)."""
    from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS
    from sfxgan.dsp.features import from_log_spec
    from sfxgan.dsp.phase import reconstruct, spectral_convergence

    features, stft = sampler.spec.features, sampler.stft
    listing = list_source(real_source)
    listing.entries = [e for e in listing.entries if e.label in classes]
    clips, labels, _, _ = decode_clips(
        listing, features.sample_rate, features.clip_samples, sampler.spec.train.crop, False
    )
    labels_arr = np.asarray(labels)
    out = {}
    for name in classes:
        if name not in sampler.classes:
            raise DataError(
                f"class '{name}' is not one the run '{sampler.checkpoint}' was trained on"
            )
        z = sampler.latents(name, n, seed=0)
        log_spec = sampler.log_spec(z, torch.full((n,), sampler.label(name), dtype=torch.long))
        magnitude = from_log_spec(log_spec, sampler.spec.max_value, features.log_floor)
        with torch.inference_mode():
            audio = reconstruct(magnitude, stft, DEFAULT_PHASE, DEFAULT_PHASE_ITERS)
            generated_sc = spectral_convergence(magnitude, audio, stft)
            index = np.flatnonzero(labels_arr == listing.classes.index(name))[:n]
            real_audio = torch.from_numpy(np.stack([clips[i] for i in index]))
            real_mag = stft.magnitude(real_audio)
            real_rebuilt = reconstruct(real_mag, stft, DEFAULT_PHASE, DEFAULT_PHASE_ITERS)
            real_sc = spectral_convergence(real_mag, real_rebuilt, stft)
            # every real clip of the class, as the real figures beside these are
            every = np.flatnonzero(labels_arr == listing.classes.index(name))
            real_via = np.concatenate(
                [
                    _via_model(sampler, [clips[i] for i in part])
                    for part in np.array_split(every, max(1, len(every) // 64))
                ]
            )
        heard = envelope_figures(real_via, features.sample_rate)
        out[name] = {
            "phase_sc": float(generated_sc.mean()),
            "phase_sc_real": float(real_sc.mean()),
            **{f"{key}_resynth": value for key, value in heard.items()},
        }
    return out


def _via_model(sampler: Sampler, clips: list[np.ndarray]) -> np.ndarray:
    """Real clips (at the run's rate and length) the way the generator's spectrograms reach the
    listener: the run's log-spectrogram, its inverse (with its floor), phase reconstruction."""
    from sfxgan.dsp.phase import audio_from_log_spec

    max_value = sampler.spec.max_value
    with torch.inference_mode():
        log_spec = sampler.stft.log_spec(torch.from_numpy(np.stack(clips)), max_value)
        return audio_from_log_spec(log_spec, sampler.stft, max_value).numpy()


def vggish_figures(
    model, real: ClipSet, generated: ClipSet, names: list[str], rate: int, seed: int = 0
) -> dict[str, dict[str, float | None]]:
    """FAD with VGGish (DCASE 2023 Task 7's measure): per class and overall, the Frechet
    distance between all real and all generated VGGish frame embeddings, next to the same
    distance between two halves of the real clips."""
    from sfxgan.evaluate.vggish import vggish_embeddings

    def per_clip(clips: ClipSet) -> list[np.ndarray]:
        return [vggish_embeddings(model, [clip], rate) for clip in clips.audio]

    real_emb, gen_emb = per_clip(real), per_clip(generated)
    rng = np.random.default_rng(seed)

    def figures(r: np.ndarray, g: np.ndarray) -> dict[str, float | None]:
        stack = np.concatenate
        if len(r) < 4 or len(g) < 2:
            return {"fad_vggish": None, "fad_vggish_real": None}
        a, b = _halves(len(r), rng, real.labels[r])
        return {
            "fad_vggish": metrics.frechet_distance(
                stack([real_emb[i] for i in r]), stack([gen_emb[i] for i in g])
            ),
            "fad_vggish_real": metrics.frechet_distance(
                stack([real_emb[i] for i in r[a]]), stack([real_emb[i] for i in r[b]])
            ),
        }

    out = {name: figures(real.of(name), generated.of(name)) for name in names}
    out["overall"] = figures(np.arange(len(real.labels)), np.arange(len(generated.labels)))
    return out


@dataclass
class Evaluation:
    metrics: dict
    real: ClipSet
    generated: ClipSet
    real_outputs: JudgeOutputs
    generated_outputs: JudgeOutputs
    judge: Judge
    closest: list[dict]


def evaluate(
    real_source: str | Path,
    generated_dir: str | Path,
    judge: Judge | None = None,
    run: str | Path | None = None,
    classes: list[str] | None = None,
    crop: str | None = None,
    seed: int = 0,
    vggish=None,
    progress: bool = True,
    log=to_stderr,
    ema: bool | None = None,
    checkpoint: str = "auto",
) -> Evaluation:
    """Compare generated clips with real ones; train a judge on the real data when none is given
    (it is returned, so callers can save it). `vggish`: a loaded VGGish model adds FAD. `ema`:
    which of the run's generators made the clips (for the phase check with `run`); None: what
    the folder's generated.json says (`sfxgan generate` writes it), else the moving average.
    `checkpoint`: which of the run's checkpoints (Sampler.from_run); auto: the one the folder's
    record names when it is the run's, else the run's best, else its latest."""
    real_listing = list_source(real_source)
    if not real_listing.classes:
        raise DataError(
            f"no class sub-folders in '{real_listing.source}'; give the real data as "
            "one sub-folder per class"
        )
    gen_listing = generated_listing(generated_dir)
    names = match_classes(real_listing, gen_listing, classes)
    made_by = read_takes_record(generated_dir)
    ema = _which_weights(made_by, ema, generated_dir)
    # the run's checkpoint is read once: its crop mode here, its generator for the phase check
    sampler = _run_sampler(run, ema, checkpoint, made_by) if run is not None else None
    if sampler is not None and progress:
        log(sampler.describe_checkpoint())
    if (
        sampler is not None
        and made_by
        and made_by["settings"].get("model") != sampler.fingerprint()
    ):
        log(
            f"note: the clips in '{generated_dir}' were made by "
            f"{describe_takes(made_by['settings'])}, not by --run '{run}' (step {sampler.step}): "
            "its phase consistency and loss curves describe another generator"
        )
    if crop is None:
        crop = sampler.spec.train.crop if sampler else "start"
    judge, all_real = _find_judge(judge, run, real_listing, gen_listing, crop, seed, progress, log)
    unknown = [name for name in names if name not in judge.classes]
    if unknown:
        raise DataError(
            f"the classifier does not know class '{unknown[0]}' (it knows: "
            f"{', '.join(judge.classes)}); train one on this data with: sfxgan classifier train"
        )
    if all_real is not None and names == all_real.classes:
        real = all_real  # decoded for the judge already, at its rate and length
    else:
        real = load_clip_set(real_listing, names, judge.config, crop, "real", progress)
    generated = load_clip_set(gen_listing, names, judge.config, "start", "generated", progress)
    per_class, overall, outputs, memos = _judged_figures(judge, real, generated, names, seed)
    for name in names:
        per_class[name].update(listener_figures(real, generated, name, judge.config.sample_rate))

    if sampler is not None:
        phase = phase_consistency(sampler, names, real_source)
        for name in names:
            per_class[name].update(phase[name])
    for key in (*PHASE_KEYS, *LISTENER_KEYS):
        values = [per_class[name].get(key) for name in names]
        if values and all(v is not None for v in values):
            overall[key] = float(np.mean(values))

    if vggish is not None:
        fad = vggish_figures(vggish, real, generated, names, judge.config.sample_rate, seed)
        for name in names:
            per_class[name].update(fad[name])
        overall.update(fad["overall"])

    closest = _closest_pairs(memos, real, generated)
    result = {
        "real": str(real.source),
        "generated": str(generated.source),
        "run": str(run) if run else None,
        "checkpoint": sampler.describe_checkpoint() if sampler is not None else None,
        "training_ended": read_stop(run) if run else None,
        "generated_by": made_by["settings"] if made_by else None,
        "classes": names,
        "classifier": _judge_summary(judge),
        "settings": {
            "crop": crop,
            "seed": seed,
            "splits": N_SPLITS,
            "memorisation_quantile": MEMORISATION_QUANTILE,
        },
        "per_class": per_class,
        "overall": overall,
        "closest_pairs": closest,
        "skipped": [f"{s.path}: {s.reason}" for s in real.skipped + generated.skipped],
    }
    return Evaluation(_clean(result), real, generated, *outputs, judge, closest)


def _which_weights(made_by: dict | None, ema: bool | None, generated_dir: str | Path) -> bool:
    """The generator weights that made the clips: the record's, where the folder has one."""
    if made_by is None:
        return True if ema is None else ema
    recorded = made_by["settings"].get("weights") == "ema"
    if ema is not None and ema != recorded:
        raise DataError(
            f"'{generated_dir}' was generated with the "
            f"{'moving-average' if recorded else 'trained'} weights ({RECORD}); "
            f"{'drop' if recorded else 'add'} --no-ema, or leave the choice to the record"
        )
    return recorded


def _run_sampler(run: str | Path, ema: bool, checkpoint: str, made_by: dict | None) -> Sampler:
    from sfxgan.generate import Sampler

    recorded = Path((made_by or {}).get("settings", {}).get("checkpoint") or "")
    run_folder = Path(run).resolve()
    if checkpoint == "auto" and recorded.is_file() and run_folder in recorded.resolve().parents:
        sampler = Sampler.from_run(recorded, ema=ema)
        sampler.chosen = "the one the generated clips were made with"
        return sampler
    return Sampler.from_run(run, ema=ema, checkpoint=checkpoint)


def _find_judge(
    judge: Judge | None,
    run: str | Path | None,
    real_listing: Listing,
    gen_listing: Listing,
    crop: str,
    seed: int,
    progress: bool,
    log,
) -> tuple[Judge, ClipSet | None]:
    """The judge given, else the run's own when it fits this evaluation, else one trained on
    the real data (with the real clips it decoded for that, to reuse)."""
    if judge is None and run is not None:
        from sfxgan.evaluate.tracking import run_judge

        length = clip_length(gen_listing, JudgeConfig.sample_rate)
        judge = run_judge(run, real_listing.source, real_listing.classes, length)
        if judge is not None and log:
            log(f"using the judge the run trained for its quality checks ({run} judge.pt)")
    if judge is not None:
        return judge, None
    # listen to what was generated: the judge learns at the generated clips' length
    config = JudgeConfig(clip_samples=clip_length(gen_listing, JudgeConfig.sample_rate))
    if log:
        log(f"training a classifier on '{real_listing.source}' (pass --classifier to reuse one)")
    all_real = load_clip_set(real_listing, real_listing.classes, config, crop, "real", progress)
    judge = train_judge(
        all_real.audio,
        all_real.labels,
        all_real.classes,
        config,
        seed=seed,
        progress=progress,
    )
    judge.meta.update({"source": str(real_listing.source), "crop": crop})
    return judge, all_real


def _judged_figures(
    judge: Judge, real: ClipSet, generated: ClipSet, names: list[str], seed: int
) -> tuple[dict, dict, tuple[JudgeOutputs, JudgeOutputs], dict]:
    """The judge's figures per class and overall, the judge's outputs for (real, generated)
    and the near-copy search per class."""
    real_out, gen_out = judge.outputs(real.audio), judge.outputs(generated.audio)
    # Both sides through Griffin-Lim resynthesis for the near-copy search: a generator that
    # reproduces a training clip can only give it back through phase reconstruction (measured:
    # without this, resynthesised copies of the real clips were flagged 0-1 % of the time).
    clip, rate = judge.config.clip_samples, judge.config.sample_rate
    real_rs = judge.outputs(resynthesised(prepare(real.audio, clip), rate))
    gen_rs = judge.outputs(resynthesised(prepare(generated.audio, clip), rate))
    real_copy, gen_copy = copy_features(real_rs.log_mel), copy_features(gen_rs.log_mel)

    judge_label = {name: judge.classes.index(name) for name in names}
    per_class, memos = {}, {}
    for name in names:
        r, g = real.of(name), generated.of(name)
        n_bins = max(2, min(10, len(r) // 8))
        per_class[name], memos[name] = group_metrics(
            _subset(real_out, r),
            _subset(gen_out, g),
            real_copy[r],
            gen_copy[g],
            judge_label[name],
            n_bins,
            seed,
            real_resynthesised=real_rs.embeddings[r],
        )
    overall, _ = group_metrics(
        real_out,
        gen_out,
        real_copy,
        gen_copy,
        None,
        max(2, min(50, len(real.labels) // 8)),
        seed,
        real.labels,
        real_rs.embeddings,
    )
    overall.update(_overall_near_copies(per_class))
    # class fit over everything: each generated clip judged against the class it was asked for
    wanted = np.array([judge_label[name] for name in np.array(names)[generated.labels]])
    overall["class_fit"] = float(np.mean(gen_out.probs.argmax(axis=1) == wanted))
    n_splits = max(1, min(10, len(generated.labels) // 50))
    overall["inception_score"], overall["inception_score_std"] = metrics.inception_score(
        gen_out.probs, n_splits
    )
    overall["inception_score_real"], _ = metrics.inception_score(real_out.probs, n_splits)
    return per_class, overall, (real_out, gen_out), memos


def _overall_near_copies(per_class: dict[str, dict]) -> dict[str, float | None]:
    """The share of all generated clips that their own class's test flags, and the same for
    the real clips (each class's floor weighted by its real clips)."""
    out: dict[str, float | None] = {}
    for key, weight in (("memorisation", "n_generated"), ("memorisation_real", "n_real")):
        rows = [r for r in per_class.values() if r[key] is not None and np.isfinite(r[key])]
        total = sum(r[weight] for r in rows)
        out[key] = sum(r[key] * r[weight] for r in rows) / total if total else None
    return out


def _judge_summary(judge: Judge) -> dict:
    return {
        "held_out_accuracy": judge.accuracy,
        "held_out_accuracy_resynthesised": judge.meta.get("accuracy_resynthesised"),
        "classes": judge.classes,
        "sample_rate": judge.config.sample_rate,
        "clip_samples": judge.config.clip_samples,
        **{k: judge.meta[k] for k in ("n_train", "n_held_out", "source") if k in judge.meta},
    }


def _closest_pairs(
    memos: dict[str, metrics.Memorisation | None], real: ClipSet, generated: ClipSet, top: int = 8
) -> list[dict]:
    """The generated clips nearest to one real clip relative to the rest of its class (the
    near-copy ratio over its class's threshold), nearest first."""
    pairs = []
    for name, memo in memos.items():
        if memo is None:
            continue
        gen_index, real_index = generated.of(name), real.of(name)
        for i, (distance, nearest) in enumerate(zip(memo.distances, memo.nearest, strict=True)):
            pairs.append(
                {
                    "class": name,
                    "generated": generated.paths[gen_index[i]],
                    "real": real.paths[real_index[nearest]],
                    "distance": float(distance),
                    "ratio": float(memo.ratios[i]),
                    "threshold": float(memo.threshold),
                    "near_copy": bool(memo.flagged[i]),
                }
            )
    pairs.sort(key=lambda p: p["ratio"] / max(p["threshold"], 1e-12))
    return pairs[:top]


def _clean(value):
    """JSON-safe: numpy scalars to Python, NaN/inf to None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value
