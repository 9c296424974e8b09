"""Live preview (`vidmatte --webcam`), driven headless with a generated clip as the camera."""

from __future__ import annotations

import sys
import threading
import time
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch

from tests.conftest import moving_clip
from tests.io.conftest import make_clip
from vidmatte import InputError, Matte, Matter
from vidmatte.errors import DisplayError
from vidmatte.io import read_webm_alpha_frames
from vidmatte.io.camera import CameraSource
from vidmatte.live import LiveStats, live_downsample_ratio, run_live
from vidmatte.live_views import NO_DISPLAY, NO_GUI, CheckerBackground

RATE = Fraction(30)
W, H = 160, 120


@pytest.fixture(scope="module")
def person(sample_rgb):
    """(30,H,W,3) frames of the bundled portrait, panning."""
    return moving_clip(sample_rgb, H, W, frames=30)


@pytest.fixture(scope="module")
def camera_clip(tmp_path_factory, person):
    """One second at 30 fps: the stand-in camera."""
    return make_clip(tmp_path_factory.mktemp("live") / "camera.mp4", images=person, rate=RATE)


class FakeMatter:
    """Instant matter: opaque box in the middle; `delay` seconds per frame; remembers what it saw."""

    def __init__(self, delay: float = 0.0) -> None:
        self.device, self.dtype, self.downsample_ratio = torch.device("cpu"), torch.float32, "auto"
        self.delay = delay
        self.resets = 0
        self.seen: list[np.ndarray] = []

    def ratio_for(self, height: int, width: int) -> float:
        return 1.0 if self.downsample_ratio == "auto" else float(self.downsample_ratio)

    def reset(self) -> None:
        self.resets += 1

    def __call__(self, rgb: np.ndarray) -> Matte:
        if self.delay:
            time.sleep(self.delay)
        self.seen.append(rgb)
        h, w = rgb.shape[:2]
        alpha = torch.zeros(1, 1, h, w)
        alpha[..., h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1
        return Matte(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255, alpha)


def _video_times(path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def test_webm_recording_with_real_matter(tmp_path, camera_clip):
    """Real network, camera clip played in real time: every processed frame is recorded, with
    alpha, at the capture times (so the recording plays at real speed)."""
    captured: list[tuple[int, float]] = []
    out = tmp_path / "rec.webm"
    matter = Matter(device="cpu")
    matter(np.zeros((H, W, 3), np.uint8))  # warm up first: a cold model on a busy machine sees few frames
    matter.reset()
    stats = run_live(CameraSource(camera_clip), matter=matter, output=out, window=False,
                     on_frame=lambda f: captured.append((f.index, f.capture_time)))
    assert isinstance(stats, LiveStats) and stats.stopped_by == "end"
    assert stats.frames == len(captured) >= 2  # real time: how many depends on the machine
    assert stats.recorded == stats.frames
    assert stats.frames + stats.dropped == captured[-1][0] - captured[0][0] + 1
    frames = np.stack(list(read_webm_alpha_frames(out)))
    assert frames.shape == (stats.frames, H, W, 4)
    alpha = frames[..., 3]
    assert alpha.max() > 200 and alpha.min() < 30  # a real matte: subject opaque, background clear
    times = _video_times(out)
    assert len(times) == stats.frames
    assert all(b > a for a, b in zip(times, times[1:]))
    expected = [t - captured[0][1] for _, t in captured]
    assert times == pytest.approx(expected, abs=0.003)  # 1 ms ticks
    assert times[-1] == pytest.approx((captured[-1][0] - captured[0][0]) / 30, abs=0.15)  # real speed


def test_max_frames(tmp_path, camera_clip):
    out = tmp_path / "five.webm"
    stats = run_live(CameraSource(camera_clip, realtime=False), matter=FakeMatter(), output=out, window=False,
                     max_frames=5)
    assert stats.frames == stats.recorded == 5 and stats.stopped_by == "max-frames"
    assert len(list(read_webm_alpha_frames(out))) == 5


def test_lossless_file_source_takes_every_frame(camera_clip):
    matter = FakeMatter()
    indices: list[int] = []
    stats = run_live(CameraSource(camera_clip, realtime=False), matter=matter, window=False,
                     on_frame=lambda f: indices.append(f.index))
    assert indices == list(range(30)) and stats.dropped == 0 and matter.resets == 1


def test_slow_processing_drops_stale_frames(camera_clip):
    """At 30 fps in, ~10 fps processing: the newest frame is always taken, each at most once,
    and latency stays near the processing time instead of growing (the view does not fall behind)."""
    matter = FakeMatter(delay=0.1)
    seen: list[tuple[int, float]] = []
    stats = run_live(CameraSource(camera_clip), matter=matter, window=False,
                     on_frame=lambda f: seen.append((f.index, f.latency)))
    indices = [i for i, _ in seen]
    assert all(b > a for a, b in zip(indices, indices[1:]))  # never the same (or an older) frame twice
    assert stats.dropped > 0 and stats.frames < 20
    assert stats.dropped == sum(b - a - 1 for a, b in zip(indices, indices[1:]))
    assert max(latency for _, latency in seen) < 0.45  # a queue would reach ~2 s by the end
    assert stats.fps < 15


def test_source_reports_end_and_drops_directly(camera_clip):
    with CameraSource(camera_clip) as camera:
        time.sleep(0.3)  # ~9 frames arrive meanwhile; only the newest is kept
        first = camera.read_latest(timeout=2)
        assert first is not None and first.index >= 5 and first.rgb.shape == (H, W, 3)
        rest = list(camera)
    assert [f.index for f in rest] == sorted({f.index for f in rest})
    assert rest[-1].index == 29 and camera.end_reason == "end of file"
    assert camera.dropped == 30 - 1 - len(rest)


def test_missing_camera_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"no camera at index 97.*--camera N"):
        run_live(97, matter=FakeMatter(), window=False)
    with pytest.raises(InputError, match=r"no camera at /dev/video97"):
        run_live("/dev/video97", matter=FakeMatter(), window=False)
    with pytest.raises(InputError, match="no such file"):
        run_live(tmp_path / "nope.mp4", matter=FakeMatter(), window=False)


class _SilentCapture:
    """A camera that opens but never gives a picture (held by another program)."""

    def __init__(self, *args: object) -> None:
        pass

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def set(self, *args: object) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 30.0

    def read(self):  # noqa: ANN201
        time.sleep(0.01)
        return False, None

    def release(self) -> None:
        pass


class _FakeCapture(_SilentCapture):
    """A 100 fps camera giving BGR frames whose blue channel is the frame number."""

    def __init__(self, *args: object) -> None:
        self.n = 0

    def read(self):  # noqa: ANN201
        time.sleep(0.01)
        self.n += 1
        frame = np.zeros((48, 64, 3), np.uint8)
        frame[..., 0] = self.n % 256
        return True, frame


def test_busy_camera_is_a_clear_error(monkeypatch):
    monkeypatch.setattr("vidmatte.io.camera.cv2.VideoCapture", _SilentCapture)
    monkeypatch.setattr("vidmatte.io.camera._device_exists", lambda node: False)  # no device nodes here
    with pytest.raises(InputError, match=r"camera 0 opened but gave no picture .* busy"):
        CameraSource(0, open_timeout=0.3).open()


def test_camera_capture_thread(monkeypatch):
    monkeypatch.setattr("vidmatte.io.camera.cv2.VideoCapture", _FakeCapture)
    monkeypatch.setattr("vidmatte.io.camera._device_exists", lambda node: False)
    seen = []
    stats = run_live(0, matter=FakeMatter(delay=0.05), window=False, max_frames=4,
                     on_frame=lambda f: seen.append((f.index, int(f.rgb[0, 0, 2]))))
    assert stats.frames == 4 and (stats.width, stats.height) == (64, 48) and stats.source_fps == 30
    assert all(blue == index + 1 for index, blue in seen)  # BGR -> RGB, and the frame for that index
    assert stats.dropped > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is how Linux says there is a screen")
def test_window_without_display(monkeypatch, camera_clip):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DisplayError, match="no display available; use --no-window") as error:
        run_live(97, matter=FakeMatter(), window=True)  # checked before the (missing) camera
    assert str(error.value) == NO_DISPLAY and "\n" not in NO_DISPLAY


