"""`sfxgan bench`: training and generation throughput, Griffin-Lim cost, FLOPs and the machine's
matrix-product peak, so that every speed figure has a limit next to it.

Each figure is the median of several timed runs after an untimed warm-up. Training is timed on
synthetic clips (speed does not depend on what the clips hold) with freshly initialised networks,
one step = n_critic critic updates + one generator update, as in `sfxgan train`. Each preset runs
in its own process, so its peak resident memory is its own.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sfxgan.config import get_preset
from sfxgan.files import write_json_atomic

# The reference implementation (the authors' TensorFlow code, TF 2.21 with tensorflow-io 0.37.1,
# eager as written), timed beside sfxgan on one machine of each kind (scripts/time_reference.py):
# paper-16k, one critic and one generator update (with the Griffin-Lim 50 loss) per step. The
# bench divides by the figures of this machine's kind, else by the first and says that the
# ratios then compare two machines.
REFERENCES = (
    {
        "machine": "2-core AMD EPYC, Zen 3 (AVX2; no AVX-512, no AMX)",
        "cpu": "EPYC",
        "avx512f": False,
        "amx_bf16": False,
        "train_paper16k_b4_s_per_step": 10.0,  # 10.0-16.3 over runs: the fastest
        "train_paper16k_b16_s_per_step": 46.6,
        "generate_paper16k_clips_per_s": 4.4,  # predict, Griffin-Lim 50, peak normalisation
        "griffin_lim_50_ms_per_clip": 95.0,
    },
    {  # 2026-12-06, two alternating rounds (docs/benchmarks.md, "Issue 29"): their medians
        "machine": "2-core Intel Xeon, Sapphire Rapids (AVX-512 BF16, AMX)",
        "cpu": "Xeon",
        "avx512f": True,
        "amx_bf16": True,
        "train_paper16k_b4_s_per_step": 3.45,
        "train_paper16k_b16_s_per_step": 8.87,
        "generate_paper16k_clips_per_s": 12.85,
        "griffin_lim_50_ms_per_clip": 57.2,
    },
)
# generation's phase methods: the reference's (Griffin-Lim 50), the default, and fast
# Griffin-Lim 16, whose spectral convergence beats Griffin-Lim 50's on real drum hits (0.156
# against 0.159) and on generated takes of three runs (docs/benchmarks.md), so its clips/s count
# against the reference's
GENERATION_PHASES = (("griffin-lim", 50), ("fast-griffin-lim", 32), ("fast-griffin-lim", 16))
AT_REFERENCE_QUALITY = ("fast-griffin-lim", 16)
TARGETS = {"training": 3.0, "generation": 5.0, "contention": 2.5}  # speed-ups; loaded/alone


@dataclass
class TrainCase:
    preset: str
    batch: int
    recon: bool
    steps: int = 2  # timed steps (the median is reported)
    warmup: int = 1  # untimed steps first (allocator and oneDNN primitive caches)
    count_flops: bool = True  # the count does not depend on the loss: count once per preset
    precision: str = "auto"  # as `sfxgan train` chooses it; the row records what ran

    @property
    def name(self) -> str:
        loss = "recon" if self.recon else "no recon"
        return f"{self.preset} b{self.batch} {loss}" + (
            f" {self.precision}" if self.precision != "auto" else ""
        )


@dataclass
class ContentionCase:
    """Tiny training steps alone and beside one busy process, with the thread choice of
    `--threads auto`, and (for a few steps) torch's own defaults beside it."""

    steps: int = 60
    default_steps: int = 10  # torch's defaults collapse under load: fewer steps say enough


@dataclass
class BenchPlan:
    train: list[TrainCase] = field(default_factory=list)
    contention: ContentionCase | None = field(default_factory=ContentionCase)
    generate_presets: list[str] = field(default_factory=lambda: ["tiny", "paper-16k"])
    gl_iters: tuple[int, ...] = (8, 16, 32, 50)
    repeats: int = 3
    # (preset, batch, clips in the cache): reading training batches from the feature cache
    data_path: list[tuple[str, int, int]] = field(
        default_factory=lambda: [("tiny", 16, 1024), ("paper-64k", 16, 512)]
    )
    # presets and clip counts of the studio's requests
    studio_presets: list[str] = field(default_factory=lambda: ["tiny", "paper-16k"])
    studio_counts: tuple[int, ...] = (1, 4, 16)
    # presets whose `sfxgan vary` fit of one sound is timed (the target: 15 s on 2 cores, tiny)
    vary_presets: list[str] = field(default_factory=lambda: ["tiny"])


