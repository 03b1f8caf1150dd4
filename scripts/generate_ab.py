"""Streaming against the in-memory path inside one process, without start-up in the timing.

    python scripts/generate_ab.py RUN [--clips 200] [--pairs 6]

"before" repeats the steps of the in-memory `generate` (commit 34e8e73): every clip of the
class through the generator, then phase reconstruction of all of them at once, then the WAVs;
"after" is `apps.takes.generate_to_folder`, batch by batch. Alternating, each into a fresh
temporary folder; prints one line per run and the medians. Time it alone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from sfxgan.apps.takes import generate_to_folder, take_path
from sfxgan.data.audio import write_wav
from sfxgan.generate import Sampler


def before(sampler: Sampler, out: Path, n: int, name: str) -> float:
    start = time.perf_counter()
    z = torch.randn(n, sampler.spec.model.latent_dim)
    labels = torch.full((n,), sampler.label(name), dtype=torch.long)
    audio = sampler.to_audio(sampler.log_spec(z, labels)).cpu().numpy()
    for i in range(n):
        write_wav(take_path(out, name, i), audio[i], sampler.sample_rate)
    return time.perf_counter() - start


def after(sampler: Sampler, out: Path, n: int, name: str) -> float:
    start = time.perf_counter()
    generate_to_folder(sampler, out, n, [name])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--class-name", default="rain")
    args = parser.parse_args()
    sampler = Sampler.from_run(args.run)
    times: dict[str, list[float]] = {"before": [], "after": []}
    for _ in range(args.pairs):
        for side, fn in (("before", before), ("after", after)):
            folder = Path(tempfile.mkdtemp(prefix="sfxgan-ab-"))
            try:
                seconds = fn(sampler, folder / "takes", args.clips, args.class_name)
            finally:
                shutil.rmtree(folder)
            times[side].append(seconds)
            print(f"{side} {seconds:.2f} s", flush=True)
    for side, values in times.items():
        print(f"{side}: median {statistics.median(values):.2f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
