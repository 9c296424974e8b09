"""Frame sources: video files, numbered pictures and cameras all satisfy one protocol."""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from tests.io.conftest import make_clip
from vidmatte.errors import InputError
from vidmatte.io.camera import TIME_BASE, CameraSource
from vidmatte.io.sources import FrameSource, ImageSequenceSource, open_source, sequence_frames
from vidmatte.io.video_reader import VideoReader


def _pictures(folder, names, size=(40, 30)):
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        cv2.imwrite(str(folder / name), np.full((size[1], size[0], 3), 10 * i, np.uint8))
    return folder


def test_every_kind_is_a_frame_source(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio="aac")
    frames = _pictures(tmp_path / "frames", ["a.png"])
    with (
        open_source(clip) as video,
        open_source(frames, "sequence") as sequence,
        open_source(clip, "camera", realtime=False) as camera,
    ):
        for source in (video, sequence, camera):
            assert isinstance(source, FrameSource)
        assert isinstance(video, VideoReader) and not video.live and not sequence.live and camera.live
        assert video.clip.audio_from == clip and video.clip.name == "clip.mp4" and video.clip.frame_count == 3
        assert sequence.clip.audio_from is None
        assert camera.clip.time_base == TIME_BASE and camera.clip.frame_count is None
        assert len(list(video)) == 3 and len(list(sequence)) == 1
        times = [f.pts for f in camera]
        assert len(times) == 3 and times[0] == 0 and times == sorted(times)
    with pytest.raises(ValueError):
        open_source(clip, "hologram")


def test_sequence_is_in_numeric_order_and_timed_by_its_rate(tmp_path):
    folder = _pictures(tmp_path / "f", ["f10.png", "f2.png", "f1.jpg", ".hidden.png"])
    (folder / "notes.txt").write_text("x")
    assert [p.name for p in sequence_frames(folder)] == ["f1.jpg", "f2.png", "f10.png"]
    with ImageSequenceSource(folder, Fraction(30000, 1001)) as source:
        clip = source.clip
        assert (clip.width, clip.height, clip.frame_count, clip.name) == (40, 30, 3, "f")
        frames = list(source)
    assert [f.pts for f in frames] == [0, 1, 2] and frames[2].time == pytest.approx(2 * 1001 / 30000)
    assert [int(f.rgb[0, 0, 0]) for f in frames] == [20, 10, 0]  # f1 (written third), f2, f10


def test_sequence_refusals(tmp_path):
    with pytest.raises(InputError, match="no image frames"):
        ImageSequenceSource(_pictures(tmp_path / "empty", []))
    mixed = _pictures(tmp_path / "mixed", ["1.png"])
    cv2.imwrite(str(mixed / "2.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match="one size"):
        list(ImageSequenceSource(mixed))
    with pytest.raises(InputError, match="positive"):
        ImageSequenceSource(mixed, 0)


def test_camera_source_opened_twice_is_one_capture(tmp_path):
    clip = make_clip(tmp_path / "cam.mp4", frames=2)
    camera = CameraSource(clip, realtime=False)
    with camera:
        assert camera.open() is camera and (camera.width, camera.height) == (64, 48)
