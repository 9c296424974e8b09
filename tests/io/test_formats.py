"""Format decisions, each made once: input kinds, output forms and types, default names."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidmatte.errors import InputError, OutputError
from vidmatte.io.formats import (
    ALPHA_FORMS,
    IMAGE_SUFFIXES,
    default_output,
    image_format,
    input_kind,
    is_image_path,
    is_video_path,
    output_form,
    resolve_output_type,
)


def test_input_kinds(tmp_path):
    (tmp_path / "a.JFIF").write_bytes(b"x")
    (tmp_path / "clip.weird").write_bytes(b"x")
    (tmp_path / "frames").mkdir()
    assert input_kind(tmp_path / "a.JFIF") == "image" and ".jfif" in IMAGE_SUFFIXES
    assert input_kind(tmp_path / "clip.weird") == "video"  # named on its own: FFmpeg decides
    assert input_kind(tmp_path / "frames") == "folder"
    assert input_kind(tmp_path / "frames", sequence=True) == "sequence"
    with pytest.raises(InputError, match="does not exist"):
        input_kind(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="--sequence"):
        input_kind(tmp_path / "a.JFIF", sequence=True)
    assert is_image_path("x.webp") and is_video_path("x.MOV") and not is_video_path("x.txt")


def test_output_forms_and_types():
    assert [output_form(p) for p in ("a.webm", "a.mov", "a.mp4", "a.mkv", "out/")] == [
        "webm",
        "prores",
        "h264",
        "h264",
        "png",
    ]
    assert set(ALPHA_FORMS) == {"webm", "prores", "png"}
    assert resolve_output_type("a.webm", None) == "rgba" and resolve_output_type("a.mp4", None) == "composite"
    assert resolve_output_type("a.mp4", "alpha") == "alpha"
    with pytest.raises(OutputError, match="cannot carry alpha"):
        resolve_output_type("a.mp4", "rgba")
    with pytest.raises(OutputError, match="extension"):
        output_form("a.avi")
    # stills have their own table
    assert resolve_output_type("a.png", None, still=True) == "rgba"
    assert resolve_output_type("a.jpg", None, still=True) == "composite"
    with pytest.raises(OutputError, match=r"\.jpg cannot carry alpha"):
        resolve_output_type("a.jpg", "rgba", still=True)
    assert image_format("a.tif").deep and not image_format("a.webp").deep
    with pytest.raises(OutputError, match="for images"):
        image_format("a.gif")


def test_default_outputs():
    assert default_output("shots/clip.mp4", "video") == Path("shots/clip_matte.webm")
    assert default_output("photo.jpeg", "image") == Path("photo_matte.png")
    assert default_output("shoot/", "folder") == Path("shoot_matte")
    assert default_output("frames", "sequence") == Path("frames_matte.webm")
    with pytest.raises(ValueError):
        default_output("x", "camera")
