"""Procedural synthesiser for the built-in *synthetic* demo dataset.

Nothing here is recorded audio. Every clip is computed from a few lines of numpy so that the whole
pipeline (data scanning, training, reconstruction, the test suite) runs offline, with no dataset
to download. The five classes are crude sketches of common sound-effect categories, built so that

* each class has its own clearly different spectral and temporal signature, which a small
  conditional GAN can pick up in minutes on a CPU, and
* no two clips are alike (timing, pitch, timbre, level, background and duration are all random),
  so the generator has variation to model instead of one waveform to memorise.

Design notes
------------
* All randomness comes from the ``np.random.Generator`` passed in, so a clip is a pure function of
  the generator's state. ``write_demo_dataset`` seeds one generator per clip from
  ``(seed, class_index, clip_index)``: a file does not depend on ``per_class`` or on the order in
  which clips are generated.
* Filters are zero-phase Butterworth-shaped gains applied in the FFT domain. scipy is not a
  dependency, and a per-sample IIR loop in Python would be far too slow. The signal is zero-padded
  before the FFT so that the circular convolution cannot wrap the tail of a late event back onto
  the start of the clip.
* The first event of every class starts within 0.12 s and every clip has substantial energy in
  its first 0.5 s, because the small training preset crops 0.512 s from the start of each clip.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

from sfxgan.data.audio import peak_normalize
from sfxgan.errors import ConfigError
from sfxgan.files import write_bytes_atomic

DEMO_CLASSES: tuple[str, ...] = ("birds", "engine", "footsteps", "gunshots", "rain")  # sorted
DEMO_SAMPLE_RATE = 16000

_MIN_DURATION_S = 1.0
_MAX_DURATION_S = 2.0
# Peak level range: quiet enough that nothing clips after 16-bit conversion, varied enough that a
# model cannot rely on absolute level, loud enough to stay far above the quantisation noise.
_PEAK_DBFS = (-20.0, -3.0)
# Latest onset of the first event. The contract is 0.15 s; the margin absorbs filter smearing.
_FIRST_ONSET_MAX_S = 0.12
# Earliest onset, so the 2 ms fade-in never touches the first attack.
_FIRST_ONSET_MIN_S = 0.005
_FADE_IN_S = 0.002
_FADE_OUT_S = 0.03
# Lowest supported rate. Content is kept below 0.45 * rate, so at 8 kHz the birds (2-7 kHz)
# are already squeezed into 1.8-3.6 kHz; lower rates would lose the classes' character.
_MIN_SAMPLE_RATE = 8000


# --------------------------------------------------------------------------------------------
# Small DSP helpers (all vectorised)
# --------------------------------------------------------------------------------------------


def _fast_len(m: int) -> int:
    """Smallest 2^a * 3^b * 5^c >= m: pocketfft is much faster on such lengths than on primes."""
    best = 1 << max(m - 1, 0).bit_length()
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            q = p35
            while q < m:
                q *= 2
            best = min(best, q)
            p35 *= 3
        p5 *= 5
    return best


def _band_gain(
    freqs: np.ndarray, low_hz: float | None, high_hz: float | None, order: int
) -> np.ndarray:
    """Magnitude response of a Butterworth high-pass (low_hz) and/or low-pass (high_hz)."""

    def power(r: np.ndarray) -> np.ndarray:
        # r ** (2 * order) by repeated multiplication: np.power with a float base is several
        # times slower, and this runs for every filtered signal.
        r2 = r * r
        out = r2
        for _ in range(order - 1):
            out = out * r2
        return out

    # |H|^2 = 1 / ((1 + (fl/f)^2n) (1 + (f/fh)^2n)); one square root at the end.
    denom = np.ones_like(freqs)
    if low_hz is not None:
        # 1e-6 instead of 0 so DC gets a (vanishing) finite gain rather than a division by zero.
        denom += power(low_hz / np.maximum(freqs, 1e-6))
    if high_hz is not None:
        denom *= 1.0 + power(freqs / high_hz)
    return 1.0 / np.sqrt(denom)


def _filter(
    x: np.ndarray,
    sr: int,
    low_hz: float | None = None,
    high_hz: float | None = None,
    order: int = 2,
) -> np.ndarray:
    """Zero-phase band filter via the FFT, with 0.1 s of zero padding against wrap-around."""
    n = x.shape[-1]
    m = _fast_len(n + sr // 10)
    if high_hz is not None:
        # Keep requested cut-offs meaningful at any sample rate.
        high_hz = min(high_hz, 0.45 * sr)
    spec = np.fft.rfft(x, n=m)
    spec *= _band_gain(np.fft.rfftfreq(m, 1.0 / sr), low_hz, high_hz, order)
    return np.fft.irfft(spec, n=m)[:n]


def _peak_normalise(x: np.ndarray) -> np.ndarray:
    """Scale to unit peak (silence stays silence), so components can be mixed with gains that
    mean what they say."""
    return peak_normalize(x, min_peak=0.0)


def _rms_normalise(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2)))
    return x / rms if rms > 0 else x


def _decay_env(t: np.ndarray, onset: float, tau: float, attack: float) -> np.ndarray:
    """Zero before `onset`, a linear rise over `attack` s, then exp(-(t - onset) / tau)."""
    dt = t - onset
    env = np.exp(-np.maximum(dt, 0.0) / tau)
    return env * np.clip(dt / attack, 0.0, 1.0)


def _span(n: int, sr: int, onset: float, tau: float) -> slice:
    """Samples where an event starting at `onset` with decay `tau` is above e^-10 (-87 dB).

    Computing each event only over its own span instead of the whole clip makes the
    event-based classes several times cheaper; the cut-off is far below 16-bit resolution.
    """
    i0 = max(0, int(onset * sr))
    return slice(i0, min(n, i0 + int(10.0 * tau * sr) + 2))


def _smooth_random_curve(rng: np.random.Generator, t: np.ndarray, step_s: float) -> np.ndarray:
    """A random curve in roughly [-1, 1] that changes on the time scale `step_s`.

    A random walk on coarse control points, linearly interpolated: cheap, smooth enough for slow
    drifts (engine RPM) and never repeats between clips.
    """
    n_ctrl = int(np.ceil(t[-1] / step_s)) + 2
    walk = np.cumsum(rng.standard_normal(n_ctrl))
    walk -= walk.mean()
    walk /= max(float(np.max(np.abs(walk))), 1e-9)
    return np.interp(t, np.arange(n_ctrl) * step_s, walk)


def _background(
    rng: np.random.Generator,
    n: int,
    sr: int,
    low_hz: float | None,
    high_hz: float | None,
    order: int = 1,
) -> np.ndarray:
    """Unit-RMS band-limited noise floor (room tone, wind, distant traffic).

    Callers draw the cut-offs at random, which gives every clip a slightly different noise
    colour, as real recordings have; the band itself is typical of the class's setting.
    """
    return _rms_normalise(_filter(rng.standard_normal(n), sr, low_hz, high_hz, order))


def _db(rng: np.random.Generator, lo: float, hi: float) -> float:
    """A random linear gain drawn uniformly in dB: perceived level is logarithmic."""
    return float(10.0 ** (rng.uniform(lo, hi) / 20.0))


# --------------------------------------------------------------------------------------------
# Classes. Each returns a float64 signal of length n with an arbitrary level; `_finish` sets the
# level and fades. Every generator starts its first event in [_FIRST_ONSET_MIN_S,
# _FIRST_ONSET_MAX_S] (or, for stationary sounds, at t = 0).
# --------------------------------------------------------------------------------------------


def _footsteps(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """2-4 low thuds 0.3-0.6 s apart, sometimes heel-then-toe, with a little scuff noise."""
    t = np.arange(n) / sr
    dur = n / sr
    # One walker on one floor per clip: the surface resonance and damping stay the same across
    # steps, which is what makes a sequence of steps sound like one person walking.
    body_hz = rng.uniform(60.0, 150.0)
    body_tau = rng.uniform(0.03, 0.09)
    thud_cut = rng.uniform(250.0, 700.0)  # soft shoes / carpet low, hard heels higher
    thud_tau = rng.uniform(0.012, 0.04)
    double_prob = rng.uniform(0.0, 0.8)  # how much this walker rolls heel-to-toe

    thud_env = np.zeros(n)
    scuff_env = np.zeros(n)
    body = np.zeros(n)
    onset = rng.uniform(_FIRST_ONSET_MIN_S, _FIRST_ONSET_MAX_S)
    for _ in range(int(rng.integers(2, 5))):
        # dur >= 1 s, first onset <= 0.12 s and spacing <= 0.6 s: the second step always fits.
        if onset > dur - 0.12:
            break
        gain = rng.uniform(0.6, 1.0)
        hits = [(onset, gain)]
        if rng.random() < double_prob:
            hits.append((onset + rng.uniform(0.03, 0.09), gain * rng.uniform(0.3, 0.7)))
        for hit_on, hit_gain in hits:
            tau = thud_tau * rng.uniform(0.8, 1.2)
            sl = _span(n, sr, hit_on, tau)
            thud_env[sl] += hit_gain * _decay_env(t[sl], hit_on, tau, 0.002)
            sl = _span(n, sr, hit_on, body_tau)
            dt = np.maximum(t[sl] - hit_on, 0.0)
            # The body's pitch drops ~30 % in the first 20 ms, like a struck floor board
            # settling; the phase is the closed-form integral of that frequency glide.
            phase = 2 * np.pi * body_hz * (dt + 0.3 * 0.02 * (1.0 - np.exp(-dt / 0.02)))
            body[sl] += hit_gain * np.sin(phase) * _decay_env(t[sl], hit_on, body_tau, 0.003)
        # Scuff: the sole dragging just after the heel strike. A raised-cosine bump.
        s_on = onset + rng.uniform(0.01, 0.04)
        s_len = rng.uniform(0.05, 0.15)
        u = np.clip((t - s_on) / s_len, 0.0, 1.0)
        scuff_env += rng.uniform(0.3, 1.0) * np.sin(np.pi * u) ** 2
        onset += rng.uniform(0.3, 0.6)

    # Thuds: one noise stream under all envelopes, low-passed once (cheaper than per event).
    thud = _filter(rng.standard_normal(n) * thud_env, sr, None, thud_cut, order=2)
    scuff = _filter(rng.standard_normal(n) * scuff_env, sr, 300.0, 1500.0, order=2)
    x = (
        rng.uniform(0.5, 1.0) * _peak_normalise(thud)
        + rng.uniform(0.5, 1.0) * _peak_normalise(body)
        + rng.uniform(0.02, 0.08) * _peak_normalise(scuff)
    )
    # Indoor room tone (ventilation, building rumble): low frequencies only, so the class stays
    # below ~1.5 kHz overall and its spectrum is dark across the whole upper band.
    room = _background(rng, n, sr, rng.uniform(30.0, 80.0), rng.uniform(200.0, 600.0), order=2)
    return x + _db(rng, -50.0, -36.0) * room


def _gunshots(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """A broadband crack on a low boom (sometimes two shots), with an optional tail and echo."""
    t = np.arange(n) / sr
    dur = n / sr
    onsets = [rng.uniform(_FIRST_ONSET_MIN_S, 0.1)]
    second_on = onsets[0] + rng.uniform(0.15, 0.7)
    if rng.random() < 0.3 and second_on < dur - 0.2:
        onsets.append(second_on)

    crack_tau = rng.uniform(0.003, 0.012)  # the muzzle blast: a few milliseconds
    boom_tau = rng.uniform(0.05, 0.3)  # the body: 50-300 ms exponential decay
    boom_hz = rng.uniform(40.0, 90.0)
    crack_env = np.zeros(n)
    boom_env = np.zeros(n)
    thump = np.zeros(n)
    for k, on in enumerate(onsets):
        g = 1.0 if k == 0 else rng.uniform(0.6, 1.0)
        # 0.3 ms attack: near-instant, yet a few samples long at any rate, so the onset is a
        # blast rather than a one-sample digital step.
        sl = _span(n, sr, on, crack_tau)
        crack_env[sl] += g * _decay_env(t[sl], on, crack_tau, 0.0003)
        sl = _span(n, sr, on, boom_tau)
        boom_env[sl] += g * _decay_env(t[sl], on, boom_tau, 0.001)
        dt = np.maximum(t[sl] - on, 0.0)
        thump[sl] += (
            g * np.sin(2 * np.pi * boom_hz * dt) * _decay_env(t[sl], on, boom_tau / 2, 0.001)
        )
    # The crack is high-passed only gently: a real muzzle report reaches the top of the band.
    crack = _filter(rng.standard_normal(n) * crack_env, sr, rng.uniform(300.0, 1500.0), None, 1)
    boom = _filter(rng.standard_normal(n) * boom_env, sr, None, rng.uniform(300.0, 1200.0), 2)
    # The crack dominates the peak; the boom, although quieter, carries most of the energy
    # because it lasts 10-100x longer, which is what makes the shot sound heavy.
    shot = (
        _peak_normalise(crack)
        + rng.uniform(0.2, 0.5) * _peak_normalise(boom)
        + rng.uniform(0.1, 0.4) * _peak_normalise(thump)
    )
    x = shot.copy()
    if rng.random() < 0.6:
        # Diffuse reverb tail: noise that swells a little after the shot and dies slowly; the
        # air and the surfaces absorb the highs, hence the low-pass.
        tail_env = np.zeros(n)
        tau = rng.uniform(0.15, 0.5)
        for on in onsets:
            tail_env += _decay_env(t, on + 0.005, tau, rng.uniform(0.01, 0.03))
        tail = _filter(rng.standard_normal(n) * tail_env, sr, 80.0, rng.uniform(1500.0, 4000.0))
        x += rng.uniform(0.05, 0.2) * _peak_normalise(tail)
    if rng.random() < 0.4:
        # A discrete echo from a distant wall: a delayed, darker, quieter copy of the shot.
        delay = int(rng.uniform(0.08, 0.35) * sr)
        if delay < n:
            echo = np.zeros(n)
            echo[delay:] = shot[: n - delay]
            x += rng.uniform(0.15, 0.45) * _filter(echo, sr, None, rng.uniform(1000.0, 3000.0))
    # Outdoor ambience, dark (distant traffic, wind), so the silence after the shot is not
    # digitally empty and its upper band, empty between shots, differs from birdsong's.
    amb = _background(rng, n, sr, rng.uniform(50.0, 200.0), rng.uniform(600.0, 1500.0))
    return x + _db(rng, -58.0, -42.0) * amb


def _rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Stationary high-mid hiss plus many random droplet ticks; never silent."""
    t = np.arange(n) / sr
    dur = n / sr
    # Hiss: the sum of countless distant drops is, to the ear, filtered noise concentrated in
    # the upper mids. It covers the whole clip, so rain has content from the first sample.
    hiss = _filter(
        rng.standard_normal(n), sr, rng.uniform(500.0, 1500.0), rng.uniform(6000.0, 8000.0), 2
    )
    # Slow gusts: a gentle level swell so the hiss is not perfectly flat.
    gust = 1.0 + rng.uniform(0.05, 0.25) * np.sin(
        2 * np.pi * rng.uniform(0.2, 1.0) * t + rng.uniform(0, 2 * np.pi)
    )
    hiss = _rms_normalise(hiss * gust)

    # Droplets: Poisson-distributed impulses, each convolved (in the FFT domain, all at once) with
    # a short decaying, slightly rising tone. A few drop "types" of different pitch stand for
    # drops of different size landing on different surfaces.
    m = _fast_len(n + sr // 10)
    k_len = int(0.03 * sr)
    tk = np.arange(k_len) / sr
    drops_spec = np.zeros(m // 2 + 1, dtype=complex)
    n_types = int(rng.integers(2, 5))
    rate = rng.uniform(30.0, 150.0)  # drops per second: drizzle to downpour
    for _ in range(n_types):
        count = int(rng.poisson(rate * dur / n_types))
        impulses = np.zeros(n)
        pos = rng.integers(0, n, size=count)
        # Log-normal sizes: mostly small drops, now and then a loud close one.
        np.add.at(impulses, pos, rng.lognormal(0.0, 0.6, size=count) * rng.choice([-1, 1], count))
        f_hz = min(rng.uniform(1500.0, 6000.0), 0.45 * sr)
        tau = rng.uniform(0.001, 0.004)
        kernel = np.exp(-tk / tau) * np.sin(2 * np.pi * f_hz * (1.0 + 2.0 * tk) * tk)
        drops_spec += np.fft.rfft(impulses, n=m) * np.fft.rfft(kernel, n=m)
    drops = np.fft.irfft(drops_spec, n=m)[:n]
    drops = _peak_normalise(drops) if np.any(drops) else drops

    x = hiss + rng.uniform(3.0, 8.0) * drops
    # Low rumble (distant traffic, gutters) well below the hiss: rain recordings are rarely empty
    # below 500 Hz, but it must not take over.
    rumble = _background(rng, n, sr, 30.0, rng.uniform(200.0, 600.0))
    return x + _db(rng, -30.0, -15.0) * rumble


def _engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """Stationary harmonic drone (firing rate 25-90 Hz) with firing AM, RPM drift, clatter."""
    t = np.arange(n) / sr
    f0 = rng.uniform(25.0, 90.0)
    # RPM drift: a slow random walk plus a slow sine; a real idling engine hunts by a few %.
    depth = rng.uniform(0.02, 0.08)
    rpm = 1.0 + depth * _smooth_random_curve(rng, t, rng.uniform(0.2, 0.5))
    rpm += 0.3 * depth * np.sin(2 * np.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0 * rpm) / sr  # integrate frequency: no phase jumps

    # Harmonic stack. Amplitudes fall as k^-alpha (energy stays low) with random per-harmonic
    # gains and a random body resonance, so every engine has its own timbre. Harmonics stop at
    # 3.5 kHz (and at 40): above that an engine is mostly noise, which the clatter supplies.
    n_harm = int(max(4, min(40, 3500.0 / (f0 * (1.0 + depth)))))
    k = np.arange(1, n_harm + 1)
    alpha = rng.uniform(0.8, 1.6)
    res_hz = rng.uniform(150.0, 600.0)
    amps = k**-alpha * rng.lognormal(0.0, 0.35, n_harm)
    amps *= 1.0 + rng.uniform(0.5, 2.0) * np.exp(-(((k * f0 - res_hz) / 120.0) ** 2))
    # sum_k a_k sin(k phase + phi_k) = Im(sum_k c_k z^k), z = exp(i phase), c_k = a_k exp(i phi_k),
    # evaluated by Horner's rule: 40 complex multiply-adds instead of a (40, n) matrix of sines.
    # About 6x faster, and this was the bulk of the cost of the whole demo dataset.
    coeffs = amps * np.exp(1j * rng.uniform(0, 2 * np.pi, n_harm))
    z = np.exp(1j * phase)
    acc = np.zeros(n, dtype=complex)
    for c in coeffs[::-1]:
        acc += c
        acc *= z
    harm = acc.imag
    # Four-stroke engines repeat every two firings; uneven cylinders leak a half-order component.
    harm += rng.uniform(0.0, 0.4) * amps[0] * np.sin(0.5 * phase + rng.uniform(0, 2 * np.pi))

    # Firing-rate amplitude modulation: a pulse per combustion, each with a slightly different
    # strength (interpolated per cycle, so there are no steps): that lumpiness reads as "engine".
    pulse = ((1.0 - np.cos(phase)) / 2.0) ** rng.uniform(1.0, 4.0)
    cycles = phase / (2 * np.pi)
    n_cyc = int(cycles[-1]) + 2
    per_cycle = 1.0 + rng.uniform(0.05, 0.2) * rng.standard_normal(n_cyc)
    pulse *= np.interp(cycles, np.arange(n_cyc), per_cycle)
    am_depth = rng.uniform(0.3, 0.8)
    x = _peak_normalise(harm * (1.0 - am_depth + am_depth * pulse))

    # Mechanical clatter (valves, injectors): band-limited noise gated by the firing pulses.
    # It fills the 1-5 kHz range between the harmonics, as it does in a real engine bay, while
    # the harmonics below keep most of the energy low.
    clatter = _filter(
        rng.standard_normal(n) * (0.3 + pulse),
        sr,
        rng.uniform(600.0, 1200.0),
        rng.uniform(3000.0, 5000.0),
        2,
    )
    x += rng.uniform(0.15, 0.3) * _peak_normalise(clatter)
    rumble = _background(rng, n, sr, 20.0, rng.uniform(150.0, 400.0))
    return x + _db(rng, -40.0, -26.0) * rumble


def _below_nyquist(f_hz: np.ndarray, sr: int) -> np.ndarray:
    """Gain that fades a partial out as its frequency nears Nyquist, where it would alias.

    A smooth ramp from 0.42 to 0.47 * sr rather than a hard mask, which would click when a
    sweeping harmonic crosses it.
    """
    return np.clip((0.47 * sr - f_hz) / (0.05 * sr), 0.0, 1.0)


def _birds(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    """4-10 chirps of swept / vibrato sines between ~2 and 7 kHz, with harmonics, on quiet air.

    A dense song: the chirps fill most of the clip, so the class's average spectrum is the song's
    (high and tonal) rather than the quiet air between chirps, which would make it look like the
    decaying tail of a gunshot."""
    dur = n / sr
    f_max = min(7500.0, 0.45 * sr)
    x = np.zeros(n)
    # One or two syllable templates, repeated with small variations: birdsong is built from
    # repeated syllables, and this keeps a clip coherent instead of a random jumble of tones.
    # Each bird (species) sings around its own pitch.
    centre_hz = rng.uniform(3500.0, 5000.0)
    templates = []
    for _ in range(int(rng.integers(1, 3))):
        # Songbird syllables are mostly fast sweeps over 1.5-3.5 kHz, up or down.
        span = rng.uniform(1500.0, 3500.0) * rng.choice([-1.0, 1.0])
        mid = centre_hz + rng.uniform(-400.0, 400.0)
        templates.append(
            {
                "f_start": np.clip(mid - span / 2, 2000.0, 7000.0),
                "f_end": np.clip(mid + span / 2, 2000.0, 7000.0),
                "curve": rng.uniform(0.4, 2.5),  # linear, convex or concave sweep
                "length": rng.uniform(0.05, 0.25),
                # About half the syllables warble (frequency modulation), the rest are clean.
                "vib_hz": rng.uniform(15.0, 80.0) if rng.random() < 0.5 else 0.0,
                "vib_depth": rng.uniform(100.0, 500.0),
                "h2": rng.uniform(0.0, 0.3),
                "h3": rng.uniform(0.0, 0.1),
                # Envelope u^a (1 - u)^b: a < b gives the quick onset and longer fall of most
                # syllables, and keeps the first chirp audible well inside the first 0.15 s.
                "attack": rng.uniform(0.5, 1.2),
                "release": rng.uniform(0.8, 2.5),
            }
        )
    onset = rng.uniform(_FIRST_ONSET_MIN_S, _FIRST_ONSET_MAX_S)
    for _ in range(int(rng.integers(4, 11))):
        # First onset <= 0.12 s, syllable <= 0.275 s, gap <= 0.1 s: the 2nd chirp always fits.
        if onset > dur - 0.08:
            break
        tp = templates[int(rng.integers(len(templates)))]
        length = min(tp["length"] * rng.uniform(0.9, 1.1), dur - onset - _FADE_OUT_S)
        i0 = int(onset * sr)
        n_syl = int(length * sr)
        if n_syl < 16:
            break
        tt = np.arange(n_syl) / sr
        u = tt / length
        shift = rng.uniform(0.95, 1.05)  # the same bird never sings a syllable identically
        f = shift * (tp["f_start"] + (tp["f_end"] - tp["f_start"]) * u ** tp["curve"])
        f += tp["vib_depth"] * np.sin(2 * np.pi * tp["vib_hz"] * tt)
        f = np.clip(f, 1800.0, f_max)
        ph = 2 * np.pi * np.cumsum(f) / sr
        env = u ** tp["attack"] * (1.0 - u) ** tp["release"]
        # A 3 ms ramp at both ends: u^a with a < 1 starts almost vertically, which clicks.
        ramp = max(1, int(0.003 * sr))
        env[:ramp] *= np.linspace(0.0, 1.0, ramp, endpoint=False)
        env[-ramp:] *= np.linspace(1.0, 0.0, ramp)
        env /= env.max()
        syl = np.sin(ph)
        for mult, level in ((2, tp["h2"]), (3, tp["h3"])):
            syl += level * _below_nyquist(mult * f, sr) * np.sin(mult * ph)
        x[i0 : i0 + n_syl] += rng.uniform(0.7, 1.0) * env * syl
        onset += length + rng.uniform(0.02, 0.1)
    # Quiet outdoor air: a soft low wind well below the song, so between the chirps the upper
    # band is nearly empty (the opposite of rain, whose hiss fills it).
    air = _background(rng, n, sr, 30.0, rng.uniform(150.0, 500.0))
    return _peak_normalise(x) + _db(rng, -45.0, -30.0) * air


_SYNTHS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "birds": _birds,
    "engine": _engine,
    "footsteps": _footsteps,
    "gunshots": _gunshots,
    "rain": _rain,
}
assert tuple(sorted(_SYNTHS)) == DEMO_CLASSES


def _finish(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Remove DC, fade both ends (no clicks at the cut), set a random peak level, cast."""
    x = x - x.mean()
    n_in = max(1, int(_FADE_IN_S * sr))
    n_out = max(1, int(_FADE_OUT_S * sr))
    x[:n_in] *= np.linspace(0.0, 1.0, n_in, endpoint=False)
    x[-n_out:] *= np.linspace(1.0, 0.0, n_out)
    peak = float(np.max(np.abs(x)))
    if not np.isfinite(peak) or peak <= 0.0:
        raise RuntimeError("demo synthesiser produced an empty or non-finite clip")  # a bug
    target = 10.0 ** (rng.uniform(*_PEAK_DBFS) / 20.0)
    return (x * (target / peak)).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def synthesize_clip(
    class_name: str, rng: np.random.Generator, sample_rate: int = DEMO_SAMPLE_RATE
) -> np.ndarray:
    """One mono float32 clip in [-1, 1], length 1.0-2.0 s (random).

    Args:
        class_name: One of `DEMO_CLASSES`.
        rng: Source of all randomness; the clip is a pure function of its state.
        sample_rate: Output rate in Hz (at least 8000). Every frequency is set in Hz, so the
            classes keep their character at any rate, except that content above about
            0.45 * rate is left out. (The same `rng` gives a different clip at another rate.)

    Returns:
        Shape ``(n,)`` float32, ``sample_rate <= n <= 2 * sample_rate``, peak between -20 and
        -3 dBFS, first event within 0.15 s, short fades at both ends.

    Raises:
        ValueError: unknown class name or a sample rate below 8000 Hz.
    """
    synth = _SYNTHS.get(class_name)
    if synth is None:
        raise ValueError(f"unknown demo class {class_name!r}; expected one of {DEMO_CLASSES}")
    if sample_rate < _MIN_SAMPLE_RATE:
        raise ValueError(f"sample_rate must be at least {_MIN_SAMPLE_RATE} Hz, got {sample_rate}")
    n = int(round(rng.uniform(_MIN_DURATION_S, _MAX_DURATION_S) * sample_rate))
    return _finish(synth(rng, n, sample_rate), rng, sample_rate)


def write_demo_dataset(
    out_dir: str | Path, per_class: int = 40, seed: int = 0
) -> dict[str, list[Path]]:
    """Write out_dir/<class>/<class>_<i:03d>.wav (16 kHz, mono, 16-bit PCM) for every class; return the paths per class.

    Each clip is generated from ``np.random.default_rng([seed, class_index, clip_index])``, so a
    given (seed, class, index) always yields the same file, whatever `per_class` is. Existing
    files with the same names are overwritten; other files in `out_dir` are left alone.

    Raises:
        ConfigError: `per_class` or `seed` is negative.
    """  # noqa: E501 - the first line is the documented one-line summary
    if per_class < 0:
        raise ConfigError(f"per_class must be >= 0, got {per_class}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    out = Path(out_dir)
    paths: dict[str, list[Path]] = {}
    for class_index, name in enumerate(DEMO_CLASSES):
        class_dir = out / name
        class_dir.mkdir(parents=True, exist_ok=True)
        paths[name] = []
        for clip_index in range(per_class):
            rng = np.random.default_rng([seed, class_index, clip_index])
            clip = synthesize_clip(name, rng, DEMO_SAMPLE_RATE)
            path = class_dir / f"{name}_{clip_index:03d}.wav"
            # Encoded in memory and written without fsync: an fsync per file was about a third
            # of the total time here, and the demo data is cheap to make again.
            buf = io.BytesIO()
            sf.write(buf, clip, DEMO_SAMPLE_RATE, subtype="PCM_16", format="WAV")
            write_bytes_atomic(path, buf.getvalue(), durable=False)
            paths[name].append(path)
    return paths