def default_plan(quick: bool = False) -> BenchPlan:
    """The default fits in 10 minutes on 2 cores; `quick` (for tests) in well under one."""
    if quick:
        return BenchPlan(
            train=[TrainCase("tiny", 4, True, 1), TrainCase("tiny", 4, False, 1)],
            contention=ContentionCase(steps=4, default_steps=2),
            generate_presets=["tiny"],
            gl_iters=(8, 16),
            repeats=2,
            data_path=[("tiny", 16, 256)],
            studio_presets=["tiny"],
            studio_counts=(4,),
            vary_presets=[],
        )
    return BenchPlan(
        train=[
            TrainCase("tiny", 16, True, 3),
            TrainCase("tiny", 16, False, 3, count_flops=False),
            TrainCase("paper-16k", 4, True, 2, count_flops=False),
            TrainCase("paper-16k", 4, True, 2, count_flops=False, precision="fp32"),
            TrainCase("paper-16k", 16, True, 1),
            TrainCase("paper-16k", 16, True, 1, count_flops=False, precision="fp32"),
            TrainCase("paper-16k", 16, False, 1, count_flops=False),
            # one step of about 100 s: a warm-up would add little but another 100 s; this case
            # is there for the memory peak and the FLOP rate of the large model
            TrainCase("paper-64k", 4, True, 1, warmup=0),
        ],
        repeats=2,
    )


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- the machine -------------------------------------------------------------------------------


def machine_info() -> dict:
    from sfxgan.threads import cpu_flags, current_choice

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = cpu_flags()

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "thread_choice": current_choice(),
        "torch": torch.__version__,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx_bf16": "amx_bf16" in flags,
        "avx512f": "avx512f" in flags,
    }


def matmul_peak(dtype: torch.dtype, repeats: int = 3, budget_s: float = 1.0) -> float:
    """GFLOP/s of a square matrix product in `dtype`, with the size grown until one product
    takes about a tenth of `budget_s` (large enough to reach the kernel's steady state)."""
    n = 256
    while True:
        a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
        seconds = median_time(lambda a=a, b=b: a @ b, 1)
        if seconds > budget_s / 10 or n >= 4096:
            break
        n *= 2
    seconds = median_time(lambda: a @ b, repeats)
    return 2 * n**3 / seconds / 1e9


# --- training ----------------------------------------------------------------------------------


def synthetic_trainer(case: TrainCase, n_critic: int = 1):
    """A Trainer on random decaying noise bursts with the preset's shapes and loss settings."""
    from sfxgan.data.dataset import SoundDataset
    from sfxgan.dsp.features import STFT, to_log_spec
    from sfxgan.run_folder import RunSpec
    from sfxgan.training.trainer import Trainer

    preset = get_preset(case.preset)
    features = preset.features
    train = preset.train.replace(
        batch_size=case.batch,
        n_critic=n_critic,
        # a recon case measures the loss at the paper's w, also on a preset that leaves it off
        recon_weight=get_preset("paper-16k").train.recon_weight if case.recon else 0.0,
        device="cpu",
        precision=case.precision,
    )
    n_clips = 2 * case.batch
    rng = np.random.default_rng(0)
    decay = np.exp(-np.linspace(0, 8, features.clip_samples))
    audio = (rng.standard_normal((n_clips, features.clip_samples)) * 0.3 * decay).astype(np.float32)
    magnitude = STFT(features).magnitude(torch.from_numpy(audio))
    max_value = float(magnitude.max())
    log_spec = to_log_spec(magnitude, max_value).numpy().astype(np.float16)
    classes = [f"class{i}" for i in range(5)]
    labels = np.arange(n_clips) % len(classes)
    dataset = SoundDataset(
        audio, log_spec, labels, classes, [""] * n_clips, max_value, features, "start", Path(".")
    )
    spec = RunSpec(case.preset, features, preset.model, train, classes, max_value, "synthetic")
    return Trainer(spec, dataset, torch.device("cpu"))