def test_window_with_headless_opencv(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.setattr("vidmatte.live_views.opencv_has_gui", lambda: False)
    with pytest.raises(DisplayError, match="--no-window") as error:
        run_live(97, matter=FakeMatter(), window=True)
    assert str(error.value) == NO_GUI


class FakeDisplay:
    """Presses the given keys, one per frame; keeps what was shown."""

    def __init__(self, keys: str) -> None:
        self.keys = list(keys)
        self.shown: list[np.ndarray] = []
        self.closed = False

    def show(self, bgr: np.ndarray) -> None:
        self.shown.append(bgr.copy())

    def poll_key(self) -> int:
        key = self.keys.pop(0) if self.keys else "."
        return -1 if key == "." else ord(key)

    def close(self) -> None:
        self.closed = True


def test_keys_cycle_views_backgrounds_snapshot_and_quit(tmp_path, camera_clip):
    display = FakeDisplay(".bvvsq")
    matter = FakeMatter()
    stats = run_live(CameraSource(camera_clip, realtime=False), matter=matter, window=display,
                     background="#ff0000", snapshot_dir=tmp_path / "snaps")
    assert stats.stopped_by == "key" and stats.frames == 6 and display.closed
    shown = [cv2.cvtColor(p, cv2.COLOR_BGR2RGB)[H // 2:] for p in display.shown]  # below the overlay text
    corner = (slice(-5, None), slice(0, 5))  # outside the subject box: pure background
    assert (shown[0][corner] == (255, 0, 0)).all()  # the user's colour first
    assert (shown[1][corner] == (255, 0, 0)).all()  # 'b' takes effect from the next frame
    assert set(np.unique(shown[2][corner])) <= {153, 204}  # checker
    np.testing.assert_array_equal(shown[3], matter.seen[3][H // 2:])  # 'v': original
    assert set(np.unique(shown[4])) <= {0, 255}  # 'v': alpha
    (snapshot,) = stats.snapshots
    rgba = cv2.imread(str(snapshot), cv2.IMREAD_UNCHANGED)
    assert snapshot.parent == tmp_path / "snaps" and rgba.shape == (H, W, 4)
    assert rgba[0, 0, 3] == 0 and rgba[H // 2, W // 2, 3] == 255


def test_ctrl_c_finishes_the_recording(tmp_path, camera_clip):
    """Stopped by the user: a complete file (here an H.264 composite) with every processed frame."""
    out = tmp_path / "rec.mp4"

    def interrupt_at_third(frame):  # noqa: ANN001, ANN202
        if frame.index == 2:
            raise KeyboardInterrupt

    stats = run_live(CameraSource(camera_clip, realtime=False), matter=FakeMatter(), output=out, window=False,
                     background="green", on_frame=interrupt_at_third)
    assert stats.stopped_by == "interrupt" and stats.frames == stats.recorded == 3
    with av.open(str(out)) as container:
        pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(pictures) == 3
    assert pictures[0][2, 2, 1] > 200 and pictures[0][2, 2, 0] < 60  # green where alpha is 0


def test_smoother_is_applied(tmp_path, camera_clip):
    class Smoother:
        calls = resets = 0

        def reset(self) -> None:
            self.resets += 1

        def __call__(self, matte: Matte, frames: np.ndarray) -> Matte:
            assert frames.shape == (1, H, W, 3)
            self.calls += 1
            return Matte(matte.foreground, matte.alpha * 0.5)

    smoother = Smoother()
    out = tmp_path / "half.webm"
    stats = run_live(CameraSource(camera_clip, realtime=False), matter=FakeMatter(), output=out, window=False,
                     smoother=smoother, max_frames=3)
    assert smoother.calls == 3 and smoother.resets == 1
    alpha = np.stack(list(read_webm_alpha_frames(out)))[..., 3]
    assert abs(int(alpha[:, H // 2, W // 2].mean()) - 128) <= 4 and stats.frames == 3


def test_processing_ratio_and_checker():
    assert live_downsample_ratio(480, 640, "cpu") == 0.5
    assert live_downsample_ratio(720, 1280, "cpu") == 0.25
    assert live_downsample_ratio(120, 160, "cpu") == 1.0
    assert live_downsample_ratio(720, 1280, "cuda") == 0.4
    board = CheckerBackground(64, 32, square=16).for_frames(np.zeros((1, 32, 64, 3), np.uint8))
    assert board.shape == (1, 3, 32, 64)
    assert board[0, 0, 0, 0] > board[0, 0, 0, 16] and board[0, 0, 0, 0] == board[0, 0, 16, 16]


def test_auto_ratio_is_restored(camera_clip):
    matter = FakeMatter()
    stats = run_live(CameraSource(camera_clip, realtime=False), matter=matter, window=False, max_frames=1)
    assert stats.ratio == 1.0 and matter.downsample_ratio == "auto"


def test_bad_output_fails_before_the_camera_opens(tmp_path):
    from vidmatte import OutputError

    with pytest.raises(OutputError, match="extension"):
        run_live(97, matter=FakeMatter(), window=False, output=tmp_path / "rec.avi")
    (tmp_path / "taken.webm").write_bytes(b"x")
    with pytest.raises(OutputError):
        run_live(97, matter=FakeMatter(), window=False, output=tmp_path / "taken.webm")


def test_no_thread_left_behind(camera_clip):
    before = threading.active_count()
    run_live(CameraSource(camera_clip), matter=FakeMatter(), window=False, max_frames=2)
    assert threading.active_count() == before
