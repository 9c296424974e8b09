"""The frame count a progress bar is given is the count the reader delivers, whatever the
first timestamp (issue #18, item 9: a bar that ended at 87/88)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vidmatte.io import VideoReader

CONTAINERS = [
    ("mp4", "libx264"),
    ("mov", "libx264"),
    ("mkv", "libx264"),
    ("webm", "libvpx-vp9"),
    ("ts", "libx264"),
    ("flv", "libx264"),
    ("mkv", "ffv1"),
]


@pytest.mark.parametrize("ext, codec", CONTAINERS, ids=lambda v: str(v))
@pytest.mark.parametrize("first", [-3, -1, 1, 12], ids=lambda f: f"first_pts_{f}")
def test_frame_count_is_exact_when_the_first_timestamp_is_not_zero(tmp_path, media, ext, codec, first):
    # first < 0: MP4's edit list hides the frames before 0, though its header counts them;
    # first > 0: Matroska and FLV durations run from 0, not from the first frame
    rate = Fraction(24000, 1001) if first % 2 else Fraction(25)
    path = media.make_clip(
        tmp_path / f"clip.{ext}", frames=88, rate=rate, codec=codec, pts=[first + index for index in range(88)]
    )
    with VideoReader(path) as reader:
        estimate = reader.info.frame_count
        delivered = sum(1 for _ in reader)
    assert estimate == delivered


def test_a_long_gop_tail_is_found(tmp_path, media):
    # one keyframe only: the probe of the end starts at the beginning and still finds it
    path = media.make_clip(tmp_path / "clip.mkv", frames=150, pts=[7 + index for index in range(150)])
    with VideoReader(path) as reader:
        assert reader.info.frame_count == 150
