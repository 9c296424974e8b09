"""Live matting: camera (or a file standing in for one) -> stage chain -> preview window and/or recording.

`run_live` is what `vidmatte --webcam` runs. The camera is captured on its own thread that keeps
only the newest frame, so the chain always mattes the freshest picture and drops the ones it had
no time for: the view never falls behind the camera. The frames go through the same stage chain
as files (`vidmatte.pipeline`), with the plan for a live source: on a CPU all of it on this thread
(see `plan.plan_run` for why), which then composes the current view, shows it, reads keys and
hands the recording to its writer's thread.

Keys in the window: q / Esc quit, b next background, v next view (matte / original / alpha),
s save a snapshot (RGBA PNG), c keep everyone again; a click on a person keeps only them. Ctrl-C (and SIGTERM/SIGHUP where the command line turns them into
`Terminated`) stops like q: the recording is finished, not discarded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from ..compose import check_background
from ..concurrency import BackgroundConsumer
from ..engine import MattingEngine
from ..errors import OutputError
from ..io.atomic import check_target
from ..io.camera import TIME_BASE, CameraSource, CameraSpec
from ..io.formats import output_form
from ..io.video_writer import VideoWriter, open_writer
from ..options import log
from ..pipeline.chain import StageChain
from ..pipeline.runner import run_chain
from ..pipeline.subject import SubjectGates
from ..plan import describe_run, plan_run
from ..signals import Terminated
from ..subject import Selection
from ..tuning import ThreadTuner
from ..types import CapturedFrame, Rendered
from .views import VIEWS, BackgroundCycle, CvWindow, Display, draw_overlay, render_view

#: Longest side of the network's input for live use, per device type: small enough for real
#: time on a laptop CPU, the network's recommended 512 where a GPU has time to spare.
LIVE_NETWORK_SIZE = {"cpu": 320}
LIVE_NETWORK_SIZE_DEFAULT = 512

_QUIT_KEYS = {ord("q"), ord("Q"), 27}
_CHECKER = ("checker", "checkerboard", "transparent")


def live_downsample_ratio(height: int, width: int, device: torch.device | str = "cpu") -> float:
    """The downsample ratio that makes the network's input ~320 px on its long side on a CPU
    (512 elsewhere): `min(1, size / max(H, W))`."""
    kind = torch.device(device).type
    size = LIVE_NETWORK_SIZE.get(kind, LIVE_NETWORK_SIZE_DEFAULT)
    return min(1.0, size / max(height, width))


@dataclass
class LiveFrame:
    """What `on_frame` gets for each delivered frame."""

    index: int  # the source's capture number (gaps are dropped frames)
    capture_time: float  # time.monotonic() at capture
    rgb: np.ndarray  # (H,W,3) uint8 camera picture
    rgba: np.ndarray  # (H,W,4) uint8 straight RGBA matte (after smoothing)
    picture: np.ndarray  # (H,W,3) uint8 RGB of the current view, without overlay text
    latency: float  # seconds from capture to shown (window) / rendered and handed to the recorder


@dataclass
class LiveStats:
    """How a live run went."""

    frames: int = 0  # frames matted and delivered (shown and/or recorded)
    dropped: int = 0  # frames the source captured between those, never processed
    seconds: float = 0.0  # first delivery to last
    fps: float = 0.0  # delivered frames per second
    latency_mean_ms: float = 0.0  # capture -> shown (or rendered and handed to the recorder)
    latency_p95_ms: float = 0.0
    ratio: float | None = None  # the network's downsample ratio
    width: int = 0
    height: int = 0
    source_fps: float | None = None  # the camera's (or file's) nominal rate
    recorded: int = 0  # frames in the recording
    output: Path | None = None
    snapshots: list[Path] = field(default_factory=list)
    stopped_by: str = ""  # "end", "max-frames", "key", "interrupt", "callback"
    threads: int | None = None  # torch's threads at the end, as the CPU's tuner left them
    thread_switches: int = 0  # how often the tuner changed them
    subject: list[str] = field(default_factory=list)  # who was chosen and what became of them
    end_reason: str | None = None  # why the source ended, when it did
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def dropped_percent(self) -> float:
        seen = self.frames + self.dropped
        return 100.0 * self.dropped / seen if seen else 0.0

    def summary(self) -> str:
        """One line for the terminal."""
        text = (
            f"{self.frames} frames at {self.fps:.1f} fps, {self.dropped_percent:.0f}% of camera frames dropped, "
            f"latency mean {self.latency_mean_ms:.0f} ms / p95 {self.latency_p95_ms:.0f} ms"
        )
        if self.output is not None:
            text += f"; recorded {self.recorded} frames to {self.output}"
        if self.snapshots:
            text += f"; {len(self.snapshots)} snapshot(s) in {self.snapshots[0].parent}"
        return text


def save_snapshot(rgba: np.ndarray, folder: str | Path, index: int) -> Path:
    """Write one frame's `(H,W,4)` uint8 RGBA (straight alpha) as a PNG in `folder`; returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"vidmatte-{time.strftime('%Y%m%d-%H%M%S')}-{index:06d}"
    path = folder / f"{stem}.png"
    n = 1
    while path.exists():
        path = folder / f"{stem}-{n}.png"
        n += 1
    if not cv2.imwrite(str(path), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)):
        raise OutputError(f"cannot write snapshot {path}")
    return path


