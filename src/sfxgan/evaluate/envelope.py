"""What a listener hears first in a one-shot: how it starts and how it dies away.

- `attack_times`: the 10-90 % rise time of a clip's RMS envelope (2 ms windows every 0.5 ms) to
  its loudest event: a drum hit rises in a few milliseconds, a smeared one in tens.
- `noise_floors`: the 10th percentile of a clip's 16 ms frame energies relative to its loudest
  frame, in dB: the level a listener hears as hiss under a decay, or silence where there is
  none. Digital silence is reported as FLOOR_LIMIT_DB.
- `envelope_error`: how well a rebuilt clip keeps another's RMS envelope (32-sample blocks, one
  fitted gain) over a span of it, e.g. the first 16 ms where the attack is.

`envelope_figures` gives a class's median attack and floor, the figures `evaluate`, the quality
log and `reconstruct` report beside the real clips'.
"""

from __future__ import annotations

import numpy as np

ATTACK_WINDOW_S = 0.002  # RMS window of the attack envelope: resolves a 5 ms rise
ATTACK_HOP_S = 0.0005
ATTACK_LOW, ATTACK_HIGH = 0.1, 0.9  # the rise is timed between these shares of the peak
FLOOR_FRAME_S = 0.016
FLOOR_PERCENTILE = 10.0
# Energies below this, relative to the loudest frame, count as digital silence (16-bit audio's
# quantisation step sits near -96 dB below full scale; float audio reaches far lower).
FLOOR_LIMIT_DB = -150.0
ERROR_BLOCK = 32  # samples per block of `envelope_error`'s RMS envelope (2 ms at 16 kHz)


def _clips(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    return audio[None, :] if audio.ndim == 1 else audio


def rms_envelope(audio: np.ndarray, window: int, hop: int) -> np.ndarray:
    """(n, samples) -> (n, frames): the RMS of `window` samples every `hop`, from sample 0 (the
    clip's end padded with zeros to a whole window)."""
    audio = _clips(audio)
    n, length = audio.shape
    frames = max(1, -(-(length - window) // hop) + 1) if length > window else 1
    padded = np.zeros((n, (frames - 1) * hop + window))
    padded[:, :length] = audio
    windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=1)[:, ::hop]
    return np.sqrt(np.mean(windows**2, axis=2))


def attack_times(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n, samples) -> (n,) seconds of the rise to the loudest event: from the envelope's last
    being below 10 % of its peak to its first reaching 90 %; NaN for a silent clip.

    The rise is the one that reaches the peak, so an earlier, quieter event (the first of two
    footsteps) does not count, while sound that leads into the peak without falling below
    10 % (Griffin-Lim's pre-echo, a generator's smeared onset) does. A clip that is loud from
    its first sample (a texture) rises from sample 0."""
    window = max(1, round(ATTACK_WINDOW_S * sample_rate))
    hop = max(1, round(ATTACK_HOP_S * sample_rate))
    envelope = rms_envelope(audio, window, hop)
    peak = envelope.max(axis=1, keepdims=True)
    high = np.argmax(envelope >= ATTACK_HIGH * peak, axis=1)
    frames = np.arange(envelope.shape[1])
    quiet_before = (envelope < ATTACK_LOW * peak) & (frames[None, :] < high[:, None])
    last_quiet = np.where(quiet_before, frames[None, :], -1).max(axis=1)
    seconds = (high - (last_quiet + 1)) * hop / sample_rate
    return np.where(peak[:, 0] > 0, seconds, np.nan)


def noise_floors(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n, samples) -> (n,) the 10th percentile of the 16 ms frames' energies over the loudest
    frame's, in dB, at least FLOOR_LIMIT_DB; NaN for a silent clip."""
    frame = max(1, round(FLOOR_FRAME_S * sample_rate))
    energy = rms_envelope(audio, frame, frame) ** 2
    loudest = energy.max(axis=1)
    quiet = np.percentile(energy, FLOOR_PERCENTILE, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = quiet / loudest
        floor_db = 10.0 * np.log10(np.maximum(ratio, 10.0 ** (FLOOR_LIMIT_DB / 10.0)))
    return np.where(loudest > 0, floor_db, np.nan)


def ends_in_silence(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """(n, samples) -> (n,) bool: the clip's last 16 ms are digital silence (their energy below
    the loudest frame's by more than FLOOR_LIMIT_DB, zeros included)."""
    frame = max(1, round(FLOOR_FRAME_S * sample_rate))
    energy = rms_envelope(audio, frame, frame) ** 2
    last = np.mean(_clips(audio)[:, -frame:] ** 2, axis=1)
    return last <= energy.max(axis=1) * 10.0 ** (FLOOR_LIMIT_DB / 10.0)


def envelope_error(
    reference: np.ndarray, rebuilt: np.ndarray, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """(n, samples) x 2 -> (n,): ||e_ref - g e_rebuilt|| / ||e_ref|| over the blocks of samples
    [start, stop) of the RMS envelopes (ERROR_BLOCK-sample blocks), with the one gain g per
    clip that fits the rebuilt envelope to the reference over the whole clip (least squares),
    so that a level difference is not counted as error."""
    e_ref = rms_envelope(reference, ERROR_BLOCK, ERROR_BLOCK)
    e_new = rms_envelope(rebuilt, ERROR_BLOCK, ERROR_BLOCK)
    gain = np.sum(e_ref * e_new, axis=1) / np.maximum(np.sum(e_new**2, axis=1), 1e-30)
    first = start // ERROR_BLOCK
    last = e_ref.shape[1] if stop is None else -(-stop // ERROR_BLOCK)
    diff = e_ref[:, first:last] - gain[:, None] * e_new[:, first:last]
    norm = np.linalg.norm(e_ref[:, first:last], axis=1)
    return np.linalg.norm(diff, axis=1) / np.maximum(norm, 1e-30)


def envelope_figures(audio: np.ndarray, sample_rate: int) -> dict[str, float | None]:
    """A set of clips' median attack time (ms) and median noise floor (dB): the figures of one
    class; None where no clip has sound."""
    attack = attack_times(audio, sample_rate)
    floor = noise_floors(audio, sample_rate)
    return {
        "attack_ms": float(1000 * np.nanmedian(attack)) if np.isfinite(attack).any() else None,
        "floor_db": float(np.nanmedian(floor)) if np.isfinite(floor).any() else None,
    }
