"""`sfxgan vary`: takes like a sound the user brings, by GAN inversion.

A sound is decoded and fitted as training data is (the model's rate, mono, cropped or padded
to the clip length as the run's crop mode says), brought to the level of the run's takes of
each class, then *inverted*: the latent whose generated spectrogram lies closest to the sound's
is found by gradient descent through the frozen generator, from several starts in each class
(or in the class asked), and the best is kept. A second, short stage fits a small offset to the
generator's start map for the detail the latent alone cannot reach (the extended latent of
image GAN inversion, Abdal et al. 2019, kept small by a penalty). Then

    take i = G(cos(a) z_fit + sin(a) z_i, class) + cos(a) * offset,   a = spread * pi / 2

where z_i is take i's latent in `sfxgan generate` for the class and seed: spread 0 gives the
fitted take, 1 a free take of the class (take i of `generate`), and between the two, takes that
keep more or less of the sound. Both latents lie near the sphere of radius sqrt(latent_dim)
where a Gaussian latent's length concentrates, and so does their mix.

    sampler = Sampler.from_run("runs/demo")
    source = load_source("my_snare.wav", sampler)
    fit = invert(sampler, source)                        # or class_name="snare"
    log_spec = variations(sampler, fit, range(10), spread=0.3, seed=0)   # (10, T, F)
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS, DEFAULT_SPREAD
from sfxgan.data.audio import fit_length, is_silent, load_audio, write_wav
from sfxgan.dsp.features import LOG_SCALE, to_log_spec
from sfxgan.errors import AudioError, SfxganError
from sfxgan.files import safe_name, write_json_atomic
from sfxgan.generate import Sampler

STARTS = 24  # latents tried in all: spread over the classes, at least MIN_STARTS_PER_CLASS each
MIN_STARTS_PER_CLASS = 2
LATENT_STEPS = 100  # gradient steps of the first stage (the latent)
OFFSET_STEPS = 100  # and of the second (the start map's offset)
LATENT_LR = 0.1
OFFSET_LR = 0.05
# the offset's penalty, per unit of mean squared offset: measured on a drum library, 0.1 keeps
# the offset at about a third of the start map's own size while it closes a tenth of the gap
OFFSET_PENALTY = 0.1
JUDGE_SHARE = 0.2  # classes the judge gives at least this are the fit's candidates
LEVEL_TAKES = 32  # random takes per class whose loudest bin sets the level the sound is fitted at
DISTANCE_RANGE_DB = 60.0  # the log-spectral distance compares the top 60 dB of the source
DB_PER_UNIT = LOG_SCALE * 20.0 / math.log(10.0)  # dB per unit of the normalised log-spectrogram


@dataclass(frozen=True)
class Source:
    """A user's sound as the run sees it."""

    path: Path
    sha256: str
    audio: np.ndarray  # (clip_samples,) float32 at the model's rate, as decoded (not normalised)
    magnitude: torch.Tensor  # (frames, bins), the STFT magnitude of `audio`
    seconds: float  # the decoded length, before it was fitted to the clip
    fitted: str  # "" when the sound was the clip's length, else what was cut or padded

    @property
    def name(self) -> str:
        return safe_name(self.path.stem)


@dataclass
class Fit:
    """The inversion of one sound: where in the generator it lies, and how near it came."""

    class_name: str
    latent: torch.Tensor  # (latent_dim,)
    offset: torch.Tensor  # (C0 + 1, t0, f0), added to the start map
    log_spec: torch.Tensor  # (frames, bins) the fitted take's normalised log-spectrogram
    target: torch.Tensor  # (frames, bins) the source at the class's level
    distance_db: float  # log-spectral distance of the fit to the target
    gain_db: float  # the level change that brought the source to the class's level
    per_class_db: dict[str, float] = field(default_factory=dict)  # the best start of each class
    seconds: float = 0.0

    def next_class(self) -> tuple[str, float] | None:
        """The class that came nearest after the one found, and its distance (both from the
        first stage, the latent alone); None when one class was tried."""
        others = {k: v for k, v in self.per_class_db.items() if k != self.class_name}
        return min(others.items(), key=lambda kv: kv[1]) if others else None