def training_flops(case: TrainCase) -> float:
    """FLOPs of one training step per sample, counted on a batch of 2: convolutions and matrix
    products of the forward, backward and the gradient penalty's double backward, with the
    formulas of `torch.utils.flop_counter`: the networks' work, the same with or without the
    reconstruction loss, whose Griffin-Lim (DFT matrix products, docs/benchmarks.md) is left
    out so that GFLOP/s measures the networks."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class CountFlops(TorchDispatchMode):
        # FlopCounterMode itself tracks modules with backward hooks, which torch refuses inside
        # the autograd.grad of the gradient penalty; the op-level count needs no module tracking.
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    trainer = synthetic_trainer(TrainCase(case.preset, 2, recon=False))
    counter = CountFlops()
    with counter:
        trainer.train_step()
    return counter.total / 2


def _train_worker(case: TrainCase, threads: int, queue) -> None:
    try:
        torch.set_num_threads(threads)  # the parent's choice, so every case runs alike
        trainer = synthetic_trainer(case)
        step_s = median_time(trainer.train_step, case.steps, case.warmup)
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # before the count's run
        flops = training_flops(case) if case.count_flops else None
        queue.put(
            {
                "case": case.name,
                "preset": case.preset,
                "batch": case.batch,
                "recon": case.recon,
                "precision": trainer.spec.train.precision,
                "step_s": step_s,
                "samples_per_s": case.batch / step_s,
                "flops_per_sample": flops,
                "peak_rss_mib": peak_kib / 1024,
            }
        )
    except Exception as exc:  # reported in the table rather than losing the other figures
        queue.put({"case": case.name, "error": f"{type(exc).__name__}: {exc}"})


def _in_fresh_process(target: Callable, *args, env: dict[str, str] | None = None):
    """Run target(*args, queue) in a spawned process (with `env` added to its environment) and
    return what it puts on the queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        process.start()  # a spawned process starts with the environment as it is now
    finally:
        os.environ.clear()
        os.environ.update(saved)
    result = queue.get()
    process.join()
    return result


def bench_training(case: TrainCase) -> dict:
    """One case in a fresh process: its own memory peak, no warm caches from other presets."""
    return _in_fresh_process(_train_worker, case, torch.get_num_threads())


# --- a shared machine ----------------------------------------------------------------------------


def _spin(ready) -> None:
    """A busy process: one core's worth of work that never waits."""
    ready.set()
    while True:
        pass


class BusyCore:
    """One other busy process on the machine for the duration of a `with` block."""

    def __enter__(self) -> BusyCore:
        context = multiprocessing.get_context("spawn")
        ready = context.Event()
        self.process = context.Process(target=_spin, args=(ready,), daemon=True)
        self.process.start()
        ready.wait(60)
        time.sleep(0.5)  # its start-up (importing torch) is over; now it only spins
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.join()


def _contention_worker(threads: int | str, steps: int, queue) -> None:
    """`steps` tiny training steps (its preset's batch and loss) as `sfxgan train` runs them:
    the thread count chosen as --threads chooses it, and re-checked after every step."""
    from sfxgan import threads as thread_control

    choice = thread_control.configure(threads)
    case = TrainCase("tiny", get_preset("tiny").train.batch_size, recon=False)
    trainer = synthetic_trainer(case)
    trainer.train_step()  # warm-up
    counts = set()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
        thread_control.recheck()
        counts.add(torch.get_num_threads())
    seconds = time.perf_counter() - start
    queue.put({"choice": choice, "thread_counts": sorted(counts), "s_per_step": seconds / steps})


# libgomp's own spin count before a waiting thread sleeps (its default when OMP_WAIT_POLICY is
# unset): with it, a child runs as plain torch does although sfxgan asks for passive waiting.
TORCH_DEFAULT_WAIT = {"GOMP_SPINCOUNT": "300000"}


