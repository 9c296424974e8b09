"""The clip splitter: pure arithmetic, no Ray needed."""

from __future__ import annotations

from fractions import Fraction

import pytest

from vidmatte.distributed.split import DEFAULT_PREROLL, Segment, default_segment_frames, shots, split_clip


def covered(segments: list[Segment]) -> list[int]:
    return [i for s in segments for i in range(s.start, s.end)]


def test_one_short_shot_is_one_segment():
    assert split_clip(10, segment_frames=250) == [Segment(0, 0, 10, 0, 0)]


def test_cuts_are_exact_split_points_without_preroll_across_them():
    segments = split_clip(100, [40, 70], segment_frames=250, preroll=32)
    assert [(s.start, s.end, s.read_from) for s in segments] == [(0, 40, 0), (40, 70, 40), (70, 100, 70)]
    assert all(s.exact and s.preroll == 0 for s in segments)


def test_long_shot_is_split_evenly_with_preroll():
    segments = split_clip(1000, segment_frames=300, preroll=32)
    assert [s.frames for s in segments] == [250, 250, 250, 250]
    assert [s.read_from for s in segments] == [0, 218, 468, 718]
    assert [s.preroll for s in segments] == [0, 32, 32, 32]
    assert covered(segments) == list(range(1000))
    assert [s.index for s in segments] == [0, 1, 2, 3]


def test_preroll_is_clipped_at_the_shot_start():
    segments = split_clip(130, [100], segment_frames=60, preroll=32)
    # shot 0..100 in two parts of 50; the second reads from 18; the shot 100..130 starts clean
    assert [(s.start, s.end, s.read_from, s.shot_start) for s in segments] == [
        (0, 50, 0, 0),
        (50, 100, 18, 0),
        (100, 130, 100, 100),
    ]
    short = split_clip(20, segment_frames=10, preroll=32)
    assert [s.read_from for s in short] == [0, 0]


def test_every_frame_once_for_many_plans():
    for count in (1, 2, 17, 250, 251, 999):
        for cuts in ((), (1,), (5, 5, 9), (count - 1,), (0, count, count + 5, -3)):
            for size in (1, 3, 250):
                segments = split_clip(count, cuts, segment_frames=size, preroll=4)
                assert covered(segments) == list(range(count))
                assert all(0 < s.frames <= size for s in segments)
                assert all(s.shot_start <= s.read_from <= s.start for s in segments)


def test_whole_clip_for_subject_runs_and_empty_clip():
    assert split_clip(500, [100], segment_frames=50, whole=True) == [Segment(0, 0, 500, 0, 0)]
    assert split_clip(0, segment_frames=50) == []
    assert shots(0) == []


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        split_clip(10, segment_frames=0)
    with pytest.raises(ValueError):
        split_clip(10, segment_frames=5, preroll=-1)


def test_default_segment_is_about_ten_seconds():
    # about 10 s, but never so short that the preroll costs over 5% of the frames
    assert default_segment_frames(Fraction(24000, 1001), preroll=32) == 640
    assert default_segment_frames(Fraction(60), preroll=32) == 640
    assert default_segment_frames(120, preroll=32) == 1200
    assert default_segment_frames(Fraction(30)) == 20 * DEFAULT_PREROLL
    assert default_segment_frames(Fraction(24000, 1001), preroll=8) == 240
    assert default_segment_frames(25, preroll=8) == 250
    assert default_segment_frames(None, preroll=0) == 250
    assert default_segment_frames(None) == 20 * DEFAULT_PREROLL


def test_the_plain_install_never_imports_ray_and_says_how_to_get_it():
    import subprocess
    import sys

    code = (
        "import sys; import vidmatte, vidmatte.cli, vidmatte.api, vidmatte.distributed, vidmatte.distributed.driver\n"
        "assert 'ray' not in sys.modules, 'ray imported'\n"
        "sys.modules['ray'] = None  # as if it were not installed\n"
        "from vidmatte.distributed.driver import import_ray\n"
        "from vidmatte.errors import ClusterError\n"
        "try:\n    import_ray()\nexcept ClusterError as e:\n    print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "--workers needs Ray, which is not installed: pip install 'vidmatte[ray]'"
