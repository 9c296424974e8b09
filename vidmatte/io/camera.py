"""A live frame source: a camera, or a video file standing in for one.

`CameraSource` captures on its own thread and keeps only the newest frame, so a consumer
that is slower than the camera always gets the freshest picture instead of falling further
and further behind; the frames it never took are counted as dropped. A video file is played
back at its own frame rate in real time (like a camera that does not wait for anyone), or,
with `realtime=False`, handed over frame by frame as fast as the consumer takes them (nothing
dropped: useful for tests and batch-like runs).

    with CameraSource(0) as camera:                 # or "/dev/video2", or "clip.mp4"
        while (frame := camera.read_latest(timeout=5)) is not None:
            frame.rgb, frame.captured, frame.index  # index counts every captured frame
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from vidmatte.errors import InputError
from vidmatte.io.video_reader import VideoReader
from vidmatte.types import CapturedFrame, ClipInfo

#: What picks a source: a camera index (int or digits), a device path such as /dev/video2, or a video file.
CameraSpec = int | str | Path

#: Frames are timed by capture time, in milliseconds from the first capture (a recording then
#: plays at real speed, whatever was dropped).
TIME_BASE = Fraction(1, 1000)


class CameraSource:
    """Newest-frame-only capture from a camera or a video file; a context manager and a
    `FrameSource` whose iterator waits as long as it takes for each newest frame.

    `spec`: camera index (0, "1"), device path ("/dev/video2") or video file path.
    `realtime`: files only; True plays the file at its frame rate in real time, dropping
    frames the consumer is too slow for (a camera's behaviour); False delivers every frame,
    as fast as the consumer takes them.
    `width`, `height`, `fps`: cameras only; a request the driver may round or ignore.
    `open_timeout`: seconds a camera may take to give its first picture.
    """

    def __init__(
        self,
        spec: CameraSpec = 0,
        *,
        realtime: bool = True,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        open_timeout: float = 5.0,
    ) -> None:
        self.spec = spec
        self.realtime = realtime
        self._request = (width, height, fps)
        self.open_timeout = open_timeout
        kind, target = _classify(spec)
        self.kind = kind  # "index", "device" or "file"
        self._target = target
        self.name = f"camera {target}" if kind == "index" else str(target)
        self.width = 0
        self.height = 0
        self.frame_rate: Fraction | None = None
        self.captured = 0
        self.dropped = 0
        self.end_reason: str | None = None
        self._cond = threading.Condition()
        self._slot: tuple[np.ndarray, float, int] | None = None
        self._first_time: float | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._capture: cv2.VideoCapture | None = None
        self._reader: VideoReader | None = None

    #: newest frame only: a consumer must not read ahead of what it can process
    live = True

    @property
    def is_file(self) -> bool:
        return self.kind == "file"

    @property
    def clip(self) -> ClipInfo:
        """Size and nominal rate (known once opened); frames are timed in `TIME_BASE` units."""
        return ClipInfo(self.width, self.height, self.frame_rate, TIME_BASE, None, name=self.name)

    # ---- lifecycle ----

    def open(self) -> CameraSource:
        """Open the device or file and start capturing; raises InputError with what to do."""
        if self._thread is not None:
            return self
        if self.is_file:
            assert isinstance(self._target, Path)  # `_classify` makes files Paths
            self._reader = VideoReader(self._target)
            info = self._reader.info
            self.width, self.height, self.frame_rate = info.width, info.height, info.frame_rate
            run = self._play_file
        else:
            self._capture = _open_camera(self.kind, self._target, self.name, *self._request)
            rate = self._capture.get(cv2.CAP_PROP_FPS)
            self.frame_rate = Fraction(rate).limit_denominator(1001) if rate and rate > 0 else None
            run = self._capture_camera
        self._thread = threading.Thread(target=self._guard(run), name="capture", daemon=True)
        self._thread.start()
        if not self.is_file:
            self._await_first_picture()
        return self

    def close(self) -> None:
        """Stop capturing and release the device or file; safe to call more than once."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._capture is not None:
            self._capture.release()
            self._capture = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> CameraSource:
        try:
            return self.open()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- consumer side ----

    def read_latest(self, timeout: float | None = None) -> CapturedFrame | None:
        """The newest frame not yet returned, waiting for one if needed; None at the end.

        Each captured frame is returned at most once; frames replaced by a newer one before
        they were taken are counted in `dropped`. The end is the end of a file, a camera
        that stopped delivering (`end_reason` says why) or `close()`. Raises InputError when
        no frame comes within `timeout` seconds, or when capture failed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._slot is None and not self._ended and self._error is None and not self._stop.is_set():
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise InputError(
                        f"{self.name} gave no picture for {timeout:g} s; it may be in use by "
                        f"another program or disconnected: close that program or use --camera N"
                    )
                self._cond.wait(remaining)
            taken, self._slot = self._slot, None
            error = self._error
            self._cond.notify_all()  # a lossless file player waits for the slot to empty
        if taken is None:
            if error is not None:
                raise error
            return None
        raw, when, index = taken
        rgb = raw if self.is_file else cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
        if self._first_time is None:
            self._first_time = when
        pts = round((when - self._first_time) / TIME_BASE)
        return CapturedFrame(rgb, pts, TIME_BASE, index=index, captured=when)

    def __iter__(self) -> Iterator[CapturedFrame]:
        """Newest frames until the end (waits as long as it takes for each)."""
        while (frame := self.read_latest()) is not None:
            yield frame

    # ---- capture side ----

    def _publish(self, raw: np.ndarray, when: float | None = None) -> None:
        with self._cond:
            if not self.realtime and self.is_file:
                while self._slot is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            if self._slot is not None:
                self.dropped += 1
            self._slot = (raw, time.monotonic() if when is None else when, self.captured)
            self.captured += 1
            self._cond.notify_all()

    def _finish(self, reason: str | None = None) -> None:
        with self._cond:
            self._ended = True
            if self.end_reason is None:
                self.end_reason = reason
            self._cond.notify_all()

    def _guard(self, run: Callable[[], None]) -> Callable[[], None]:
        def target() -> None:
            try:
                run()
            except BaseException as error:  # handed to the consumer by read_latest
                with self._cond:
                    self._error = error
                    self._cond.notify_all()
            finally:
                self._finish()

        return target

    def _play_file(self) -> None:
        assert self._reader is not None
        rate = self.frame_rate
        start: float | None = None
        first_time: float | None = None
        for number, frame in enumerate(self._reader):
            if self._stop.is_set():
                return
            if self.realtime:
                # when this frame is due: its timestamp (or its number at the nominal rate) from the first
                media_time = frame.time if frame.time is not None else (float(number / rate) if rate else None)
                if start is None:
                    start, first_time = time.monotonic(), media_time
                elif media_time is not None and first_time is not None:
                    delay = start + (media_time - first_time) - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
            self._publish(frame.rgb)
        self._finish("end of file")

    def _capture_camera(self) -> None:
        capture = self._capture
        assert capture is not None
        failures = 0
        while not self._stop.is_set():
            ok, bgr = capture.read()
            when = time.monotonic()
            if not ok or bgr is None:
                failures += 1
                if failures >= 10:
                    self._finish(f"{self.name} stopped delivering frames (disconnected?)")
                    return
                self._stop.wait(0.05)
                continue
            failures = 0
            if bgr.ndim == 2:
                bgr = cv2.cvtColor(bgr, cv2.COLOR_GRAY2BGR)
            if not self.width:
                self.height, self.width = bgr.shape[:2]
            self._publish(bgr, when)

    def _await_first_picture(self) -> None:
        deadline = time.monotonic() + self.open_timeout
        with self._cond:
            while self._slot is None and self._error is None and not self._ended:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            got_picture = self._slot is not None
        if not got_picture:
            self.close()
            raise InputError(
                f"{self.name} opened but gave no picture within {self.open_timeout:g} s; it is "
                f"probably busy (in use by another program): close that program or use --camera N"
            )


def _classify(spec: CameraSpec) -> tuple[str, int | str | Path]:
    if isinstance(spec, bool):
        raise TypeError("camera spec must be an index, a device path or a file")
    if isinstance(spec, int):
        return "index", spec
    text = os.fspath(spec)
    if text.strip().isdigit():
        return "index", int(text)
    if text.startswith("/dev/"):
        return "device", text
    return "file", Path(text)


def _device_exists(node: str) -> bool:
    return os.path.exists(node)


def _open_camera(
    kind: str, target: int | str | Path, name: str, width: int | None, height: int | None, fps: float | None
) -> cv2.VideoCapture:
    node = f"/dev/video{target}" if kind == "index" else str(target)
    on_linux = sys.platform.startswith("linux")
    exists = _device_exists(node)
    if kind == "device" and not exists:
        raise InputError(f"no camera at {node}; use --camera N or a video file")
    if on_linux and exists and not os.access(node, os.R_OK | os.W_OK):
        raise InputError(f"no permission to open {node}; add your user to the 'video' group (then log in again)")
    logging = cv2.utils.logging
    previous = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)  # OpenCV prints a screenful per failed backend
    try:
        if kind == "device":
            capture = cv2.VideoCapture(node, cv2.CAP_V4L2 if on_linux else cv2.CAP_ANY)
        else:
            capture = cv2.VideoCapture(int(target))  # type: ignore[arg-type]
    finally:
        logging.setLogLevel(previous)
    if not capture.isOpened():
        capture.release()
        if on_linux and exists:
            raise InputError(
                f"{name} ({node}) cannot be opened; it is busy (in use by another program) or not "
                f"a capture device: close that program or use --camera N"
            )
        where = f"index {target}" if kind == "index" else node
        maybe_busy = "" if on_linux else " (or it is busy)"  # Linux: no device node, so truly none
        raise InputError(f"no camera at {where}{maybe_busy}; use --camera N or a video file")
    capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # best effort: fewer stale frames queued in the driver
    if width:
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
    if height:
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
    if fps:
        capture.set(cv2.CAP_PROP_FPS, fps)
    return capture
