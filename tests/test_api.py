"""The library entry routes every input kind the command line takes, with progress and notices."""

from __future__ import annotations

import logging
import subprocess
import sys

import cv2
import pytest

from tests.conftest import REPO, moving_clip
from tests.io.conftest import make_clip
from vidmatte import InputError, MatteOptions, matte_path
from vidmatte.io import read_webm_alpha_frames


def test_video_with_progress_and_the_device_line(tmp_path, sample_rgb, engine, caplog):
    clip = make_clip(tmp_path / "clip.mp4", images=moving_clip(sample_rgb, 72, 96, 4))
    reports = []
    with caplog.at_level(logging.INFO, logger="vidmatte"):
        result = matte_path(clip, engine=engine, progress=reports.append)
    assert result.kind == "video" and result.output == tmp_path / "clip_matte.webm"
    assert len(list(read_webm_alpha_frames(result.output))) == 4
    assert [(r.task, r.done, r.total) for r in reports][-1] == ("frames", 4, 4)
    assert all(r.name == "clip.mp4" for r in reports)
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("cpu, fp32") and "96x72" in line


def test_image_folder_sequence_and_camera(tmp_path, sample_rgb, engine):
    small = cv2.resize(sample_rgb, (96, 96), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(tmp_path / "photo.png"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    reports = []
    image = matte_path(tmp_path / "photo.png", options=MatteOptions(passes=2), engine=engine, progress=reports.append)
    assert image.kind == "image" and cv2.imread(str(image.output), cv2.IMREAD_UNCHANGED).shape == (96, 96, 4)
    assert ("passes", 2, 2) in [(r.task, r.done, r.total) for r in reports]
    assert [r.done for r in reports if r.task == "refine"] == [0, 1]

    shoot = tmp_path / "shoot"
    shoot.mkdir()
    cv2.imwrite(str(shoot / "a.jpg"), cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    reports.clear()
    folder = matte_path(shoot, options=MatteOptions(passes=1), engine=engine, progress=reports.append)
    assert folder.kind == "folder" and folder.folder is not None and folder.folder.ok
    assert (tmp_path / "shoot_matte" / "a.png").is_file()
    assert [(r.done, r.total) for r in reports if r.task == "files"] == [(0, 1), (1, 1)]

    frames = tmp_path / "frames"
    frames.mkdir()
    for i, rgb in enumerate(moving_clip(sample_rgb, 48, 64, 3)):
        cv2.imwrite(str(frames / f"{i}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    sequence = matte_path(frames, tmp_path / "seq.mov", MatteOptions(fps=30), sequence=True, engine=engine)
    assert sequence.kind == "sequence" and sequence.output == tmp_path / "seq.mov"

    clip = make_clip(tmp_path / "cam.mp4", images=moving_clip(sample_rgb, 48, 64, 5))
    live = matte_path(
        clip, tmp_path / "rec.webm", MatteOptions(window=False, realtime=False), camera=True, engine=engine
    )
    assert live.kind == "camera" and live.live is not None and live.live.frames == 5  # every frame asked for
    assert len(list(read_webm_alpha_frames(tmp_path / "rec.webm"))) == 5


@pytest.mark.parametrize(
    "changes,words",
    [
        ({"downsample_ratio": 1.5}, "--downsample-ratio"),
        ({"smooth": 1.0}, "--smooth-strength"),
        ({"passes": 0}, "--passes"),
        ({"max_frames": 0}, "--max-frames"),
    ],
)
def test_bad_options_are_one_line_input_errors(tmp_path, changes, words):
    with pytest.raises(InputError, match=words):
        matte_path(tmp_path, options=MatteOptions(**changes))


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        matte_path(tmp_path / "nope.mp4")
    with pytest.raises(InputError, match="give an input"):
        matte_path(None)


def test_help_does_not_load_torch_or_codecs():
    code = (
        "import sys, vidmatte.cli\n"
        "heavy = [m for m in ('torch', 'av', 'cv2', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
