"""Where one training step's time goes, by operation: torch.profiler over a few steps of the
bench's synthetic trainer (apps.bench.synthetic_trainer), each op's self time per step beside
the FLOPs the profiler counts for it (convolutions and matrix products) and the rate it runs
at, against the machine's measured matrix-product peak (issue 29's work list).

    python scripts/profile_step.py tiny --batch 8                  # tiny as it trains
    python scripts/profile_step.py paper-16k --batch 16 --recon --precision fp32

Prints a Markdown table, the largest self times first.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from sfxgan.apps.bench import TrainCase, matmul_peak, synthetic_trainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--recon", action="store_true", help="the paper's reconstruction loss")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--top", type=int, default=18)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    case = TrainCase(args.preset, args.batch, args.recon, precision=args.precision)
    trainer = synthetic_trainer(case)
    for _ in range(2):  # oneDNN's primitive caches and the allocator settle
        trainer.train_step()
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        for _ in range(args.steps):
            trainer.train_step()
    self_us: dict[str, float] = defaultdict(float)
    flops: dict[str, float] = defaultdict(float)
    calls: dict[str, int] = defaultdict(int)
    for event in prof.key_averages():
        self_us[event.key] += event.self_cpu_time_total
        flops[event.key] += event.flops or 0
        calls[event.key] += event.count
    total_ms = sum(self_us.values()) / 1e3 / args.steps
    peak = {
        "fp32": matmul_peak(torch.float32),
        "bf16": matmul_peak(torch.bfloat16),
    }
    print(
        f"{args.preset}, batch {args.batch}, {'recon' if args.recon else 'no recon'}, precision "
        f"{trainer.spec.train.precision}, {args.threads} threads: {total_ms:.0f} ms of op self "
        f"time per step; matrix-product peak {peak['fp32']:.0f} GFLOP/s fp32, "
        f"{peak['bf16']:.0f} bf16\n"
    )
    print("| op | calls per step | ms per step | share | GFLOP per step | GFLOP/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in sorted(self_us, key=self_us.get, reverse=True)[: args.top]:
        ms = self_us[key] / 1e3 / args.steps
        gflop = flops[key] / 1e9 / args.steps
        rate = f"{gflop / (ms / 1e3):.0f}" if gflop and ms else ""
        print(
            f"| `{key}` | {calls[key] / args.steps:g} | {ms:.1f} | {100 * ms / total_ms:.1f} % "
            f"| {gflop:.2f} | {rate} |"
        )
    counting = sorted((k for k in flops if flops[k]), key=flops.get, reverse=True)
    print("\n| op the profiler counts FLOPs for (forward only) | GFLOP per step |")
    print("|---|---:|")
    for key in counting:
        print(f"| `{key}` | {flops[key] / 1e9 / args.steps:.2f} |")
    counted = sum(flops.values()) / 1e9 / args.steps
    print(
        f"\nFLOPs the profiler counts: {counted:.2f} GFLOP per step, "
        f"{counted / (total_ms / 1e3):.0f} GFLOP/s over the whole step"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
