"""Files sfxgan writes and reads: one atomic writer, one loader for tagged torch files.

Every file a user or a later command reads (checkpoints, config.json, metrics.csv, quality.csv,
WAVs, pictures, reports, exports) is written through `atomic_write`: under a temporary name in
the same folder, flushed and fsynced, then renamed over its target. A reader sees the old file or
the new one, never half of one, also after a crash or Ctrl-C mid-write; a write that fails leaves
the old file as it was and no temporary behind.

Every torch file sfxgan reads (checkpoints, the judge, VGGish weights) is opened through
`load_tagged`: `torch.load(weights_only=True)`, so opening one never runs foreign code, then the
format tag checked, each failure a one-line error in the words of the kind of file it is.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from sfxgan.errors import SfxganError, first_line

if TYPE_CHECKING:
    import torch


def safe_name(text: str) -> str:
    """`text` as a piece of a file name: letters, digits, '-' and '_' kept, anything else '-'."""
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def temporary_name(path: Path) -> Path:
    """A hidden name next to `path`, unique to this process and call: two writers of the same
    file never share a temporary, and the rename stays within one file system."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_write(
    path: str | Path, mode: str = "wb", durable: bool = True, **open_options: Any
) -> Iterator[IO]:
    """A file object on a new temporary file beside `path`; on leaving the block without an
    exception it is flushed, fsynced and renamed onto `path`, on any exception removed.

    `mode` is "wb" or "w" (text; `open_options` such as newline= or encoding= go to open()). The
    temporary is created with open(), not mkstemp, so it gets the permissions the user's umask
    gives any new file. The folder must exist: where to create it is the caller's decision.
    `durable=False` skips the fsync, for files that are cheap to make again (the demo data):
    still never half a file, but after a power cut possibly the old one."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write writes whole files: mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    tmp = temporary_name(path)
    fh = open(tmp, mode.replace("w", "x"), **open_options)  # noqa: SIM115 (closed below)
    try:
        with fh:
            yield fh
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:  # Ctrl-C too: no temporary is left behind
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes, durable: bool = True) -> Path:
    with atomic_write(path, durable=durable) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return Path(path)


def write_json_atomic(path: str | Path, value: Any) -> Path:
    """`value` as indented JSON with a final newline."""
    return write_text_atomic(path, json.dumps(value, indent=2) + "\n")


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    import torch  # here: what writes text and WAVs does not need torch

    with atomic_write(path) as fh:
        torch.save(obj, fh)
    return Path(path)


def copy_file_atomic(source: str | Path, path: str | Path) -> Path:
    with open(source, "rb") as src, atomic_write(path) as fh:
        shutil.copyfileobj(src, fh)
    return Path(path)


def save_figure(fig, path: str | Path, dpi: int) -> Path:
    """A matplotlib figure as a picture file, its format named by the file's suffix."""
    path = Path(path)
    with atomic_write(path) as fh:
        fig.savefig(fh, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    return path


@dataclass(frozen=True)
class TaggedKind:
    """One kind of torch file and the words its errors use. Templates take {path}; `unreadable`
    also {reason}; `newer` also {sfxgan_version}, the version that wrote the file."""

    tag: str | None  # the value of the file's "format" key; None: an untagged state dict
    missing: str
    unreadable: str
    foreign: str  # not a dict, or (with a tag) not tagged so
    version_key: str = ""  # the key of the file's format version, checked against `version`
    version: int = 0
    newer: str = ""
    error: type[SfxganError] = SfxganError
    reason_chars: int = 100  # how much of torch's own message the unreadable error quotes


def load_tagged(
    path: str | Path, kind: TaggedKind, map_location: str | torch.device = "cpu"
) -> dict:
    """A torch file of `kind` as a dict, loaded with weights_only=True. A missing file, one
    torch cannot read (damaged, truncated, not a torch file, or pickling foreign objects), one
    that is not a dict, without `kind.tag` or from a newer format version: a one-line
    `kind.error`."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise kind.error(kind.missing.format(path=path))
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # torch raises many types for a damaged or foreign file
        reason = first_line(exc, kind.reason_chars)
        raise kind.error(kind.unreadable.format(path=path, reason=reason)) from exc
    if not isinstance(state, dict) or (kind.tag is not None and state.get("format") != kind.tag):
        raise kind.error(kind.foreign.format(path=path))
    if kind.version_key and state.get(kind.version_key, 0) > kind.version:
        config = state.get("config")
        version = state.get("sfxgan_version") or (
            config.get("sfxgan_version", "?") if isinstance(config, dict) else "?"
        )
        raise kind.error(kind.newer.format(path=path, sfxgan_version=version))
    return state
