"""Writers keep the source timing: every frame, at its source time, within one output tick."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from vidmatte.io import open_writer

FILE_FORMS = ["out.webm", "out.mov", "out.mp4", "out.mkv"]


def _write(path, times_pts, *, time_base, frame_rate, width=32, height=24, alpha=True):
    with open_writer(
        path, width=width, height=height, frame_rate=frame_rate, time_base=time_base, alpha=alpha
    ) as writer:
        for index, pts in enumerate(times_pts):
            channels = 4 if writer.carries_alpha else 3
            writer.write(np.full((height, width, channels), 10 * index % 256, np.uint8), pts)
    return writer


def _assert_times(path, expected_seconds, media):
    frames = media.decoded_video(path)
    assert len(frames) == len(expected_seconds)
    tick = frames[0].time_base
    for frame, expected in zip(frames, expected_seconds):
        # One output tick: Matroska stores milliseconds, MP4/MOV the source unit (exact).
        assert abs(frame.pts * tick - expected) <= tick, (frame.pts, tick, expected)


@pytest.mark.parametrize("name", FILE_FORMS)
def test_ntsc_film_rate_stays_exact(tmp_path, media, name):
    time_base = Fraction(1, 24000)
    pts = [i * 1001 for i in range(30)]
    _write(tmp_path / name, pts, time_base=time_base, frame_rate=Fraction(24000, 1001))
    _assert_times(tmp_path / name, [p * time_base for p in pts], media)
    if not name.endswith((".webm", ".mkv")):
        # MP4/MOV can hold the source unit itself: timestamps come back identical.
        assert [f.pts * f.time_base for f in media.decoded_video(tmp_path / name)] == [p * time_base for p in pts]


@pytest.mark.parametrize("name", FILE_FORMS)
def test_variable_frame_rate_is_kept(tmp_path, media, name):
    time_base = Fraction(1, 90000)
    # Irregular gaps, a late start, and two frames inside one millisecond (Matroska must
    # still keep both, one tick apart).
    pts = [4500, 7500, 13500, 13600, 30000, 30010, 45000, 90000]
    _write(tmp_path / name, pts, time_base=time_base, frame_rate=Fraction(30))
    _assert_times(tmp_path / name, [p * time_base for p in pts], media)


@pytest.mark.parametrize("name", FILE_FORMS)
def test_missing_pts_are_synthesised_from_the_frame_rate(tmp_path, media, name):
    rate = Fraction(30000, 1001)
    _write(tmp_path / name, [None] * 10, time_base=1 / rate, frame_rate=rate)
    _assert_times(tmp_path / name, [i / rate for i in range(10)], media)


@pytest.mark.parametrize("name", FILE_FORMS)
def test_source_time_base_from_a_webm_input(tmp_path, media, name):
    # A WebM source gives millisecond pts; rescaling to other containers must not drift.
    time_base = Fraction(1, 1000)
    pts = [round(i * 1001 / 24) for i in range(20)]
    _write(tmp_path / name, pts, time_base=time_base, frame_rate=Fraction(24000, 1001))
    _assert_times(tmp_path / name, [p * time_base for p in pts], media)


@pytest.mark.parametrize("name", FILE_FORMS)
def test_opaque_forms_carry_no_alpha(tmp_path, media, name):
    writer = _write(tmp_path / name, [0, 1, 2], time_base=Fraction(1, 25), frame_rate=Fraction(25), alpha=False)
    assert not writer.carries_alpha
    assert writer.frames_written == 3
    assert len(media.decoded_video(tmp_path / name)) == 3


def test_png_folder_has_one_file_per_frame(tmp_path, media):
    writer = _write(f"{tmp_path}/frames/", [0, 5, 6, 100], time_base=Fraction(1, 25), frame_rate=Fraction(25))
    assert writer.form == "png"
    assert media.listing(tmp_path / "frames") == ["000000.png", "000001.png", "000002.png", "000003.png"]
