"""sfxgan.apps.reconstruct, which `sfxgan reconstruct` calls: what it writes and returns."""

from __future__ import annotations

import json

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
