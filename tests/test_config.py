"""Presets and config files: TOML data files, checked with one-line errors naming file and key."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sfxgan
from sfxgan.config import (
    DEFAULT_PRESET,
    PRESET_FOLDER,
    PRESETS,
    SECTION_OF,
    SECTIONS,
    SETTING_CHOICES,
    FeatureConfig,
    ModelConfig,
    TrainConfig,
    get_preset,
    read_config_file,
    split_settings,
)
from sfxgan.errors import ConfigError
from sfxgan.training.trainer import train
from tests.helpers import assert_one_line_error
from tests.helpers import sfxgan as run_cli

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = sorted((ROOT / "experiments").glob("*.toml"))

# Every preset as the Python code defined it before the presets became files (commit 4b81855),
# every field written out: a changed default in config.py must not change a preset unnoticed.
# Changed on purpose since: every preset's framing and log floor (lead_in, log_floor: a lead-in
# of win - hop and a floor that inverts to silence, docs/phase.md); added since: patience and
# time_budget, off in every preset (docs/training.md); lecam_weight (0.01 in tiny and cpu-1s)
# and transition_start/end (off in every preset; docs/training.md, small data). Changed on
# purpose: tiny's stopping (400 steps -> a 4 000-step ceiling, patience 4, checks every 250, and
# previews and checkpoints every 500: it trains while it improves, docs/training.md).
# PAPER_TRAIN: the paper's training settings, which both paper presets use.
PAPER_TRAIN = {
    "steps": 100000,
    "batch_size": 4,
    "n_critic": 5,
    "lr_generator": 0.0001,
    "lr_critic": 0.0001,
    "lr_decay": 0.0,
    "beta1": 0.5,
    "beta2": 0.9,
    "gp_weight": 10.0,
    "gp_every": 1,
    "augment": "none",
    "augment_p": 0.5,
    "recon_weight": 0.01,
    "class_weight": 0.0,
    "gen_class_weight": 0.0,
    "lecam_weight": 0.0,
    "transition_start": 0,
    "transition_end": 0,
    "recon_every": 1,
    "recon_iters": 50,
    "recon_phase": "griffin-lim",
    "recon_normalize": "batch",
    "seed": 0,
    "log_every": 1,
    "preview_every": 2000,
    "eval_every": 2000,
    "patience": 0,
    "time_budget": 0.0,
    "checkpoint_every": 2000,
    "keep_checkpoints": 3,
    "standing_stats": 0,
    "crop": "start",
    "device": "auto",
    "precision": "auto",
    "ema_decay": 0.999,
    "workers": -1,
}
BEFORE_FILES = {
    "paper-16k": {
        "description": "the paper's 1.024 s model: 256 frames x 128 bins",
        "features": {
            "sample_rate": 16000,
            "clip_samples": 16384,
            "n_fft": 254,
            "hop_length": 64,
            "win_length": 254,
            "lead_in": 190,
            "log_floor": "silence",
        },
        "model": {
            "latent_dim": 100,
            "embed_dim": 50,
            "gen_start": (8, 4),
            "gen_start_channels": 512,
            "gen_channels": (512, 256, 128, 64),
            "critic_channels": (64, 128, 256, 512, 1024),
            "kernel": (12, 3),
            "bn_momentum": 0.01,
            "upsample": "transpose",
            "gen_conditioning": "concat",
            "critic_conditioning": "concat",
        },
        "train": PAPER_TRAIN,
    },
    "paper-64k": {
        "description": "the paper's 4.1 s model: 512 frames x 256 bins",
        "features": {
            "sample_rate": 16000,
            "clip_samples": 65536,
            "n_fft": 510,
            "hop_length": 128,
            "win_length": 256,
            "lead_in": 128,
            "log_floor": "silence",
        },
        "model": {
            "latent_dim": 100,
            "embed_dim": 50,
            "gen_start": (8, 4),
            "gen_start_channels": 2048,
            "gen_channels": (1024, 512, 256, 128, 64),
            "critic_channels": (128, 256, 512, 1024, 2048, 4096),
            "kernel": (12, 3),
            "bn_momentum": 0.01,
            "upsample": "transpose",
            "gen_conditioning": "concat",
            "critic_conditioning": "concat",
        },
        "train": PAPER_TRAIN,
    },
    "tiny": {
        "description": "CPU demo size: 0.512 s, 128 frames x 128 bins, the paper-16k STFT",
        "features": {
            "sample_rate": 16000,
            "clip_samples": 8192,
            "n_fft": 254,
            "hop_length": 64,
            "win_length": 254,
            "lead_in": 190,
            "log_floor": "silence",
        },
        "model": {
            "latent_dim": 100,
            "embed_dim": 50,
            "gen_start": (4, 4),
            "gen_start_channels": 128,
            "gen_channels": (128, 64, 32, 16),
            "critic_channels": (16, 32, 64, 128, 256),
            "kernel": (12, 3),
            "bn_momentum": 0.1,
            "upsample": "transpose",
            "gen_conditioning": "cbn",
            "critic_conditioning": "projection",
        },
        "train": {
            "steps": 4000,
            "batch_size": 8,
            "n_critic": 1,
            "lr_generator": 0.001,
            "lr_critic": 0.001,
            "lr_decay": 0.5,
            "beta1": 0.0,
            "beta2": 0.9,
            "gp_weight": 10.0,
            "gp_every": 1,
            "augment": "none",
            "augment_p": 0.5,
            "recon_weight": 0.0,
            "class_weight": 1.0,
            "gen_class_weight": 1.0,
            "lecam_weight": 0.01,
            "transition_start": 0,
            "transition_end": 0,
            "recon_every": 1,
            "recon_iters": 16,
            "recon_phase": "fast-griffin-lim",
            "recon_normalize": "batch",
            "seed": 0,
            "log_every": 1,
            "preview_every": 500,
            "eval_every": 250,
            "patience": 4,
            "time_budget": 0.0,
            "checkpoint_every": 500,
            "keep_checkpoints": 3,
            "standing_stats": 16,
            "crop": "start",
            "device": "auto",
            "precision": "auto",
            "ema_decay": 0.999,
            "workers": -1,
        },
    },
}

# added since: cpu-1s, tiny's networks, recipe and stopping at paper-16k's clip
BEFORE_FILES["cpu-1s"] = {
    "description": "CPU 1-second model: 1.024 s, 256 frames x 128 bins, the paper-16k STFT",
    "features": {**BEFORE_FILES["tiny"]["features"], "clip_samples": 16384},
    "model": {**BEFORE_FILES["tiny"]["model"], "gen_start": (8, 4)},
    "train": BEFORE_FILES["tiny"]["train"],
}


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_preset_file_gives_the_values_the_python_presets_had():
    assert sorted(PRESETS) == sorted(BEFORE_FILES)
    for name, expected in BEFORE_FILES.items():
        preset = get_preset(name)
        assert preset.name == name and preset.description == expected["description"]
        for section in SECTIONS:
            got = getattr(preset, section).to_dict()
            assert got == expected[section], f"{name} [{section}]"
            # of the same types too: 0.0 stays a float, shapes stay tuples
            assert {k: type(v) for k, v in got.items()} == {
                k: type(v) for k, v in expected[section].items()
            }


def test_the_presets_are_package_data_and_found_from_the_package():
    folder = Path(sfxgan.__file__).parent / "presets"
    assert Path(str(PRESET_FOLDER)) == folder
    assert sorted(p.stem for p in folder.glob("*.toml")) == sorted(PRESETS)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["sfxgan"]
    assert all(any(p.relative_to(folder.parent).match(g) for g in globs) for p in folder.iterdir())


@pytest.mark.slow
def test_an_installed_copy_finds_its_presets(tmp_path):
    """Built and installed as a user would (no editable link to src/), outside the repository;
    built from a copy, so that the build leaves nothing in the working tree."""
    source, target = tmp_path / "source", tmp_path / "site"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    code = "import sfxgan, sfxgan.config as c; print(sfxgan.__file__, sorted(c.PRESETS))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(target), "PATH": ""},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith(str(target)) and str(sorted(PRESETS)) in out


def test_setting_names_are_unique_across_sections():
    names = [f.name for cls in SECTIONS.values() for f in dataclasses.fields(cls)]
    assert len(names) == len(set(names))


def test_each_table_is_what_the_settings_accept():
    made = {"features": FeatureConfig(), "model": ModelConfig(), "train": TrainConfig()}
    for key, allowed in SETTING_CHOICES.items():
        config = made[SECTION_OF[key]]
        for value in allowed:
            dataclasses.replace(config, **{key: value})
        with pytest.raises(ConfigError, match=key):
            dataclasses.replace(config, **{key: "no-such-value"})


def test_a_config_file_names_a_base_and_the_changes(tmp_path):
    write(
        tmp_path / "short.toml",
        'base = "tiny"\n[features]\nclip_samples = 4096\n[model]\ngen_start = [2, 4]\n'
        "[train]\nrecon_weight = 1e-2\nsteps = 1e3\n",
    )
    # a base may be another file, relative to the one naming it; the later file wins
    child = write(
        tmp_path / "sub" / "child.toml",
        'base = "../short.toml"\ndescription = "x"\n[model]\nupsample = "nearest"\n'
        "[train]\nsteps = 50\n",
    )
    preset, settings = read_config_file(child)
    assert preset == "tiny"
    assert settings == {
        "clip_samples": 4096,
        "gen_start": (2, 4),
        "recon_weight": 1e-2,
        "steps": 50,
        "upsample": "nearest",
    }
    resolved = get_preset(preset).with_settings(settings)
    assert resolved.features.n_frames == 64 and resolved.model.spectrogram_shape() == (64, 128)
    assert resolved.model.gen_conditioning == "cbn"  # tiny's, unchanged
    assert resolved.train.lr_generator == 1e-3 and resolved.train.steps == 50
    # without a base the file's changes go on the --preset's (default tiny), as a JSON file's
    assert read_config_file(write(tmp_path / "nobase.toml", "[train]\nseed = 3\n")) == (
        None,
        {"seed": 3},
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ('base = "tiny"\n[train]\nn_critics = 2\n', "unknown key n_critics in [train]; known: st"),
        ('base = "tiny"\nsteps = 3\n', "unknown key steps; known: base, description, features"),
        ('base = "tiny"\n[train]\nn_critic = "2"\n', "[train] n_critic must be an integer, got"),
        ('base = "tiny"\n[train]\nn_critic = 2.5\n', "[train] n_critic must be an integer"),
        ('base = "tiny"\n[train]\nrecon_weight = true\n', "recon_weight must be a number"),
        ('base = "tiny"\n[model]\nkernel = [3]\n', "[model] kernel must be a list of 2 integers"),
        ('base = "tiny"\n[model]\nupsample = "bilinear"\n', "upsample must be one of transpose,"),
        ('base = "tiny"\n[train]\ncrop = "end"\n', "[train] crop must be one of start, loudest"),
        ('base = "tiny"\n[train]\nsteps = 0\n', "steps must be at least 1"),
        ('base = "tiny"\n[features]\nclip_samples = 16384\n', "the model makes 128 x 128 spec"),
        ('base = "tiny"\n[features]\nwin_length = 300\n', "win_length 300 exceeds n_fft 254"),
        (
            'base = "small"\n',
            "base 'small' is neither a preset (cpu-1s, paper-16k, paper-64k, tiny)",
        ),
        ('base = "bad.toml"\n', "bad.toml': its chain of bases comes back to itself"),
        ('base = "tiny"\n[train\n', "is not valid TOML: "),
        ("base = 3\n", "base must be a string"),
        ('base = "tiny"\ntrain = 3\n', "train must be a table"),
    ],
)
def test_config_file_errors_are_one_line_and_name_the_file_and_key(tmp_path, text, message):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        read_config_file(path)
    assert str(path) in str(caught.value) and message in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="cannot read config file .*gone.toml"):
        read_config_file(write(tmp_path / "b.toml", 'base = "gone.toml"\n'))


def test_json_config_files_read_as_before(tmp_path):
    flat = write(tmp_path / "flat.json", json.dumps({"preset": "paper-16k", "n_critic": 3}))
    assert read_config_file(flat) == ("paper-16k", {"n_critic": 3})
    spec = {
        "preset": "tiny",
        "features": get_preset("tiny").features.to_dict(),
        "model": {**get_preset("tiny").model.to_dict(), "upsample": "nearest"},
        "train": {"steps": 5},
    }
    preset, settings = read_config_file(write(tmp_path / "config.json", json.dumps(spec)))
    assert preset == "tiny"
    assert settings == {"upsample": "nearest", "gen_conditioning": "cbn"} | {
        "critic_conditioning": "projection",
        "steps": 5,
    }
    # a run whose shapes differ from its preset's: a new run from its config.json gets them
    spec["features"]["clip_samples"], spec["model"]["gen_start"] = 4096, [2, 4]
    _, settings = read_config_file(write(tmp_path / "config.json", json.dumps(spec)))
    assert settings["clip_samples"] == 4096 and settings["gen_start"] == [2, 4]
    assert "n_fft" not in settings
    assert split_settings(settings)[1]["gen_start"] == (2, 4)


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.name)
def test_every_shipped_experiment_file_loads_on_its_base(path):
    preset, settings = read_config_file(path)
    assert preset in PRESETS and settings
    resolved = get_preset(preset).with_settings(settings)
    assert resolved != get_preset(preset)  # it changes something
    assert tomllib.loads(path.read_text())["description"]


def test_the_shipped_experiments_say_what_the_docs_say():
    assert {p.name for p in EXPERIMENTS} >= {"tiny-paper-loss.toml", "paper-16k-baseline.toml"}
    preset, settings = read_config_file(ROOT / "experiments" / "tiny-search-both.toml")
    both = get_preset(preset).with_settings(settings)
    assert both.model.gen_conditioning == "cbn" and both.train.recon_weight == 1e-2
    assert both.train.steps == 600 and both.train.class_weight == 0
    docs = (ROOT / "docs" / "config.md").read_text()
    assert all(p.name in docs for p in EXPERIMENTS)


def test_train_from_a_config_file_records_the_resolved_shapes_and_resume_keeps_them(
    demo_dir, tmp_path
):
    config = write(
        tmp_path / "short.toml",
        'base = "tiny"\n[features]\nclip_samples = 4096\n[model]\ngen_start = [2, 4]\n'
        "[train]\nsteps = 1\nbatch_size = 4\nrecon_iters = 3\nrecon_weight = 1e-2\n",
    )
    run = tmp_path / "run"
    result = run_cli("train", demo_dir, "--out", run, "--config", config, "--quiet")
    assert result.returncode == 0, result.stderr
    recorded = json.loads((run / "config.json").read_text())
    assert recorded["preset"] == "tiny"
    tiny = get_preset("tiny").features
    assert recorded["features"] == dataclasses.asdict(
        dataclasses.replace(tiny, clip_samples=8192 // 2)
    )
    assert recorded["model"]["gen_start"] == [2, 4] and recorded["model"]["bn_momentum"] == 0.1
    assert recorded["train"]["recon_weight"] == 1e-2 and recorded["train"]["lr_decay"] == 0.5
    # a resume may go further, but the run's shapes and data stay its own
    longer = write(tmp_path / "long.toml", 'base = "short.toml"\n[features]\nsample_rate = 8000\n')
    assert_one_line_error(
        run_cli("train", demo_dir, "--out", run, "--resume", "--config", longer),
        "cannot change sample_rate when resuming (the run used sample_rate=16000, not 8000)",
    )
    with pytest.raises(ConfigError, match="cannot change gen_start when resuming"):
        train(demo_dir, run, settings={"gen_start": [4, 4]}, resume=True, progress=False)
    resumed = train(demo_dir, run, settings={"steps": 2, "gen_start": [2, 4]}, resume=True)
    assert resumed.step == 2


def test_the_default_preset_is_a_shipped_one():
    assert DEFAULT_PRESET in PRESETS
