"""Takes ready for a session: DC removed, a fade-out at the end, the session's sample rate, and a
loudness by ITU-R BS.1770 under a true-peak ceiling, instead of the paper's peak normalisation.

    finish = Finish(rate=48_000, loudness=-16.0, remove_dc=True, fade_ms=5.0)
    done = finish_clip(clip, 16_000, finish)     # done.audio at done.sample_rate, done.loudness

`Finish()` (no option asked) is today's take: the model's rate, peak-normalised, nothing else;
callers write such takes as they always did, so that the files stay the same byte for byte.
A finished take goes through, in this order:

1. DC removed: the clip's mean subtracted;
2. resampled with soxr to `rate` (the content still ends at the model's Nyquist frequency:
   resampling adds no high frequencies, it only lets the file sit in a session at that rate);
3. faded out over its last `fade_ms` with a raised cosine, so that no take ends in a click;
4. gain: peak 1 (the paper's), or `loudness` LUFS integrated (BS.1770-4, measured by
   pyloudnorm) lowered where needed so that the true peak (BS.1770 annex 2) stays at or under
   the `true_peak` ceiling; such a take is quieter than asked, and `Finished.short_by` says by
   how much. With `limit`, such a take reaches the loudness asked instead: a look-ahead
   limiter (limit_peaks) turns its peaks down under the ceiling, as a mastering limiter does,
   at the cost of some of the attack's punch.

The fade comes after the resampling, not before: then it is `fade_ms` long at the delivered
rate and the delivered file's last sample is exactly 0 (a resampler's filter rings on after a
faded end). The gain comes last because the loudness and the true peak are figures of the
delivered file, at its rate.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import soxr

from sfxgan.data.audio import peak_normalize
from sfxgan.errors import SfxganError

# soxr's 20-bit recipe, as the data loader and the DCASE layout use: finer than 16-bit output
RESAMPLE_QUALITY = "HQ"
RATES = (8_000, 192_000)  # --rate's range; 44 100 and 48 000 are a session's usual rates
LOUDNESS_RANGE = (-60.0, 0.0)  # LUFS: from barely audible to louder than any delivery asks
TRUE_PEAK_RANGE = (-20.0, 0.0)  # dBTP
DEFAULT_TRUE_PEAK = -1.0  # EBU R 128's and most streaming services' ceiling
DEFAULT_FADE_MS = 5.0  # long enough that a cut sound ends without a click, short enough to
# leave the sound's own decay alone (the DCASE layout's fade at its cuts is 10 ms)
# BS.1770's gating blocks are 400 ms: a shorter clip has no integrated loudness
BLOCK_SECONDS = 0.4
# BS.1770-4 annex 2 oversamples 48 kHz audio 4x to find the peaks between samples: a signal at
# 192 kHz. Other rates are oversampled to at least the same rate (12x at 16 kHz).
TRUE_PEAK_RATE = 192_000
# The gain is measured again after it is applied (the -70 LUFS absolute gate can count other
# blocks at the new level) until it is this close.
LOUDNESS_TOLERANCE = 0.01  # LU
# The ceiling is aimed this far under: the 16-bit rounding of the written file moves its true
# peak by a few thousandths of a dB at most.
TRUE_PEAK_MARGIN = 0.01  # dB
QUIETER = 0.05  # LU short of the loudness asked that a take is reported quieter than asked
SILENT_PEAK = 1e-8  # a clip this quiet stays as it is, not amplified rounding noise
LOUDNESS_EXTRA = "pip install 'sfxgan[loudness]'"


@dataclass(frozen=True)
class Finish:
    """How takes are finished for a session. The defaults are today's takes: the model's rate,
    peak 1, the DC and the end as the phase reconstruction left them."""

    rate: int | None = None  # Hz of the written file; None: the model's
    loudness: float | None = None  # LUFS integrated; None: peak-normalised (the paper's)
    true_peak: float = DEFAULT_TRUE_PEAK  # dBTP ceiling of --loudness
    remove_dc: bool = False
    fade_ms: float = 0.0  # raised-cosine fade-out at the end; 0: none
    limit: bool = False  # reach `loudness` by limiting the peaks over the ceiling (limit_peaks)

    @classmethod
    def session(
        cls,
        rate: int | None = None,
        loudness: float | None = None,
        true_peak: float | None = None,
        fade_ms: float | None = None,
        keep_dc: bool = False,
        limit: bool = False,
    ) -> Finish:
        """What a user asks (None: not asked): any of a rate, a loudness or a fade finishes
        the takes, which then also lose their DC (unless `keep_dc`) and fade out over
        DEFAULT_FADE_MS (unless `fade_ms` says otherwise); nothing asked is today's takes."""
        if true_peak is not None and loudness is None:
            raise SfxganError("--true-peak is the ceiling of --loudness; add --loudness LUFS")
        if limit and loudness is None:
            raise SfxganError("--limit brings takes to --loudness; add --loudness LUFS")
        if rate is None and loudness is None and fade_ms is None:
            return cls()
        return cls(
            rate=rate,
            loudness=loudness,
            true_peak=DEFAULT_TRUE_PEAK if true_peak is None else true_peak,
            remove_dc=not keep_dc,
            fade_ms=DEFAULT_FADE_MS if fade_ms is None else fade_ms,
            limit=limit,
        )

    @property
    def is_default(self) -> bool:
        return self == Finish()

    def output_rate(self, model_rate: int) -> int:
        return self.rate or model_rate

    def record(self) -> dict:
        """What a record of takes holds (generated.json, dcase.json)."""
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict | None) -> Finish:
        """The finish of a record; one written before finishing existed had today's."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (record or {}).items() if k in known})

    def describe(self, model_rate: int | None = None) -> str:
        """One phrase: 'at 48000 Hz, -16 LUFS under -1 dBTP, DC removed, 5 ms fade-out'."""
        if self.is_default:
            return "peak-normalised, as the model made them"
        if self.rate and self.rate != model_rate:
            said = [f"at {self.rate} Hz"]
        else:
            said = [f"at the model's {model_rate} Hz"] if model_rate else []
        if self.loudness is None:
            said.append("peak-normalised")
        else:
            said.append(f"{self.loudness:g} LUFS under {self.true_peak:g} dBTP")
            if self.limit:
                said.append("peaks limited")
        said.append("DC removed" if self.remove_dc else "DC kept")
        if self.fade_ms:
            said.append(f"{self.fade_ms:g} ms fade-out")
        return ", ".join(said)

    def check(self, model_rate: int | None = None, clip_samples: int | None = None) -> None:
        """Refuse, before any work, settings out of range, --loudness without pyloudnorm, and
        with a model's rate and clip length, a fade longer than the clip or a clip too short
        to measure."""
        low, high = RATES
        if self.rate is not None and not low <= self.rate <= high:
            raise SfxganError(f"--rate must be from {low} to {high} Hz, not {self.rate}")
        low, high = LOUDNESS_RANGE
        if self.loudness is not None and not low <= self.loudness <= high:
            raise SfxganError(
                f"--loudness must be from {low:g} to {high:g} LUFS, not {self.loudness:g}"
            )
        if self.loudness is None and self.true_peak != DEFAULT_TRUE_PEAK:
            raise SfxganError("--true-peak is the ceiling of --loudness; add --loudness LUFS")
        if self.loudness is None and self.limit:
            raise SfxganError("--limit brings takes to --loudness; add --loudness LUFS")
        low, high = TRUE_PEAK_RANGE
        if not low <= self.true_peak <= high:
            raise SfxganError(
                f"--true-peak must be from {low:g} to {high:g} dBTP, not {self.true_peak:g}"
            )
        if self.loudness is not None:
            meter()  # the extra is there
        if not self.fade_ms >= 0:
            raise SfxganError(f"--fade-ms must be 0 or more, not {self.fade_ms:g}")
        if model_rate is None or clip_samples is None:
            return
        clip_ms = 1e3 * clip_samples / model_rate
        if not 0 <= self.fade_ms <= clip_ms:
            raise SfxganError(
                f"--fade-ms must be from 0 to the clip's {clip_ms:g} ms, not {self.fade_ms:g}"
            )
        if self.loudness is not None and clip_ms < 1e3 * BLOCK_SECONDS:
            raise SfxganError(
                f"this model's clips are {clip_ms:g} ms, shorter than the "
                f"{1e3 * BLOCK_SECONDS:g} ms blocks that BS.1770 measures loudness over: "
                "leave out --loudness (the takes are then peak-normalised)"
            )


@dataclass
class Finished:
    """A finished clip: its samples at its rate, and the loudness it reached."""

    audio: np.ndarray  # float32 (samples,)
    sample_rate: int
    loudness: float | None = None  # LUFS as written; None: not asked, or unmeasurable
    short_by: float = (
        0.0  # LU under the loudness asked (held down by the ceiling); inf: unmeasurable
    )

    @property
    def quieter(self) -> bool:
        """Quieter than asked by more than the figures' last digit shows."""
        return self.short_by >= QUIETER


