"""`sfxgan studio`: a local web page to audition, vary, blend, morph and download clips.

The page (Gradio, the optional `studio` extra) is a thin layer over `Studio`, which holds the
run loaded once and does the work, so everything the page does can also be scripted and tested
without a browser:

    studio = Studio(Sampler.from_run("runs/demo"), workdir)
    take = studio.new_take("rain", count=4, seed=0)      # the latents of 4 clips
    rendered = studio.render(take, studio.voice("rain", variation=0.7))
    ready = studio.render(take, voice, studio.finish(48_000, -16))   # for a session (dsp.finish)

A *take* is the latents of the clips on the page; a *voice* is what the knobs say (class, a
second class to blend with and how much, variation). Generating draws new latents; moving a
knob re-renders the same latents with the new voice, so a user hears what the knob does to the
very clips they are listening to. With variation 1 and no blend, clip i of a take is clip i of
`sfxgan generate --seed S`: what the studio plays is what the command writes. A *finish* (a
rate, a loudness) makes the clips ready for a session as `generate --rate --loudness` does;
the page plays, and downloads, the finished files.

A take can also start from a user's sound (`sfxgan vary`, apps/vary.py): the sound is fitted
into the generator, and the take's clips are variations around the fit, as far from it as the
voice's *spread* says; every other knob, regenerating a clip and morphing work on them too:

    take = studio.start_from_sound("my_snare.wav", count=4, seed=0)   # or class_name="snare"
    shown = studio.beside(take)               # the sound and its fitted take, side by side
    rendered = studio.render(take, studio.voice(take.fit.class_name, spread=0.5))
"""

from __future__ import annotations

import dataclasses
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib import colormaps

from sfxgan.apps.vary import (
    DEFAULT_SPREAD,
    LATENT_STEPS,
    OFFSET_STEPS,
    STARTS,
    Fit,
    Source,
    around_fit,
    fit_sound,
    judge_of,
    load_source,
)
from sfxgan.data.audio import write_wav
from sfxgan.dsp.finish import (
    DEFAULT_TRUE_PEAK,
    LOUDNESS_RANGE,
    RATES,
    Finish,
    finish_clip,
)
from sfxgan.errors import SfxganError, first_line
from sfxgan.files import safe_name
from sfxgan.generate import Sampler, class_seed

MAX_CLIPS = 16  # slots on the page: enough to pick from, few enough to hear them all
MAX_VARIATION = 2.0
MAX_MORPH_STEPS = MAX_CLIPS
NO_BLEND = "(none)"
PEAK = "peak"  # the loudness control's peak normalisation (no loudness asked)
FIND_CLASS = "(find it)"  # the class of a sound to fit: the one whose takes come closest
MAX_TRAINING_CLIPS = 300  # training clips offered to start from, taken in turn from each class
KEEP_RENDERS = 64  # render folders kept on disk per studio; older ones are removed


@dataclasses.dataclass(frozen=True)
class Voice:
    """What the knobs say: a class, optionally blended with a second one, and the variation.

    blend 0 is `class_name` alone, 1 is `blend_with` alone; the generator sees the mix of the
    two classes' label embeddings. variation scales the latent (the truncation trick in its
    simplest form): 0 gives the class's central sound, 1 the training distribution, more gives
    wilder takes that the critic never judged. spread says only for a take from a sound how
    far its clips lie from the fit: 0 the fitted take, 1 free takes of the class (`sfxgan
    vary --spread`).
    """

    class_name: str
    blend_with: str | None = None
    blend: float = 0.0
    variation: float = 1.0
    spread: float = DEFAULT_SPREAD

    @property
    def stem(self) -> str:
        """A file-name stem: rain, rain+wind40, rain_v70."""
        stem = safe_name(self.class_name)
        if self.blend_with is not None and self.blend > 0:
            stem += f"+{safe_name(self.blend_with)}{round(100 * self.blend)}"
        if not math.isclose(self.variation, 1.0):
            stem += f"_v{round(100 * self.variation)}"
        return stem


@dataclasses.dataclass(frozen=True)
class Take:
    """The clips on the page: one latent per clip, before the variation scale, and a name.

    A take from a sound also holds the sound and its fit; its latents are then the clips' free
    latents, which the voice's spread mixes with the fitted one."""

    latents: torch.Tensor  # (n, latent_dim)
    names: tuple[str, ...]  # what each clip is called in file names: s0_1, s0_3r1, m1-4_2
    seed: int
    rerolls: tuple[int, ...]  # how often each clip was regenerated
    fit: Fit | None = None
    source: Source | None = None

    @property
    def stem(self) -> str:
        """What the clips' names start with: s0, or from-my_snare_s0 from my_snare.wav."""
        if self.source is None:
            return f"s{self.seed}"
        return f"from-{self.source.name}_s{self.seed}"

    def file_stem(self, voice: Voice) -> str:
        """The voice's stem, with the spread for a take from a sound: snare_sp30."""
        if self.fit is None:
            return voice.stem
        return f"{voice.stem}_sp{round(100 * voice.spread)}"


