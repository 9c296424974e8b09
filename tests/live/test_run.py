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
from vidmatte import InputError
from vidmatte.errors import DisplayError
from vidmatte.io import read_webm_alpha_frames
from vidmatte.io.camera import CameraSource
from vidmatte.live import NO_DISPLAY, NO_GUI, CheckerBackground, LiveStats, live_downsample_ratio, run_live

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


def slowed(engine, delay: float):
    """The engine at full resolution (160x120 frames), `delay` seconds slower per frame."""
    slow = engine.with_ratio(1.0)
    coarse = slow.coarse

    def delayed(frames):
        time.sleep(delay)
        return coarse(frames)

    slow.coarse = delayed
    return slow


def _video_times(path) -> list[float]:
    with av.open(str(path)) as container:
        return [float(frame.time) for frame in container.decode(video=0)]


def test_webm_recording(tmp_path, camera_clip, engine):
    """Camera clip played in real time: every delivered frame is recorded, with alpha, at the
    capture times (so the recording plays at real speed)."""
    captured: list[tuple[int, float]] = []
    out = tmp_path / "rec.webm"
    engine.reset()  # the shared engine may hold another clip's state
    engine(np.zeros((H, W, 3), np.uint8))  # warm up first: a cold model on a busy machine sees few frames
    stats = run_live(
        CameraSource(camera_clip),
        engine=engine,
        output=out,
        window=False,
        on_frame=lambda f: captured.append((f.index, f.capture_time)),
    )
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


def test_max_frames(tmp_path, camera_clip, engine):
    out = tmp_path / "five.webm"
    stats = run_live(CameraSource(camera_clip, realtime=False), engine=engine, output=out, window=False, max_frames=5)
    assert stats.frames == stats.recorded == 5 and stats.stopped_by == "max-frames"
    assert len(list(read_webm_alpha_frames(out))) == 5


def test_lossless_file_source_takes_every_frame(camera_clip, engine):
    indices: list[int] = []
    stats = run_live(
        CameraSource(camera_clip, realtime=False),
        engine=engine,
        window=False,
        on_frame=lambda f: indices.append(f.index),
    )
    assert indices == list(range(30)) and stats.dropped == 0 and stats.stopped_by == "end"


def test_live_frames_match_the_file_pipeline(camera_clip, engine, tmp_path):
    """Every frame through the live chain (one at a time, no warm-up) is the file pipeline's
    matte of the same clip, to a level of rounding."""
    from vidmatte.pipeline import VideoOptions, matte_video

    got: list[np.ndarray] = []
    run_live(
        CameraSource(camera_clip, realtime=False),
        engine=engine.with_ratio(0.5),
        window=False,
        max_frames=6,
        on_frame=lambda f: got.append(f.rgba),
    )
    out = matte_video(
        camera_clip, str(tmp_path / "f") + "/", engine=engine.with_ratio(0.5), options=VideoOptions(warmup=0)
    )
    expected = [
        cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) for p in sorted(out.iterdir())[:6]
    ]
    assert len(got) == 6
    assert np.abs(np.stack(got).astype(int) - np.stack(expected)).max() <= 1


def test_slow_processing_drops_stale_frames(camera_clip, engine):
    """At 30 fps in, ~10 fps processing: the newest frame is always taken, each at most once,
    and latency stays near the processing time instead of growing (the view does not fall behind)."""
    seen: list[tuple[int, float]] = []
    stats = run_live(
        CameraSource(camera_clip),
        engine=slowed(engine, 0.1),
        window=False,
        on_frame=lambda f: seen.append((f.index, f.latency)),
    )
    indices = [i for i, _ in seen]
    assert all(b > a for a, b in zip(indices, indices[1:]))  # never the same (or an older) frame twice
    assert stats.dropped > 0 and stats.frames < 20
    assert stats.dropped == sum(b - a - 1 for a, b in zip(indices, indices[1:]))
    assert max(latency for _, latency in seen) < 0.6  # a queue would reach ~2 s by the end
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


