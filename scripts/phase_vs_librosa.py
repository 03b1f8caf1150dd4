"""sfxgan's phase reconstruction beside librosa's on the same real clips: attack, decay, floor.

    python scripts/phase_vs_librosa.py data/drums --preset tiny --per-class 10
    python scripts/phase_vs_librosa.py data/drums --preset paper-16k --lead-in 0 190

For the first --per-class clips of every class, each clip goes the way `sfxgan reconstruct`
takes it (apps/reconstruct.py: the preset's log-spectrogram, its inverse with the preset's log
floor, fast Griffin-Lim with 32 iterations), once per --lead-in (default: 0, the reference's
framing, and the preset's own), and through librosa's fast Griffin-Lim on the same STFT sizes
(`librosa.griffinlim`: the same iterations, momentum 0.99, zero initial phase, centred frames,
on the clip's exact magnitude). Printed per class and overall: the RMS envelope's relative error
over the first 16 ms (the attack) and over the rest (evaluate/envelope.py, one fitted gain per
clip), and the median noise floor, rebuilt against original. librosa is a development tool
here, not a dependency: `pip install librosa`.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from sfxgan.apps.reconstruct import rebuild, round_trip_figures
from sfxgan.config import DEFAULT_PHASE, DEFAULT_PHASE_ITERS, PRESETS, get_preset
from sfxgan.data.dataset import load_dataset
from sfxgan.dsp.phase import FAST_MOMENTUM


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="class folders of real clips (one-shots)")
    parser.add_argument("--preset", default="tiny", choices=sorted(PRESETS))
    parser.add_argument("--per-class", type=int, default=10)
    parser.add_argument("--lead-in", type=int, nargs="+", help="lead-ins to try (samples)")
    args = parser.parse_args(argv)
    try:
        import librosa
    except ImportError:
        sys.exit("phase_vs_librosa: needs librosa (pip install librosa)")

    preset = get_preset(args.preset)
    lead_ins = args.lead_in or sorted({0, preset.features.lead_in})
    torch.set_num_threads(1)
    dataset = load_dataset(args.data, preset.features, log=None, progress=False)
    index = np.concatenate(
        [np.flatnonzero(dataset.labels == k)[: args.per_class] for k in range(len(dataset.classes))]
    )
    labels = np.asarray(dataset.labels)[index]
    original = np.asarray(dataset.audio[index], dtype=np.float32)
    rate = preset.features.sample_rate

    rows: dict[str, dict[str, np.ndarray]] = {}
    for lead_in in lead_ins:
        features = preset.with_settings({"lead_in": lead_in}).features
        log_spec = torch.from_numpy(np.asarray(dataset.log_spec[index], dtype=np.float32))
        if lead_in != preset.features.lead_in:  # the cache holds the preset's framing
            from sfxgan.dsp.features import STFT

            log_spec = STFT(features).log_spec(torch.from_numpy(original), dataset.max_value)
        _, audio = rebuild(log_spec, features, dataset.max_value, DEFAULT_PHASE)
        rows[f"sfxgan, lead-in {lead_in}"] = round_trip_figures(original, audio.numpy(), rate)
    rows[f"librosa {librosa.__version__}, centred"] = round_trip_figures(
        original, librosa_rebuild(original, preset.features), rate
    )

    print(
        f"{len(index)} clips of {args.data} ({args.per_class} per class), preset {args.preset} "
        f"(n_fft {preset.features.n_fft}, hop {preset.features.hop_length}, win "
        f"{preset.features.win_length}, log floor {preset.features.log_floor}), "
        f"fast Griffin-Lim {DEFAULT_PHASE_ITERS} iterations"
    )
    header = f"{'':<28}" + "".join(f"{name:>14}" for name in [*dataset.classes, "all"])
    for key, title in (
        ("attack_error", "attack error (first 16 ms)"),
        ("rest_error", "envelope error after 16 ms"),
        ("floor_db", "floor dB (median)"),
    ):
        print(f"\n{title}\n{header}")
        for name, figures in rows.items():
            values = figures[key]
            pick = np.median if key == "floor_db" else np.mean
            cells = [pick(values[labels == k]) for k in range(len(dataset.classes))]
            print(f"{name:<28}" + "".join(f"{v:>14.3f}" for v in [*cells, pick(values)]))
        if key == "floor_db":
            values = rows[next(iter(rows))]["floor_db_original"]
            cells = [np.median(values[labels == k]) for k in range(len(dataset.classes))]
            print(f"{'original':<28}" + "".join(f"{v:>14.3f}" for v in [*cells, np.median(values)]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