def meter():
    """pyloudnorm, or a one-line error naming the extra that brings it."""
    try:
        import pyloudnorm
    except ImportError:
        raise SfxganError(
            f"--loudness needs pyloudnorm, which is not installed: {LOUDNESS_EXTRA}"
        ) from None
    return pyloudnorm


def integrated_loudness(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4, pyloudnorm's K-weighted gated meter); -inf where
    every 400 ms block is under the -70 LUFS absolute gate."""
    lufs = meter().Meter(sample_rate).integrated_loudness(np.asarray(audio, dtype=np.float64))
    return float(lufs) if np.isfinite(lufs) else -math.inf


def true_peak(audio: np.ndarray, sample_rate: int) -> float:
    """The true peak (BS.1770-4 annex 2), linear: the largest magnitude of the signal
    oversampled to at least 192 kHz (4x at 48 kHz, as the annex does), sample peaks included."""
    audio = np.asarray(audio, dtype=np.float32)
    over, _ = oversampled(audio, sample_rate)
    return float(max(np.abs(over).max(initial=0.0), np.abs(audio).max(initial=0.0)))


def oversampled(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
    """`audio` oversampled to at least TRUE_PEAK_RATE (4x at least, BS.1770-4 annex 2), and
    the factor."""
    factor = max(4, math.ceil(TRUE_PEAK_RATE / sample_rate))
    return soxr.resample(audio, sample_rate, sample_rate * factor, quality="VHQ"), factor


def to_db(linear: float) -> float:
    return 20.0 * math.log10(linear) if linear > 0 else -math.inf


def remove_dc(audio: np.ndarray) -> np.ndarray:
    """The clip less its mean. Not a high-pass filter: on a half-second clip a filter's settling
    would reshape the first milliseconds, where a one-shot has its attack, and bend the phase of
    the lowest partials; the mean is exactly the offset a meter shows, and taking it away
    changes nothing else."""
    audio = np.asarray(audio, dtype=np.float32)
    return audio - np.float32(audio.astype(np.float64).mean())


def fade_out(audio: np.ndarray, samples: int) -> np.ndarray:
    """The last `samples` of `audio` (float32) multiplied in place by a raised cosine from 1 to
    0, so that the last sample is exactly 0; returns `audio`."""
    samples = min(samples, len(audio))
    if samples > 0:
        ramp = 0.5 * (1.0 + np.cos(np.pi * (np.arange(1, samples + 1) / samples)))
        audio[len(audio) - samples :] *= ramp.astype(np.float32)
    return audio


def resample(audio: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    if rate == new_rate:
        return np.asarray(audio, dtype=np.float32)
    return soxr.resample(audio, rate, new_rate, quality=RESAMPLE_QUALITY).astype(np.float32)


def finish_clip(audio: np.ndarray, sample_rate: int, finish: Finish) -> Finished:
    """One clip of the model at `sample_rate` -> the finished clip, in the module's order."""
    audio = np.array(audio, dtype=np.float32)  # a copy: the fade works in place
    if finish.remove_dc:
        audio = remove_dc(audio)
    rate = finish.output_rate(sample_rate)
    audio = resample(audio, sample_rate, rate)
    fade_out(audio, round(finish.fade_ms * 1e-3 * rate))
    if finish.loudness is None:
        return Finished(peak_normalize(audio), rate)
    return to_loudness(audio, rate, finish.loudness, finish.true_peak, finish.limit)


def to_loudness(
    audio: np.ndarray, sample_rate: int, lufs: float, ceiling_db: float, limit: bool = False
) -> Finished:
    """`audio` scaled to `lufs` integrated, or lower where its true peak would pass the ceiling.

    A clip whose loudness cannot be measured (every block under the -70 LUFS gate: a click in
    silence) is brought to the ceiling, as loud as it may be, and reported unmeasurable
    (short_by inf); a silent clip stays silent."""
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max(initial=0.0))
    if peak < SILENT_PEAK:
        return Finished(audio, sample_rate, None, math.inf)
    audio = audio / np.float32(peak)  # a known level for the absolute gate to start from
    measured = integrated_loudness(audio, sample_rate)
    gain = 1.0
    for _ in range(3):  # the gate's blocks can change with the level: measure again
        if not math.isfinite(measured) or abs(measured - lufs) <= LOUDNESS_TOLERANCE:
            break
        gain *= 10.0 ** ((lufs - measured) / 20.0)
        measured = integrated_loudness(audio * np.float32(gain), sample_rate)
    ceiling = 10.0 ** ((ceiling_db - TRUE_PEAK_MARGIN) / 20.0)
    highest = true_peak(audio, sample_rate) * gain
    if math.isfinite(measured) and highest <= ceiling:
        return Finished(audio * np.float32(gain), sample_rate, measured)
    if limit and math.isfinite(measured):
        return _limited_to(audio * np.float32(gain), sample_rate, lufs, ceiling)
    audio = audio * np.float32(gain * ceiling / highest)
    reached = integrated_loudness(audio, sample_rate)
    if not math.isfinite(reached):
        return Finished(audio, sample_rate, None, math.inf)
    return Finished(audio, sample_rate, reached, max(0.0, lufs - reached))