def bench_contention(case: ContentionCase) -> dict:
    """Seconds per tiny step: `--threads auto` alone and beside a busy process, and torch's
    defaults (a thread per core, spinning waits) beside it."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    alone = _in_fresh_process(_contention_worker, "auto", case.steps)
    with BusyCore():
        loaded = _in_fresh_process(_contention_worker, "auto", case.steps)
        default = _in_fresh_process(
            _contention_worker, cores, case.default_steps, env=TORCH_DEFAULT_WAIT
        )
    return {
        "steps": case.steps,
        "alone": alone,
        "one_busy_core": loaded,
        "one_busy_core_torch_default": default,
        "slowdown_auto": loaded["s_per_step"] / alone["s_per_step"],
        "slowdown_torch_default": default["s_per_step"] / alone["s_per_step"],
    }


# --- generation and Griffin-Lim ------------------------------------------------------------------


def _untrained_sampler(preset_name: str):
    """A Sampler over a freshly initialised generator of a preset, for 5 classes."""
    from sfxgan.generate import Sampler
    from sfxgan.model.networks import Generator
    from sfxgan.run_folder import RunSpec

    preset = get_preset(preset_name)
    classes = [f"class{i}" for i in range(5)]
    spec = RunSpec(preset.name, preset.features, preset.model, preset.train, classes, 10.0, "")
    return Sampler(spec, Generator(preset.model, len(classes)), torch.device("cpu"))


def bench_studio(preset_name: str, counts: tuple[int, ...], repeats: int) -> list[dict]:
    """Seconds per studio request: generator, phase reconstruction, WAV files, spectrogram
    pictures and the ZIP, for `count` clips (the page's own overhead is not included)."""
    import tempfile

    from sfxgan.apps.studio import Studio

    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        studio = Studio(_untrained_sampler(preset_name), Path(workdir))
        voice = studio.voice("class0")
        for count in counts:
            take = studio.new_take("class0", count, seed=0)
            seconds = median_time(lambda t=take: studio.render(t, voice), repeats)
            rows.append(
                {
                    "preset": preset_name,
                    "clips": count,
                    "s_per_request": seconds,
                    "ms_per_clip": 1000 * seconds / count,
                }
            )
    return rows


def bench_vary(preset_name: str, repeats: int) -> dict:
    """Seconds to fit one sound into a preset's generator as `sfxgan vary` does (apps.vary:
    every class's starts, both stages, vary's default steps), on a noise burst that decays."""
    from sfxgan.apps.vary import STARTS, Source, invert

    sampler = _untrained_sampler(preset_name)
    features = sampler.spec.features
    g = torch.Generator().manual_seed(0)
    t = torch.arange(features.clip_samples) / features.sample_rate
    audio = torch.randn(features.clip_samples, generator=g) * torch.exp(-t / 0.05)
    with torch.inference_mode():
        magnitude = sampler.stft.magnitude(audio[None])[0]
    source = Source(Path("burst.wav"), "", audio.numpy(), magnitude, float(t[-1]), "")
    seconds = median_time(lambda: invert(sampler, source, seed=0), repeats, warmup=0)
    classes = len(sampler.classes)
    return {"preset": preset_name, "classes": classes, "starts": STARTS, "s_per_sound": seconds}


def bench_generation(preset_name: str, repeats: int, n: int = 64) -> list[dict]:
    """Clips/s of what `sfxgan generate` runs: the Sampler's generator batches, then its phase
    reconstruction, for n clips, in inference mode (an untrained generator costs the same); in
    fp32, and in what `generate --precision auto` picks here when that is bf16."""
    sampler = _untrained_sampler(preset_name)
    z = torch.randn(n, sampler.spec.model.latent_dim)
    labels = torch.arange(n) % len(sampler.classes)
    sampler.use_precision("auto")
    rows = []
    for precision in dict.fromkeys(["fp32", sampler.precision]):  # once where auto is fp32
        sampler.use_precision(precision)
        net_s = median_time(lambda: sampler.log_spec(z, labels), repeats)
        for phase, iters in GENERATION_PHASES:
            seconds = median_time(
                lambda p=phase, k=iters: sampler.to_audio(sampler.log_spec(z, labels), p, k),
                repeats,
            )
            rows.append(
                {
                    "preset": preset_name,
                    "precision": precision,
                    "phase": phase,
                    "iters": iters,
                    "clips_per_s": n / seconds,
                    "generator_clips_per_s": n / net_s,
                    "phase_share": max(0.0, 1 - net_s / seconds),
                }
            )
    return rows


def bench_griffin_lim(preset_name: str, iters: tuple[int, ...], repeats: int, n: int = 64):
    from sfxgan.dsp.features import STFT
    from sfxgan.dsp.phase import reconstruct

    preset = get_preset(preset_name)
    stft = STFT(preset.features)
    magnitude = stft.magnitude(torch.randn(n, preset.features.clip_samples) * 0.1)
    rows = []
    for method in ("griffin-lim", "fast-griffin-lim"):
        for n_iter in iters:
            with torch.inference_mode():
                seconds = median_time(
                    lambda m=method, k=n_iter: reconstruct(magnitude, stft, m, k), repeats
                )
            rows.append(
                {
                    "preset": preset_name,
                    "method": method,
                    "iters": n_iter,
                    "ms_per_clip": 1000 * seconds / n,
                }
            )
    return rows


# --- the whole bench -----------------------------------------------------------------------------


# --- the data path --------------------------------------------------------------------------


def bench_data_path(preset_name: str, batch: int, n_clips: int, n_batches: int = 40) -> dict:
    """Reading training batches from a memory-mapped feature cache as `sfxgan train` does
    (BatchShares: one fancy index per batch): read in the training process, or taken from two
    loader processes that read it during the previous step. The cache was just written, so it
    is in the page cache: the figures are the cost of gathering a batch, not of the disk."""
    import tempfile

    from sfxgan.data.batches import BatchShares, stream_batches
    from sfxgan.data.dataset import SoundDataset

    features = get_preset(preset_name).features
    frames, bins = features.n_frames, features.n_bins
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="sfxgan-bench-") as tmp:
        folder = Path(tmp)
        np.save(
            folder / "log_spec.npy", rng.uniform(-1, 1, (n_clips, frames, bins)).astype(np.float16)
        )
        np.save(
            folder / "audio.npy",
            rng.uniform(-1, 1, (n_clips, features.clip_samples)).astype(np.float32),
        )
        dataset = SoundDataset(
            np.load(folder / "audio.npy", mmap_mode="r"),
            np.load(folder / "log_spec.npy", mmap_mode="r"),
            np.arange(n_clips) % 5,
            [f"class{i}" for i in range(5)],
            [""] * n_clips,
            1.0,
            features,
            "start",
            folder,
        )
        shares = BatchShares(dataset, batch, seed=0)
        order = iter(range(10**9))
        inline = median_time(lambda: shares[next(order)], n_batches, warmup=2)
        # with loader processes, what the training process waits for a batch that the workers
        # read during the step before (a 20 ms stand-in for it)
        stream = stream_batches(shares, start=0, workers=2)
        next(stream)
        waits = []
        for _ in range(n_batches):
            time.sleep(0.02)
            start = time.perf_counter()
            next(stream)
            waits.append(time.perf_counter() - start)
        del stream
    batch_bytes = batch * (frames * bins * 2 + features.clip_samples * 4)
    return {
        "preset": preset_name,
        "batch": batch,
        "clips": n_clips,
        "mib_per_batch": batch_bytes / 2**20,
        "ms_inline": 1000 * inline,
        "ms_two_workers": 1000 * statistics.median(waits),
    }


