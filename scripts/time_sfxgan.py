"""sfxgan's side of `time_reference.py` (docs/benchmarks.md, "Side by side"): the same cases,
timed the same way, printed as one JSON line.

    python scripts/time_sfxgan.py --mode train --batch 4 --steps 3     # paper-16k, w = 1e-2, GL 50
    python scripts/time_sfxgan.py --mode gen --clips 64                # generator + phase, 64 clips

train: the bench's synthetic trainer (`apps.bench.synthetic_trainer`) at paper-16k with the
paper's reconstruction loss (w = 1e-2, plain Griffin-Lim 50) and one critic update per step, as
the reference's `train_batch`; one untimed step, then the median of --steps.
gen: the bench's generation case (`apps.bench.bench_generation`: what `sfxgan generate` runs,
on an untrained paper-16k generator, in fp32 and in what `--precision auto` picks here, with
Griffin-Lim 50, the reference's phase, and fast Griffin-Lim 32 and 16); the median of 3.
"""

from __future__ import annotations

import argparse
import json

import torch

from sfxgan.apps.bench import TrainCase, bench_generation, median_time, synthetic_trainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=["train", "gen"], default="train")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--precision", default="auto", help="train: as sfxgan train's")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "train":
        trainer = synthetic_trainer(
            TrainCase("paper-16k", args.batch, True, precision=args.precision)
        )
        step_s = median_time(trainer.train_step, args.steps)
        result = {"case": "train", "batch": args.batch, "precision": trainer.spec.train.precision}
        result["median_step_s"] = step_s
    else:
        rows = bench_generation("paper-16k", repeats=3, n=args.clips)
        result = {"case": "gen", "clips": args.clips, "clips_per_s": {}}
        for row in rows:
            key = f"{row['precision']} {row['phase']} {row['iters']}"
            result["clips_per_s"][key] = round(row["clips_per_s"], 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
