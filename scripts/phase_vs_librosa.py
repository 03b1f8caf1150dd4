"""The framing and the floor, measured on real clips, beside librosa: attack, decay, silence.

    python scripts/phase_vs_librosa.py data/drums --per-class 30
    python scripts/phase_vs_librosa.py data/drums --preset paper-16k --lead-in 0 128 190
    python scripts/phase_vs_librosa.py data/wesnoth --judge runs/wes/judge.pt --floors-only

For the first --per-class clips of every class (all with --per-class 0), each clip takes the way
`sfxgan reconstruct` takes it (apps/reconstruct.py: the preset's log-spectrogram, its inverse,
fast Griffin-Lim with 32 iterations).

Attacks: once per --lead-in (default: 0, the reference's framing, and the preset's own), and
through librosa's fast Griffin-Lim with the same STFT sizes (`librosa.griffinlim`: the same
iterations, momentum 0.99, zero initial phase, centred frames, on the clip's exact magnitude).
Printed per class and overall: the RMS envelope's relative error over the first 16 ms (the
attack) and over the rest (evaluate/envelope.py, one fitted gain per clip).

Floors: once per inverse of the log floor: "constant" (the reference's), "every bin" (the
floor's magnitude subtracted from every bin: an alternative measured and not shipped) and
"silence" (sfxgan's: subtracted in frames whose bins all lie near the floor; other gate widths
with --silence-range-db). Printed per class:
the median noise floor of the rebuilt clips minus that of the originals (dB), the same for the
clips that end in digital silence, and with --judge (a judge.pt trained on this data, e.g. a
run's) the Frechet distance of the rebuilt clips to the originals in the judge's embedding.

librosa is a development tool here, not a dependency: `pip install librosa`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

import numpy as np
import torch

from sfxgan.apps.reconstruct import round_trip_figures
from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS, PRESETS, get_preset
from sfxgan.data.dataset import load_dataset
from sfxgan.dsp.features import LOG_FLOOR, LOG_SCALE, SILENCE_RANGE_DB, STFT, from_log_spec
from sfxgan.dsp.phase import FAST_MOMENTUM, audio_from_log_spec, reconstruct
from sfxgan.evaluate.envelope import ends_in_silence, noise_floors


def librosa_rebuild(audio: np.ndarray, features) -> np.ndarray:
    """librosa's fast Griffin-Lim (centred frames, zero initial phase) on each clip's exact
    magnitude with the preset's STFT sizes."""
    import librosa

    sizes = {
        "n_fft": features.n_fft,
        "hop_length": features.hop_length,
        "win_length": features.win_length,
        "center": True,
    }
    out = []
    for clip in audio:
        magnitude = np.abs(librosa.stft(clip, window="hann", **sizes))
        out.append(
            librosa.griffinlim(
                magnitude,
                n_iter=DEFAULT_PHASE_ITERS,
                momentum=FAST_MOMENTUM,
                init=None,
                length=len(clip),
                window="hann",
                **sizes,
            )
        )
    return np.stack(out)


def every_bin_inverse(log_spec: torch.Tensor, max_value: float) -> torch.Tensor:
    """The floor's magnitude subtracted from every bin (clamped at zero)."""
    magnitude = torch.exp(LOG_SCALE * (log_spec - 1.0)) - math.exp(LOG_FLOOR)
    return magnitude.clamp_min(0.0) * max_value


def gated_inverse(log_spec: torch.Tensor, max_value: float, range_db: float) -> torch.Tensor:
    """`from_log_spec(..., "silence")` with another gate width: the floor subtracted in full
    in a frame whose loudest bin is at the floor, not at all `range_db` above it."""
    log_ratio = LOG_SCALE * (log_spec - 1.0)
    above = log_ratio.amax(dim=-1, keepdim=True) - LOG_FLOOR
    gate = (1.0 - above / (range_db * math.log(10.0) / 20.0)).clamp(0.0, 1.0)
    return (torch.exp(log_ratio) - math.exp(LOG_FLOOR) * gate).clamp_min(0.0) * max_value


def batched(function, tensor: torch.Tensor, size: int = 64) -> np.ndarray:
    with torch.inference_mode():
        return torch.cat(
            [function(tensor[i : i + size]) for i in range(0, len(tensor), size)]
        ).numpy()


def print_table(title: str, classes: list[str], rows: dict[str, list[float]], fmt: str) -> None:
    print(f"\n{title}\n{'':<28}" + "".join(f"{name:>12}" for name in [*classes, "all"]))
    for name, cells in rows.items():
        print(f"{name:<28}" + "".join(f"{v:>12{fmt}}" for v in cells))


