"""Writers keep exact sizes, colours and alpha, checked on really decoded outputs."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidmatte.errors import OutputError
from vidmatte.io import VideoReader, open_writer, output_form, read_webm_alpha_frames

SIZES = [(321, 241), (33, 17), (16, 16), (1, 1)]


def _half_transparent(width, height, colour=(30, 200, 60)):
    """Left half alpha 0, right half alpha 255."""
    image = np.zeros((height, width, 4), np.uint8)
    image[..., :3] = colour
    image[:, width // 2 :, 3] = 255
    return image


def _write_frames(path, images, alpha=True):
    height, width = images[0].shape[:2]
    with open_writer(
        path, width=width, height=height, frame_rate=Fraction(25), time_base=Fraction(1, 25), alpha=alpha
    ) as writer:
        for index, image in enumerate(images):
            writer.write(image, index)
    return writer


def _read_rgba(path):
    """Decoded RGBA frames of any output form, alpha included where the form has it."""
    text = str(path)
    if text.endswith("/"):
        files = sorted(Path(text).iterdir())
        return [cv2.cvtColor(cv2.imread(str(f), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) for f in files]
    if text.endswith(".webm"):
        return list(read_webm_alpha_frames(path))
    with av.open(text) as container:
        return [f.to_ndarray(format="rgba") for f in container.decode(video=0)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["o.webm", "o.mov", "o.mp4", "o.mkv", "frames/"])
def test_any_size_comes_out_exactly(tmp_path, name, size):
    width, height = size
    path = f"{tmp_path}/{name}"
    image = _half_transparent(width, height)
    if output_form(path) == "h264":
        image = np.ascontiguousarray(image[..., :3])
    writer = _write_frames(path, [image] * 2)
    frames = _read_rgba(path)
    assert len(frames) == 2
    if output_form(path) == "h264":  # 4:2:0 stores even sizes only: one column/row more (test_h264_sizes.py)
        width, height = width + width % 2, height + height % 2
    assert frames[0].shape == (height, width, 4)
    assert writer.carries_alpha == (output_form(path) != "h264")


def test_4k_frames(tmp_path):
    image = _half_transparent(3840, 2160)
    image[..., 0] = np.arange(3840, dtype=np.uint16)[None, :] % 256
    for name, count in [("big.mp4", 2), ("big.mov", 1), ("big.webm", 1), ("big/", 2)]:
        path = f"{tmp_path}/{name}"
        frames_in = [image[..., :3].copy() if name.endswith(".mp4") else image] * count
        _write_frames(path, frames_in)
        with_alpha = _read_rgba(path)
        assert len(with_alpha) == count and with_alpha[0].shape == (2160, 3840, 4)


def test_webm_alpha_survives_vp9(tmp_path, media):
    path = tmp_path / "matte.webm"
    _write_frames(path, [_half_transparent(96, 64)] * 3)
    frames = list(read_webm_alpha_frames(path))
    assert len(frames) == 3
    for frame in frames:
        assert frame[:, :40, 3].max() < 20
        assert frame[:, 56:, 3].min() > 235
        assert np.abs(frame[:, 56:, :3].astype(int) - (30, 200, 60)).max() <= 6
    # Browsers show transparency only when the track says so.
    assert media.stream_info(path)["metadata"].get("alpha_mode") == "1"
    assert media.stream_info(path)["pix_fmt"] == "yuv420p"  # FFmpeg's vp9 decoder: alpha is a side channel


def test_prores_4444_alpha_is_nearly_exact(tmp_path, media):
    rng = np.random.default_rng(1)
    image = _half_transparent(40, 30)
    image[..., 3] = rng.integers(0, 256, (30, 40), dtype=np.uint8)
    path = tmp_path / "matte.mov"
    _write_frames(path, [image])
    (frame,) = _read_rgba(path)
    assert np.abs(frame[..., 3].astype(int) - image[..., 3]).max() <= 1
    assert np.abs(frame[..., :3].astype(int) - image[..., :3]).max() <= 2
    info = media.stream_info(path)
    assert info["video_codec"] == "prores" and info["pix_fmt"].startswith("yuva444p")
    with av.open(str(path)) as container:
        assert container.streams.video[0].codec_context.profile == "4444"


def test_png_frames_are_exact_rgba(tmp_path):
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (24, 31, 4), dtype=np.uint8) for _ in range(3)]
    _write_frames(f"{tmp_path}/seq/", images)
    frames = _read_rgba(f"{tmp_path}/seq/")
    for got, want in zip(frames, images):
        np.testing.assert_array_equal(got, want)


def test_rgb_frames_into_alpha_forms_are_opaque(tmp_path):
    image = np.full((20, 30, 3), 120, np.uint8)
    for name in ["a.webm", "a.mov", "a/"]:
        path = f"{tmp_path}/{name}"
        _write_frames(path, [image])
        (frame,) = _read_rgba(path)
        assert frame[..., 3].min() > 235, name
        assert abs(int(frame[10, 15, 1]) - 120) <= 3


def test_opaque_png_folder_writes_rgb(tmp_path):
    image = np.full((10, 12, 3), (10, 20, 30), np.uint8)
    _write_frames(f"{tmp_path}/rgb/", [image], alpha=False)
    png = cv2.imread(f"{tmp_path}/rgb/000000.png", cv2.IMREAD_UNCHANGED)
    assert png.shape == (10, 12, 3)
    np.testing.assert_array_equal(png[0, 0], (30, 20, 10))  # BGR on disk


@pytest.mark.parametrize("name", ["c.webm", "c.mov", "c.mp4", "c.mkv"])
def test_colours_round_trip_through_the_reader(tmp_path, name):
    # BT.709 conversion and tagging on write, tag-driven conversion on read: colours survive.
    image = np.zeros((32, 48, 3), np.uint8)
    image[:, :16] = (200, 50, 100)
    image[:, 16:32] = (20, 180, 240)
    image[:, 32:] = (128, 128, 128)
    _write_frames(tmp_path / name, [image] * 2, alpha=False)
    with VideoReader(tmp_path / name) as reader:
        frame = next(iter(reader)).rgb
    for x in (8, 24, 40):
        assert np.abs(frame[16, x].astype(int) - image[16, x]).max() <= 6, (x, frame[16, x], image[16, x])


def test_h264_is_420_at_even_and_odd_sizes(tmp_path, media):
    _write_frames(tmp_path / "even.mp4", [np.zeros((16, 16, 3), np.uint8)])
    _write_frames(tmp_path / "odd.mp4", [np.zeros((17, 33, 3), np.uint8)])
    assert media.stream_info(tmp_path / "even.mp4")["pix_fmt"] == "yuv420p"
    assert media.stream_info(tmp_path / "odd.mp4")["pix_fmt"] == "yuv420p"


def test_wrong_frames_are_caller_bugs(tmp_path):
    with open_writer(
        tmp_path / "x.mp4", width=8, height=8, frame_rate=Fraction(25), time_base=Fraction(1, 25), alpha=True
    ) as writer:
        assert not writer.carries_alpha
        with pytest.raises(ValueError):
            writer.write(np.zeros((8, 8, 4), np.uint8), 0)  # RGBA into H.264: composite first
        with pytest.raises(ValueError):
            writer.write(np.zeros((8, 9, 3), np.uint8), 0)
        with pytest.raises(ValueError):
            writer.write(np.zeros((8, 8, 3), np.float32), 0)
        writer.write(np.zeros((8, 8, 3), np.uint8), 0)
    assert len(list(VideoReader(tmp_path / "x.mp4"))) == 1


def test_output_form_by_path(tmp_path):
    assert output_form("a.webm") == "webm"
    assert output_form("A.MOV") == "prores"
    assert output_form("a.mp4") == "h264"
    assert output_form("a.mkv") == "h264"
    assert output_form("frames/") == "png"
    assert output_form(tmp_path) == "png"  # an existing folder
    for bad in ["a.avi", "a.gif", "noextension"]:
        with pytest.raises(OutputError) as excinfo:
            output_form(bad)
        assert "\n" not in str(excinfo.value)


def test_quality_is_validated(tmp_path):
    with pytest.raises(OutputError):
        open_writer(
            tmp_path / "q.webm", width=8, height=8, frame_rate=None, time_base=Fraction(1, 25), alpha=True, quality=99
        )
    with open_writer(
        tmp_path / "q.mp4", width=8, height=8, frame_rate=None, time_base=Fraction(1, 25), alpha=False, quality=30
    ) as writer:
        writer.write(np.zeros((8, 8, 3), np.uint8), 0)
    assert (tmp_path / "q.mp4").exists()
