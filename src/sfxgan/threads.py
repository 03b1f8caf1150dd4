"""CPU threads that fit the machine as it is, not as it was built.

Torch's default (one thread per core, OpenMP threads that spin while they wait) collapses when
anything else runs: every parallel region waits for its slowest thread, and a thread that shares
its core with another process, or spins on a barrier while the thread it waits for needs that
very core, makes each of the thousands of small regions of a training step wait for a time slice.
Measured on 2-core EPYCs with one busy process beside a tiny training step (docs/benchmarks.md):
2 spinning threads 3-20x slower than alone, 2 passive threads 1.8x, 1 thread 1.7-2x.

So `--threads auto` (the default of every command) does three things:

- the OpenMP runtime that torch ships waits passively (`OMP_WAIT_POLICY=PASSIVE`, set by
  `sfxgan/__init__.py` before torch loads, unless the user set it): no cost alone, measured;
- the thread count is the number of cores this process may use (its CPU affinity and cgroup
  quota) less the cores other processes keep busy, measured from /proc/stat over the seconds
  since the program started, minus this process's own CPU time;
- long work (training, generation) re-checks that load every `RECHECK_S` seconds and follows it,
  so a browser that starts, or a job that ends, changes the thread count within seconds.

An explicit `--threads N`, or OMP_NUM_THREADS in the environment, wins and never changes. Results
are bit-identical between runs only at equal thread counts (float sums in another order): pass
`--threads N` where that matters.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

RECHECK_S = 10.0  # how often long work looks at the load again
MIN_WINDOW_S = 0.2  # the shortest /proc/stat window worth reading (ticks are 10 ms)
STALE_START_S = 30.0  # an import-time sample older than this no longer says how loaded it is


@dataclass(frozen=True)
class CpuSample:
    """Busy and total CPU ticks of the cores this process may use, and its own CPU seconds."""

    wall: float
    busy_ticks: int
    own_seconds: float


def usable_cores() -> list[int]:
    """The cores this process may run on (its affinity), e.g. [0, 1]."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return list(range(os.cpu_count() or 1))


def cgroup_core_limit() -> float | None:
    """The container's CPU quota in cores (cgroup v2 cpu.max), or None when there is none."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def sample(cores: list[int] | None = None) -> CpuSample:
    """Read /proc/stat for the given cores (default: the usable ones) and this process's CPU
    time. Busy ticks are everything but idle and iowait."""
    cores = usable_cores() if cores is None else cores
    wanted = {f"cpu{i}" for i in cores}
    busy = 0
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            name, *fields = line.split()
            if name in wanted:
                ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq soft steal
                busy += sum(ticks) - ticks[3] - ticks[4]
    except (OSError, ValueError):
        busy = -1  # no /proc (not Linux): the load is unknown
    times = os.times()
    return CpuSample(time.monotonic(), busy, times.user + times.system)


def others_load(before: CpuSample, after: CpuSample) -> float | None:
    """Cores kept busy by other processes between two samples (0.0 on an idle machine), or None
    when it cannot be measured (no /proc, or a window too short to read)."""
    elapsed = after.wall - before.wall
    if before.busy_ticks < 0 or after.busy_ticks < 0 or elapsed < MIN_WINDOW_S:
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    busy_cores = (after.busy_ticks - before.busy_ticks) / tick / elapsed
    own_cores = (after.own_seconds - before.own_seconds) / elapsed
    return max(0.0, busy_cores - own_cores)


def choose_threads(cores: float, others: float | None) -> int:
    """One thread per core that is not busy with other work, at least one. A core counts as
    busy when other processes use more than half of it."""
    free = cores if others is None else cores - others
    return max(1, min(math.floor(cores), math.floor(free + 0.5)))


def available_cores() -> float:
    """Cores this process may use: its affinity, capped by a container's quota."""
    cores = float(len(usable_cores()))
    limit = cgroup_core_limit()
    return max(1.0, min(cores, limit)) if limit else cores


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


# Taken when sfxgan is imported, so the first choice can read the load over the seconds that
# importing torch takes, without waiting.
_STARTED = sample()


class ThreadGovernor:
    """Sets torch's thread count from the free cores, then follows the load when asked."""

    def __init__(self, log=None, recheck_s: float = RECHECK_S) -> None:
        self.cores = available_cores()
        self.recheck_s = recheck_s
        self.log = log
        self.threads = 0
        # the load since sfxgan was imported, when that was just now (a command starting);
        # a governor made later measures afresh, not over what ran in between
        fresh = time.monotonic() - _STARTED.wall < STALE_START_S
        self.last = _STARTED if fresh else sample()
        self.others: float | None = None

    def _measure(self, wait: bool) -> None:
        now = sample()
        if wait and now.wall - self.last.wall < MIN_WINDOW_S:
            time.sleep(MIN_WINDOW_S - (now.wall - self.last.wall))
            now = sample()
        self.others = others_load(self.last, now)
        self.last = now

    def start(self) -> int:
        """Choose the first thread count (reading the load since import, waiting at most
        MIN_WINDOW_S when the program started just now) and set it."""
        self._measure(wait=True)
        return self._set(choose_threads(self.cores, self.others))

    def recheck(self) -> int | None:
        """At most every `recheck_s` seconds: measure the load again; return the new thread
        count when it changed, else None."""
        if time.monotonic() - self.last.wall < self.recheck_s:
            return None
        self._measure(wait=False)
        threads = choose_threads(self.cores, self.others)
        if threads == self.threads:
            return None
        before = self.threads
        self._set(threads)
        if self.log is not None:
            self.log(
                f"threads {before} -> {threads}: other processes use {self.others:.1f} of "
                f"{self.cores:g} cores"
            )
        return threads

    def _set(self, threads: int) -> int:
        import torch

        torch.set_num_threads(threads)
        self.threads = threads
        return threads

    def describe(self) -> str:
        load = "unknown" if self.others is None else f"{self.others:.1f}"
        return f"{self.threads} (auto: {self.cores:g} cores, {load} busy with other work)"


_governor: ThreadGovernor | None = None
_fixed_by = "torch's default"  # what set the count when no governor follows the load


def configure(threads: int | str | None, log=None) -> str:
    """Apply a --threads value: a number fixes the count; "auto" (or None) chooses and follows
    the load, unless OMP_NUM_THREADS is set. Returns a description of the choice."""
    global _governor, _fixed_by
    import torch

    _governor = None
    if isinstance(threads, int):
        torch.set_num_threads(threads)
        _fixed_by = "--threads"
    elif os.environ.get("OMP_NUM_THREADS"):
        _fixed_by = "OMP_NUM_THREADS"
    else:
        _governor = ThreadGovernor(log=log)
        _governor.start()
    return current_choice()


def recheck() -> int | None:
    """Called by long loops between units of work: follow the load when --threads is auto."""
    return _governor.recheck() if _governor is not None else None


def set_log(log) -> None:
    """Where thread changes are reported (e.g. tqdm.write during a progress bar)."""
    if _governor is not None:
        _governor.log = log


def current_choice() -> str:
    """What the thread count is and why, for logs and `bench`."""
    import torch

    if _governor is not None:
        return _governor.describe()
    return f"{torch.get_num_threads()} ({_fixed_by})"
