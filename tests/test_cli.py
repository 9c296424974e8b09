"""The command line as a user meets it: real processes, one-line errors, nothing half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import moving_clip
from tests.io.conftest import listing, make_audio_only, make_clip, make_no_frames
from vidmatte.io import read_webm_alpha_frames

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "vidmatte", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0].lower(), lines[0]


def test_help_and_version(tmp_path):
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0 and "--output-type" in result.stdout and ".mov" in result.stdout
    assert run("--version", cwd=tmp_path).returncode == 0


def test_quickstart_on_a_clip(tmp_path, sample_rgb):
    make_clip(tmp_path / "clip.mp4", images=moving_clip(sample_rgb, 72, 96, 4), audio="aac")
    result = run("clip.mp4", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert len(list(read_webm_alpha_frames(tmp_path / "clip_matte.webm"))) == 4
    assert listing(tmp_path) == ["clip.mp4", "clip_matte.webm"]


def test_png_folder_from_the_command_line(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=3)
    result = run("clip.mp4", "-o", "frames/", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert listing(tmp_path / "frames") == ["000000.png", "000001.png", "000002.png"]


def test_webcam_headless_with_a_file_as_camera(tmp_path, sample_rgb):
    make_clip(tmp_path / "cam.mp4", images=moving_clip(sample_rgb, 60, 80, 6))
    result = run("--camera", "cam.mp4", "--no-window", "--max-frames", "4", "-o", "rec.webm", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames = list(read_webm_alpha_frames(tmp_path / "rec.webm"))
    assert 1 <= len(frames) <= 4 and frames[0].shape == (60, 80, 4)


def test_webcam_without_camera_or_display(tmp_path):
    assert_one_line_error(run("--camera", "7", "--no-window", cwd=tmp_path), "camera")
    env_display = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = subprocess.run(
        [sys.executable, "-m", "vidmatte", "--webcam"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**env_display, "PYTHONPATH": str(REPO)},
    )
    assert_one_line_error(result, "--no-window")


def _make_bad(kind: str, folder: Path) -> Path:
    if kind == "missing":
        return folder / "nope.mp4"
    if kind == "text":
        path = folder / "notes.mp4"
        path.write_text("this is not a video\n" * 50)
        return path
    if kind == "truncated":
        path = make_clip(folder / "cut.mp4", frames=30)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    if kind == "audio-only":
        return make_audio_only(folder / "song.m4a")
    if kind == "no-frames":
        return make_no_frames(folder / "empty.mkv")
    raise ValueError(kind)


@pytest.mark.parametrize(
    "kind,words",
    [
        ("missing", ["does not exist"]),
        ("text", ["not"]),
        ("truncated", ["truncated"]),
        ("audio-only", ["no video"]),
        ("no-frames", ["frame"]),
    ],
)
def test_bad_input_gives_one_line_and_no_output(tmp_path, kind, words):
    source = _make_bad(kind, tmp_path)
    before = listing(tmp_path)
    result = run(source.name, "-o", "out.webm", cwd=tmp_path)
    assert_one_line_error(result, *words)
    assert listing(tmp_path) == before


def test_existing_output_is_kept(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=2)
    (tmp_path / "clip_matte.webm").write_bytes(b"mine")
    result = run("clip.mp4", cwd=tmp_path)
    assert_one_line_error(result, "exists", "-y")
    assert (tmp_path / "clip_matte.webm").read_bytes() == b"mine"


def test_unknown_output_form_and_bad_options(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=2)
    assert_one_line_error(run("clip.mp4", "-o", "out.xyz", cwd=tmp_path), "extension")
    assert_one_line_error(run("clip.mp4", "-o", "out.mp4", "--output-type", "rgba", cwd=tmp_path), "alpha")
    assert_one_line_error(run("clip.mp4", "--background", "nosuchthing", cwd=tmp_path), "background")
    assert run("clip.mp4", "--downsample-ratio", "3", cwd=tmp_path).returncode == 2
    assert listing(tmp_path) == ["clip.mp4"]


def test_output_folder_without_write_permission(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=2)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions are not enforced (the codec tests fake this case)")
        assert_one_line_error(run("clip.mp4", "-o", "locked/out.webm", cwd=tmp_path), "permission")
    finally:
        locked.chmod(0o700)
    assert listing(locked) == []


def test_ctrl_c_leaves_nothing_behind(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (400, 240, 320, 3), dtype=np.uint8)
    make_clip(tmp_path / "long.mp4", images=frames, audio="aac")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # a shell runs background jobs (`bash .ci/run &`) with SIGINT ignored, and Python then keeps it
    # ignored: give the child the default disposition, as a terminal would
    proc = subprocess.Popen(
        [sys.executable, "-m", "vidmatte", "long.mp4", "-o", "out.mov", "-q"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(".partial" in n for n in listing(tmp_path)):
        time.sleep(0.05)
    assert any(".partial" in n for n in listing(tmp_path)), "the run never started writing"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "interrupted" in stderr
    assert listing(tmp_path) == ["long.mp4"]


def _save(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture
def small_portrait(sample_rgb):
    import cv2

    return cv2.resize(sample_rgb, (160, 160), interpolation=cv2.INTER_AREA)


def test_still_image_from_the_command_line(tmp_path, small_portrait):
    import cv2

    _save(tmp_path / "photo.jpg", small_portrait)
    result = run("photo.jpg", "--passes", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "photo_matte.png" in result.stderr
    out = cv2.imread(str(tmp_path / "photo_matte.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (160, 160, 4) and out.dtype == np.uint8
    assert out[120:, 20:80, 3].mean() > 200 and out[:40, -40:, 3].mean() < 40  # body kept, corner dropped
    result = run("photo.jpg", "-o", "green.jpg", "--passes", "2", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    green = cv2.imread(str(tmp_path / "green.jpg"))[:30, -20:].reshape(-1, 3).mean(0)  # BGR of the corner
    assert green[1] > 200 and green[0] < 60 and green[2] < 60
    assert_one_line_error(run("photo.jpg", "-o", "x.jpg", "--output-type", "rgba", cwd=tmp_path), "alpha")
    assert listing(tmp_path) == ["green.jpg", "photo.jpg", "photo_matte.png"]


def test_folder_with_a_broken_file_reports_it_and_goes_on(tmp_path, small_portrait):
    _save(tmp_path / "shoot" / "a.jpg", small_portrait)
    _save(tmp_path / "shoot" / "sub" / "b.png", small_portrait[:, ::-1])
    (tmp_path / "shoot" / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (tmp_path / "shoot" / "notes.txt").write_text("hello")
    result = run("shoot", "--passes", "2", "-q", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert any("skipped" in line and "notes.txt" in line for line in lines)
    assert any("failed" in line and "broken.jpg" in line for line in lines)
    assert lines[-1].startswith("vidmatte: error: 1 of 3 files failed")
    assert sorted(str(p.relative_to(tmp_path / "shoot_matte")) for p in (tmp_path / "shoot_matte").rglob("*.png")) == [
        "a.png",
        "sub/b.png",
    ]


def test_numbered_frames_as_one_clip(tmp_path, sample_rgb):
    for index, image in enumerate(moving_clip(sample_rgb, 64, 80, 3)):
        _save(tmp_path / "frames" / f"f{index * 5}.png", image)  # f0, f5, f10: numeric order
    result = run("frames", "--sequence", "--fps", "30000/1001", "-o", "clip.webm", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    frames = list(read_webm_alpha_frames(tmp_path / "clip.webm"))
    assert len(frames) == 3 and frames[0].shape == (64, 80, 4)
    import av

    with av.open(str(tmp_path / "clip.webm")) as container:
        assert abs(float(container.streams.video[0].average_rate) - 30000 / 1001) < 0.01
    assert run("frames", "--sequence", "--fps", "fast", cwd=tmp_path).returncode == 2
    assert_one_line_error(run("frames/f0.png", "--sequence", cwd=tmp_path), "--sequence")