def test_missing_camera_is_a_clear_error(tmp_path, engine):
    with pytest.raises(InputError, match=r"no camera at index 97.*--camera N"):
        run_live(97, engine=engine, window=False)
    with pytest.raises(InputError, match=r"no camera at /dev/video97"):
        run_live("/dev/video97", engine=engine, window=False)
    with pytest.raises(InputError, match="no such file"):
        run_live(tmp_path / "nope.mp4", engine=engine, window=False)


class _SilentCapture:
    """A camera that opens but never gives a picture (held by another program)."""

    def __init__(self, *args: object) -> None:
        pass

    def isOpened(self) -> bool:
        return True

    def set(self, *args: object) -> bool:
        return True

    def get(self, prop: int) -> float:
        return 30.0

    def read(self):
        time.sleep(0.01)
        return False, None

    def release(self) -> None:
        pass


class _FakeCapture(_SilentCapture):
    """A 100 fps camera giving BGR frames whose blue channel is the frame number."""

    def __init__(self, *args: object) -> None:
        self.n = 0

    def read(self):
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


def test_camera_capture_thread(monkeypatch, engine):
    monkeypatch.setattr("vidmatte.io.camera.cv2.VideoCapture", _FakeCapture)
    monkeypatch.setattr("vidmatte.io.camera._device_exists", lambda node: False)
    seen = []
    stats = run_live(
        0,
        engine=slowed(engine, 0.05),
        window=False,
        max_frames=4,
        on_frame=lambda f: seen.append((f.index, int(f.rgb[0, 0, 2]))),
    )
    assert stats.frames == 4 and (stats.width, stats.height) == (64, 48) and stats.source_fps == 30
    assert all(blue == index + 1 for index, blue in seen)  # BGR -> RGB, and the frame for that index
    assert stats.dropped > 0


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="DISPLAY is how Linux says there is a screen")
def test_window_without_display(monkeypatch, camera_clip, engine):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DisplayError, match="no display available; use --no-window") as error:
        run_live(97, engine=engine, window=True)  # checked before the (missing) camera
    assert str(error.value) == NO_DISPLAY and "\n" not in NO_DISPLAY


def test_window_with_headless_opencv(monkeypatch, engine):
    monkeypatch.setenv("DISPLAY", ":97")
    monkeypatch.setattr("vidmatte.live.views.opencv_has_gui", lambda: False)
    with pytest.raises(DisplayError, match="--no-window") as error:
        run_live(97, engine=engine, window=True)
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

    def poll_click(self) -> tuple[int, int] | None:
        return None

    def close(self) -> None:
        self.closed = True