@dataclasses.dataclass(frozen=True)
class Beside:
    """A sound and its fitted take, to hear and see side by side: both peak-normalised WAVs at
    the model's rate and pictures of their spectrograms (the sound at the level it was fitted
    at), with what the fit found."""

    original: Path
    fitted: Path
    original_picture: np.ndarray
    fitted_picture: np.ndarray
    class_name: str
    distance_db: float
    line: str  # what the page says of the fit


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A take rendered with a voice: one WAV and one spectrogram picture per clip, and a ZIP."""

    wavs: list[Path]
    pictures: list[np.ndarray]  # (H, W, 3) uint8, frequency upwards
    zip_path: Path
    seconds: float
    finish: Finish = Finish()
    quieter: int = 0  # clips the true-peak ceiling held under the loudness asked

    @property
    def seconds_per_clip(self) -> float:
        return self.seconds / len(self.wavs)


class Studio:
    """A loaded run and what the page asks of it. Every request is checked here: a bad one is
    an SfxganError whose message the page shows."""

    def __init__(self, sampler: Sampler, workdir: Path):
        self.sampler = sampler
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._renders: list[Path] = []
        self._lock = threading.Lock()  # renders run on Gradio's worker threads
        self._colormap = colormaps["magma"]
        # how a sound is fitted (apps.vary.invert): fewer starts and steps fit faster, less near
        self.judge = judge_of(sampler)  # picks the classes a sound is fitted in (vary.fit_sound)
        self.fitting = {
            "starts": STARTS,
            "latent_steps": LATENT_STEPS,
            "offset_steps": OFFSET_STEPS,
        }

    @property
    def classes(self) -> list[str]:
        return self.sampler.classes

    def voice(
        self,
        class_name: str,
        blend_with: str | None = None,
        blend: float = 0.0,
        variation: float = 1.0,
        spread: float = DEFAULT_SPREAD,
    ) -> Voice:
        self.sampler.label(class_name)  # an unknown class names the known ones
        if blend_with in (None, "", NO_BLEND):
            blend_with, blend = None, 0.0
        else:
            self.sampler.label(blend_with)
        blend = _number(blend, "blend", 0.0, 1.0)
        variation = _number(variation, "variation", 0.0, MAX_VARIATION)
        spread = _number(spread, "spread", 0.0, 1.0)
        return Voice(class_name, blend_with, blend, variation, spread)

    def finish(self, rate=None, loudness=None) -> Finish:
        """What the page's finishing controls say: a rate (None, 0 or the model's: the model's)
        and a loudness in LUFS (None, empty or PEAK: peak-normalised); as `generate --rate
        --loudness` finishes takes, the DC removed and a short fade-out at the end."""
        rate = None if rate in (None, "", 0, self.sampler.sample_rate) else rate
        if rate is not None:
            rate = _whole(rate, "rate", *RATES)
        if loudness in (None, "", PEAK):
            loudness = None
        else:
            loudness = _number(loudness, "loudness", *LOUDNESS_RANGE)
        finish = Finish.session(rate, loudness)
        finish.check(self.sampler.sample_rate, self.sampler.spec.features.clip_samples)
        return finish

    def new_take(self, class_name: str, count: int, seed: int) -> Take:
        """`count` new latents, the same ones `sfxgan generate --seed seed` uses for the class."""
        count = _whole(count, "number of variations", 1, MAX_CLIPS)
        seed = _whole(seed, "seed", 0, 2**63 - 1)
        latents = self.sampler.latents(class_name, count, seed)
        names = tuple(f"s{seed}_{i + 1}" for i in range(count))
        return Take(latents, names, seed, (0,) * count)

    def reroll(self, take: Take, clip: int) -> Take:
        """A new latent for one clip (1-based), the others kept. Deterministic: the n-th
        regeneration of clip i of a take with seed s always gives the same sound."""
        index = _whole(clip, "clip", 1, len(take.names)) - 1
        count = take.rerolls[index] + 1
        g = torch.Generator().manual_seed(class_seed(take.seed, f"reroll:{index}:{count}"))
        latents = take.latents.clone()
        latents[index] = torch.randn(latents.shape[1], generator=g)
        names = list(take.names)
        names[index] = f"{take.stem}_{index + 1}r{count}"
        rerolls = list(take.rerolls)
        rerolls[index] = count
        return dataclasses.replace(
            take, latents=latents, names=tuple(names), rerolls=tuple(rerolls)
        )

    def morph(self, take: Take, first: int, last: int, steps: int) -> Take:
        """`steps` clips on the great circle from clip `first` to clip `last` (1-based): a
        Gaussian latent's length concentrates near sqrt(latent_dim), and a straight line
        between two of them passes through shorter, atypical latents; the arc does not. In a
        take from a sound the free latents are morphed, the fit kept: at any spread the first
        and last clips are the two clips morphed between."""
        a = _whole(first, "first clip", 1, len(take.names)) - 1
        b = _whole(last, "last clip", 1, len(take.names)) - 1
        steps = _whole(steps, "morph steps", 2, MAX_MORPH_STEPS)
        t = torch.linspace(0, 1, steps)
        latents = slerp(take.latents[a], take.latents[b], t)
        names = tuple(f"{take.stem}_m{a + 1}-{b + 1}_{k + 1}" for k in range(steps))
        return dataclasses.replace(take, latents=latents, names=names, rerolls=(0,) * steps)

    def start_from_sound(
        self,
        path: str | Path | None,
        class_name: str | None = None,
        seed: int = 0,
        count: int = 4,
    ) -> Take:
        """A take of `count` clips around a user's sound (`sfxgan vary`): the sound is fitted
        into the generator, in `class_name` or the class whose takes come closest (None or
        FIND_CLASS), from the starts of `seed`; clip i's free latent is take i - 1 of `sfxgan
        generate --seed seed` for the class found. An unreadable or silent file is an
        SfxganError naming it."""
        if path in (None, ""):
            raise SfxganError("give a sound to start from: upload or record one, or pick a clip")
        if class_name in ("", FIND_CLASS):
            class_name = None
        if class_name is not None:
            self.sampler.label(class_name)
        count = _whole(count, "number of variations", 1, MAX_CLIPS)
        seed = _whole(seed, "seed", 0, 2**63 - 1)
        source = load_source(path, self.sampler)
        with self._lock:
            fit = fit_sound(self.sampler, source, class_name, seed, self.judge, self.fitting)
        latents = self.sampler.latents(fit.class_name, count, seed)
        take = Take(latents, (), seed, (0,) * count, fit, source)
        return dataclasses.replace(take, names=tuple(f"{take.stem}_{i + 1}" for i in range(count)))

    def beside(self, take: Take) -> Beside:
        """The sound a take started from and its fitted take, as WAV files and pictures: the
        sound as the run sees it (at the model's rate, cut or padded to the clip), the fitted
        take in the class found with no blend and spread 0; both peak-normalised."""
        if take.fit is None or take.source is None:
            raise SfxganError("these clips do not start from a sound; fit one first")
        fit, source = take.fit, take.source
        with self._lock:
            fitted = self.sampler.to_audio(fit.log_spec[None]).cpu().numpy()[0]
        original = source.audio / max(float(np.abs(source.audio).max()), 1e-8)
        folder = self._new_render_folder()
        rate = self.sampler.sample_rate
        original_wav = write_wav(folder / f"{source.name}.wav", original, rate)
        fitted_wav = write_wav(
            folder / f"{safe_name(fit.class_name)}_{take.stem}_fit.wav", fitted, rate
        )
        line = (
            f"**{source.path.name}** fitted as **{fit.class_name}**, "
            f"{fit.distance_db:.2f} dB from the sound"
        )
        runner_up = fit.next_class()
        if runner_up:  # compared by their latents alone, before the start map's offset
            line += (
                f" (by the latent alone {fit.per_class_db[fit.class_name]:.2f} dB; next class: "
                f"{runner_up[0]}, {runner_up[1]:.2f} dB)"
            )
        if source.fitted:
            line += f"; {source.fitted}"
        return Beside(
            original_wav,
            fitted_wav,
            self.picture(fit.target.numpy()),
            self.picture(fit.log_spec.numpy()),
            fit.class_name,
            fit.distance_db,
            line,
        )

    def training_clips(self, limit: int = MAX_TRAINING_CLIPS) -> list[tuple[str, str]]:
        """(class/file name, path) of the run's training clips, when its data is still where it
        was trained from: at most `limit`, taken in turn from each class."""
        from sfxgan.data.dataset import list_source

        data = self.sampler.spec.data
        try:
            listing = list_source(data) if data and Path(data).exists() else None
        except (SfxganError, OSError):
            listing = None
        if listing is None:
            return []
        per_class: dict[str, list] = {}
        for entry in listing.entries:
            per_class.setdefault(entry.label, []).append(entry.path)
        clips = []
        for row in range(max((len(v) for v in per_class.values()), default=0)):
            for label, paths in per_class.items():
                if row < len(paths) and len(clips) < limit:
                    clips.append((f"{label}/{paths[row].name}", str(paths[row])))
        return sorted(clips)

    @torch.inference_mode()
    def log_specs(self, take: Take, voice: Voice) -> torch.Tensor:
        """(n, T, F) normalised log-spectrograms of a take's clips in a voice."""
        sampler = self.sampler
        table = sampler.generator.label_embed.weight  # (classes, embed_dim)
        embedding = table[sampler.label(voice.class_name)]
        if voice.blend_with is not None:
            other = table[sampler.label(voice.blend_with)]
            embedding = torch.lerp(embedding, other, voice.blend)
        if take.fit is not None:
            return around_fit(
                sampler, take.fit, take.latents, voice.spread, embedding, voice.variation
            )
        z = (take.latents * voice.variation).to(sampler.device)
        embeddings = embedding.expand(len(z), -1)
        return sampler.generator.synthesize(z, embeddings)[:, 0].float()

    def render(self, take: Take, voice: Voice, finish: Finish | None = None) -> Rendered:
        """Generate a take's clips, write them as WAV files (finished as `finish` says:
        default, peak-normalised at the model's rate) and a ZIP, draw their spectrograms."""
        start = time.perf_counter()
        finish = finish or Finish()
        with self._lock:
            log_spec = self.log_specs(take, voice)
            audio = self.sampler.to_audio(log_spec).cpu().numpy()
        folder = self._new_render_folder()
        stem = take.file_stem(voice)
        wavs, quieter = [], 0
        for name, clip in zip(take.names, audio, strict=True):
            path = folder / f"{stem}_{name}.wav"
            if finish.is_default:
                wavs.append(write_wav(path, clip, self.sampler.sample_rate))
                continue
            done = finish_clip(clip, self.sampler.sample_rate, finish)
            wavs.append(write_wav(path, done.audio, done.sample_rate))
            quieter += done.quieter
        pictures = [self.picture(s) for s in log_spec.cpu().numpy()]
        zip_path = folder / f"{stem}_{take.stem}.zip"
        with zipfile.ZipFile(zip_path, "w") as archive:
            for wav in wavs:
                archive.write(wav, wav.name)  # WAV is already compressed poorly: store is fine
        return Rendered(wavs, pictures, zip_path, time.perf_counter() - start, finish, quieter)

    def picture(self, log_spec: np.ndarray) -> np.ndarray:
        """A (T, F) log-spectrogram in [-1, 1] as an RGB image, time across, frequency up,
        at least twice as wide as high (frames repeated) so that time reads at a glance."""
        frames, bins = log_spec.shape
        widen = max(1, round(2 * bins / frames))
        level = np.clip((np.repeat(log_spec, widen, axis=0).T[::-1] + 1.0) / 2.0, 0.0, 1.0)
        return (self._colormap(level)[..., :3] * 255).astype(np.uint8)

    def _new_render_folder(self) -> Path:
        # a fresh folder per render: a page still playing an older clip never reads a file
        # that is being rewritten, and downloads keep their names
        folder = self.workdir / uuid.uuid4().hex[:12]
        folder.mkdir()
        self._renders.append(folder)
        while len(self._renders) > KEEP_RENDERS:
            shutil.rmtree(self._renders.pop(0), ignore_errors=True)
        return folder


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation from a to b (vectors) at fractions t (n,) -> (n, dim)."""
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if omega < 1e-4:  # (nearly) the same direction: the arc is the line
        return torch.lerp(a, b, t[:, None])
    sin = torch.sin(omega)
    return (torch.sin((1 - t) * omega)[:, None] * a + torch.sin(t * omega)[:, None] * b) / sin


def _number(value, what: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SfxganError(f"{what} must be a number from {low:g} to {high:g}") from None
    if not low <= number <= high:
        raise SfxganError(f"{what} must be from {low:g} to {high:g}, got {number:g}")
    return number


def _whole(value, what: str, low: int, high: int) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SfxganError(f"{what} must be a whole number from {low} to {high}") from None
    if not number.is_integer() or not low <= number <= high:
        raise SfxganError(f"{what} must be a whole number from {low} to {high}, got {value}")
    return int(number)


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------

CSS = """
#status { min-height: 1.5em; }
.clip { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 6px; }
"""


def build_page(studio: Studio, title: str):
    """The Gradio page over a Studio. Returns a `gr.Blocks`, not yet launched."""
    import gradio as gr

    # Gradio copies every WAV it serves into its own cache: files older than an hour are
    # removed every hour, so a studio left running for days does not fill the disk
    with gr.Blocks(title=f"sfxgan studio: {title}", delete_cache=(3600, 3600)) as page:
        take_state = gr.State(None)
        gr.Markdown(_heading(studio, title))
        controls = _controls(studio.classes, studio.sampler.sample_rate)
        sound = _sound_panel(studio.classes, studio.training_clips())
        grid = _clip_grid()
        morph = _morph_controls()
        outputs = [
            take_state,
            controls.status,
            controls.download_all,
            *grid.slots,
            *grid.players,
            *grid.pictures,
        ]
        handlers = _Handlers(studio, len(outputs))
        _connect(handlers, take_state, controls, grid, morph, outputs, sound.spread)
        _connect_sound(handlers, take_state, controls, sound, outputs)
    return page


def _heading(studio: Studio, title: str) -> str:
    sampler = studio.sampler
    weights = "moving average of the weights" if sampler.weights == "ema" else "trained weights"
    return (
        f"## sfxgan studio: {title}\n"
        f"Step {sampler.step} ({weights}), {len(studio.classes)} classes, "
        f"{sampler.spec.features.duration:.2f} s clips at {sampler.sample_rate} Hz. "
        "**Generate** draws new clips, **Start from a sound** clips like a sound of yours; "
        "the sliders change the clips on the page."
    )


@dataclasses.dataclass
class _Controls:
    """The knobs above the clips, the Generate and ZIP buttons and the status line."""

    class_box: Any
    blend_box: Any
    blend_slider: Any
    count: Any
    seed: Any
    variation: Any
    generate: Any
    download_all: Any
    status: Any
    rate: Any
    loudness: Any

    @property
    def voice(self) -> list:
        """The inputs of Studio.voice, in its order."""
        return [self.class_box, self.blend_box, self.blend_slider, self.variation]

    @property
    def finish(self) -> list:
        """The inputs of Studio.finish, in its order: last in every event's inputs, so that the
        page's API (generate, morph) keeps its earlier parameters in place."""
        return [self.rate, self.loudness]


def _controls(classes: list[str], model_rate: int) -> _Controls:
    import gradio as gr

    with gr.Row():
        # custom values reach Studio.voice, whose message names the known classes, instead
        # of Gradio's own check, which answers with a traceback on the console
        class_box = gr.Dropdown(
            classes, value=classes[0], label="Class", elem_id="class", allow_custom_value=True
        )
        blend_box = gr.Dropdown(
            [NO_BLEND, *classes],
            value=NO_BLEND,
            label="Blend with",
            elem_id="blend-with",
            allow_custom_value=True,
        )
        blend_slider = gr.Slider(
            0, 1, 0.5, step=0.05, label="Blend", info="0: the class, 1: the other class"
        )
    with gr.Row():
        count = gr.Slider(1, MAX_CLIPS, 4, step=1, label="Variations", elem_id="count", precision=0)
        seed = gr.Number(0, precision=0, label="Seed", minimum=0, elem_id="seed")
        variation = gr.Slider(
            0,
            MAX_VARIATION,
            1.0,
            step=0.05,
            label="Variation",
            info="latent truncation: 0 the class's central sound, 1 as trained",
            elem_id="variation",
        )
    with gr.Row():
        rate, loudness = _finish_controls(model_rate)
    with gr.Row():
        generate = gr.Button("Generate", variant="primary", elem_id="generate")
        download_all = gr.DownloadButton(
            "Download all (ZIP)", visible=False, elem_id="download-all"
        )
    status = gr.Markdown(elem_id="status")
    return _Controls(
        class_box,
        blend_box,
        blend_slider,
        count,
        seed,
        variation,
        generate,
        download_all,
        status,
        rate,
        loudness,
    )


def _finish_controls(model_rate: int) -> tuple[Any, Any]:
    """The files' rate and loudness (Studio.finish): what the page plays and downloads."""
    import gradio as gr

    rates = [(f"{model_rate} Hz (the model's)", 0)]
    rates += [(f"{r} Hz", r) for r in (44_100, 48_000) if r != model_rate]
    rate = gr.Dropdown(
        rates,
        value=0,
        label="Sample rate of the files",
        info="the sound still ends at the model's Nyquist frequency",
        elem_id="rate",
    )
    # a list with room for any other figure, not a number box: Gradio sends an empty number
    # box as 0, and every render was finished to 0 LUFS
    levels = [("peak-normalised", PEAK)] + [
        (f"{lufs} LUFS{why}", str(lufs))
        for lufs, why in ((-14, " (streaming)"), (-16, ""), (-18, ""), (-23, " (EBU R128)"))
    ]
    loudness = gr.Dropdown(
        levels,
        value=PEAK,
        allow_custom_value=True,
        label="Loudness",
        info=f"integrated, in LUFS ({LOUDNESS_RANGE[0]:g} to {LOUDNESS_RANGE[1]:g}), under a "
        f"{DEFAULT_TRUE_PEAK:g} dBTP true peak; or peak-normalised",
        elem_id="loudness",
    )
    return rate, loudness


@dataclasses.dataclass
class _ClipGrid:
    """MAX_CLIPS slots, four to a row, each a player, a picture and a regenerate button; the
    slots past the take's clips stay hidden."""

    slots: list
    players: list
    pictures: list
    rerolls: list


def _clip_grid(per_row: int = 4) -> _ClipGrid:
    import gradio as gr

    grid = _ClipGrid([], [], [], [])
    for row_start in range(0, MAX_CLIPS, per_row):
        with gr.Row(equal_height=True):
            for i in range(row_start, row_start + per_row):
                with gr.Column(visible=False, elem_classes="clip", min_width=220) as slot:
                    grid.players.append(
                        gr.Audio(
                            type="filepath",
                            label=f"Clip {i + 1}",
                            interactive=False,
                            buttons=["download"],
                            elem_classes="clip-audio",
                        )
                    )
                    grid.pictures.append(
                        gr.Image(
                            show_label=False,
                            interactive=False,
                            height=140,
                            format="png",
                            buttons=["fullscreen"],
                            elem_classes="clip-picture",
                        )
                    )
                    grid.rerolls.append(gr.Button(f"Regenerate clip {i + 1}", size="sm"))
                grid.slots.append(slot)
    return grid


@dataclasses.dataclass
class _SoundPanel:
    """Start from a sound: the sound (uploaded, recorded or a training clip), the class to fit
    it in, the spread, the Fit button; then the sound and its fitted take side by side."""

    sound: Any
    training_clip: Any
    fit_class: Any
    spread: Any
    fit: Any
    line: Any
    original: Any
    original_picture: Any
    fitted: Any
    fitted_picture: Any

    @property
    def beside(self) -> list:
        """The outputs a fit fills besides the clips, in the order _Handlers.on_fit gives them."""
        return [self.original, self.original_picture, self.fitted, self.fitted_picture, self.line]


def _sound_panel(classes: list[str], training_clips: list[tuple[str, str]]) -> _SoundPanel:
    import gradio as gr

    with gr.Accordion("Start from a sound", open=False, elem_id="from-sound"):
        gr.Markdown(
            "Clips like a sound of yours (`sfxgan vary`): the sound is fitted into the model "
            "(about 6 s with `tiny` on 2 CPU cores), then the clips below vary around the fit."
        )
        with gr.Row():
            sound = gr.Audio(
                sources=["upload", "microphone"],
                type="filepath",
                label="Your sound",
                elem_id="sound",
            )
            with gr.Column():
                training_clip = gr.Dropdown(
                    training_clips,
                    value=None,
                    label="or one of the training clips",
                    elem_id="training-clip",
                    visible=bool(training_clips),
                )
                fit_class = gr.Dropdown(
                    [FIND_CLASS, *classes],
                    value=FIND_CLASS,
                    label="Fit it in the class",
                    elem_id="fit-class",
                    allow_custom_value=True,
                )
                spread = gr.Slider(
                    0,
                    1,
                    DEFAULT_SPREAD,
                    step=0.05,
                    label="Spread",
                    elem_id="spread",
                    info="0: the fitted take, 1: free takes of the class",
                )
                fit = gr.Button("Fit", variant="primary", elem_id="fit")
        line = gr.Markdown(elem_id="fit-line")
        players, pictures = [], []
        with gr.Row(equal_height=True):
            for label, elem in (
                ("Your sound, as the model hears it", "original"),
                ("The fitted take", "fitted"),
            ):
                with gr.Column(elem_classes="clip"):
                    players.append(
                        gr.Audio(
                            type="filepath",
                            label=label,
                            interactive=False,
                            buttons=["download"],
                            elem_id=elem,
                        )
                    )
                    pictures.append(
                        gr.Image(
                            show_label=False,
                            interactive=False,
                            height=140,
                            format="png",
                            buttons=["fullscreen"],
                            elem_id=f"{elem}-picture",
                        )
                    )
    return _SoundPanel(
        sound,
        training_clip,
        fit_class,
        spread,
        fit,
        line,
        players[0],
        pictures[0],
        players[1],
        pictures[1],
    )


@dataclasses.dataclass
class _MorphControls:
    first: Any
    last: Any
    steps: Any
    button: Any


def _morph_controls() -> _MorphControls:
    import gradio as gr

    with gr.Accordion("Morph between two clips", open=False), gr.Row():
        first = gr.Number(1, precision=0, label="From clip", minimum=1)
        last = gr.Number(2, precision=0, label="To clip", minimum=1)
        steps = gr.Slider(2, MAX_MORPH_STEPS, 6, step=1, label="Steps")
        button = gr.Button("Morph")
    return _MorphControls(first, last, steps, button)


class _Handlers:
    """What the page's events do: each asks the Studio for a take and a voice, renders them
    and returns the new value of every output (the take, the status line, the ZIP button,
    then each slot's visibility, audio and picture)."""

    def __init__(self, studio: Studio, n_outputs: int):
        self.studio = studio
        self.n_outputs = n_outputs

    def show(self, take: Take, voice: Voice, finish: Finish, action: str) -> list:
        import gradio as gr

        rendered = self.studio.render(take, voice, finish)
        n = len(rendered.wavs)
        message = (
            f"{action}: {n} clip{'s' if n > 1 else ''} of **{take.file_stem(voice)}** in "
            f"{rendered.seconds:.2f} s ({1000 * rendered.seconds_per_clip:.0f} ms per clip)"
        )
        if not finish.is_default:
            message += f"; {finish.describe(self.studio.sampler.sample_rate)}"
        if rendered.quieter:
            message += (
                f"; {rendered.quieter} quieter than {finish.loudness:g} LUFS: louder, their true "
                f"peak would pass {finish.true_peak:g} dBTP"
            )
        visible = [gr.Column(visible=i < n) for i in range(MAX_CLIPS)]
        audio = [str(rendered.wavs[i]) if i < n else None for i in range(MAX_CLIPS)]
        images = [rendered.pictures[i] if i < n else None for i in range(MAX_CLIPS)]
        zip_button = gr.DownloadButton(value=str(rendered.zip_path), visible=True)
        return [take, message, zip_button, *visible, *audio, *images]

    def answer(self, action: str, request) -> list:
        """Run one request; a bad one leaves the page as it is and says why on it."""
        import gradio as gr

        try:
            take, voice, finish = request()
            return self.show(take, voice, finish, action)
        except SfxganError as exc:
            return [gr.skip(), f"**Not done:** {exc}", *[gr.skip()] * (self.n_outputs - 2)]

    @staticmethod
    def shown(take: Take | None) -> Take:
        if take is None:
            raise SfxganError("generate some clips first")
        return take

    def knobs(self, knobs: tuple) -> tuple[Voice, Finish]:
        """The voice and the finish that the knobs (_Controls.voice, then .finish, then the
        spread where given) say."""
        return self.studio.voice(*knobs[:4], *knobs[6:7]), self.studio.finish(*knobs[4:6])

    def on_generate(
        self, class_name, blend_with, blend, variation, count, seed, rate=0, loudness=None
    ) -> list:
        knobs = (class_name, blend_with, blend, variation, rate, loudness)
        return self.answer(
            "Generated",
            lambda: (self.studio.new_take(class_name, count, seed), *self.knobs(knobs)),
        )

    def on_knob(self, take, *knobs) -> list:
        import gradio as gr

        if take is None:  # nothing on the page yet: the knobs wait for Generate
            return [gr.skip()] * self.n_outputs
        return self.answer("Re-voiced", lambda: (take, *self.knobs(knobs)))

    def on_reroll(self, index: int):
        def handler(take, *knobs) -> list:
            return self.answer(
                f"Regenerated clip {index + 1}",
                lambda: (self.studio.reroll(self.shown(take), index + 1), *self.knobs(knobs)),
            )

        return handler

    def on_morph(
        self, take, class_name, blend_with, blend, variation, first, last, steps, *finish
    ) -> list:
        knobs = (class_name, blend_with, blend, variation, *finish)  # finish, then the spread
        return self.answer(
            "Morphed",
            lambda: (self.studio.morph(self.shown(take), first, last, steps), *self.knobs(knobs)),
        )

    def on_fit(self, sound, training_clip, fit_class, *knobs) -> list:
        """Fit the sound (an upload or recording, else the training clip picked) and show the
        clips around it, the sound beside its fitted take, and the class found in the Class
        box. knobs: _Controls.voice, the count, the seed, _Controls.finish, the spread."""
        import gradio as gr

        (class_name, blend_with, blend, variation, count, seed, rate, loudness, spread) = knobs
        voice_knobs = (blend_with, blend, variation, spread)
        try:
            finish = self.studio.finish(rate, loudness)
            self.studio.voice(self.studio.classes[0], *voice_knobs)  # checked before the fit
            take = self.studio.start_from_sound(sound or training_clip, fit_class, seed, count)
            fit, source = take.fit, take.source
            voice = self.studio.voice(fit.class_name, *voice_knobs)
            beside = self.studio.beside(take)
            action = f"Fitted {source.path.name} in {fit.seconds:.0f} s"
            shown = self.show(take, voice, finish, action)
        except SfxganError as exc:
            return [gr.skip(), f"**Not done:** {exc}", *[gr.skip()] * (self.n_outputs + 4)]
        pictures = [str(beside.original), beside.original_picture]
        pictures += [str(beside.fitted), beside.fitted_picture]
        return [*shown, *pictures, beside.line, gr.Dropdown(value=fit.class_name)]


def _connect(
    handlers: _Handlers,
    take_state,
    controls: _Controls,
    grid: _ClipGrid,
    morph: _MorphControls,
    outputs: list,
    spread,
) -> None:
    """Bind the events: Generate and Morph are also the page's API; the knobs re-voice the
    clips on the page when let go."""
    voice, finish = controls.voice, controls.finish
    knobs = [*voice, *finish, spread]
    controls.generate.click(
        handlers.on_generate,
        [*voice, controls.count, controls.seed, *finish],
        outputs,
        api_name="generate",
    )
    for knob in (controls.blend_slider, controls.variation, spread):
        knob.release(handlers.on_knob, [take_state, *knobs], outputs, api_name=False)
    for box in (controls.blend_box, *finish):
        box.input(handlers.on_knob, [take_state, *knobs], outputs, api_name=False)
    for i, button in enumerate(grid.rerolls):
        button.click(handlers.on_reroll(i), [take_state, *knobs], outputs, api_name=False)
    morph.button.click(
        handlers.on_morph,
        [take_state, *voice, morph.first, morph.last, morph.steps, *finish, spread],
        outputs,
        api_name="morph",
    )


def _connect_sound(
    handlers: _Handlers, take_state, controls: _Controls, sound: _SoundPanel, outputs: list
) -> None:
    """Fit is also the page's API. An upload or recording and a training clip exclude each
    other: choosing one clears the other, so that the page fits what it shows."""
    import gradio as gr

    sound.fit.click(
        handlers.on_fit,
        [
            sound.sound,
            sound.training_clip,
            sound.fit_class,
            *controls.voice,
            controls.count,
            controls.seed,
            *controls.finish,
            sound.spread,
        ],
        [*outputs, *sound.beside, controls.class_box],
        api_name="fit",
    )
    sound.training_clip.input(lambda _: None, sound.training_clip, sound.sound, api_name=False)
    sound.sound.input(
        lambda value: gr.skip() if value is None else None,
        sound.sound,
        sound.training_clip,
        api_name=False,
    )


def serve(
    run: str | Path,
    host: str = "127.0.0.1",
    port: int = 7860,
    device: str = "auto",
    ema: bool = True,
    checkpoint: str = "auto",
) -> None:
    """Load a run once (`checkpoint`: see Sampler.from_run) and serve the studio page until
    Ctrl-C or SIGTERM."""
    # no calls home: the studio runs offline, and what a user generates stays on their machine
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr  # noqa: F401
    except ImportError:
        raise SfxganError(
            "the studio needs Gradio, which is not installed; install the studio extra: "
            "pip install 'sfxgan[studio]'"
        ) from None
    if not 1 <= port <= 65535:
        raise SfxganError(f"port must be from 1 to 65535, got {port}")

    sampler = Sampler.from_run(run, device=device, ema=ema, checkpoint=checkpoint)
    print(sampler.describe_checkpoint(), file=sys.stderr)
    workdir = Path(tempfile.mkdtemp(prefix="sfxgan-studio-"))
    studio = Studio(sampler, workdir)
    title = Path(run).resolve().name
    page = build_page(studio, title)
    try:
        try:
            page.launch(
                server_name=host,
                server_port=port,
                prevent_thread_lock=True,
                quiet=True,
                share=False,
                inbrowser=False,
                footer_links=[],
                allowed_paths=[str(workdir)],
                css=CSS,
            )
        except OSError as exc:
            raise SfxganError(
                f"cannot listen on {host}:{port} ({first_line(exc, 80)}); "
                "give a free port with --port"
            ) from None
        where = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        print(f"sfxgan studio: {title}, step {sampler.step}, classes: {', '.join(studio.classes)}")
        print(f"open {where} in a browser; Ctrl-C stops it", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"note: listening on {host}: anyone who can reach this machine can use the page",
                file=sys.stderr,
            )
        _wait_for_stop()
    finally:
        page.close()
        shutil.rmtree(workdir, ignore_errors=True)
    print("sfxgan studio: stopped")


def _wait_for_stop() -> None:
    """Sleep until Ctrl-C or SIGTERM (a service manager's stop): both end the studio cleanly."""
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
