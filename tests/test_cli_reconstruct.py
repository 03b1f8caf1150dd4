"""sfxgan.apps.reconstruct, which `sfxgan reconstruct` calls: what it writes and returns."""

from __future__ import annotations

import json

import pytest

from sfxgan.apps.demo import DEMO_CLASSES
from sfxgan.apps.reconstruct import reconstruct_dataset


def test_reconstruct_dataset_returns_what_it_writes_in_summary_json(demo_dir, tmp_path):
    out = tmp_path / "rec"
    summary = reconstruct_dataset(demo_dir, out, per_class=1, n_iter=2)
    written = json.loads((out / "summary.json").read_text())
    assert written == {k: v for k, v in summary.items() if k != "clips"}
    assert (summary["preset"], summary["phase"], summary["iterations"]) == (
        "tiny",
        "fast-griffin-lim",
        2,
    )
    assert summary["clips"] == dict.fromkeys(DEMO_CLASSES, 1)
    for name in DEMO_CLASSES:
        assert len(list((out / name).glob("*_original.wav"))) == 1
        assert len(list((out / name).glob("*_reconstructed.wav"))) == 1


def test_reconstruct_measures_the_attack_and_the_floor_of_each_framing(demo_dir, tmp_path):
    """The preset's framing (a lead-in, the silent floor) and the reference's (--lead-in 0
    --log-floor constant) on the same clips: each summary says which it used; the demo's sounds
    have noise beds, no digital silence, so both keep every class's floor within 3 dB (what
    they do to attacks and silence is measured on real hits in docs/phase.md)."""
    preset = reconstruct_dataset(demo_dir, tmp_path / "a", per_class=2, n_iter=8)
    reference = reconstruct_dataset(
        demo_dir, tmp_path / "b", per_class=2, n_iter=8, lead_in=0, log_floor="constant"
    )
    assert (preset["lead_in"], preset["log_floor"]) == (190, "silence")
    assert (reference["lead_in"], reference["log_floor"]) == (0, "constant")
    for summary in (preset, reference):
        for key in ("attack_error", "rest_error"):  # 2 clips per class: the mean of the means
            mean = sum(summary[key].values()) / len(DEMO_CLASSES)
            assert summary[f"mean_{key}"] == pytest.approx(mean) and mean > 0
        for name in DEMO_CLASSES:
            gap = summary["floor_db"][name] - summary["floor_db_original"][name]
            assert abs(gap) < 3, (name, gap)
            assert summary["silence_floor_db"][name]["clips"] == 0