def load_source(path: str | Path, sampler: Sampler) -> Source:
    """Decode a user's sound and fit it to the run's clip as training data is; an unreadable
    or silent file is an SfxganError naming it."""
    path = Path(path)
    features, crop = sampler.spec.features, sampler.spec.train.crop
    if path.is_dir():
        raise SfxganError(f"'{path}' is a folder; give the sound files themselves")
    if not path.exists():
        raise SfxganError(f"'{path}' does not exist; check the path")
    try:
        decoded = load_audio(path, features.sample_rate)
    except AudioError as exc:
        raise SfxganError(f"'{path}': {exc}; give a WAV, FLAC, OGG, MP3 or AIFF file") from None
    if is_silent(decoded):
        raise SfxganError(f"'{path}' is silent (peak below -80 dBFS); give a sound to vary")
    clip = fit_length(decoded, features.clip_samples, crop)
    if is_silent(clip):
        raise SfxganError(
            f"'{path}' is silent in the {features.duration:.3f} s the run keeps (crop "
            f"'{crop}'); trim the silence at its start"
        )
    seconds = len(decoded) / features.sample_rate
    fitted = ""
    if len(decoded) > features.clip_samples:
        kept = "its first" if crop == "start" else "its loudest"
        fitted = f"cut from {seconds:.3f} s to {kept} {features.duration:.3f} s (crop '{crop}')"
    elif len(decoded) < features.clip_samples:
        fitted = f"padded with silence from {seconds:.3f} s to {features.duration:.3f} s"
    with torch.inference_mode():
        magnitude = sampler.stft.magnitude(torch.from_numpy(clip)[None])[0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Source(path, digest, clip, magnitude, seconds, fitted)


def log_spectral_distance(
    log_spec: torch.Tensor, reference: torch.Tensor, range_db: float = DISTANCE_RANGE_DB
) -> torch.Tensor:
    """Log-spectral distance in dB of normalised log-spectrograms (..., frames, bins) to
    references of the same shape (or one reference): per frame, the RMS over bins of the
    difference in dB (within `range_db` of the reference's loudest bin, see _audible_error);
    then the mean over the frames where either is heard. Frames silent in both are left out:
    averaged in, they made a short kick as near a short hi-hat as another hi-hat, both being
    silent in nine frames of ten."""
    error = _audible_error(log_spec, reference, range_db)
    per_frame = error.pow(2).mean(-1).sqrt()  # (..., frames)
    floor = reference.amax(dim=(-2, -1), keepdim=True) - range_db / DB_PER_UNIT
    heard = (log_spec.amax(-1) > floor[..., 0]) | (reference.amax(-1) > floor[..., 0])
    return (per_frame * heard).sum(-1) / heard.sum(-1).clamp_min(1)


def _audible_error(
    log_spec: torch.Tensor, reference: torch.Tensor, range_db: float = DISTANCE_RANGE_DB
) -> torch.Tensor:
    """The difference in dB where a listener hears it: both raised to the reference's loudest
    bin - `range_db` first, so that a tail at -100 dB against digital silence counts for
    nothing, and a sound compares alike at any level."""
    floor = reference.amax(dim=(-2, -1), keepdim=True) - range_db / DB_PER_UNIT
    return (log_spec.clamp_min(floor) - reference.clamp_min(floor)) * DB_PER_UNIT


def class_levels(sampler: Sampler, classes: Sequence[str], seed: int = 0) -> torch.Tensor:
    """(len(classes),) the median loudest bin of LEVEL_TAKES random takes of each class, in
    normalised log units: the level a sound is fitted at for that class."""
    levels = []
    for name in classes:
        z = sampler.latents(name, LEVEL_TAKES, seed)
        labels = torch.full((LEVEL_TAKES,), sampler.label(name), dtype=torch.long)
        levels.append(sampler.log_spec(z, labels).amax(dim=(1, 2)).median())
    return torch.stack(levels).cpu()


def level_matched(sampler: Sampler, source: Source, class_name: str, seed: int = 0) -> torch.Tensor:
    """(frames, bins) the source's normalised log-spectrogram at the level of the class's
    takes: what a fit as that class is measured against."""
    return _targets(source, sampler, class_levels(sampler, [class_name], seed))[0][0]


def _targets(source: Source, sampler: Sampler, levels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The source's log-spectrogram at each level (n, frames, bins) and the gains (n,) in
    nepers of magnitude that bring its loudest bin there."""
    ratio = source.magnitude.amax() / sampler.spec.max_value
    gains = LOG_SCALE * (levels - 1.0) - torch.log(ratio)  # ln(k): loudest bin to the level
    scaled = source.magnitude[None] * torch.exp(gains)[:, None, None]
    return to_log_spec(scaled, sampler.spec.max_value), gains


def invert(
    sampler: Sampler,
    source: Source,
    class_name: str | None = None,
    seed: int = 0,
    starts: int = STARTS,
    latent_steps: int = LATENT_STEPS,
    offset_steps: int = OFFSET_STEPS,
    candidates: Sequence[str] | None = None,
) -> Fit:
    """The latent (and class, unless `class_name` is given) whose take lies closest to the
    source, from `starts` random starts spread over the classes (`candidates`, default all),
    then the start map's offset. Deterministic for a seed on a given machine."""
    begin = time.perf_counter()
    classes = [class_name] if class_name is not None else list(candidates or sampler.classes)
    for name in classes:
        sampler.label(name)  # an unknown class names the known ones
    per_class = max(MIN_STARTS_PER_CLASS, math.ceil(starts / len(classes)))
    generator = sampler.generator
    table = generator.label_embed.weight.detach()
    rows = torch.tensor([sampler.label(n) for n in classes]).repeat_interleave(per_class)
    embedding = table[rows].to(sampler.device)
    targets, gains = _targets(source, sampler, class_levels(sampler, classes, seed))
    target = targets.repeat_interleave(per_class, 0).to(sampler.device)
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(len(rows), sampler.spec.model.latent_dim, generator=g)
    latent = _fit_latents(generator, latent.to(sampler.device), embedding, target, latent_steps)
    with torch.no_grad():
        distance = log_spectral_distance(
            generator.synthesize(latent, embedding)[:, 0].float(), target
        )
    best = int(distance.argmin())
    per_class_db = {
        name: float(distance[i * per_class : (i + 1) * per_class].min())
        for i, name in enumerate(classes)
    }
    z, emb, tgt = latent[best : best + 1], embedding[best : best + 1], target[best]
    offset = _fit_offset(generator, z, emb, tgt, offset_steps)
    with torch.no_grad():
        log_spec = generator.decode(generator.start_map(z, emb) + offset, emb)[0, 0].float()
    return Fit(
        class_name=classes[best // per_class],
        latent=z[0].cpu(),
        offset=offset[0].cpu(),
        log_spec=log_spec.cpu(),
        target=tgt.cpu(),
        distance_db=float(log_spectral_distance(log_spec, tgt)),
        gain_db=float(gains[best // per_class]) * 20.0 / math.log(10.0),
        per_class_db=per_class_db,
        seconds=time.perf_counter() - begin,
    )


def _on_sphere(latent: torch.Tensor) -> torch.Tensor:
    """Latents (n, dim) scaled to length sqrt(dim), where a Gaussian latent's length lies."""
    return latent * (math.sqrt(latent.shape[1]) / latent.norm(dim=1, keepdim=True))


def _fit_latents(generator, latent, embedding, target, steps: int) -> torch.Tensor:
    """Adam on the latents (n, dim) towards the targets (n, frames, bins) by the mean squared
    audible error in dB, each latent kept on the sphere; the generator frozen."""
    latent = _on_sphere(latent).requires_grad_()
    optimizer = torch.optim.Adam([latent], lr=LATENT_LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    with _frozen(generator):
        for _ in range(steps):
            error = _audible_error(generator.synthesize(latent, embedding)[:, 0], target)
            optimizer.zero_grad(set_to_none=True)
            error.pow(2).mean(dim=(1, 2)).sum().backward()  # each start on its own
            optimizer.step()
            schedule.step()
            with torch.no_grad():
                latent.copy_(_on_sphere(latent))
    return latent.detach()


def _fit_offset(generator, latent, embedding, target, steps: int) -> torch.Tensor:
    """The start map's offset (1, C0 + 1, t0, f0) that brings the fitted take nearer the
    target, under a penalty on its size."""
    with torch.no_grad():
        start = generator.start_map(latent, embedding)
    offset = torch.zeros_like(start, requires_grad=True)
    optimizer = torch.optim.Adam([offset], lr=OFFSET_LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    with _frozen(generator):
        for _ in range(steps):
            error = _audible_error(generator.decode(start + offset, embedding)[0, 0], target)
            loss = (error / DB_PER_UNIT).pow(2).mean() + OFFSET_PENALTY * offset.pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    return offset.detach()


class _frozen:
    """The generator's weights out of autograd for the block (only the inputs are fitted)."""

    def __init__(self, module: torch.nn.Module):
        self.module = module

    def __enter__(self):
        self.saved = [p.requires_grad for p in self.module.parameters()]
        for p in self.module.parameters():
            p.requires_grad_(False)

    def __exit__(self, *exc):
        for p, flag in zip(self.module.parameters(), self.saved, strict=True):
            p.requires_grad_(flag)


def spread_angle(spread: float) -> float:
    if not 0.0 <= spread <= 1.0:
        raise SfxganError(
            f"--spread must be from 0 (the fitted take) to 1 (free takes), got {spread:g}"
        )
    return spread * math.pi / 2.0


@torch.inference_mode()
def variations(
    sampler: Sampler, fit: Fit, takes: Sequence[int], spread: float, seed: int
) -> torch.Tensor:
    """(len(takes), frames, bins): takes `takes` around the fit; take i is stable for a seed
    (its free latent is take i of `sfxgan generate --seed` for the fit's class)."""
    free = sampler.latents(fit.class_name, list(takes), seed)
    return around_fit(sampler, fit, free, spread).cpu()


def around_fit(
    sampler: Sampler,
    fit: Fit,
    free: torch.Tensor,
    spread: float,
    embedding: torch.Tensor | None = None,
    variation: float = 1.0,
) -> torch.Tensor:
    """(n, frames, bins) on the sampler's device: G(cos(a) z_fit + sin(a) free, embedding)
    with cos(a) times the fit's offset added to the start map, a = spread * pi / 2; the latent
    scaled by `variation` (the studio's knob), the embedding the fit's class's unless given
    (the studio's class blend)."""
    generator, device = sampler.generator, sampler.device
    angle = spread_angle(spread)
    latent = math.cos(angle) * fit.latent[None] + math.sin(angle) * free
    z = (latent * variation).to(device)
    if embedding is None:
        embedding = generator.label_embed.weight[sampler.label(fit.class_name)]
    embeddings = embedding.expand(len(z), -1)
    start = generator.start_map(z, embeddings) + math.cos(angle) * fit.offset.to(device)
    return generator.decode(start, embeddings)[:, 0].float()


# --- a folder of takes per sound ----------------------------------------------------------------

RECORD = "vary.json"
RECORD_FORMAT = "sfxgan-vary"
RECORD_VERSION = 1


def load_sources(paths: Sequence[str | Path], sampler: Sampler) -> list[Source]:
    """Every sound decoded before any is fitted: a bad file stops the command at once. Two
    sounds whose file names would give the same take names are refused."""
    if not paths:
        raise SfxganError("give at least one sound to vary")
    sources = [load_source(path, sampler) for path in paths]
    seen: dict[str, Path] = {}
    for source in sources:
        if source.name in seen:
            raise SfxganError(
                f"'{seen[source.name]}' and '{source.path}' would both write {source.name}_*.wav; "
                "rename one, or vary them into separate --out folders"
            )
        seen[source.name] = source.path
    return sources


def judge_of(sampler: Sampler):
    """The judge the run trained for its quality checks, or None when it has none."""
    from sfxgan.evaluate.judge import Judge
    from sfxgan.run_folder import judge_path, run_of

    path = judge_path(run_of(sampler.checkpoint)) if sampler.checkpoint else None
    return Judge.load(path) if path is not None and path.is_file() else None


def heard_classes(judge, source: Source, sample_rate: int) -> list[str]:
    """The classes the run's judge hears in a sound: those it gives at least JUDGE_SHARE, most
    likely first (at least its first choice). The fit's class is chosen among them: a spectral
    distance alone found a ringing electronic hi-hat closest to a tom, and a crash cut to half
    a second closest to a hi-hat, while a listener, and the judge, hear the source's class."""
    probs = _judge_outputs(judge, source.audio[None], sample_rate).probs[0]
    order = np.argsort(-probs)
    return [judge.classes[i] for i in order if i == order[0] or probs[i] >= JUDGE_SHARE]


def fit_sound(
    sampler: Sampler,
    source: Source,
    class_name: str | None = None,
    seed: int = 0,
    judge=None,
    fitting: dict | None = None,
) -> Fit:
    """`invert` as `sfxgan vary` and the studio use it: in the class asked, else among the
    classes the run's judge hears in the sound (heard_classes) when the run has a judge, else
    among all. `fitting` passes invert's starts and steps."""
    candidates = None
    if judge is not None and class_name is None and judge.classes == sampler.classes:
        candidates = heard_classes(judge, source, sampler.sample_rate)
    return invert(sampler, source, class_name, seed, candidates=candidates, **(fitting or {}))


def _judge_outputs(judge, clips: np.ndarray, sample_rate: int):
    """The judge's outputs for clips (n, samples) at `sample_rate`, resampled to its rate."""
    from sfxgan.dsp.finish import resample

    if judge.config.sample_rate != sample_rate:
        clips = np.stack([resample(c, sample_rate, judge.config.sample_rate) for c in clips])
    return judge.outputs(clips)


def judged(judge, clips: np.ndarray, sample_rate: int) -> list[dict]:
    """The judge's class and confidence for each clip (n, samples) at `sample_rate`."""
    probs = _judge_outputs(judge, clips, sample_rate).probs
    return [
        {"class": judge.classes[int(p.argmax())], "confidence": round(float(p.max()), 4)}
        for p in probs
    ]


def vary_to_folder(
    sampler: Sampler,
    sources: Sequence[Source],
    out: Path,
    takes: int,
    class_name: str | None = None,
    spread: float = DEFAULT_SPREAD,
    seed: int = 0,
    pictures: bool = False,
    finish=None,
    log: Callable[[str], None] | None = None,
    fitting: dict | None = None,
) -> dict:
    """For each source: the fitted take OUT/<name>_fit.wav and takes OUT/<name>_<i>.wav
    (i from 0), their spectrograms with `pictures`, and OUT/vary.json, rewritten after each
    sound so that an interrupted command leaves whole files and a record of them."""
    from sfxgan.dsp.finish import Finish
    from sfxgan.generate import settings_of

    finish = finish or Finish()
    finish.check(sampler.sample_rate, sampler.spec.features.clip_samples)
    spread_angle(spread)
    if takes < 0:
        raise SfxganError(f"--takes must be 0 or more, got {takes}")
    out.mkdir(parents=True, exist_ok=True)
    judge = judge_of(sampler)
    record = {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "settings": settings_of(sampler, seed, DEFAULT_PHASE, DEFAULT_PHASE_ITERS)
        | {"takes": takes, "spread": spread, "class_asked": class_name, "finish": finish.record()},
        "judge": str(judge.meta.get("path", "the run's judge.pt")) if judge else None,
        "sounds": [],
    }
    for source in sources:
        fit = fit_sound(sampler, source, class_name, seed, judge, fitting)
        entry = _vary_one(sampler, source, fit, out, takes, spread, seed, pictures, finish)
        if judge is not None:
            pair = np.stack([source.audio, entry.pop("_fit_audio")])
            source_said, fit_said = judged(judge, pair, sampler.sample_rate)
            entry["judge"] = {"source": source_said, "fit": fit_said}
        else:
            entry.pop("_fit_audio")
        record["sounds"].append(entry)
        write_json_atomic(out / RECORD, record)
        if log:
            log(describe(entry))
    return record


def _vary_one(
    sampler: Sampler,
    source: Source,
    fit: Fit,
    out: Path,
    takes: int,
    spread: float,
    seed: int,
    pictures: bool,
    finish,
) -> dict:
    """Write one source's fitted take and its takes; the entry of vary.json (with the fitted
    take's audio under "_fit_audio" for the judge)."""
    from sfxgan.dsp.finish import finish_clip

    log_spec = torch.cat([fit.log_spec[None], variations(sampler, fit, range(takes), spread, seed)])
    audio = sampler.to_audio(log_spec).cpu().numpy()
    names = [f"{source.name}_fit"] + [f"{source.name}_{i}" for i in range(takes)]
    files, quieter = [], {}
    for index, (name, clip) in enumerate(zip(names, audio, strict=True)):
        if finish.is_default:
            files.append(write_wav(out / f"{name}.wav", clip, sampler.sample_rate))
        else:
            done = finish_clip(clip, sampler.sample_rate, finish)
            files.append(write_wav(out / f"{name}.wav", done.audio, done.sample_rate))
            if done.quieter:
                quieter[name] = done.loudness
        if pictures:
            _picture(sampler, out / f"{name}.png", fit.target, log_spec[index], name, index == 0)
    return {
        "source": str(source.path.resolve()),
        "sha256": source.sha256,
        "seconds": round(source.seconds, 4),
        "fitted_to_clip": source.fitted or "as it is",
        "class": fit.class_name,
        "classes_tried": list(fit.per_class_db),
        "distance_db": round(fit.distance_db, 3),
        "per_class_distance_db": {k: round(v, 3) for k, v in fit.per_class_db.items()},
        "gain_db": round(fit.gain_db, 2),
        "seconds_to_fit": round(fit.seconds, 2),
        "latent": [round(float(v), 6) for v in fit.latent],
        "offset": np.round(fit.offset.numpy(), 6).tolist(),
        "files": [f.name for f in files],
        "quieter": quieter,
        "_fit_audio": audio[0],
    }


def _picture(sampler: Sampler, path: Path, target, log_spec, name: str, with_source: bool) -> None:
    from sfxgan.plots import save_spectrograms

    panels = [("source", target.numpy())] if with_source else []
    save_spectrograms(path, panels + [(name, log_spec.numpy())], sampler.spec.features)


def describe(entry: dict) -> str:
    """One line per sound for the terminal."""
    line = f"{Path(entry['source']).name}: "
    if entry["fitted_to_clip"] != "as it is":
        line += entry["fitted_to_clip"] + "; "
    line += (
        f"fitted as '{entry['class']}' in {entry['seconds_to_fit']:.1f} s, "
        f"{entry['distance_db']:.2f} dB from the source"
    )
    # the classes compared on the first stage's figures (the latent alone): the final distance
    # also has the offset's gain, which the other classes did not get
    by_class = entry["per_class_distance_db"]
    others = {k: v for k, v in by_class.items() if k != entry["class"]}
    if others:
        name, value = min(others.items(), key=lambda kv: kv[1])
        line += f" (the latent alone: {by_class[entry['class']]:.2f} dB, as {name} {value:.2f})"
    if "judge" in entry:
        src, fit = entry["judge"]["source"], entry["judge"]["fit"]
        line += (
            f"; the judge hears the source as {src['class']} ({100 * src['confidence']:.0f} %), "
            f"the fit as {fit['class']} ({100 * fit['confidence']:.0f} %)"
        )
    return line + f"; {len(entry['files'])} files"