def run_live(
    source: CameraSource | CameraSpec,
    *,
    engine: MattingEngine,
    output: str | Path | None = None,
    background: str = "checker",
    smooth: float | None = None,
    window: bool | Display = True,
    max_frames: int | None = None,
    overwrite: bool = False,
    snapshot_dir: str | Path = ".",
    on_frame: Callable[[LiveFrame], bool | None] | None = None,
    view: str = "matte",
    quality: int | None = None,
    read_timeout: float = 5.0,
    subject: Selection | None = None,
) -> LiveStats:
    """Matte a live source until it ends, q/Esc, Ctrl-C, `max_frames`, or `on_frame` returns False.

    source: a `CameraSource` (opened here if it is not yet) or what picks one: camera index,
        /dev/videoX, or a video file (played in real time, like a camera).
    engine: its recurrent state is reset first. With `downsample_ratio="auto"` the network runs
        at `live_downsample_ratio` (on an engine sharing its model; the caller's is not changed).
    output: optional recording, any output form (.webm/.mov/folder/ with alpha as RGBA;
        .mp4/.mkv as a composite over the current background); timed by capture time, so it
        plays at real speed. A run stopped by the user leaves a complete file.
    background: the view's background: 'checker' (transparency), a colour, 'blur', an image or
        video file; `b` cycles through it and the built-in ones.
    smooth: AlphaSmoother strength for the temporal filter, None for none.
    window: True opens an OpenCV window (DisplayError where there is none), False runs
        headless, or a `Display` object to show into.
    on_frame: called with a `LiveFrame` after each frame is delivered; returning False stops.
    subject: who keeps their alpha from the start (frame `subject.frame` on); in the window a
        click on a person chooses them instead, `c` keeps everyone again.
    How the run uses the machine is logged (info) to the `vidmatte` logger.
    Raises InputError (no camera, camera busy), OutputError, DisplayError before anything runs.
    """
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; use one of {', '.join(VIEWS)}")
    if background.strip().lower() not in _CHECKER:
        check_background(background)
    if max_frames is not None and max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    if output is not None:
        form = output_form(output)  # OutputError for a name no writer takes, before the camera opens
        check_target(Path(output), folder=form == "png", overwrite=overwrite)

    stats = LiveStats(output=Path(output) if output is not None else None)
    with contextlib.ExitStack() as stack:
        display: Display | None = None
        if window is True:
            display = CvWindow()  # DisplayError now, before the camera is opened
        elif window is not False:
            display = window
        if display is not None:
            stack.callback(display.close)
        camera = source if isinstance(source, CameraSource) else CameraSource(source)
        stack.enter_context(camera)
        width, height = camera.width, camera.height
        stats.width, stats.height = width, height
        stats.source_fps = float(camera.frame_rate) if camera.frame_rate else None

        if engine.downsample_ratio == "auto":
            engine = engine.with_ratio(live_downsample_ratio(height, width, engine.device))
        stats.ratio = engine.ratio_for(height, width)
        plan = plan_run(engine, (height, width), smooth=bool(smooth), live=True)
        chain = StageChain(engine, plan, "rgba", smooth=smooth, scene_reset=True, warmup=0)
        if subject is not None:
            subject.check_frame(width, height)
        chain.subject = SubjectGates(subject, (width, height), float(camera.frame_rate or 30))
        log.info(describe_run(engine, engine.network_size(height, width), (height, width), "(live)"))
        backgrounds = BackgroundCycle(background, width, height, engine.device, engine.dtype)
        recorder: BackgroundConsumer[tuple[np.ndarray, int | None]] | None = None
        writer: VideoWriter | None = None
        if output is not None:
            writer = stack.enter_context(
                open_writer(
                    output,
                    width=width,
                    height=height,
                    frame_rate=None,
                    time_base=TIME_BASE,
                    alpha=True,
                    quality=quality,
                    overwrite=overwrite,
                )
            )
            recorder = stack.enter_context(BackgroundConsumer(_recording(writer), maxsize=2, name="record"))
        state = _LoopState(view=view)

        tuner: ThreadTuner | None = None

        def frames() -> Iterator[CapturedFrame]:
            nonlocal tuner
            # the chain runs inline (`plan.render_ahead` is off for live sources): from handing
            # out a frame to being asked for the next is that frame's whole processing. The
            # tuner starts here, inside the run's thread settings, which are restored after it.
            if plan.thread_ceiling:
                tuner = ThreadTuner(plan.thread_ceiling, plan.torch_threads or 1)
            while True:
                frame = camera.read_latest(timeout=read_timeout)
                if frame is None:
                    return
                started = time.perf_counter()
                yield frame
                if tuner is not None:
                    tuner.record(time.perf_counter() - started)

        deliver = _Delivery(
            backgrounds,
            display,
            recorder,
            writer.carries_alpha if writer else False,
            max_frames,
            Path(snapshot_dir),
            on_frame,
            stats,
            state,
            chain.subject,
        )
        try:
            run_chain(frames(), chain, deliver)
        except _Stop:
            pass
        except (KeyboardInterrupt, Terminated):
            # Ctrl-C, kill, a closed terminal: leave the with block normally, the recording is finished
            stats.stopped_by = "interrupt"
        finally:
            camera.close()
        stats.end_reason = camera.end_reason
        if tuner is not None:
            stats.threads, stats.thread_switches = tuner.kept, tuner.switches
        stats.subject = chain.subject.report()
    if writer is not None:
        stats.recorded = writer.frames_written
    _finish_stats(stats, state)
    return stats


