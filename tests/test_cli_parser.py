"""The `sfxgan` command's options as a user reads them in --help and meets them as defaults:
every command answers --help, and the defaults it shows and uses are the config tables'."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from sfxgan.cli import build_parser, main
from sfxgan.config import (
    CROP_MODES,
    DEFAULT_PHASE,
    DEFAULT_PHASE_ITERS,
    DEFAULT_PRESET,
    MODEL_OPTIONS,
    PHASE_METHODS,
    PRESETS,
    TrainConfig,
)


def _command_lines(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list:
    """Every command and subcommand the parser knows, as the words a user types."""
    lines = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                lines += _command_lines(sub, (*prefix, name))
    return lines


COMMAND_LINES = _command_lines(build_parser())


def _subparser(*words: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for word in words:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[word]
    return parser


def _help(capsys, *words: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*words, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_the_command_tree_is_the_documented_one():
    assert {" ".join(line) for line in COMMAND_LINES} >= {
        "demo-data",
        "reconstruct",
        "train",
        "generate",
        "export",
        "studio",
        "classifier train",
        "evaluate",
        "experiment compare",
        "experiment curves",
        "bench",
    }


@pytest.mark.parametrize("words", COMMAND_LINES, ids=lambda w: " ".join(w) or "sfxgan")
def test_every_command_answers_help(capsys, words):
    text = _help(capsys, *words)
    assert text.startswith(f"usage: {' '.join(('sfxgan', *words))}")


@pytest.mark.parametrize(
    "words, shown",
    [
        ((), ["--threads", "--version", "demo-data", "experiment", "bench"]),
        (("reconstruct",), ["(default: start)", f"(default: {DEFAULT_PRESET})"]),
        (("train",), [f"(default: {DEFAULT_PRESET})", "--recon-weight", "--no-cache"]),
        (("generate",), [f"(default: {DEFAULT_PHASE})", f"(default: {DEFAULT_PHASE_ITERS})"]),
        (("generate",), ["--no-ema", "--device", "(default: 10; 100 with --dcase)"]),
        (("export",), ["--no-ema", "{onnx,torchscript}"]),
        (("studio",), ["--no-ema", "--device", "--host"]),
        (("classifier", "train"), ["(default: 1.024)", "--crop"]),
        (("evaluate",), ["--no-ema", "(default: the run's, else start)"]),
        (("experiment", "compare"), [f"(default: {DEFAULT_PRESET})", "--weights"]),
    ],
)
def test_help_shows_each_commands_options_and_defaults(capsys, words, shown):
    # argparse wraps lines at the terminal width, also after a hyphen
    text = "".join(_help(capsys, *words).split())
    for fragment in shown:
        assert "".join(fragment.split()) in text


def _option_help(text: str, option: str) -> str:
    """One option's entry in --help's options, on one line (argparse wraps it)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith(f"{option} "))
    entry = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.strip() or line.lstrip().startswith("-"):
            break
        entry.append(line)
    return " ".join(" ".join(entry).split())


def _defaults(*line: str) -> argparse.Namespace:
    return build_parser().parse_args(line)


@pytest.mark.parametrize(
    "line", [("reconstruct", "d", "--out", "o"), ("generate", "r", "--out", "o")]
)
def test_phase_options_default_to_the_config_table(line):
    args = _defaults(*line)
    assert (args.phase, args.iters) == (DEFAULT_PHASE, DEFAULT_PHASE_ITERS)
    choices = {a.dest: a.choices for a in _subparser(*line[:1])._actions}
    assert tuple(choices["phase"]) == PHASE_METHODS


@pytest.mark.parametrize(
    "line", [("reconstruct", "d", "--out", "o"), ("experiment", "compare", "d", "--out", "o")]
)
def test_preset_defaults_to_the_config_table(line):
    assert _defaults(*line).preset == DEFAULT_PRESET


def test_train_leaves_every_setting_to_the_preset_unless_given():
    args = _defaults("train", "d", "--out", "o")
    assert args.preset is None  # the --config file's or DEFAULT_PRESET, decided by the handler
    names = [f.name for f in dataclasses.fields(TrainConfig)] + list(MODEL_OPTIONS)
    assert all(getattr(args, name) is None for name in names)


def test_long_clips_keep_their_start_unless_asked_as_in_the_paper(capsys):
    """Without --crop, every command keeps the first clip-length of a long file, as the paper
    (and its reference code) did, and --help says so; the choices are the config's."""
    assert _defaults("reconstruct", "d", "--out", "o").crop == "start"
    assert _defaults("classifier", "train", "d", "--out", "j.pt").crop == "start"
    # train takes it from the preset (or --config), and every shipped preset keeps the start
    assert _defaults("train", "d", "--out", "o").crop is None
    assert {name: preset.train.crop for name, preset in PRESETS.items()} == dict.fromkeys(
        PRESETS, "start"
    )
    # evaluate takes the run's, else the start
    assert _defaults("evaluate", "--real", "r", "--generated", "g", "--out", "o").crop is None
    for words, default in [
        (("reconstruct",), "start"),
        (("train",), "the preset's"),
        (("evaluate",), "the run's, else start"),
    ]:
        shown = _option_help(_help(capsys, *words), "--crop")
        assert shown.startswith("--crop {start,loudest} "), shown
        assert shown.endswith(f"(default: {default})"), shown
    for words in [("reconstruct",), ("train",), ("classifier", "train"), ("evaluate",)]:
        crop = next(a for a in _subparser(*words)._actions if a.dest == "crop")
        assert tuple(crop.choices) == CROP_MODES


def test_preset_choices_are_the_presets():
    preset = next(a for a in _subparser("train")._actions if a.dest == "preset")
    assert list(preset.choices) == sorted(PRESETS)


def test_literals_kept_out_of_start_up_match_their_owners():
    """The CLI does not import the judge to build its parser (start-up time); the defaults it
    repeats from JudgeConfig must agree, and the ones in config's tables are shown."""
    from sfxgan.config import DCASE_CLIPS_PER_CLASS, EXPORT_FORMATS
    from sfxgan.evaluate.judge import JudgeConfig

    export_format = next(a for a in _subparser("export")._actions if a.dest == "format")
    assert tuple(export_format.choices) == EXPORT_FORMATS
    generate_help = next(a for a in _subparser("generate")._actions if a.dest == "per_class").help
    assert f"{DCASE_CLIPS_PER_CLASS} with --dcase" in generate_help
    args = _defaults("classifier", "train", "d", "--out", "j.pt")
    judge = JudgeConfig()
    assert args.sample_rate == judge.sample_rate
    assert args.seconds == judge.clip_samples / judge.sample_rate


@pytest.mark.parametrize(
    "line, words",
    [
        (["demo-data", "d", "--per-class", "0"], ["--per-class", "must be at least 1"]),
        (["--threads", "two", "bench"], ["--threads", "must be auto or a number"]),
        (["generate", "r", "--out", "o", "--phase", "magic"], ["--phase", "magic"]),
    ],
)
def test_a_wrong_value_is_a_one_line_usage_error(capsys, line, words):
    with pytest.raises(SystemExit) as exit_info:
        main(line)
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("sfxgan") and "error:" in last
    for word in words:
        assert word in last