def run_bench(plan: BenchPlan, log: Callable[[str], None] = print) -> dict:
    from sfxgan import threads

    start = time.perf_counter()
    machine = machine_info()
    result: dict = {"machine": machine, "reference": reference_for(machine)}
    # the count --threads chose, fixed for the whole bench: the load check would count the
    # cases' own processes as other work and change the count between the figures it compares
    # (it did: generation ran on one thread for a while after the paper-64k case)
    threads.configure(torch.get_num_threads())
    log("matrix-product peak ...")
    result["matmul_gflops"] = {
        "fp32": matmul_peak(torch.float32, plan.repeats),
        "bf16": matmul_peak(torch.bfloat16, plan.repeats),
    }
    if plan.contention is not None:
        log(f"contention: {plan.contention.steps} tiny steps alone and beside a busy process ...")
        result["contention"] = bench_contention(plan.contention)
    result["training"] = []
    for case in plan.train:
        log(f"training {case.name} ...")
        result["training"].append(bench_training(case))
    counted = {
        r["preset"]: r["flops_per_sample"] for r in result["training"] if r.get("flops_per_sample")
    }
    for row in result["training"]:
        if "error" not in row:
            row["flops_per_sample"] = counted.get(row["preset"])
            flops = row["flops_per_sample"]
            row["gflops_per_s"] = flops * row["samples_per_s"] / 1e9 if flops else None
    result["generation"] = []
    for name in plan.generate_presets:
        log(f"generation {name} ...")
        result["generation"] += bench_generation(name, plan.repeats)
    log("Griffin-Lim ...")
    result["griffin_lim"] = bench_griffin_lim("paper-16k", plan.gl_iters, plan.repeats)
    log("data path ...")
    result["data_path"] = [bench_data_path(*case) for case in plan.data_path]
    result["studio"] = []
    for name in plan.studio_presets:
        log(f"studio {name} ...")
        result["studio"] += bench_studio(name, plan.studio_counts, plan.repeats)
    result["vary"] = []
    for name in plan.vary_presets:
        log(f"vary {name} ...")
        result["vary"].append(bench_vary(name, plan.repeats))
    result["ratios"] = ratios(result)
    result["seconds"] = time.perf_counter() - start
    return result


