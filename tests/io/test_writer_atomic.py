"""Outputs appear complete or not at all: errors, Ctrl-C and a full disk leave nothing behind."""

from __future__ import annotations

import errno
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidmatte.errors import InputError, OutputError
from vidmatte.io import atomic, open_writer, png_sequence

FORMS = ["out.webm", "out.mov", "out.mp4", "out.mkv", "frames/"]


def _open(path, **kwargs):
    options = {"width": 16, "height": 16, "frame_rate": Fraction(25), "time_base": Fraction(1, 25), "alpha": True}
    options.update(kwargs)
    return open_writer(path, **options)


def _frame(writer):
    return np.zeros((16, 16, 4 if writer.carries_alpha else 3), np.uint8)


def _one_line(error):
    assert "\n" not in str(error)
    return str(error)


@pytest.mark.parametrize("name", FORMS)
def test_output_appears_only_when_complete(tmp_path, media, name):
    path = f"{tmp_path}/{name}"
    with _open(path) as writer:
        for index in range(3):
            writer.write(_frame(writer), index)
        visible = [n for n in media.listing(tmp_path) if not n.startswith(".")]
        assert visible == []  # still under a hidden temporary name
    assert media.listing(tmp_path) == [name.rstrip("/")]


@pytest.mark.parametrize("name", FORMS)
@pytest.mark.parametrize("interruption", [KeyboardInterrupt, RuntimeError])
def test_interrupted_write_leaves_nothing(tmp_path, media, name, interruption):
    with pytest.raises(interruption), _open(f"{tmp_path}/{name}") as writer:
        for index in range(5):
            writer.write(_frame(writer), index)
        raise interruption()
    assert media.listing(tmp_path) == []


@pytest.mark.parametrize("name", ["out.webm", "out.mp4"])
def test_existing_output_is_kept_without_overwrite(tmp_path, media, name):
    target = tmp_path / name
    target.write_bytes(b"precious")
    with pytest.raises(OutputError) as excinfo:
        _open(target)
    assert "use -y to overwrite" in _one_line(excinfo.value)
    assert target.read_bytes() == b"precious"
    assert media.listing(tmp_path) == [name]


@pytest.mark.parametrize("name", ["out.webm", "frames/"])
def test_overwrite_replaces_the_old_output(tmp_path, media, name):
    path = f"{tmp_path}/{name}"
    for count in (3, 2):
        with _open(path, overwrite=True) as writer:
            for index in range(count):
                writer.write(_frame(writer), index)
    assert media.listing(tmp_path) == [name.rstrip("/")]
    if name.endswith("/"):
        assert media.listing(tmp_path / "frames") == ["000000.png", "000001.png"]
    else:
        assert len(media.decoded_video(tmp_path / name)) == 2


def test_existing_frame_folder_needs_overwrite(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "000000.png").write_bytes(b"old")
    with pytest.raises(OutputError) as excinfo:
        _open(f"{tmp_path}/frames/")
    assert "use -y" in _one_line(excinfo.value)


def test_empty_existing_folder_is_used(tmp_path, media):
    (tmp_path / "frames").mkdir()
    with _open(tmp_path / "frames") as writer:  # an existing folder, even without a slash
        writer.write(_frame(writer), 0)
    assert media.listing(tmp_path / "frames") == ["000000.png"]


def test_overwrite_never_deletes_foreign_files(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"irreplaceable")
    with pytest.raises(OutputError) as excinfo:
        _open(f"{folder}/", overwrite=True)
    assert "refusing" in _one_line(excinfo.value)
    assert (folder / "holiday.jpg").read_bytes() == b"irreplaceable"


def test_missing_parent_folder(tmp_path):
    with pytest.raises(OutputError) as excinfo:
        _open(tmp_path / "no" / "such" / "out.webm")
    assert "does not exist" in _one_line(excinfo.value)


def test_output_path_is_a_folder(tmp_path):
    (tmp_path / "clip.webm").mkdir()
    # An existing directory means "PNG frames into it"; with content it needs -y.
    (tmp_path / "clip.webm" / "x").write_text("x")
    with pytest.raises(OutputError):
        _open(tmp_path / "clip.webm")


def test_unknown_extension(tmp_path, media):
    with pytest.raises(OutputError) as excinfo:
        _open(tmp_path / "out.gif")
    assert ".webm" in _one_line(excinfo.value)
    assert media.listing(tmp_path) == []


def test_permission_denied(tmp_path, media, monkeypatch):
    # Tests run as root, where chmod does not stop writes: simulate the refusal instead.
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.os, "open", refuse)
    with pytest.raises(OutputError) as excinfo:
        _open(tmp_path / "out.webm")
    assert "permission denied" in _one_line(excinfo.value)
    monkeypatch.undo()
    assert media.listing(tmp_path) == []


@pytest.mark.parametrize("name", ["out.webm", "out.mov", "out.mp4", "out.mkv"])
def test_disk_full_is_reported_and_cleaned_up(tmp_path, media, monkeypatch, name):
    # A real ENOSPC from FFmpeg: the temporary "file" is a link to /dev/full.
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available")
    real_create = atomic._create_temp

    def create_full(final, *, folder):
        temp = real_create(final, folder=folder)
        temp.unlink()
        temp.symlink_to("/dev/full")
        return temp

    monkeypatch.setattr(atomic, "_create_temp", create_full)
    rng = np.random.default_rng(0)
    with pytest.raises(OutputError) as excinfo, _open(tmp_path / name, width=256, height=256) as writer:
        for index in range(20):
            shape = (256, 256, 4 if writer.carries_alpha else 3)
            writer.write(rng.integers(0, 256, shape, dtype=np.uint8), index)
    assert "disk full" in _one_line(excinfo.value)
    assert media.listing(tmp_path) == []


def test_disk_full_in_png_folder(tmp_path, media, monkeypatch):
    if not os.path.exists("/dev/full"):
        pytest.skip("/dev/full is not available")
    real_save = png_sequence._save
    calls = []

    def save_on_full_disk(target, packet):
        calls.append(target)
        # The third file hits a full disk: a real ENOSPC from the kernel.
        real_save(Path("/dev/full") if len(calls) == 3 else target, packet)

    monkeypatch.setattr(png_sequence, "_save", save_on_full_disk)
    with pytest.raises(OutputError) as excinfo, _open(f"{tmp_path}/frames/") as writer:
        for index in range(20):
            writer.write(_frame(writer), index)
    assert "disk full" in _one_line(excinfo.value)
    assert media.listing(tmp_path) == []


def test_bad_audio_source_fails_before_writing(tmp_path, media):
    not_media = tmp_path / "notes.txt"
    not_media.write_text("hello")
    with pytest.raises(InputError):
        _open(tmp_path / "out.webm", audio_from=not_media)
    assert media.listing(tmp_path) == ["notes.txt"]


def test_writer_cannot_be_used_after_close(tmp_path):
    writer = _open(tmp_path / "out.mp4", alpha=False)
    writer.write(_frame(writer), 0)
    writer.close()
    writer.close()  # idempotent
    with pytest.raises(RuntimeError):
        writer.write(_frame(writer), 1)


def test_abandoned_writer_cleans_up(tmp_path, media):
    writer = _open(tmp_path / "out.webm")
    writer.write(_frame(writer), 0)
    writer.abort()
    assert media.listing(tmp_path) == []
