"""Issue #18 as a new user met it, with real processes: kills, damaged and oversized inputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.io.conftest import listing, make_clip

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vidmatte", *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- item 1: kill, timeout and a closed terminal clean up like Ctrl-C ---------------------------


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> Path:
    """Noise frames: long enough (400 frames) that a run is still writing when the signal comes."""
    folder = tmp_path_factory.mktemp("long")
    frames = np.random.default_rng(0).integers(0, 255, (400, 240, 320, 3), dtype=np.uint8)
    return make_clip(folder / "long.mp4", images=frames, audio="aac")


def _default_signals() -> None:
    # a test runner under `nohup` or in a background job passes on ignored signals; a user's
    # terminal would not
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


def _start_writing(clip: Path, cwd: Path) -> subprocess.Popen:
    """A run writing ProRes (it stores data from the first frame on), once its partial file exists."""
    os.symlink(clip, cwd / "long.mp4")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidmatte", "long.mp4", "-o", "out.mov", "-q"],
        cwd=cwd,
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_signals,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not _partials(cwd) and proc.poll() is None:
        time.sleep(0.05)
    assert _partials(cwd), "the run never started writing"
    time.sleep(0.5)  # mid-write, with frames in every queue
    return proc


def _partials(folder: Path) -> list[str]:
    return [name for name in listing(folder) if ".partial" in name]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_termination_signals_leave_nothing_behind(tmp_path, long_clip, signum, code):
    proc = _start_writing(long_clip, tmp_path)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and signal.Signals(signum).name in lines[0] and "discarded" in lines[0], stderr
    assert listing(tmp_path) == ["long.mp4"]


def test_timeout_command_leaves_nothing_behind(tmp_path, long_clip):
    os.symlink(long_clip, tmp_path / "long.mp4")
    # `timeout` sends SIGTERM and exits 124 when the time is up
    result = subprocess.run(
        ["timeout", "8", sys.executable, "-m", "vidmatte", "long.mp4", "-o", "out.mov", "-q"],
        cwd=tmp_path,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_default_signals,
    )
    assert result.returncode == 124, result.stderr
    assert "Traceback" not in result.stderr and "SIGTERM" in result.stderr
    assert listing(tmp_path) == ["long.mp4"]


def test_a_rerun_removes_what_kill_9_left(tmp_path, long_clip):
    proc = _start_writing(long_clip, tmp_path)
    proc.kill()  # SIGKILL: nothing can clean up
    proc.communicate(timeout=60)
    (orphan,) = _partials(tmp_path)
    assert orphan.startswith(f".out.mov.partial-{proc.pid}-") and orphan.endswith(".mov")
    make_clip(tmp_path / "short.mp4", frames=3)
    result = run("short.mp4", "-o", "out.mov", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path) == ["long.mp4", "out.mov", "short.mp4"]


# --- item 2: an oversized picture or frame is refused from its header, before decoding -----------


def test_a_png_bomb_is_refused_in_a_moment(tmp_path):
    from tests.io.test_image_header import _png_bomb

    _png_bomb(tmp_path / "bomb.png")
    start = time.monotonic()
    line = one_line_error(run("bomb.png", cwd=tmp_path))
    assert time.monotonic() - start < 30  # the whole process, torch import included; decoding took 36 s
    assert "30000x30000" in line and "downscale" in line
    assert listing(tmp_path) == ["bomb.png"]


def test_an_oversized_video_is_refused_from_its_header(tmp_path):
    from tests.io.test_image_header import _video_claiming

    _video_claiming(tmp_path / "huge.mkv", 12000, 12000)
    line = one_line_error(run("huge.mkv", "-o", "out.webm", cwd=tmp_path))
    assert "12000x12000" in line
    assert listing(tmp_path) == ["huge.mkv"]


# --- item 3: a damaged JPEG is an error, in a folder a per-file failure --------------------------


def _photo(path: Path) -> Path:
    import cv2

    from tests.conftest import SAMPLE_IMAGE

    path.parent.mkdir(parents=True, exist_ok=True)
    small = cv2.resize(cv2.imread(str(SAMPLE_IMAGE)), (160, 160), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    path.write_bytes(data.tobytes())
    return path


def _garble(path: Path) -> Path:
    from tests.io.test_damaged_images import garbled

    path.write_bytes(garbled(path.read_bytes(), at=0.3, length=300))
    return path


def test_a_damaged_jpeg_is_one_line_and_a_failure(tmp_path):
    _garble(_photo(tmp_path / "photo.jpg"))
    line = one_line_error(run("photo.jpg", "--passes", "1", cwd=tmp_path))
    assert line.startswith("vidmatte: error:") and "damaged" in line and "photo.jpg" in line
    assert "Corrupt JPEG data" in line  # libjpeg's reason, folded into our line
    assert listing(tmp_path) == ["photo.jpg"]


def test_a_damaged_jpeg_in_a_folder_fails_alone(tmp_path):
    _photo(tmp_path / "shoot" / "good.jpg")
    _garble(_photo(tmp_path / "shoot" / "bad.jpg"))
    result = run("shoot", "--passes", "1", "-q", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr  # the file's failure, then the summary: nothing from libjpeg itself
    assert lines[0].startswith("vidmatte: failed ") and "bad.jpg" in lines[0] and "damaged" in lines[0]
    assert lines[1].startswith("vidmatte: error: 1 of 2 files failed")
    assert listing(tmp_path / "shoot_matte") == ["good.png"]


# --- item 4: an odd-sized video to .mp4 plays everywhere, and the user is told what was done -----


def test_an_odd_sized_clip_to_mp4_is_420_with_a_notice(tmp_path):
    import av

    make_clip(tmp_path / "odd.mkv", width=161, height=91, frames=3, codec="ffv1")
    result = run("odd.mkv", "-o", "out.mp4", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("vidmatte: note:"), result.stderr
    assert "161x91" in lines[0] and "162x92" in lines[0]
    with av.open(str(tmp_path / "out.mp4")) as container:
        codec = container.streams.video[0].codec_context
        assert (codec.profile, codec.pix_fmt) == ("High", "yuv420p")
        frames = list(container.decode(video=0))
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (162, 92)


# --- item 9: the progress bar's total on a clip whose first timestamp is not 0 ---------------------


# late.mkv starts one frame late (Matroska's duration counts from 0); cut.mp4 starts one frame
# early, and its edit list hides that frame (the header still counts 88): 87 are shown
@pytest.mark.parametrize("name, first, shown", [("late.mkv", 1, 88), ("cut.mp4", -1, 87)])
def test_the_progress_bar_ends_at_its_total(tmp_path, name, first, shown):
    make_clip(tmp_path / name, frames=88, pts=[first + index for index in range(88)])
    result = run(name, "-o", "out.webm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    import re

    states = re.findall(r"\| *(\d+)/(\d+) \[", result.stderr)  # every redraw of the bar: done/total
    assert states and {total for _, total in states} == {str(shown)}, result.stderr
    assert states[-1] == (str(shown), str(shown)), result.stderr  # it ends full, not at 87/88


# --- item 5: options that do nothing are said to do nothing -------------------------------------


def test_options_that_do_nothing_are_noted(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=2)
    result = run(
        "clip.mp4",
        "-o",
        "out.mov",
        "--quality",
        "20",
        "--background",
        "blue",
        "--passes",
        "3",
        "--smooth-strength",
        "0.5",
        "-q",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    notes = result.stderr.strip().splitlines()
    for flag in ("--quality", "--background", "--passes", "--smooth-strength"):
        (line,) = [n for n in notes if n.startswith(f"vidmatte: note: {flag} does nothing")]
        assert len(line) < 200
    assert len(notes) == 4
    quiet = run("clip.mp4", "-o", "out.mp4", "-y", "-q", cwd=tmp_path)  # nothing given in vain: nothing said
    assert quiet.returncode == 0 and quiet.stderr == ""


# --- item 8: a file standing in for a camera, every frame when asked -----------------------------


def test_camera_file_every_frame(tmp_path):
    from vidmatte.io import read_webm_alpha_frames

    make_clip(tmp_path / "talk.mp4", frames=12)
    result = run("--camera", "talk.mp4", "--every-frame", "--no-window", "-o", "rec.webm", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list(read_webm_alpha_frames(tmp_path / "rec.webm"))) == 12  # none dropped


# --- item 9: the smaller ones ---------------------------------------------------------------------


def test_usage_errors_are_one_line_and_name_the_option(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=2)
    for args, flag in (
        (("--downsample-ratio", "3"), "--downsample-ratio"),
        (("--fps", "fast"), "--fps"),
        (("--output-type", "sepia"), "--output-type"),
    ):
        line = one_line_error(run("clip.mp4", *args, cwd=tmp_path))
        assert flag in line and line.startswith("vidmatte: error:")
    assert listing(tmp_path) == ["clip.mp4"]


def test_an_interrupted_folder_run_leaves_no_empty_output_folder(tmp_path, engine):
    from vidmatte import MatteOptions
    from vidmatte.folders import matte_folder

    (tmp_path / "shoot" / "day1").mkdir(parents=True)
    make_clip(tmp_path / "shoot" / "day1" / "a.mp4", frames=4)

    def interrupt(report):
        if report.task == "frames":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        matte_folder(tmp_path / "shoot", engine=engine, options=MatteOptions(), progress=interrupt)
    assert listing(tmp_path) == ["shoot"]  # no shoot_matte/, no shoot_matte/day1/, no partial file


def test_help_answers_at_once():
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "vidmatte", "--help"], env=ENV, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and "--every-frame" in result.stdout
    assert time.monotonic() - start < 2.0  # torch is not imported (2-3 s by itself; see tests/test_api.py)