def test_keys_cycle_views_backgrounds_snapshot_and_quit(tmp_path, camera_clip, engine):
    display = FakeDisplay(".bvvsq")
    frames: list = []
    stats = run_live(
        CameraSource(camera_clip, realtime=False),
        engine=engine,
        window=display,
        background="#ff0000",
        snapshot_dir=tmp_path / "snaps",
        on_frame=frames.append,
    )
    assert stats.stopped_by == "key" and stats.frames == 6 and display.closed
    shown = [cv2.cvtColor(p, cv2.COLOR_BGR2RGB)[H // 2 :] for p in display.shown]  # below the overlay text
    clear = [f.rgba[H // 2 :, :, 3] == 0 for f in frames]  # pure background: the view shows it as it is
    assert all(c.sum() > 50 for c in clear[:3])
    assert (shown[0][clear[0]] == (255, 0, 0)).all()  # the user's colour first
    assert (shown[1][clear[1]] == (255, 0, 0)).all()  # 'b' takes effect from the next frame
    assert set(np.unique(shown[2][clear[2]])) <= {153, 204}  # checker
    np.testing.assert_array_equal(shown[3], frames[3].rgb[H // 2 :])  # 'v': original
    np.testing.assert_array_equal(shown[4], np.repeat(frames[4].rgba[H // 2 :, :, 3:], 3, axis=2))  # 'v': alpha
    (snapshot,) = stats.snapshots
    rgba = cv2.cvtColor(cv2.imread(str(snapshot), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA)
    assert snapshot.parent == tmp_path / "snaps"
    np.testing.assert_array_equal(rgba, frames[4].rgba)  # 's' on the fifth frame: its RGBA, exactly


def test_ctrl_c_finishes_the_recording(tmp_path, camera_clip, engine):
    """Stopped by the user: a complete file (here an H.264 composite) with every delivered frame."""
    out = tmp_path / "rec.mp4"
    frames: list = []

    def interrupt_at_third(frame):
        frames.append(frame)
        if frame.index == 2:
            raise KeyboardInterrupt

    stats = run_live(
        CameraSource(camera_clip, realtime=False),
        engine=engine,
        output=out,
        window=False,
        background="green",
        on_frame=interrupt_at_third,
    )
    assert stats.stopped_by == "interrupt" and stats.frames == stats.recorded == 3
    with av.open(str(out)) as container:
        pictures = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(pictures) == 3
    clear = frames[0].rgba[..., 3] == 0
    green = pictures[0][cv2.erode(clear.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)]
    assert len(green) > 50 and green[:, 1].mean() > 200 and green[:, 0].mean() < 60  # green where alpha is 0


def test_smoothing_goes_through_the_chain(camera_clip, engine):
    plain: list[np.ndarray] = []
    smooth: list[np.ndarray] = []
    for strength, into in ((None, plain), (0.9, smooth)):
        run_live(
            CameraSource(camera_clip, realtime=False),
            engine=engine,
            window=False,
            smooth=strength,
            max_frames=4,
            on_frame=lambda f, into=into: into.append(f.rgba),
        )
    assert np.array_equal(plain[0], smooth[0])  # nothing to average with yet
    assert any(not np.array_equal(a, b) for a, b in zip(plain[1:], smooth[1:]))


def test_processing_ratio_and_checker():
    assert live_downsample_ratio(480, 640, "cpu") == 0.5
    assert live_downsample_ratio(720, 1280, "cpu") == 0.25
    assert live_downsample_ratio(120, 160, "cpu") == 1.0
    assert live_downsample_ratio(720, 1280, "cuda") == 0.4
    board = CheckerBackground(64, 32, square=16).for_frames(np.zeros((1, 32, 64, 3), np.uint8))
    assert board.shape == (1, 3, 32, 64)
    assert board[0, 0, 0, 0] > board[0, 0, 0, 16] and board[0, 0, 0, 0] == board[0, 0, 16, 16]


def test_live_ratio_leaves_the_engine_alone(camera_clip, engine):
    stats = run_live(CameraSource(camera_clip, realtime=False), engine=engine, window=False, max_frames=1)
    assert stats.ratio == 1.0 and engine.downsample_ratio == "auto"  # 160x120 is below the live size


def test_bad_output_fails_before_the_camera_opens(tmp_path, engine):
    from vidmatte import OutputError

    with pytest.raises(OutputError, match="extension"):
        run_live(97, engine=engine, window=False, output=tmp_path / "rec.avi")
    (tmp_path / "taken.webm").write_bytes(b"x")
    with pytest.raises(OutputError):
        run_live(97, engine=engine, window=False, output=tmp_path / "taken.webm")


def test_network_runs_on_the_calling_thread(camera_clip, engine):
    """The whole chain (encoder, recurrent decoder, guided filter) runs where `run_live` was
    called, so one OpenMP team has the cores (see `plan.plan_run`); the window is on that thread too."""
    live = engine.with_ratio(0.5)
    threads: set[int] = set()
    for name in ("to_tensor", "coarse", "guided_coefficients"):
        call = getattr(live, name)

        def recorded(*args, _call=call, **kwargs):
            threads.add(threading.get_ident())
            return _call(*args, **kwargs)

        setattr(live, name, recorded)
    shown: list[int] = []
    threads_before = torch.get_num_threads()
    stats = run_live(
        CameraSource(camera_clip, realtime=False),
        engine=live,
        window=False,
        max_frames=3,
        on_frame=lambda f: shown.append(threading.get_ident()),
    )
    assert stats.frames == 3 and threads == set(shown) == {threading.get_ident()}
    assert torch.get_num_threads() == threads_before  # the tuner's count ends with the run


def test_no_thread_left_behind(camera_clip, engine):
    before = threading.active_count()
    run_live(CameraSource(camera_clip), engine=engine, window=False, max_frames=2)
    assert threading.active_count() == before
