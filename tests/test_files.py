"""The one atomic writer and the one loader of tagged torch files (sfxgan.files)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from sfxgan.data.batches import EpochSampler  # noqa: E402
from sfxgan.errors import SfxganError  # noqa: E402
from sfxgan.files import (  # noqa: E402
    TaggedKind,
    atomic_write,
    copy_file_atomic,
    load_tagged,
    save_figure,
    save_torch_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_write_replaces_the_file_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old\n")
    with atomic_write(path, "w", newline="") as fh:
        fh.write("new\r\n")
        assert path.read_text() == "old\n"  # nothing visible before the block ends
    assert path.read_bytes() == b"new\r\n"
    assert _leftovers(tmp_path) == []


def test_a_write_without_fsync_is_still_whole_and_leaves_no_temporary(tmp_path, monkeypatch):
    synced = []
    monkeypatch.setattr("sfxgan.files.os.fsync", synced.append)
    path = write_bytes_atomic(tmp_path / "clip.wav", b"RIFF", durable=False)
    assert path.read_bytes() == b"RIFF" and _leftovers(tmp_path) == [] and synced == []
    write_bytes_atomic(path, b"RIFF2")
    assert path.read_bytes() == b"RIFF2" and len(synced) == 1


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_write_that_raises_leaves_the_old_file_and_no_temporary(tmp_path, error):
    path = tmp_path / "config.json"
    path.write_text('{"old": true}\n')
    with pytest.raises(error), atomic_write(path, "w") as fh:
        fh.write('{"new": ')
        raise error("stopped mid-write")
    assert json.loads(path.read_text()) == {"old": True}
    assert _leftovers(tmp_path) == []


def test_a_write_into_a_missing_folder_fails_before_anything_is_written(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_write(tmp_path / "nowhere" / "x.bin"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_only_whole_file_modes_are_accepted(tmp_path):
    with pytest.raises(ValueError, match="whole files"), atomic_write(tmp_path / "x", "a"):
        pass


def test_the_thin_writers_write_what_they_are_given(tmp_path):
    assert write_text_atomic(tmp_path / "a.md", "# é\n").read_text(encoding="utf-8") == "# é\n"
    written = write_json_atomic(tmp_path / "a.json", {"k": [1, 2]})
    assert written.read_text().endswith("\n") and json.loads(written.read_text()) == {"k": [1, 2]}
    save_torch_atomic({"w": torch.ones(2)}, tmp_path / "a.pt")
    assert torch.equal(torch.load(tmp_path / "a.pt", weights_only=True)["w"], torch.ones(2))
    copy = copy_file_atomic(tmp_path / "a.pt", tmp_path / "b.pt")
    assert copy.read_bytes() == (tmp_path / "a.pt").read_bytes()
    fig = plt.figure(figsize=(1, 1))
    save_figure(fig, tmp_path / "a.png", dpi=20)
    plt.close(fig)
    assert (tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert _leftovers(tmp_path) == []


class WidgetError(SfxganError):
    pass


WIDGET = TaggedKind(
    tag="widget",
    missing="widget '{path}' does not exist",
    unreadable="'{path}' is not a readable widget ({reason})",
    foreign="'{path}' is not a widget",
    version_key="widget_version",
    version=2,
    newer="'{path}' was written by a newer sfxgan ({sfxgan_version}); upgrade",
    error=WidgetError,
)


def _one_line_error(path: Path, kind: TaggedKind = WIDGET) -> str:
    with pytest.raises(kind.error) as caught:
        load_tagged(path, kind)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    return message


def test_the_tagged_loader_reads_its_own_files(tmp_path):
    path = save_torch_atomic(
        {"format": "widget", "widget_version": 2, "w": torch.ones(3)}, tmp_path / "w.pt"
    )
    assert torch.equal(load_tagged(path, WIDGET)["w"], torch.ones(3))


def test_the_tagged_loader_names_missing_unreadable_foreign_and_newer_files(tmp_path):
    assert "does not exist" in _one_line_error(tmp_path / "absent.pt")
    assert "does not exist" in _one_line_error(tmp_path)  # a folder is no widget file either

    text = tmp_path / "notes.txt"
    text.write_text("not a torch file\n")
    assert "not a readable widget" in _one_line_error(text)

    good = save_torch_atomic({"format": "widget", "w": torch.ones(1000)}, tmp_path / "good.pt")
    for size in (0, 1, 2000):  # empty, truncated without a message, cut mid-archive
        cut = tmp_path / f"cut_{size}.pt"
        cut.write_bytes(good.read_bytes()[:size])
        assert "not a readable widget" in _one_line_error(cut)

    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "widget", "code": EpochSampler(1, 1, 0)}, pickled)
    assert "not a readable widget" in _one_line_error(pickled)  # weights_only refuses it

    for i, foreign in enumerate([{"format": "gadget"}, {"w": torch.ones(1)}, [torch.ones(1)]]):
        torch.save(foreign, tmp_path / f"foreign_{i}.pt")
        assert _one_line_error(tmp_path / f"foreign_{i}.pt").endswith("is not a widget")

    newer = {"format": "widget", "widget_version": 3, "config": {"sfxgan_version": "9.0"}}
    torch.save(newer, tmp_path / "newer.pt")
    assert "newer sfxgan (9.0); upgrade" in _one_line_error(tmp_path / "newer.pt")


def test_an_untagged_kind_needs_only_a_dict(tmp_path):
    plain = TaggedKind(None, "{path} missing", "{path} unreadable ({reason})", "{path} not a dict")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "state.pth")
    assert list(load_tagged(tmp_path / "state.pth", plain)) == ["conv.weight"]
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    assert _one_line_error(tmp_path / "list.pth", plain).endswith("not a dict")