def same_kind_as_reference(machine: dict, reference: dict) -> bool:
    """Whether this machine is of the kind the reference was timed on (the CPU family and its
    vector units decide most of the speed here); otherwise ratios compare two machines."""
    return reference["cpu"] in machine["cpu"] and all(
        machine[flag] == reference[flag] for flag in ("avx512f", "amx_bf16")
    )


def reference_for(machine: dict) -> dict:
    """The reference's figures from a machine of this one's kind, else the first ones."""
    return next((r for r in REFERENCES if same_kind_as_reference(machine, r)), REFERENCES[0])


def ratios(result: dict) -> dict:
    """Speed-ups over the reference (higher is faster), where both figures exist."""
    reference = result["reference"]
    out = {}
    for row in result["training"]:
        if row.get("preset") == "paper-16k" and row.get("recon") and "error" not in row:
            key = f"train_paper16k_b{row['batch']}_s_per_step"
            if key in reference:
                out[f"{key} ({row['precision']})"] = reference[key] / row["step_s"]
    key = "generate_paper16k_clips_per_s"
    for row in result["generation"]:
        if row["preset"] != "paper-16k":
            continue
        method = (row["phase"], row["iters"])
        if method in (("griffin-lim", 50), AT_REFERENCE_QUALITY):
            label = f"{key} ({row.get('precision', 'fp32')}, {row['phase']} {row['iters']})"
            out[label] = row["clips_per_s"] / reference[key]
    for row in result["griffin_lim"]:
        if row["method"] == "griffin-lim" and row["iters"] == 50:
            key = "griffin_lim_50_ms_per_clip"
            out[key] = reference[key] / row["ms_per_clip"]
    return out


