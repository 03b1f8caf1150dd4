"""`sfxgan bench --quick`: the tables and the JSON a user gets (figures are machine-dependent,
so the checks are on structure and on relations that hold on any machine)."""

from __future__ import annotations

import json

import pytest

from sfxgan.apps.bench import TrainCase, training_flops
from tests.helpers import sfxgan


@pytest.mark.slow
def test_quick_bench_prints_tables_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    result = sfxgan("bench", "--quick", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "matrix-product peak" in result.stdout
    assert "| tiny b4 recon |" in result.stdout
    data = json.loads(out.read_text())
    assert data["matmul_gflops"]["fp32"] > 1
    rows = {row["case"]: row for row in data["training"]}
    assert set(rows) == {"tiny b4 recon", "tiny b4 no recon"}
    for row in rows.values():
        assert "error" not in row, row
        assert row["samples_per_s"] == pytest.approx(4 / row["step_s"])
        assert row["peak_rss_mib"] > 50  # a process that held torch and two networks
        assert 0 < row["gflops_per_s"] < 10 * data["matmul_gflops"]["fp32"]
    by_iters = {(r["method"], r["iters"]): r["ms_per_clip"] for r in data["griffin_lim"]}
    assert by_iters[("griffin-lim", 16)] > by_iters[("griffin-lim", 8)]
    assert {r["phase"] for r in data["generation"]} == {"griffin-lim", "fast-griffin-lim"}
    (read,) = data["data_path"]
    assert read["preset"] == "tiny" and read["batch"] == 16
    assert read["mib_per_batch"] == pytest.approx(16 * (128 * 128 * 2 + 8192 * 4) / 2**20)
    assert 0 < read["ms_inline"] < 1000 and 0 < read["ms_two_workers"] < 1000
    assert "| data path: a batch from the cache |" in result.stdout
    (request,) = data["studio"]
    assert request["preset"] == "tiny" and request["clips"] == 4
    assert request["ms_per_clip"] == pytest.approx(1000 * request["s_per_request"] / 4)
    assert "| studio: one request" in result.stdout
    # the shared-machine case: the same steps alone and beside a busy process, with the choice
    shared = data["contention"]
    for case in ("alone", "one_busy_core", "one_busy_core_torch_default"):
        assert shared[case]["s_per_step"] > 0 and shared[case]["thread_counts"], shared
    assert shared["slowdown_auto"] == pytest.approx(
        shared["one_busy_core"]["s_per_step"] / shared["alone"]["s_per_step"]
    )
    assert "| one busy process, --threads auto |" in result.stdout
    assert "thread_choice" in data["machine"]
    # reference figures carry the machine they were measured on
    assert data["reference"]["machine"].startswith("2-core AMD EPYC, Zen 3")


def test_training_flops_match_the_networks_forward_counts():
    """A step (n_critic 1) costs at least the forward passes it runs: G three times (critic
    step, generator step), D on real+fake, on interpolates and on fakes; tiny's forward costs
    are 0.137 (G) and 0.162 (D) GFLOP per sample (counted when the networks landed)."""
    per_sample = training_flops(TrainCase("tiny", 2, True))
    forward_only = 2 * 0.137e9 + 4 * 0.162e9
    assert forward_only < per_sample < 8 * forward_only
