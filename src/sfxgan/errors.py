"""User-facing errors.

Anything a user can cause (a missing folder, an unreadable file, a wrong option) raises an
`SfxganError` whose message names the thing and the fix. The CLI prints it as one line and exits
with code 2; everything else is a bug and keeps its traceback.
"""


class SfxganError(Exception):
    """An error caused by the user's input, reported as one line with exit code 2."""


class DataError(SfxganError):
    """The dataset cannot be used as given (missing folder, no usable clips, bad manifest)."""


class AudioError(SfxganError):
    """One audio file cannot be used; the scanner turns this into a 'skipped' entry."""


class ConfigError(SfxganError):
    """An unknown preset or an invalid setting."""


def first_line(exc: BaseException, limit: int = 100) -> str:
    """An exception's message as one short line for a user error; its type's name when the
    message is empty (an EOFError from a truncated file has none)."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