def _recording(writer: VideoWriter) -> Callable[[tuple[np.ndarray, int | None]], None]:
    def write(item: tuple[np.ndarray, int | None]) -> None:
        writer.write(*item)

    return write


@dataclass
class _LoopState:
    view: str
    first_delivery: float | None = None
    last_delivery: float | None = None
    first_index: int | None = None
    last_index: int | None = None
    fps_smoothed: float = 0.0
    latency_smoothed: float = 0.0
    message: str = ""
    message_until: float = 0.0


class _Stop(Exception):
    """Raised out of the chain's sink when a key, `max_frames` or `on_frame` ends the run."""


@dataclass
class _Delivery:
    """The chain's sink: shows, records and accounts each matted frame and acts on keys and clicks."""

    backgrounds: BackgroundCycle
    display: Display | None
    recorder: BackgroundConsumer | None
    record_alpha: bool
    max_frames: int | None
    snapshot_dir: Path
    on_frame: Callable[[LiveFrame], bool | None] | None
    stats: LiveStats
    state: _LoopState
    subject: SubjectGates

    def __post_init__(self) -> None:
        self.stats.stopped_by = "end"

    def __call__(self, item: Rendered) -> None:
        for rgba, frame in zip(item.pictures, item.frames):
            assert isinstance(frame, CapturedFrame)
            self._one(rgba, frame)
            if self.max_frames is not None and self.stats.frames >= self.max_frames:
                self._stop("max-frames")

    def _stop(self, why: str) -> None:
        self.stats.stopped_by = why
        raise _Stop

    def _one(self, rgba: np.ndarray, frame: CapturedFrame) -> None:
        state, backgrounds, subject = self.state, self.backgrounds, self.subject
        rgb = frame.rgb
        picture = render_view(state.view, rgba, rgb, backgrounds.picture(rgb) if state.view == "matte" else None)
        if self.recorder is not None:
            if self.record_alpha:
                recorded = rgba
            elif state.view == "matte":
                recorded = picture
            else:
                recorded = render_view("matte", rgba, rgb, backgrounds.picture(rgb))
            self.recorder.put((recorded, frame.pts))
        key, click = -1, None
        problem = subject.problem()
        if problem is not None:
            _say(state, problem, seconds=4.0)
        if self.display is not None:
            bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
            self.display.show(draw_overlay(bgr, _overlay_lines(state, backgrounds.name, self.recorder is not None)))
            key, click = self.display.poll_key(), self.display.poll_click()
        if click is not None:
            subject.choose(Selection.at(*click))
            _say(state, f"subject: the person at {click[0]},{click[1]} (c: everyone)")
        delivered = time.monotonic()
        latency = delivered - frame.captured
        _account(self.stats, state, frame, delivered, latency)

        if (
            self.on_frame is not None
            and self.on_frame(LiveFrame(frame.index, frame.captured, rgb, rgba, picture, latency)) is False
        ):
            self._stop("callback")
        if key in _QUIT_KEYS:
            self._stop("key")
        if key in (ord("b"), ord("B")):
            backgrounds.advance()
            _say(state, f"background: {backgrounds.name}")
        elif key in (ord("c"), ord("C")):
            subject.choose(None)
            _say(state, "subject: everyone")
        elif key in (ord("v"), ord("V")):
            state.view = VIEWS[(VIEWS.index(state.view) + 1) % len(VIEWS)]
            _say(state, f"view: {state.view}")
        elif key in (ord("s"), ord("S")):
            try:
                path = save_snapshot(rgba, self.snapshot_dir, frame.index)
            except (OutputError, OSError) as error:  # a failed snapshot must not end the session
                _say(state, f"snapshot failed: {error}")
            else:
                self.stats.snapshots.append(path)
                _say(state, f"saved {path.name}")


