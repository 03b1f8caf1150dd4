"""The spectrogram transform and its exact inverse: one STFT definition for everything.

The reference analysed with one window and synthesised with another (SPEC section 2); here the
same `STFT` object is used for the features, for Griffin-Lim and for the reconstruction loss.

Layout: audio is (..., samples); spectrograms are (..., frames, bins), time before frequency,
as the networks see them (kernel 12 x 3 is time x frequency).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from sfxgan.config import FeatureConfig

# log(max(S / max_value, e^-10)) lies in [-10, 0]; dividing by 5 and adding 1 maps it onto
# [-1, 1], the range of the generator's tanh.
LOG_FLOOR = -10.0
LOG_SCALE = 5.0
# log_floor "silence": a frame whose loudest bin is this far above the floor or more keeps the
# floor's magnitude in its quiet bins; nearer, it is subtracted, in full at the floor (see
# `from_log_spec`; on real drum hits 6.5-13 dB kept every class's floor within 3 dB, 4 and 17
# dB did not: docs/phase.md).
SILENCE_RANGE_DB = 10.0
SILENCE_RANGE_NEPERS = SILENCE_RANGE_DB * math.log(10.0) / 20.0  # in nepers of magnitude
# The inverse STFT divides by the windows' overlap-added squares, floored at this share of their
# value where frames fully overlap (see STFT.envelope).
ENVELOPE_FLOOR = 0.1


def _overlap_add(frames: torch.Tensor, hop: int) -> torch.Tensor:
    """(batch, n, win) -> (batch, (n - 1) * hop + win): frame i added at sample i * hop.

    Each frame is cut into r = ceil(win / hop) hop-long blocks; block k of frame i lands on
    output block i + k, so r shifted additions of contiguous slices do it. Measured 4-7x faster
    than `F.fold` (col2im) for Griffin-Lim's batches, whose time went to the overlap-add.
    """
    batch, n, win = frames.shape
    r = math.ceil(win / hop)
    blocks = F.pad(frames, (0, r * hop - win)).view(batch, n, r, hop)
    out = frames.new_zeros(batch, n + r - 1, hop)
    for k in range(r):
        out[:, k : k + n] += blocks[:, :, k]
    return out.view(batch, -1)[:, : (n - 1) * hop + win]


class Frames(torch.autograd.Function):
    """(batch, samples) -> (batch, n, win) frames `hop` apart, times `window` when given
    (samples must equal (n - 1) * hop + win). The backward pass is the adjoint: window, then
    overlap-add."""

    @staticmethod
    def forward(ctx, audio: torch.Tensor, win: int, hop: int, window: torch.Tensor | None):
        ctx.hop, ctx.window = hop, window
        frames = audio.unfold(-1, win, hop)  # a strided view: one pass makes it contiguous
        return frames * window if window is not None else frames.contiguous()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        if ctx.window is not None:
            grad = grad * ctx.window
        return OverlapAdd.apply(grad, ctx.hop), None, None, None


class OverlapAdd(torch.autograd.Function):
    """(batch, n, win) -> (batch, (n - 1) * hop + win); the backward pass is framing. The two
    functions call each other in backward, so both stay twice differentiable."""

    @staticmethod
    def forward(ctx, frames: torch.Tensor, hop: int) -> torch.Tensor:
        ctx.win, ctx.hop = frames.shape[-1], hop
        return _overlap_add(frames, hop)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return Frames.apply(grad, ctx.win, ctx.hop, None), None


class STFT:
    """Short-time Fourier transform with a matching least-squares inverse.

    Frames are `win_length` samples, `hop_length` apart, Hann-windowed (periodic) and zero-padded
    to `n_fft` (as `tf.signal.stft` does). The end of the signal is zero-padded so that a clip of
    L samples gives ceil(L / hop) frames. Both directions are batched, differentiable and run on
    whatever device the input is on.

    `config.lead_in` samples of silence go before the signal: the reference (0) starts the first
    frame at sample 0, so a clip's first win - hop samples, where a one-shot has its attack, lie
    under rising window edges only, and Griffin-Lim rebuilds them poorly; a lead-in of win - hop
    gives sample 0 the full overlap of every later sample. The frame count stays ceil(L / hop)
    (the frames past the end are what the lead-in takes from the trailing zeros), so the
    spectrogram's shape is the same either way.

    This is the package's one STFT. The method uses it as above; the judge's log-mel features use
    it with `center=True`: the signal is first mirrored by win_length // 2 samples at both ends
    (reflection, not repeating the edge sample), so that frame i is centred on sample i * hop and
    L samples give 1 + L // hop frames; with win_length == n_fft that is exactly
    `torch.stft(center=True)`, which the stored judges were trained with. The exported
    Griffin-Lim builds its convolution kernels from `analysis_matrix`, `synthesis_matrix` and
    `envelope`; VGGish's numpy front end is checked against this class in the tests.
    """

    def __init__(self, config: FeatureConfig, center: bool = False):
        self.config = config
        self.n_fft = config.n_fft
        self.hop = config.hop_length
        self.win = config.win_length
        self.center = center
        self._cache: dict[tuple, torch.Tensor] = {}

    def window(self, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        key = ("window", device, dtype)
        if key not in self._cache:
            # made outside inference mode: a cached inference tensor could not be used later
            # in a computation autograd records (the reconstruction loss)
            with torch.inference_mode(False):
                self._cache[key] = torch.hann_window(
                    self.win, periodic=True, device=device, dtype=dtype
                )
        return self._cache[key]

    def n_frames(self, length: int) -> int:
        if self.center:
            return 1 + length // self.hop
        return max(1, math.ceil(length / self.hop))

    def _padded_length(self, n_frames: int) -> int:
        return (n_frames - 1) * self.hop + self.win

    @property
    def _lead(self) -> int:
        """Samples before the signal: the centring reflection, else the silent lead-in."""
        return self.win // 2 if self.center else self.config.lead_in

    def _pad(self, audio: torch.Tensor, n_frames: int) -> torch.Tensor:
        """The signal as its frames read it: centring reflection at both ends when centred, else
        the silent lead-in before it; then zeros at the end (or a cut) to exactly
        (n_frames - 1) * hop + win samples."""
        lead = self._lead
        if self.center:
            flat = audio.reshape(-1, 1, audio.shape[-1])  # reflection padding wants (n, c, samples)
            audio = F.pad(flat, (lead, lead), mode="reflect").view(*audio.shape[:-1], -1)
        elif lead:
            audio = F.pad(audio, (lead, 0))
        return F.pad(audio, (0, self._padded_length(n_frames) - audio.shape[-1]))

    def __call__(self, audio: torch.Tensor) -> torch.Tensor:
        """Complex STFT: (..., samples) -> (..., frames, n_fft // 2 + 1)."""
        n_frames = self.n_frames(audio.shape[-1])
        audio = self._pad(audio, n_frames)
        window = self.window(audio.device, audio.dtype)
        frames = Frames.apply(audio.reshape(-1, audio.shape[-1]), self.win, self.hop, window)
        frames = frames.view(*audio.shape[:-1], n_frames, self.win)  # (..., frames, win)
        return torch.fft.rfft(frames, n=self.n_fft)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """Magnitude (not power) spectrogram: (..., samples) -> (..., frames, bins)."""
        return self(audio).abs()

    def log_spec(self, audio: torch.Tensor, max_value: float) -> torch.Tensor:
        """The model's features: (..., samples) -> (..., frames, bins) in [-1, 1], the
        magnitude through `to_log_spec`."""
        return to_log_spec(self.magnitude(audio), max_value)

    def dft_basis(self) -> tuple[np.ndarray, np.ndarray]:
        """cos and sin of the rfft's angles 2 pi t k / n_fft for the samples t < win_length of a
        frame (the rest of the n_fft are the zero padding) and the bins k: two (win, bins)
        float64 arrays. t k is reduced mod n_fft first, so the angles, and the values, are
        exact."""
        t = np.arange(self.win)[:, None]
        k = np.arange(self.n_fft // 2 + 1)[None, :]
        angle = 2 * np.pi * ((t * k) % self.n_fft) / self.n_fft
        return np.cos(angle), np.sin(angle)

    def analysis_matrix(self) -> np.ndarray:
        """(win, 2 * bins) float64 A: a frame of `win` samples times A is the real parts, then
        the imaginary parts, of this STFT's spectrum of that frame (window included)."""
        cos, sin = self.dft_basis()
        window = self.window(torch.device("cpu"), torch.float64).numpy()
        return np.concatenate([cos, -sin], axis=1) * window[:, None]

    def synthesis_matrix(self) -> np.ndarray:
        """(2 * bins, win) float64 S: the real parts, then the imaginary parts, of a spectrum
        times S is the windowed frame that `inverse` overlap-adds (irfft of size n_fft, its
        first `win` samples, times the window)."""
        cos, sin = self.dft_basis()
        window = self.window(torch.device("cpu"), torch.float64).numpy()
        # irfft: x[t] = sum_k c_k (Re X_k cos - Im X_k sin) / n_fft, c_k = 2 except DC and
        # Nyquist, whose imaginary parts irfft ignores (sin is 0 there anyway)
        coef = np.full(self.n_fft // 2 + 1, 2.0)
        coef[0] = 1.0
        if self.n_fft % 2 == 0:
            coef[-1] = 1.0
        synthesis = np.concatenate([cos.T, -sin.T], axis=0) * np.tile(coef, 2)[:, None]
        return synthesis / self.n_fft * window[None, :]

    def envelope(self, n_frames: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Sum of squared windows over the overlap-add of n_frames frames, the denominator of the
        inverse: ((n_frames - 1) * hop + win,), floored, infinite where no window reaches."""
        key = ("envelope", n_frames, device, dtype)
        if key not in self._cache:
            with torch.inference_mode(False):  # see `window`
                sq = self.window(device, dtype).square()
                env = _overlap_add(sq.expand(1, n_frames, self.win), self.hop)[0]
                # Only the rising edge of the first window covers the first samples, where the
                # envelope falls towards 0. Dividing by it there is exact for the STFT of a real
                # signal but amplifies whatever an *inconsistent* spectrogram (a generated one,
                # a Griffin-Lim estimate) puts there by up to 1 / w[n]: it made a spike at
                # sample ~3 of every generated clip, 20-30 dB above the sound, which peak
                # normalisation then turned into a click and a quiet clip. So the envelope is
                # floored at ENVELOPE_FLOOR of its value where frames fully overlap: exact from
                # sample win * ~0.2 on (55 of tiny's 8192), a short fade-in before that, and the
                # first sample, which no window covers, stays 0.
                full = env[self.win : len(env) - self.win]
                floor = ENVELOPE_FLOOR * (full.min() if len(full) else env.max())
                env = torch.where(env > 0, env.clamp_min(floor), torch.full_like(env, math.inf))
                self._cache[key] = env
        return self._cache[key]

    def dft_matrices(
        self, device: torch.device, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`analysis_matrix` and `synthesis_matrix` as tensors, built in float64 and rounded
        once to `dtype`, cached: (win, 2 bins) and (2 bins, win)."""
        key = ("dft", device, dtype)
        if key not in self._cache:
            with torch.inference_mode(False):  # see `window`
                self._cache[key] = tuple(
                    torch.tensor(m, dtype=dtype, device=device)
                    for m in (self.analysis_matrix(), self.synthesis_matrix())
                )
        return self._cache[key]

    def analyse(self, audio: torch.Tensor) -> torch.Tensor:
        """This STFT as real numbers by one matrix product: (..., samples) -> (..., frames, 2,
        bins), the real parts then the imaginary parts of `__call__`'s spectrum (equal to
        rounding). At these frame sizes (n_fft 254 = 2 x 127 for the paper's presets) a
        (win x 2 bins) product on all frames at once runs several times faster on a CPU than
        the FFT and its complex element-wise arithmetic (docs/benchmarks.md), which is what
        Griffin-Lim spends its time on."""
        n_frames = self.n_frames(audio.shape[-1])
        audio = self._pad(audio, n_frames)
        analysis, _ = self.dft_matrices(audio.device, audio.dtype)
        frames = Frames.apply(audio.reshape(-1, audio.shape[-1]), self.win, self.hop, None)
        spec = frames @ analysis  # (batch, frames, 2 bins)
        return spec.view(*audio.shape[:-1], n_frames, 2, -1)

    def synthesise(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """The inverse of `analyse`, as `inverse` is of `__call__`: (..., frames, 2, bins)
        real -> (..., length)."""
        lead = spec.shape[:-3]
        n_frames = spec.shape[-3]
        _, synthesis = self.dft_matrices(spec.device, spec.dtype)
        frames = spec.reshape(-1, n_frames, synthesis.shape[0]) @ synthesis  # windowed frames
        return self._crop(self._overlap_add(frames), n_frames, length).reshape(*lead, length)

    def _crop(self, audio: torch.Tensor, n_frames: int, length: int) -> torch.Tensor:
        """Overlap-added frames (batch, padded) -> the signal (batch, length): divided by the
        windows' envelope, the lead-in cut off, cut or zero-padded to `length`."""
        audio = audio / self.envelope(n_frames, audio.device, audio.dtype)
        audio = audio[..., self._lead : self._lead + length]
        if audio.shape[-1] < length:
            audio = F.pad(audio, (0, length - audio.shape[-1]))
        return audio

    def _overlap_add(self, frames: torch.Tensor) -> torch.Tensor:
        """(batch, frames, win) -> (batch, padded_length)."""
        return OverlapAdd.apply(frames, self.hop)

    def inverse(self, spec: torch.Tensor, length: int) -> torch.Tensor:
        """Least-squares inverse STFT: (..., frames, bins) complex -> (..., length) real.

        Exact for any spectrogram that is the STFT of a signal, except at the first samples,
        which only the rising edge of the first window covers (faded in, see `envelope`; with a
        lead-in of win - hop, or when centred, those lie before the signal and are cut off).
        """
        lead = spec.shape[:-2]
        n_frames = spec.shape[-2]
        frames = torch.fft.irfft(spec.reshape(-1, n_frames, spec.shape[-1]), n=self.n_fft)
        window = self.window(frames.device, frames.dtype)
        frames = frames[..., : self.win] * window
        return self._crop(self._overlap_add(frames), n_frames, length).reshape(*lead, length)


def to_log_spec(magnitude: torch.Tensor, max_value: float) -> torch.Tensor:
    """Normalised log-magnitude in [-1, 1]: log(max(S / max_value, e^-10)) / 5 + 1."""
    ratio = torch.clamp(magnitude / max_value, min=math.exp(LOG_FLOOR))
    return torch.log(ratio) / LOG_SCALE + 1.0


def from_log_spec(
    log_spec: torch.Tensor, max_value: float, log_floor: str = "constant"
) -> torch.Tensor:
    """Magnitude from normalised log-magnitude (..., frames, bins): exp(5 * (x - 1)) * max_value,
    the exact inverse of `to_log_spec` above the floor.

    At the floor the true magnitude is unknown (anything from 0 to e^-10 x max_value, -87 dB
    below max_value). `log_floor` (FeatureConfig.log_floor) says what it becomes:

    - "constant", the reference's inverse: the floor's magnitude in every bin at the floor, so
      a clip's digital silence comes back as a broadband floor (a kick's tail at -115 dB below
      its loudest frame returned at -63 dB);
    - "silence": a frame whose bins all lie at the floor is silence. The floor's magnitude is
      subtracted in proportion to how near the frame's loudest bin is to the floor: all of it
      when that bin is at the floor (the frame inverts to zero), none when it is SILENCE_RANGE_DB
      or more above (a frame with sound keeps the constant inverse for its quiet bins). Measured
      (docs/phase.md): subtracting the floor from every bin instead made spectral holes under
      the demo's noise beds, and the judge's FD of real clips taken this way rose from 5.6 to
      100; gated by the frame, it stays 5.6, while digital silence comes back as silence and
      each class's floor within 3 dB on a drum and a game-effects library.
    """
    log_ratio = LOG_SCALE * (log_spec - 1.0)  # ln(S / max_value), at least LOG_FLOOR
    magnitude = torch.exp(log_ratio)
    if log_floor == "silence":
        above = log_ratio.amax(dim=-1, keepdim=True) - LOG_FLOOR  # the frame's loudest, nepers
        gate = (1.0 - above / SILENCE_RANGE_NEPERS).clamp(0.0, 1.0)
        magnitude = (magnitude - math.exp(LOG_FLOOR) * gate).clamp_min(0.0)
    return magnitude * max_value


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """The HTK mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, f_min: float, f_max: float
) -> np.ndarray:
    """Triangular filters evenly spaced on the HTK mel scale, peak 1, not area-normalised:
    (n_fft // 2 + 1, n_mels) float32, to multiply a power or magnitude spectrum with."""
    bins_mel = hz_to_mel(np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1))
    edges = np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins_mel[:, None] - lower) / (centre - lower)
    falling = (upper - bins_mel[:, None]) / (upper - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)
