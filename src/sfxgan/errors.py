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
    """An exception's message as one short line for a user error, ending where a sentence ends:
    the first line when it fits in `limit` characters, else its sentences that fit (at least
    the first clause), never a word cut in two; its type's name when the message is empty (an
    EOFError from a truncated file has none)."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    line = text.splitlines()[0].strip()
    if len(line) <= limit:
        return line
    for ends in ((". ", "? ", "! "), ("; ", ": ", ", ")):  # sentences, else clauses
        cut = max(line.rfind(end, 0, limit + 1) for end in ends)
        if cut > 0:
            return line[:cut]
    cut = line.rfind(" ", 0, limit)
    return (line[:cut] if cut > 0 else line[:limit]) + " ..."