def _account(stats: LiveStats, state: _LoopState, frame: CapturedFrame, delivered: float, latency: float) -> None:
    stats.frames += 1
    stats.latencies_ms.append(latency * 1000)
    if state.first_index is None:
        state.first_index = frame.index
    state.last_index = frame.index
    if state.last_delivery is not None:
        interval = delivered - state.last_delivery
        if interval > 0:
            rate = 1 / interval
            state.fps_smoothed = rate if not state.fps_smoothed else 0.9 * state.fps_smoothed + 0.1 * rate
    state.latency_smoothed = latency if stats.frames == 1 else 0.9 * state.latency_smoothed + 0.1 * latency
    if state.first_delivery is None:
        state.first_delivery = delivered
    state.last_delivery = delivered


def _finish_stats(stats: LiveStats, state: _LoopState) -> None:
    if state.first_index is not None and state.last_index is not None:
        stats.dropped = state.last_index - state.first_index + 1 - stats.frames
    if state.first_delivery is not None and state.last_delivery is not None:
        stats.seconds = state.last_delivery - state.first_delivery
        if stats.frames > 1 and stats.seconds > 0:
            stats.fps = (stats.frames - 1) / stats.seconds
    if stats.latencies_ms:
        latencies = np.asarray(stats.latencies_ms)
        stats.latency_mean_ms = float(latencies.mean())
        stats.latency_p95_ms = float(np.percentile(latencies, 95))


def _overlay_lines(state: _LoopState, background: str, recording: bool) -> list[str]:
    lines = [
        f"{state.fps_smoothed:4.1f} fps  latency {state.latency_smoothed * 1000:4.0f} ms  "
        f"view {state.view}  bg {Path(background).name if '/' in background else background}"
        + ("  REC" if recording else "")
    ]
    if state.message and time.monotonic() < state.message_until:
        lines.append(state.message)
    else:
        lines.append("q quit  b background  v view  s snapshot  click: choose a person")
    return lines


def _say(state: _LoopState, message: str, seconds: float = 2.0) -> None:
    state.message, state.message_until = message, time.monotonic() + seconds