LIMIT_LOOKAHEAD_MS = 1.5  # the gain is down this long before a peak: no overshoot, little smear
LIMIT_RELEASE_MS = 50.0  # and comes back up over about this long after it
LIMIT_ROUNDS = 16  # gains tried, at most, to reach the loudness asked
# the deepest gain reduction the limiter gives: past about 12 dB a hit's body is flattened into
# a different sound (measured on a drum run's kicks: -16 LUFS asked 20 dB of it); a take that
# would need more stays quieter than asked, and is reported so
LIMIT_MAX_DB = 12.0


def limit_peaks(audio: np.ndarray, sample_rate: int, ceiling: float) -> np.ndarray:
    """`audio` with its true peaks turned down under `ceiling` (linear) by a look-ahead limiter.

    The gain each sample needs is ceiling over the largest magnitude of the oversampled signal
    in that sample's span (true_peak's oversampling); its minimum over +-2 look-ahead spans, let
    back up towards 1 over LIMIT_RELEASE_MS, then averaged over +-1 look-ahead span: a smooth
    gain that reaches its low before every peak and stays under what any peak needs (an
    average of values that are all at most that). Samples under the ceiling keep gain 1; no
    sample is turned down by more than LIMIT_MAX_DB, so a peak that needs more stays over the
    ceiling (the caller then lowers the whole take). The mean the varying gain adds (a kick's
    first half-wave turned down, its tail not: up to half of full scale on a drum run's kicks)
    is taken away again."""
    audio = np.asarray(audio, dtype=np.float32)
    n = len(audio)
    over, factor = oversampled(audio, sample_rate)
    over = np.abs(over)
    over = np.pad(over, (0, max(0, n * factor - len(over))))[: n * factor]
    envelope = np.maximum(over.reshape(n, factor).max(axis=1), np.abs(audio))
    need = np.clip(ceiling / np.maximum(envelope, 1e-12), 10.0 ** (-LIMIT_MAX_DB / 20.0), 1.0)
    span = max(1, round(LIMIT_LOOKAHEAD_MS * 1e-3 * sample_rate))
    windows = np.lib.stride_tricks.sliding_window_view
    low = windows(np.pad(need, 2 * span, constant_values=1.0), 4 * span + 1).min(axis=1)
    step = 1.0 - math.exp(-1.0 / (LIMIT_RELEASE_MS * 1e-3 * sample_rate))
    released = low.copy()
    for i in range(1, n):  # a one-pole release: the gain rises, never falls, on its own
        released[i] = min(low[i], released[i - 1] + (1.0 - released[i - 1]) * step)
    kernel = np.full(2 * span + 1, 1.0 / (2 * span + 1))
    gain = np.convolve(np.pad(released, span, mode="edge"), kernel, mode="valid")
    original = audio.astype(np.float64)
    limited = original * gain
    # the mean the varying gain added, taken away where the gain was reduced (in proportion to
    # the reduction): samples the limiter left alone, the faded end among them, stay as they were
    reduced = 1.0 - gain
    if reduced.sum() > 0:
        limited -= reduced * ((limited.sum() - original.sum()) / reduced.sum())
    return limited.astype(np.float32)


