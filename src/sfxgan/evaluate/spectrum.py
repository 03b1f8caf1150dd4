"""Quick measurements of a trained generator against its training data.

`mean_spectrum_check`: does each class's generated sound sit, on average, where that class's
real sound sits? For every class, the mean log-spectrum (over clips and time) of generated clips
is compared with every class's real mean log-spectrum; the class passes when its own real mean is
the nearest. It checks conditioning and spectral envelope, not quality or diversity.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from sfxgan.data.dataset import SoundDataset
from sfxgan.errors import SfxganError
from sfxgan.generate import Sampler


@dataclass
class ClassFit:
    class_name: str
    nearest: str
    distance_own: float  # to this class's real mean log-spectrum
    distance_nearest_other: float  # to the closest other class's

    @property
    def ok(self) -> bool:
        return self.nearest == self.class_name


def real_mean_spectra(dataset: SoundDataset) -> dict[str, np.ndarray]:
    """Per class, the mean normalised log-spectrum over clips and time: (bins,)."""
    return {
        name: np.asarray(dataset.log_spec[dataset.labels == i], dtype=np.float32).mean(axis=(0, 1))
        for i, name in enumerate(dataset.classes)
    }


def mean_spectrum_check(
    sampler: Sampler, dataset: SoundDataset, n: int = 32, seed: int = 1234
) -> list[ClassFit]:
    """Generate n clips per class, re-analyse their audio (what a listener gets, after phase
    reconstruction, at the generator's own level) and find each class's nearest real class."""
    real = real_mean_spectra(dataset)
    results = []
    for name in sampler.classes:
        audio = sampler.generate(name, n=n, seed=seed, normalize=False)
        log_spec = sampler.stft.log_spec(torch.from_numpy(audio), sampler.spec.max_value)
        generated = log_spec.numpy().mean(axis=(0, 1))
        distance = {k: float(np.linalg.norm(generated - v)) for k, v in real.items()}
        nearest = min(distance, key=distance.get)
        other = min(d for k, d in distance.items() if k != name)
        results.append(ClassFit(name, nearest, distance[name], other))
    return results


def main(argv: list[str] | None = None) -> int:
    """python -m sfxgan.evaluate.spectrum RUN DATA: print the mean-spectrum check of a run."""
    import argparse

    from sfxgan.data.dataset import load_dataset

    parser = argparse.ArgumentParser(prog="python -m sfxgan.evaluate.spectrum", description=__doc__)
    parser.add_argument("run")
    parser.add_argument("data")
    parser.add_argument("--n", type=int, default=32, help="clips generated per class")
    args = parser.parse_args(argv)
    try:
        sampler = Sampler.from_run(args.run)
        dataset = load_dataset(
            args.data,
            sampler.spec.features,
            crop=sampler.spec.train.crop,
            log=None,
            progress=False,
        )
    except SfxganError as exc:
        print(f"sfxgan: error: {exc}", file=sys.stderr)
        return 2
    fits = mean_spectrum_check(sampler, dataset, n=args.n)
    print(f"{'class':<12} {'nearest real class':<20} {'to own':>7} {'to nearest other':>17}")
    for fit in fits:
        print(
            f"{fit.class_name:<12} {fit.nearest:<20} {fit.distance_own:>7.3f} "
            f"{fit.distance_nearest_other:>17.3f}  {'ok' if fit.ok else 'WRONG'}"
        )
    print(f"{sum(f.ok for f in fits)} of {len(fits)} classes nearest their own real class")
    return 0 if all(f.ok for f in fits) else 1


if __name__ == "__main__":
    raise SystemExit(main())
