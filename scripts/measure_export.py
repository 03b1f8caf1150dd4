"""The measurements of docs/export.md: export time and size, agreement of the exported files
with sfxgan (200 clips), time per clip of each path.

    .venv/bin/python scripts/measure_export.py RUN OUTDIR     # writes OUTDIR/bench.json
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from sfxgan.apps.export import export_run
from sfxgan.data.audio import peak_normalize
from sfxgan.dsp.features import from_log_spec
from sfxgan.dsp.phase import reconstruct
from sfxgan.generate import Sampler

warnings.filterwarnings("ignore", category=DeprecationWarning)
run, outdir = Path(sys.argv[1]), Path(sys.argv[2])
outdir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(2)
results = {"load_before": os.getloadavg()}

# 1. export time (in process, after the first import), 3 each
for fmt, name in [("onnx", "sfx.onnx"), ("torchscript", "sfx.pt")]:
    walls, cpus = [], []
    for _ in range(3):
        c0, w0 = time.process_time(), time.perf_counter()
        export_run(run, fmt, outdir / name)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    results[f"export_{fmt}_wall_s"] = statistics.median(walls)
    results[f"export_{fmt}_cpu_s"] = statistics.median(cpus)
    results[f"export_{fmt}_mb"] = (outdir / name).stat().st_size / 1e6
c0, w0 = time.process_time(), time.perf_counter()
export_run(run, "onnx", outdir / "mag.onnx", audio=False)
results["export_onnx_magnitude_only_wall_s"] = time.perf_counter() - w0

sampler = Sampler.from_run(run, device="cpu")
opts = ort.SessionOptions()
opts.intra_op_num_threads = 2
full = ort.InferenceSession(str(outdir / "sfx.onnx"), opts, providers=["CPUExecutionProvider"])
magonly = ort.InferenceSession(str(outdir / "mag.onnx"), opts, providers=["CPUExecutionProvider"])
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    script = torch.jit.load(str(outdir / "sfx.pt"))

# 2. accuracy over 40 clips per class, sfxgan's own latents (seed 0)
zs, labels = [], []
for name in sampler.classes:
    zs.append(sampler.latents(name, 40, seed=0))
    labels += [sampler.label(name)] * 40
z = torch.cat(zs)
lab = torch.tensor(labels)
with torch.inference_mode():
    log_spec = sampler.log_spec(z, lab)
    mag_pt = from_log_spec(log_spec, sampler.spec.max_value)
    audio_pt = sampler.to_audio(log_spec)
    audio_64 = peak_normalize(
        reconstruct(mag_pt.double(), sampler.stft, "fast-griffin-lim", 32)
    ).float()
    mag_ts, audio_ts = script(z, lab)
mag_ort, audio_ort = full.run(None, {"z": z.numpy(), "label": lab.numpy()})
mx = sampler.spec.max_value


def per_clip(a, b):
    return np.abs(np.asarray(a) - np.asarray(b)).reshape(len(a), -1).max(axis=1)


results["n_clips"] = len(z)
results["mag_ort_vs_pt_max_abs_over_max_value"] = float(np.abs(mag_ort - mag_pt.numpy()).max() / mx)
big = mag_pt.numpy() > 1e-3 * mx
results["mag_ort_vs_pt_max_rel_where_above_1e-3"] = float(
    (np.abs(mag_ort - mag_pt.numpy()) / mag_pt.numpy())[big].max()
)
results["mag_ts_vs_pt_max_abs_over_max_value"] = float(
    np.abs(mag_ts.numpy() - mag_pt.numpy()).max() / mx
)
for label_, a, b in [
    ("audio_ort_vs_pt", audio_ort, audio_pt.numpy()),
    ("audio_ts_vs_pt", audio_ts.numpy(), audio_pt.numpy()),
    ("audio_pt32_vs_pt64", audio_pt.numpy(), audio_64.numpy()),
    ("audio_ort_vs_pt64", audio_ort, audio_64.numpy()),
]:
    e = per_clip(a, b)
    results[label_] = {
        "max": float(e.max()),
        "median": float(np.median(e)),
        "p99": float(np.quantile(e, 0.99)),
    }

# 3. speed: time per clip, median over repetitions, interleaved
# the numpy Griffin-Lim of docs/export.md, its second Python block, as a reader would copy it
doc = Path(__file__).resolve().parents[1] / "docs" / "export.md"
ns = {}
exec(re.findall(r"```python\n(.*?)```", doc.read_text(), flags=re.S)[1], ns)
settings = json.loads((outdir / "sfx.onnx.json").read_text())


def timed(fn, n):
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) / n


ROUNDS = 5


def time_batch(batch: int, reps: int) -> dict:
    """ms per clip of each path at one batch size, the median over ROUNDS rounds."""
    zb, lb = z[:batch], lab[:batch]
    zn, ln = zb.numpy(), lb.numpy()

    def pt_full():
        with torch.inference_mode():
            sampler.to_audio(sampler.log_spec(zb, lb))

    def pt_mag():
        with torch.inference_mode():
            from_log_spec(sampler.log_spec(zb, lb), mx)

    def ts_full():
        with torch.inference_mode():
            script(zb, lb)

    cases = {
        "ort_full": lambda: full.run(None, {"z": zn, "label": ln}),
        "ort_full_fetch_magnitude": lambda: full.run(["magnitude"], {"z": zn, "label": ln}),
        "ort_magnitude_only_model": lambda: magonly.run(None, {"z": zn, "label": ln}),
        "pytorch_sampler_full": pt_full,
        "pytorch_sampler_magnitude": pt_mag,
        "torchscript_full": ts_full,
    }
    # block-wise, not interleaved: onnxruntime's and OpenMP's threads spin for a while after
    # a call and would slow whichever library runs next; one untimed call opens each block
    times = {k: [] for k in cases}
    for _ in range(ROUNDS):
        for k, fn in cases.items():
            fn()
            times[k].append(statistics.median(timed(fn, batch) for _ in range(reps)))
    return {k: round(1000 * statistics.median(v), 2) for k, v in times.items()}


for batch, reps in [(1, 7), (16, 3)]:
    results[f"ms_per_clip_batch{batch}"] = time_batch(batch, reps)
mag1 = mag_ort[0]
results["numpy_griffin_lim_ms_per_clip"] = round(
    1000
    * statistics.median([timed(lambda: ns["griffin_lim"](mag1, settings), 1) for _ in range(15)]),
    1,
)
results["load_after"] = os.getloadavg()
print(json.dumps(results, indent=1))
(outdir / "bench.json").write_text(json.dumps(results, indent=1))
for fmt, name in [("onnx", "cli.onnx"), ("torchscript", "cli.pt")]:
    walls = []
    for _ in range(3):
        w0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "sfxgan",
                "export",
                str(run),
                "--format",
                fmt,
                "--out",
                str(outdir / name),
            ],
            check=True,
            capture_output=True,
        )
        walls.append(time.perf_counter() - w0)
    results[f"cli_export_{fmt}_wall_s"] = statistics.median(walls)
results["load_end"] = os.getloadavg()
print(json.dumps({k: v for k, v in results.items() if k.startswith("cli") or k == "load_end"}))
(outdir / "bench.json").write_text(json.dumps(results, indent=1))
