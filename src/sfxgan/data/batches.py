"""The batches of a run: which clips, and this process's share of them, read from the cache.

Batch k of a run is a pure function of (seed, k), so a resumed run continues exactly, on any
number of processes: each process takes its slice of the same global batch. The clips are read
from the feature cache (memory-mapped, decoded once by `data.load_dataset`) by DataLoader
workers, one fancy index per batch: no per-step work grows with the dataset, and nothing but
the batch is copied to the device (from pinned memory on CUDA).
"""

from __future__ import annotations

import itertools
import math
import signal
from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from sfxgan.data.dataset import SoundDataset


class EpochSampler:
    """Batch k of a run is a pure function of (seed, k): shuffled epochs without replacement,
    reshuffled every epoch with a seed of its own (seed, epoch).

    Resuming needs only the number of batches drawn so far. A dataset smaller than a batch is
    repeated within the epoch; the clips left over at the end of an epoch wait for the next.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int):
        self.n_items, self.batch_size, self.seed = n_items, batch_size, seed
        self.repeats = math.ceil(batch_size / n_items)
        self.per_epoch = (n_items * self.repeats) // batch_size
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def batch(self, k: int) -> torch.Tensor:
        epoch, slot = divmod(k, self.per_epoch)
        if epoch != self._epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = torch.cat(
                [torch.randperm(self.n_items, generator=g) for _ in range(self.repeats)]
            )
            self._epoch = epoch
        return self._order[slot * self.batch_size : (slot + 1) * self.batch_size]


class BatchShares(Dataset):
    """Item k is this process's share of batch k of the run: its slice `rank` of `world_size`
    equal slices of the global batch, as (log_spec float16 (b, T, F), audio float32
    (b, samples), labels int64 (b,)), b = batch_size / world_size.

    `log_shift` moves the log-spectrograms when a run resumes on data whose `max_value` changed,
    so that they keep the run's scale (a shift of log(old / new) / 5 in the [-1, 1] scale).
    """

    def __init__(
        self,
        dataset: SoundDataset,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        log_shift: float = 0.0,
    ):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not a multiple of {world_size}")
        self.log_spec, self.audio, self.labels = dataset.log_spec, dataset.audio, dataset.labels
        self.order = EpochSampler(len(dataset), batch_size, seed)
        self.share = batch_size // world_size
        self.start = rank * self.share
        self.log_shift = log_shift

    def mine(self, global_batch: torch.Tensor) -> torch.Tensor:
        """This process's slice of anything indexed by the global batch (clips, latents)."""
        return global_batch[self.start : self.start + self.share]

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        index = self.mine(self.order.batch(k)).numpy()
        log_spec = np.asarray(self.log_spec[index])
        if self.log_shift:
            log_spec = np.clip(log_spec.astype(np.float32) + self.log_shift, -1, 1)
            log_spec = log_spec.astype(np.float16)
        return (
            torch.from_numpy(log_spec),
            torch.from_numpy(np.asarray(self.audio[index], dtype=np.float32)),
            torch.from_numpy(np.asarray(self.labels[index], dtype=np.int64)),
        )

    # Workers started by spawn or forkserver receive a pickled copy: send the cache's file
    # names rather than the memory-mapped arrays (which would pickle as their whole contents).
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for key in ("log_spec", "audio"):
            array = state[key]
            if isinstance(array, np.memmap) and array.filename:
                state[key] = ("memmap", array.filename)
        return state

    def __setstate__(self, state: dict) -> None:
        for key in ("log_spec", "audio"):
            if isinstance(state[key], tuple):
                state[key] = np.load(state[key][1], mmap_mode="r")
        self.__dict__.update(state)


def _ignore_stop_signals(worker_id: int) -> None:
    """Loader workers leave Ctrl-C and SIGTERM to the training process, which finishes its step
    and saves; torchrun signals the whole process group, workers included."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def stream_batches(
    shares: BatchShares, start: int, workers: int = 0, pin_memory: bool = False
) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Batches start, start + 1, ... of the run, read ahead by `workers` processes (0: read in
    this process when asked). Measured (`sfxgan bench`, data path): from a cache in memory,
    reading costs 0.07 ms (tiny, batch 16) to 6 ms (paper-64k, batch 64) and taking a batch a
    worker read costs about as much (1.5 to 9 ms, the transfer between processes); workers
    pay off when batches come from the disk."""
    loader = DataLoader(
        shares,
        batch_size=None,  # every item is already a batch
        sampler=itertools.count(start),
        num_workers=workers,
        pin_memory=pin_memory,
        worker_init_fn=_ignore_stop_signals if workers else None,
        prefetch_factor=4 if workers else None,
    )
    return iter(loader)
