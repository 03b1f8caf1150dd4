"""`sfxgan bench --quick`: the tables and the JSON a user gets (figures are machine-dependent,
so the checks are on structure and on relations that hold on any machine)."""

from __future__ import annotations

import json

import pytest
import torch

from sfxgan.apps.bench import REFERENCES, TrainCase, reference_for, training_flops
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
    # reference figures carry the machine they were measured on: this machine's kind where the
    # bench has figures from one, else the Zen 3's (the quick bench prints no ratios)
    reference = data["reference"]
    assert reference == reference_for(data["machine"])
    assert reference["machine"].startswith("2-core ")
    assert (
        reference_for({"cpu": "AMD EPYC 7B13", "avx512f": False, "amx_bf16": False})
        is (REFERENCES[0])
    )


def test_training_flops_match_the_networks_forward_counts():
    """The step's count (n_critic 1, the penalty on every update) follows from the networks'
    forward counts F_G and F_D, counted here with torch's own FlopCounterMode; a backward that
    gives weight and input gradients costs 2 forwards:

    - critic update: G forward without gradients (F_G); D on real and fake, forward and
      backward (3 x 2 F_D);
    - gradient penalty: D forward on the interpolates (F_D), their input gradient (F_D), the
      backward through that gradient's graph, to the weights and to the incoming gradient
      (2 F_D), and through the interpolates' forward pass (2 F_D: the leaky ReLU's derivative is
      piecewise constant, so autograd sends zeros through it, at full cost);
    - generator update: G forward and backward (3 F_G); D forward and input gradients only (2 F_D:
      the critic's weights are frozen there).

    So 4 F_G + 14 F_D per sample, less the input gradients of D's first layer (1 of its 33
    parts) for real and fake, which nothing needs (-0.4 %). Seen: 2.720 GFLOP against 2.731
    derived (F_G 0.137, F_D 0.156); 2 % holds the first layer and catches the penalty's double
    backward left out (-11 %) or a second critic update (+74 %)."""
    from torch.utils.flop_counter import FlopCounterMode

    from sfxgan.config import get_preset
    from sfxgan.model.networks import Critic, Generator

    preset = get_preset("tiny")
    n_classes = 5  # the synthetic trainer's
    generator, critic = Generator(preset.model, n_classes), Critic(preset.model, n_classes, True)
    z, labels = torch.randn(2, preset.model.latent_dim), torch.tensor([0, 1])

    def forward_flops(call) -> float:  # per sample, batch 2 as training_flops counts
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            call()
        return counter.get_total_flops() / 2

    f_g = forward_flops(lambda: generator(z, labels))
    spec = generator(z, labels).detach()
    f_d = forward_flops(lambda: critic(spec, labels, with_logits=True))  # the AC-GAN head too
    assert f_g == pytest.approx(0.137e9, rel=0.01) and f_d == pytest.approx(0.156e9, rel=0.01)

    per_sample = training_flops(TrainCase("tiny", 2, True))
    assert per_sample == pytest.approx(4 * f_g + 14 * f_d, rel=0.02)


def test_ratios_divide_by_the_reference_of_this_machines_kind_and_say_when_there_is_none():
    from sfxgan.apps.bench import format_tables, ratios

    generation = [
        {"preset": "paper-16k", "precision": "bf16", "phase": phase, "iters": iters,
         "clips_per_s": clips, "generator_clips_per_s": 100.0, "phase_share": 0.3}
        for phase, iters, clips in (("griffin-lim", 50, 40.0), ("fast-griffin-lim", 16, 70.0))
    ]  # fmt: skip
    training = [
        {"case": "paper-16k b4 recon", "preset": "paper-16k", "batch": 4, "recon": True,
         "precision": "bf16", "step_s": 1.0, "samples_per_s": 4.0, "flops_per_sample": None,
         "gflops_per_s": None, "peak_rss_mib": 1000.0}
    ]  # fmt: skip
    xeon = {"cpu": "Intel(R) Xeon(R) Platinum", "avx512f": True, "amx_bf16": True,
            "avx512_bf16": True, "cores": 2, "thread_choice": "2", "torch": "2.13.0"}  # fmt: skip
    zen5 = {**xeon, "cpu": "AMD EPYC 9B14", "amx_bf16": False}
    for machine, divisor in ((xeon, REFERENCES[1]), (zen5, REFERENCES[0])):
        result = {
            "machine": machine,
            "reference": reference_for(machine),
            "matmul_gflops": {"fp32": 400.0, "bf16": 2000.0},
            "training": training,
            "generation": generation,
            "griffin_lim": [{"method": "griffin-lim", "iters": 50, "ms_per_clip": 20.0}],
            "seconds": 1.0,
        }
        result["ratios"] = ratios(result)
        assert result["ratios"]["train_paper16k_b4_s_per_step (bf16)"] == pytest.approx(
            divisor["train_paper16k_b4_s_per_step"]
        )
        key = "generate_paper16k_clips_per_s (bf16, fast-griffin-lim 16)"
        assert result["ratios"][key] == pytest.approx(
            70.0 / divisor["generate_paper16k_clips_per_s"]
        )
        table = format_tables(result)
        assert f"timed on: {divisor['machine']}" in table
        assert ("the ratios compare two machines" in table) == (machine is zen5)