def format_tables(result: dict) -> str:
    m, peak = result["machine"], result["matmul_gflops"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores (torch threads {m['thread_choice']}), "
        f"torch {m['torch']}, AVX-512 BF16 {'yes' if m['avx512_bf16'] else 'no'}, "
        f"AMX {'yes' if m['amx_bf16'] else 'no'}",
        f"matrix-product peak: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s",
        "",
        "| training | precision | step s | samples/s | GFLOP/sample | GFLOP/s | % of fp32 peak "
        "| peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["training"]:
        if "error" in row:
            lines.append(f"| {row['case']} | | failed: {row['error']} | | | | | |")
            continue
        flops, rate = row.get("flops_per_sample"), row.get("gflops_per_s")
        lines.append(
            f"| {row['case']} | {row['precision']} | {row['step_s']:.2f} | "
            f"{row['samples_per_s']:.2f} | "
            + (
                f"{flops / 1e9:.1f} | {rate:.0f} | {100 * rate / peak['fp32']:.0f} | "
                if rate
                else "n/a | n/a | n/a | "
            )
            + f"{row['peak_rss_mib']:.0f} |"
        )
    if "contention" in result:
        c = result["contention"]
        lines += [
            "",
            f"| shared machine: {c['steps']} tiny steps | threads | s per step | "
            "slowdown against alone |",
            "|---|---|---:|---:|",
            f"| alone, --threads auto | {c['alone']['choice']} | {c['alone']['s_per_step']:.3f} "
            "| 1.00x |",
            f"| one busy process, --threads auto | {c['one_busy_core']['choice']} | "
            f"{c['one_busy_core']['s_per_step']:.3f} | {c['slowdown_auto']:.2f}x "
            f"(target {TARGETS['contention']:g}x at most) |",
            f"| one busy process, torch's defaults (a thread per core, spinning waits) | "
            f"{c['one_busy_core_torch_default']['choice']} | "
            f"{c['one_busy_core_torch_default']['s_per_step']:.3f} | "
            f"{c['slowdown_torch_default']:.2f}x |",
        ]
    lines += _generation_table(result["generation"])
    lines += ["", "| Griffin-Lim (paper-16k, batch 64) | iterations | ms/clip |", "|---|---:|---:|"]
    for row in result["griffin_lim"]:
        lines.append(f"| {row['method']} | {row['iters']} | {row['ms_per_clip']:.2f} |")
    lines += [
        "",
        "| data path: a batch from the cache | batch | MiB | ms, read in the process "
        "| ms, taken from 2 workers reading ahead |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in result.get("data_path", []):
        lines.append(
            f"| {row['preset']} ({row['clips']} clips) | {row['batch']} | "
            f"{row['mib_per_batch']:.1f} | {row['ms_inline']:.2f} | {row['ms_two_workers']:.2f} |"
        )
    lines += [
        "",
        "| studio: one request (generator, fast Griffin-Lim 32, WAVs, pictures, ZIP) | clips "
        "| s per request | ms per clip |",
        "|---|---:|---:|---:|",
    ]
    for row in result.get("studio", []):
        lines.append(
            f"| {row['preset']} | {row['clips']} | {row['s_per_request']:.3f} | "
            f"{row['ms_per_clip']:.1f} |"
        )
    lines += _vary_table(result.get("vary", []))
    if result["ratios"]:
        reference = result["reference"]
        same = same_kind_as_reference(m, reference)
        lines += [
            "",
            f"reference (the authors' TensorFlow code) timed on: {reference['machine']}"
            + (
                ""
                if same
                else f"; this machine differs ({m['cpu']}, AVX-512 "
                f"{'yes' if m['avx512f'] else 'no'}): the ratios compare two machines"
            ),
            "",
            "| against the reference | reference | speed-up (higher is faster) | target |",
            "|---|---:|---:|---:|",
        ]
        for key, value in result["ratios"].items():
            figure = key.split(" ")[0]
            target = TARGETS["generation"] if key.startswith("generate") else TARGETS["training"]
            target_cell = f"{target:g}x" if not key.startswith("griffin") else ""
            lines.append(f"| {key} | {reference[figure]:g} | {value:.2f}x | {target_cell} |")
    lines.append(f"\nbench took {result['seconds']:.0f} s")
    return "\n".join(lines)


def _generation_table(rows: list[dict]) -> list[str]:
    lines = [
        "",
        "| generation (batch 64) | generator precision | phase | clips/s | generator alone "
        "clips/s | phase share |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row.get('precision', 'fp32')} | {row['phase']} "
            f"{row['iters']} | {row['clips_per_s']:.1f} | {row['generator_clips_per_s']:.1f} | "
            f"{100 * row['phase_share']:.0f} % |"
        )
    return lines


def _vary_table(rows: list[dict]) -> list[str]:
    if not rows:
        return []
    lines = [
        "",
        "| vary: fit one sound (apps/vary.py; target 15 s on 2 cores with tiny) | classes "
        "| starts | s per sound |",
        "|---|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['preset']} | {row['classes']} | {row['starts']} | {row['s_per_sound']:.1f} |"
        )
    return lines


def write_json(result: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, result)