def _limited_to(audio: np.ndarray, sample_rate: int, lufs: float, ceiling: float) -> Finished:
    """A take louder than its ceiling allows, brought to `lufs` by limit_peaks: the gain is
    raised until the limited take measures the loudness asked (the limiting takes some)."""
    gain, best = 1.0, None
    # the loudness rises slower than the gain as more of the take is limited: more rounds
    for _ in range(LIMIT_ROUNDS):
        limited = limit_peaks(audio * np.float32(gain), sample_rate, ceiling)
        highest = true_peak(limited, sample_rate)
        if highest > ceiling:  # deeper than LIMIT_MAX_DB: the ceiling wins over the loudness
            limited = limited * np.float32(ceiling / highest)
        measured = integrated_loudness(limited, sample_rate)
        if not math.isfinite(measured) or abs(measured - lufs) <= LOUDNESS_TOLERANCE:
            break
        if best is not None and measured <= best + LOUDNESS_TOLERANCE:
            break  # no louder than the last round: the limiter's depth is spent
        best = measured
        gain *= 10.0 ** ((lufs - measured) / 20.0)
    highest = true_peak(limited, sample_rate)
    if highest > ceiling:  # the oversampled envelope missed a peak by a hair: the ceiling wins
        limited = limited * np.float32(ceiling / highest)
        measured = integrated_loudness(limited, sample_rate)
    # where the limiter's depth runs out, its smoothed gain can leave a take quieter than the
    # same take simply held at the ceiling: then that one
    held = audio * np.float32(ceiling / true_peak(audio, sample_rate))
    held_lufs = integrated_loudness(held, sample_rate)
    if not math.isfinite(measured) or held_lufs > measured:
        limited, measured = held, held_lufs
    return Finished(limited, sample_rate, measured, max(0.0, lufs - measured))


def quieter_note(quieter: dict[str, dict[int, float | None]], finish: Finish, record: str) -> str:
    """One line on the takes that --loudness could not bring to the level asked."""
    count = sum(len(takes) for takes in quieter.values())
    reached = [lufs for takes in quieter.values() for lufs in takes.values() if lufs is not None]
    lowest = f", down to {min(reached):.1f} LUFS" if reached else ""
    unmeasured = count - len(reached)
    too_quiet = f"; {unmeasured} too quiet to measure" if unmeasured else ""
    per_class = ", ".join(f"{name} {len(takes)}" for name, takes in quieter.items())
    return (
        f"note: {count} takes are quieter than {finish.loudness:g} LUFS ({per_class}{lowest}): "
        f"louder, their true peak would pass the {finish.true_peak:g} dBTP ceiling{too_quiet}; "
        f"{record} lists them"
    )
