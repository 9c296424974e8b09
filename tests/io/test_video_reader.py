"""VideoReader: frames, timestamps, rotation and every way a user's input can be wrong."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vidmatte.errors import InputError
from vidmatte.io import VideoReader


def test_reads_every_frame_with_exact_timing(tmp_path, media):
    clip = media.make_clip(tmp_path / "clip.mp4", frames=12, rate=Fraction(24000, 1001), audio="aac")
    with VideoReader(clip) as reader:
        info = reader.info
        frames = list(reader)
    assert (info.width, info.height) == (64, 48)
    assert info.frame_rate == Fraction(24000, 1001)
    assert info.frame_count == 12
    assert info.has_audio and info.rotation == 0
    assert info.duration == pytest.approx(12 * 1001 / 24000, abs=0.01)
    assert len(frames) == 12
    for index, frame in enumerate(frames):
        assert frame.rgb.shape == (48, 64, 3) and frame.rgb.dtype == np.uint8
        assert frame.rgb.flags["C_CONTIGUOUS"]
        assert frame.pts * frame.time_base == index * Fraction(1001, 24000)
        # Frames come in order: the grey level encodes the index.
        assert abs(int(frame.rgb[40, 40, 1]) - (20 + 10 * index)) <= 3
        assert frame.rgb[2, 2, 0] > 200 and frame.rgb[2, 2, 1] < 60  # red marker top-left


def test_variable_frame_rate_timestamps_are_kept(tmp_path, media):
    pts = [0, 40, 100, 110, 300, 301, 500]
    clip = media.make_clip(tmp_path / "vfr.mkv", frames=len(pts), pts=pts, time_base=Fraction(1, 1000))
    with VideoReader(clip) as reader:
        assert [f.pts for f in reader] == pts
        assert reader.info.time_base == Fraction(1, 1000)


@pytest.mark.parametrize("ext", ["mp4", "mov", "mkv", "webm"])
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotated_phone_clips_come_out_upright(tmp_path, media, ext, rotation):
    codec = "libvpx-vp9" if ext == "webm" else "libx264"
    clip = media.make_clip(tmp_path / f"rot.{ext}", width=64, height=32, frames=2, rotation=rotation, codec=codec)
    with VideoReader(clip) as reader:
        info = reader.info
        frame = next(iter(reader))
    turned = rotation % 180 != 0
    assert (info.width, info.height) == ((32, 64) if turned else (64, 32))
    assert frame.rgb.shape == (info.height, info.width, 3)
    assert info.rotation == rotation % 360
    # Where the red marker (stored top-left) must appear once displayed as the matrix asks,
    # matching FFmpeg's own autorotation: 90 = turned counter-clockwise -> bottom-left.
    red = (frame.rgb[..., 0] > 200) & (frame.rgb[..., 1] < 80)
    ys, xs = np.nonzero(red)
    cy, cx = ys.mean() / info.height, xs.mean() / info.width
    expected = {90: (True, False), -90: (False, True), 180: (True, True)}[rotation]  # (bottom?, right?)
    assert (cy > 0.5, cx > 0.5) == expected


def test_odd_sized_vp9(tmp_path, media):
    clip = media.make_clip(tmp_path / "odd.webm", width=33, height=17, frames=3, codec="libvpx-vp9")
    with VideoReader(clip) as reader:
        frames = list(reader)
    assert (reader.info.width, reader.info.height) == (33, 17)
    assert [f.rgb.shape for f in frames] == [(17, 33, 3)] * 3


def test_iterating_twice_is_a_bug(tmp_path, media):
    clip = media.make_clip(tmp_path / "clip.mp4", frames=2)
    with VideoReader(clip) as reader:
        list(reader)
        with pytest.raises(RuntimeError):
            iter(reader)


def _message(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as excinfo:
        VideoReader(tmp_path / "nope.mp4")
    assert "no such file" in _message(excinfo)


def test_directory(tmp_path):
    with pytest.raises(InputError) as excinfo:
        VideoReader(tmp_path)
    assert "folder" in _message(excinfo)


def test_text_file_named_mp4(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("these are my notes, not a video\n" * 20)
    with pytest.raises(InputError) as excinfo:
        VideoReader(fake)
    assert "not a video file" in _message(excinfo)


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").touch()
    with pytest.raises(InputError) as excinfo:
        VideoReader(tmp_path / "empty.mp4")
    assert "empty" in _message(excinfo)


def test_audio_only_file(tmp_path, media):
    song = media.make_audio_only(tmp_path / "song.m4a")
    with pytest.raises(InputError) as excinfo:
        VideoReader(song)
    assert "no video stream" in _message(excinfo)


def test_video_track_without_frames(tmp_path, media):
    clip = media.make_no_frames(tmp_path / "none.mkv")
    with pytest.raises(InputError) as excinfo:
        VideoReader(clip)
    message = _message(excinfo)
    assert "no video frame" in message or "damaged or truncated at frame 0" in message


def test_mp4_cut_in_half_is_reported_as_truncated(tmp_path, media):
    # FFmpeg writes the MP4 index at the end, so half a file has no index at all.
    clip = media.make_clip(tmp_path / "clip.mp4", frames=24)
    data = clip.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as excinfo:
        VideoReader(cut)
    assert "truncated or damaged" in _message(excinfo)


@pytest.mark.parametrize("ext", ["mkv", "webm"])
def test_matroska_cut_in_half_yields_what_it_can_then_fails(tmp_path, media, ext):
    codec = "libvpx-vp9" if ext == "webm" else "libx264"
    clip = media.make_clip(tmp_path / f"clip.{ext}", frames=48, codec=codec)
    data = clip.read_bytes()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    got = []
    with VideoReader(cut) as reader, pytest.raises(InputError) as excinfo:
        got.extend(reader)
    assert 0 < len(got) < 48
    assert "truncated" in _message(excinfo)
    assert f"frame {len(got)}" in str(excinfo.value)


def test_damaged_middle_raises_input_error(tmp_path, media):
    clip = media.make_clip(tmp_path / "clip.mp4", frames=48, width=128, height=96)
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = b"\xab" * 4000
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(bytes(data))
    # Depending on where the garbage lands the decoder either conceals it or gives up;
    # either way the reader must not escape with anything but InputError.
    try:
        with VideoReader(broken) as reader:
            count = sum(1 for _ in reader)
        assert count <= 48
    except InputError as error:
        assert "\n" not in str(error)
