"""Training over several processes (torchrun): PyTorch's DistributedDataParallel, and the three
places where the method looks at the whole batch and must keep doing so when the batch is split.

    torchrun --nproc-per-node 4 -m sfxgan train DATA --out RUN --batch-size 64

Every process trains on its share of each global batch (batch_size / processes clips); DDP
averages the gradients. A run on N processes is the same computation as on one process with the
same global batch (up to float rounding), because:

- the generator's BatchNorm normalises with the statistics of the *global* batch
  (`GlobalBatchNorm2d`; PyTorch's SyncBatchNorm does this on GPUs only, and one code path
  tested on the CPU beats two);
- the reconstruction loss divides the audio by the peak of the *global* batch (`global_max`);
- every process draws the global batch's latents and interpolation weights from the same
  generator and takes its slice, and batch k of the run is a pure function of (seed, k).

NCCL is used on CUDA, gloo on the CPU. Without torchrun (WORLD_SIZE unset or 1) nothing here
does anything: the helpers return their input.
"""

from __future__ import annotations

import datetime
import inspect
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from sfxgan.config import pick_device
from sfxgan.errors import ConfigError, first_line

# Rank 0 writes previews and checkpoints while the others wait in the next step's collective,
# and may take a while on a big model: far above the time of any one step.
TIMEOUT = datetime.timedelta(minutes=30)


@dataclass(frozen=True)
class Processes:
    """Where this process stands among the training processes (torchrun's variables)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @classmethod
    def from_environ(cls) -> Processes:
        try:
            world_size = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        except ValueError as exc:
            raise ConfigError(f"malformed torchrun variables (RANK/WORLD_SIZE): {exc}") from None
        return cls(rank, local_rank, world_size)

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder and shows progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device(self, name: str) -> torch.device:
        """The device of this process: one GPU per process (cuda:LOCAL_RANK) under torchrun."""
        device = pick_device(name)
        if not self.distributed or device.type != "cuda":
            return device
        if self.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process {self.rank} needs GPU {self.local_rank} but this machine has "
                f"{torch.cuda.device_count()}; start at most that many processes per node"
            )
        return torch.device("cuda", self.local_rank)

    def start(self, device: torch.device) -> None:
        """Join the process group: NCCL between GPUs, gloo between CPU processes."""
        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        options = {"timeout": TIMEOUT}
        if device.type == "cuda" and _accepts(dist.init_process_group, "device_id"):
            options["device_id"] = device  # NCCL knows its GPU at once (barriers need it)
        try:
            dist.init_process_group(backend, rank=self.rank, world_size=self.world_size, **options)
        except (ValueError, RuntimeError) as exc:  # no rendezvous variables, or none answered
            raise ConfigError(
                f"process {self.rank} of {self.world_size} could not join the others "
                f"({first_line(exc, 120)}); start training processes with torchrun"
            ) from exc

    def stop(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def barrier() -> None:
    if active():
        dist.barrier()


def wrap(module: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `module` when there are several processes, else itself.

    Buffers are not broadcast: the only ones are the generator's BatchNorm statistics, which
    `GlobalBatchNorm2d` keeps identical on every process. Gradients are views into DDP's
    communication buckets: no copy between gradient and bucket.
    """
    if not active():
        return module
    # The critic head's (1, n) gradient comes with an arbitrary stride on its size-1 dimension;
    # DDP then copies its n floats instead of sharing the bucket's memory, and says so at every
    # run. Nothing to act on.
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    # torch 2.13 renamed the option; older versions only know the first name
    no_buffer_sync = (
        "forward_sync_buffers"
        if _accepts(DistributedDataParallel.__init__, "forward_sync_buffers")
        else "broadcast_buffers"
    )
    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        gradient_as_bucket_view=True,
        **{no_buffer_sync: False},
    )


def _accepts(function, name: str) -> bool:
    return name in inspect.signature(function).parameters


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: the derivative of a loss
    summed over processes (DDP then divides every weight gradient by N). torch has this as
    torch.distributed.nn.functional.all_reduce, now deprecated, and as an autograd functional
    collective only in recent versions; these lines work on every torch this package accepts."""

    @staticmethod
    def forward(ctx, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def _all_reduce_sum(tensor: Tensor) -> Tensor:
    return _SumOverProcesses.apply(tensor)


def global_max(value: Tensor) -> Tensor:
    """The maximum of a scalar over processes, differentiable like `amax` on the whole batch:
    the gradient goes to the process(es) holding the maximum, split evenly between ties."""
    if not active():
        return value
    top = value.detach().clone()
    dist.all_reduce(top, op=dist.ReduceOp.MAX)
    is_top = (value.detach() == top).to(value.dtype)
    total, count = _all_reduce_sum(torch.stack([value * is_top, is_top]))
    return total / count


def from_main(flag: bool, device: torch.device) -> bool:
    """Rank 0's decision, on every process (a decision only rank 0 can make, e.g. from the
    quality check it alone runs)."""
    if not active():
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item() > 0)


def average(values: Tensor) -> Tensor:
    """The mean over processes of per-process values (not differentiable): with equal shares
    of the batch, the mean of per-share means is the global batch's mean."""
    if not active():
        return values
    values = values.detach().clone()
    dist.all_reduce(values)
    return values / dist.get_world_size()


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch over all processes.

    Each process computes the mean and (biased) variance of its share per channel; the shares
    are combined exactly (parallel variance formula: no E[x^2] - E[x]^2 cancellation) through a
    differentiable all-reduce, so the gradient also matches BatchNorm on the whole batch. In
    eval mode, or with one process, it is plain BatchNorm2d; the state dict is the same.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and active()):
            return super().forward(x)
        n_procs, me = dist.get_world_size(), dist.get_rank()
        x32 = x.float()
        var, mean = torch.var_mean(x32, dim=(0, 2, 3), unbiased=False)  # (C,), (C,)
        count = torch.full_like(mean, x.numel() / x.shape[1])
        mine = torch.stack([count, mean, var])  # (3, C)
        # an all-gather by summation: each process fills its own row of zeros
        rows = torch.zeros(n_procs, 1, 1, dtype=mine.dtype, device=mine.device)
        rows[me] = 1
        counts, means, variances = _all_reduce_sum(rows * mine).unbind(1)  # (P, C) each
        total = counts.sum(0)
        mean = (counts * means).sum(0) / total
        var = (counts * (variances + (means - mean).square())).sum(0) / total
        self._update_running_stats(mean.detach(), var.detach(), total)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            shift = self.bias - mean * scale * self.weight
            scale = scale * self.weight
        else:
            shift = -mean * scale
        return (x32 * scale[:, None, None] + shift[:, None, None]).to(x.dtype)

    @torch.no_grad()
    def _update_running_stats(self, mean: Tensor, var: Tensor, count: Tensor) -> None:
        if not self.track_running_stats:
            return
        self.num_batches_tracked += 1
        # PyTorch's rule: momentum None is a cumulative average
        factor = self.momentum if self.momentum is not None else 1 / int(self.num_batches_tracked)
        unbiased = var * count / (count - 1).clamp(min=1)
        self.running_mean.lerp_(mean, factor)
        self.running_var.lerp_(unbiased, factor)


def use_global_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every BatchNorm2d of `module` into a GlobalBatchNorm2d, in place (same weights)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            norm = GlobalBatchNorm2d(
                child.num_features,
                child.eps,
                child.momentum,
                child.affine,
                child.track_running_stats,
            )
            norm.load_state_dict(child.state_dict())
            norm.to(next(child.buffers(), torch.empty(0)).device)
            setattr(module, name, norm)
        else:
            use_global_batchnorm(child)
    return module