def attacks(args, preset, dataset, index, labels, original) -> None:
    import librosa

    rate, classes = preset.features.sample_rate, dataset.classes
    lead_ins = args.lead_in or sorted({0, preset.features.lead_in})
    figures = {}
    for lead_in in lead_ins:
        features = dataclasses.replace(preset.features, lead_in=lead_in)
        stft = STFT(features)
        log_spec = stft.log_spec(torch.from_numpy(original), dataset.max_value)
        audio = batched(lambda x, s=stft: audio_from_log_spec(x, s, dataset.max_value), log_spec)
        figures[f"sfxgan, lead-in {lead_in}"] = round_trip_figures(original, audio, rate)
    figures[f"librosa {librosa.__version__}, centred"] = round_trip_figures(
        original, librosa_rebuild(original, preset.features), rate
    )
    for key, title in (("attack_error", "attack error (first 16 ms)"), ("rest_error", "after")):
        rows = {
            name: [float(np.mean(f[key][labels == k])) for k in range(len(classes))]
            + [float(np.mean(f[key]))]
            for name, f in figures.items()
        }
        print_table(f"{title}: relative error of the RMS envelope", classes, rows, ".3f")


def floors(args, preset, dataset, index, labels, original) -> None:
    rate, classes, max_value = preset.features.sample_rate, dataset.classes, dataset.max_value
    stft = STFT(preset.features)
    log_spec = stft.log_spec(torch.from_numpy(original), max_value)
    inverses = {
        "constant (the reference)": lambda x: from_log_spec(x, max_value, "constant"),
        "every bin": lambda x: every_bin_inverse(x, max_value),
        f"silence (sfxgan, {SILENCE_RANGE_DB:g} dB)": lambda x: from_log_spec(
            x, max_value, "silence"
        ),
    }
    for width in args.silence_range_db or []:
        inverses[f"silence, {width:g} dB"] = lambda x, w=width: gated_inverse(x, max_value, w)
    judge = real = None
    if args.judge:
        from sfxgan.evaluate.evaluation import distribution_figures
        from sfxgan.evaluate.judge import Judge

        judge = Judge.load(args.judge)
        real = judge.outputs(original).embeddings
    floor_original = noise_floors(original, rate)
    silent = ends_in_silence(original, rate)
    print(f"\n{int(silent.sum())} of {len(original)} clips end in digital silence")
    by_class, by_silent, fd = {}, {}, {}
    for name, inverse in inverses.items():
        magnitude = batched(inverse, log_spec)
        audio = batched(
            lambda m: reconstruct(m, stft, DEFAULT_PHASE, DEFAULT_PHASE_ITERS),
            torch.from_numpy(magnitude),
        )
        floor = noise_floors(audio, rate)
        by_class[name] = [
            float(np.median(floor[labels == k]) - np.median(floor_original[labels == k]))
            for k in range(len(classes))
        ] + [float(np.median(floor) - np.median(floor_original))]
        by_silent[name] = [
            float(np.median(floor[m] - floor_original[m])) if m.any() else math.nan
            for m in [silent & (labels == k) for k in range(len(classes))] + [silent]
        ]
        if judge is not None:
            rebuilt = judge.outputs(audio).embeddings
            fd[name] = distribution_figures(real, rebuilt, real_labels=labels)["fd"]
    print_table("median noise floor, rebuilt - original (dB)", classes, by_class, ".1f")
    print_table("the same, clips ending in digital silence", classes, by_silent, ".1f")
    if fd:
        print("\nFD of the rebuilt clips to the originals (the judge's embedding):")
        for name, value in fd.items():
            print(f"  {name:<28}{value:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="class folders of real clips (one-shots)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--per-class", type=int, default=30, help="clips per class, 0: all")
    parser.add_argument("--lead-in", type=int, nargs="+", help="lead-ins to try (samples)")
    parser.add_argument("--judge", help="a judge.pt trained on this data: adds the FD")
    parser.add_argument("--floors-only", action="store_true", help="skip the attacks (librosa)")
    parser.add_argument(
        "--silence-range-db",
        type=float,
        nargs="+",
        help="other gate widths of the silent floor to measure (dB; sfxgan's is 10)",
    )
    args = parser.parse_args(argv)
    if not args.floors_only:
        try:
            import librosa  # noqa: F401
        except ImportError:
            sys.exit("phase_vs_librosa: the attacks need librosa (pip install librosa)")

    preset = get_preset(args.preset)
    torch.set_num_threads(1)
    dataset = load_dataset(args.data, preset.features, log=None, progress=False)
    take = args.per_class or len(dataset.labels)
    index = np.concatenate(
        [np.flatnonzero(dataset.labels == k)[:take] for k in range(len(dataset.classes))]
    )
    labels = np.asarray(dataset.labels)[index]
    original = np.asarray(dataset.audio[index], dtype=np.float32)
    features = preset.features
    print(
        f"{len(index)} clips of {args.data}, preset {args.preset} (n_fft {features.n_fft}, hop "
        f"{features.hop_length}, win {features.win_length}, {features.clip_samples} samples), "
        f"fast Griffin-Lim {DEFAULT_PHASE_ITERS} iterations"
    )
    if not args.floors_only:
        attacks(args, preset, dataset, index, labels, original)
    floors(args, preset, dataset, index, labels, original)
    return 0


if __name__ == "__main__":
    sys.exit(main())
