"""One-line error messages end where a sentence ends, never in the middle of a word."""

from __future__ import annotations

import pytest

from sfxgan.errors import first_line
from tests.helpers import assert_one_line_error, sfxgan

# the messages users met, cut off at a character count ("argumen)", "port b)")
TORCH = (
    "Weights only load failed. In PyTorch 2.6, we changed the default value of the `weights_only` "
    "argument in `torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` "
    "set to `False` will likely succeed, but it can result in arbitrary code execution."
)
GRADIO = (
    "Cannot find empty port in range: 7860-7860. You can specify a different port by setting the "
    "GRADIO_SERVER_PORT environment variable or passing the `server_port` parameter to `launch()`."
)


@pytest.mark.parametrize(
    ("message", "limit", "expected"),
    [
        (TORCH, 100, "Weights only load failed"),
        (GRADIO, 80, "Cannot find empty port in range: 7860-7860"),
        (TORCH, 400, TORCH),  # it fits: all of it
        ("a short message\nand a traceback line", 100, "a short message"),
        # no sentence end in reach: the clauses that fit, else whole words and a mark
        ("one clause, " + "x" * 200, 100, "one clause"),
        ("word " * 40, 22, "word word word word ..."),
    ],
)
def test_a_long_message_is_cut_at_a_sentence(message, limit, expected):
    assert first_line(RuntimeError(message), limit) == expected


def test_an_empty_message_names_the_exception():
    assert first_line(EOFError()) == "EOFError"


@pytest.mark.integration
def test_a_config_file_given_as_a_checkpoint_says_why_in_whole_words(tiny_run, tmp_path):
    result = sfxgan("generate", tiny_run / "config.json", "--out", tmp_path / "out")
    assert_one_line_error(result, "is not a readable sfxgan checkpoint")
    last = result.stderr.strip().splitlines()[-1]
    assert last.endswith("Weights only load failed)"), last
