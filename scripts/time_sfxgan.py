"""sfxgan's side of `time_reference.py` (docs/benchmarks.md, "Side by side"): the same cases,
timed the same way, printed as one JSON line.

    python scripts/time_sfxgan.py --mode train --batch 4 --steps 3     # paper-16k, w = 1e-2, GL 50
    python scripts/time_sfxgan.py --mode gen --clips 64                # generator + phase, 64 clips

train: the bench's synthetic trainer (`apps.bench.synthetic_trainer`) at paper-16k with the
paper's reconstruction loss (w = 1e-2, plain Griffin-Lim 50) and one critic update per step, as
the reference's `train_batch`; one untimed step, then the median of --steps.
gen: what `sfxgan generate` runs (the Sampler's generator in batches of 64, then phase
reconstruction, peak normalisation) on an untrained paper-16k generator, in fp32 and in what
`--precision auto` picks here, with Griffin-Lim 50 (the reference's phase) and fast
Griffin-Lim 16 and 32; one untimed pass, then the median of 3.
"""

from __future__ import annotations

import argparse
import json

import torch

from sfxgan.apps.bench import TrainCase, _untrained_sampler, median_time, synthetic_trainer

PHASES = (("griffin-lim", 50), ("fast-griffin-lim", 16), ("fast-griffin-lim", 32))


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
        sampler = _untrained_sampler("paper-16k")
        z = torch.randn(args.clips, sampler.spec.model.latent_dim)
        labels = torch.arange(args.clips) % len(sampler.classes)
        result = {"case": "gen", "clips": args.clips, "clips_per_s": {}}
        for precision in dict.fromkeys(["fp32", "auto"]):
            sampler.use_precision(precision)
            for phase, iters in PHASES:
                seconds = median_time(
                    lambda p=phase, k=iters: sampler.to_audio(sampler.log_spec(z, labels), p, k), 3
                )
                key = f"{sampler.precision} {phase} {iters}"
                result["clips_per_s"][key] = round(args.clips / seconds, 1)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
