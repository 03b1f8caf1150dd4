"""Each convolution of a preset's two networks timed alone: forward, and forward + backward
(input and weight gradients), in fp32 and bf16, beside its FLOPs and the rate it runs at
against the machine's measured matrix-product peak (issue 29's per-layer work list).

    python scripts/profile_layers.py paper-16k --batch 16
    python scripts/profile_layers.py tiny --batch 8 --precision bf16

Prints a Markdown table, one row per layer. The critic's layers run as in training (on the
whole batch); the generator's as in training, and, for generation, forward only.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

from sfxgan.apps.bench import matmul_peak, median_time
from sfxgan.config import get_preset
from sfxgan.model.networks import SameConv2d, build_models


def layer_inputs(model: nn.Module, x: tuple, kinds: tuple[type, ...]) -> list[tuple]:
    """(name, module, input) of every layer of `kinds` in a forward pass on `x`."""
    seen: list[tuple] = []
    hooks = [
        module.register_forward_pre_hook(
            lambda mod, args, name=name: seen.append((name, mod, args[0].detach().clone()))
        )
        for name, module in model.named_modules()
        if isinstance(module, kinds)
    ]
    with torch.no_grad():
        model(*x)
    for hook in hooks:
        hook.remove()
    return seen


def conv_flops(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Forward FLOPs (2 per multiply-add) of a convolution or transposed convolution."""
    kt, kf = module.kernel_size
    if isinstance(module, nn.ConvTranspose2d):  # every input value meets the whole kernel once
        return 2.0 * x.numel() * module.out_channels * kt * kf
    return 2.0 * y.numel() * module.in_channels * kt * kf


def profile_layer(module: nn.Module, x: torch.Tensor, precision: str, repeats: int) -> dict:
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    autocast = torch.autocast("cpu", dtype=dtype, enabled=precision == "bf16")
    x = x.requires_grad_(True)

    def forward():
        with torch.no_grad(), autocast:
            return module(x)

    def both():
        with autocast:
            y = module(x)
        y.float().backward(torch.ones_like(y, dtype=torch.float32))
        module.zero_grad(set_to_none=True)
        x.grad = None

    y = forward()
    return {
        "flops": conv_flops(module, x, y),
        "fwd": median_time(forward, repeats, warmup=2),
        "both": median_time(both, repeats, warmup=2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("preset")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--precision", choices=["fp32", "bf16", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--channels-last", action="store_true", help="weights and inputs in NHWC memory format"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    preset = get_preset(args.preset)
    projection = preset.model.critic_conditioning == "projection"
    generator, critic = build_models(preset.model, 5, classifier=projection)
    labels = torch.zeros(args.batch, dtype=torch.long)
    z = torch.randn(args.batch, preset.model.latent_dim)
    spec = torch.rand(args.batch, 1, *preset.model.spectrogram_shape()) * 2 - 1
    layers = [
        ("G." + n, m, x)
        for n, m, x in layer_inputs(generator, (z, labels), (nn.Conv2d, nn.ConvTranspose2d))
    ]
    layers += [("D." + n, m, x) for n, m, x in layer_inputs(critic, (spec, labels), (SameConv2d,))]
    if args.channels_last:
        nhwc = torch.channels_last
        layers = [
            (n, m.to(memory_format=nhwc), x.contiguous(memory_format=nhwc)) for n, m, x in layers
        ]
    precisions = ["fp32", "bf16"] if args.precision == "both" else [args.precision]
    peaks = {p: matmul_peak(torch.float32 if p == "fp32" else torch.bfloat16) for p in precisions}
    print(
        f"{args.preset}, batch {args.batch}, {args.threads} threads; matrix-product peak "
        + ", ".join(f"{p} {v:.0f} GFLOP/s" for p, v in peaks.items())
        + "\n"
    )
    head = "| layer | kind | input | GFLOP fwd |"
    for p in precisions:
        head += f" {p} fwd ms | {p} fwd+bwd ms | {p} fwd+bwd GFLOP/s | % of {p} peak |"
    print(head)
    print("|" + "---|" * (4 + 4 * len(precisions)))
    totals = {p: [0.0, 0.0] for p in precisions}
    for name, module, x in layers:
        kind = "transposed" if isinstance(module, nn.ConvTranspose2d) else "conv"
        cells = []
        flops = 0.0
        for p in precisions:
            r = profile_layer(module, x, p, args.repeats)
            flops = r["flops"]
            rate = 3 * flops / r["both"] / 1e9  # backward: input and weight gradients, 2x fwd
            totals[p][0] += r["both"]
            totals[p][1] += 3 * flops
            cells.append(
                f" {1e3 * r['fwd']:.1f} | {1e3 * r['both']:.1f} | {rate:.0f} | "
                f"{100 * rate / peaks[p]:.0f} % |"
            )
        shape = "x".join(map(str, x.shape[1:]))
        print(f"| {name} | {kind} | {shape} | {flops / 1e9:.2f} |" + "".join(cells))
    for p, (seconds, flops) in totals.items():
        rate = flops / seconds / 1e9
        print(
            f"\n{p}: all layers {1e3 * seconds:.0f} ms forward + backward, {rate:.0f} GFLOP/s, "
            f"{100 * rate / peaks[p]:.0f} % of the {p} peak"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
