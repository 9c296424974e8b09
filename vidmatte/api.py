"""The library entry: `matte_path(input, output, options)` does whatever the command line does.

It routes any input (a video file, an image, a folder of media, a folder of numbered frames, a
camera) to its mode, with one options object and one progress callback; the command line, the
HTTP server and the workers all call this.

    from vidmatte.api import matte_path
    from vidmatte.options import MatteOptions
    result = matte_path("clip.mp4", "clip.mov", MatteOptions(smooth=0.9), progress=print)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import InputError
from .io.formats import default_output, input_kind, output_form, resolve_output_type, takes_quality
from .options import MatteOptions, ProgressCallback, log

if TYPE_CHECKING:
    from .engine import MattingEngine
    from .folders import FolderSummary
    from .live import LiveStats


@dataclass
class MatteResult:
    """What a run did: the input kind, the output written (a file or folder; None for a live run
    without recording), and the folder summary or live statistics where they apply."""

    kind: str  # "video", "image", "folder", "sequence" or "camera"
    output: Path | None
    folder: FolderSummary | None = None
    live: LiveStats | None = None


def open_engine(options: MatteOptions) -> MattingEngine:
    """A matting engine for the options' device, precision and downsample ratio."""
    from .engine import MattingEngine

    return MattingEngine(options.device, options.precision, options.downsample_ratio)


def scaled_out(options: MatteOptions) -> bool:
    """True when the options ask for Ray workers (`--workers`, `--cluster`)."""
    return options.workers is not None or options.cluster is not None


def check_scale_out(
    workers: int | None, segment_frames: int | None, preroll: int, gpus_per_worker: float | None
) -> None:
    """Refuse scale-out settings no run can use (InputError naming the option); for the options
    and for a `vidmatte.distributed.RayPool` made directly."""
    if workers is not None and workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if segment_frames is not None and segment_frames < 1:
        raise InputError(f"--segment-frames must be at least 1, got {segment_frames}")
    if preroll < 0:
        raise InputError(f"--preroll must be 0 or more, got {preroll}")
    if gpus_per_worker is not None and gpus_per_worker <= 0:
        raise InputError(f"--gpus-per-worker must be positive, got {gpus_per_worker:g}")


def check_options(options: MatteOptions) -> None:
    """Refuse option values no run can use, in one line naming the option (InputError)."""
    from .engine import check_ratio

    try:
        check_ratio(options.downsample_ratio)
    except ValueError as error:
        raise InputError(f"--downsample-ratio: {error}") from None
    if options.smooth is not None and not 0 <= options.smooth < 1:
        raise InputError(f"--smooth-strength must be in [0, 1), got {options.smooth:g}")
    if options.passes < 1:
        raise InputError(f"--passes must be at least 1, got {options.passes}")
    if options.warmup < 0:
        raise InputError(f"--warmup must be 0 or more, got {options.warmup}")
    if options.chunk_size is not None and options.chunk_size < 1:
        raise InputError(f"chunk size must be at least 1, got {options.chunk_size}")
    if options.max_frames is not None and options.max_frames < 1:
        raise InputError(f"--max-frames must be at least 1, got {options.max_frames}")
    if options.fps <= 0:
        raise InputError(f"--fps must be positive, got {options.fps}")
    check_scale_out(options.workers, options.segment_frames, options.preroll, options.gpus_per_worker)
    if options.subject_frame < 0:
        raise InputError(f"--subject-frame must be 0 or more, got {options.subject_frame}")
    if options.background is not None:
        from .compose import check_background

        check_background(options.background)  # a typo is an error, before any note that it would do nothing
    from .pipeline.subject import selection_of

    selection_of(options)  # a malformed point or box, a mask that cannot be read: said before any work


def matte_path(
    input: str | Path | int | None,
    output: str | Path | None = None,
    options: MatteOptions | None = None,
    *,
    camera: bool = False,
    sequence: bool = False,
    engine: MattingEngine | None = None,
    progress: ProgressCallback | None = None,
) -> MatteResult:
    """Matte `input` into `output` (None: the default name beside the input) and return what was done.

    input: a video or image file, a folder (every image and video in it), a folder of numbered
        frames with `sequence=True`, or with `camera=True` a camera (index, /dev/videoX, or a
        video file played like one; None: camera 0).
    output: the output's form follows its name (see `vidmatte.io.formats`); a trailing '/'
        names a PNG folder. For a camera, an optional recording.
    engine: reuse a loaded engine (e.g. a server's); else one is made for the options.
    progress: gets `Progress` reports ("frames", "files", "passes", "refine").
    Notices (how the run uses the machine; skipped and failed files) go to the `vidmatte` logger.
    Raises a `VidmatteError` subclass for anything the user can cause.
    """
    options = options or MatteOptions()
    check_options(options)
    if camera:
        for note in ineffective_options("camera", output, options):
            log.warning(note)
        return _live(0 if input is None else input, output, options, engine)
    if input is None:
        raise InputError("give an input video, image or folder (or a camera)")
    kind = input_kind(input, sequence=sequence)  # type: ignore[arg-type]
    path = Path(input)  # type: ignore[arg-type]
    for note in ineffective_options(kind, output if output is not None else default_output(path, kind), options):
        log.warning(note)
    if scaled_out(options) and kind in ("video", "folder"):
        from .distributed import driver

        if kind == "folder":
            summary = driver.matte_folder(path, output, options=options, progress=progress)
            return MatteResult(kind, summary.output_dir, folder=summary)
        target = output if output is not None else default_output(path, "video")
        return MatteResult(kind, driver.matte_clip(path, target, options=options, progress=progress))
    if kind == "folder":
        from .folders import matte_folder

        summary = matte_folder(path, output, engine=engine or open_engine(options), options=options, progress=progress)
        return MatteResult(kind, summary.output_dir, folder=summary)
    if kind == "sequence":
        from .folders import matte_sequence

        written = matte_sequence(path, output, engine=engine, options=options, progress=progress)
        return MatteResult(kind, written)
    if kind == "image":
        from .stills import matte_image

        written = matte_image(path, output, engine=engine or open_engine(options), options=options, progress=progress)
        return MatteResult(kind, written)
    from .pipeline.clip import matte_video

    target = output if output is not None else default_output(path, "video")
    # without an engine, the video path opens the source before loading the model: a bad file fails fast
    written = matte_video(path, target, engine=engine, options=options, progress=progress)
    return MatteResult(kind, written)


def ineffective_options(kind: str, target: str | Path | None, options: MatteOptions) -> list[str]:
    """Options given (not at their defaults) that do nothing for a run of this input kind into
    `target`, each as a one-line note: accepted, as FFmpeg does, but said, so a user who expects
    an effect is not left guessing."""
    defaults = MatteOptions()
    notes: list[str] = []

    def note(flag: str, why: str) -> None:
        notes.append(f"note: {flag} does nothing here: {why}")

    if kind in ("video", "sequence") and target is not None:
        form = output_form(target)  # an unwritable name is refused later, with its own message
        if options.quality is not None and not takes_quality(form):
            note("--quality", f"{form} output has no quality setting (only WebM and H.264 take a CRF)")
        output_type = resolve_output_type(target, options.output_type)
        if options.background is not None and output_type != "composite":
            note(
                "--background",
                f"{output_type} output has no background (composites do: .mp4/.mkv, or --output-type composite)",
            )
    if kind == "image":
        if (
            target is not None
            and options.background is not None
            and resolve_output_type(target, options.output_type, still=True) != "composite"
        ):
            note("--background", "the picture keeps its alpha (write .jpg, or --output-type composite)")
        if options.quality is not None:
            note("--quality", "stills are written losslessly (PNG/WebP) or at JPEG quality 95")
        for given, flag in (
            (options.smooth is not None, "--smooth"),
            (options.warmup != defaults.warmup, "--warmup"),
            (not options.scene_reset, "--no-scene-reset"),
        ):
            if given:
                note(flag, "it acts between video frames, and this is a still")
    if kind in ("video", "sequence", "camera") and options.passes != defaults.passes:
        note("--passes", "it bounds still mode, and this is a video")
    if kind != "sequence" and options.fps != defaults.fps:
        note("--fps", "it times a --sequence of pictures")
    if kind in ("image", "sequence", "camera") and scaled_out(options):
        note("--workers", "Ray workers run videos and folders; this runs in one process")
    if kind != "camera":
        for given, flag in (
            (not options.window, "--no-window"),
            (options.max_frames is not None, "--max-frames"),
            (not options.realtime, "--every-frame"),
        ):
            if given:
                note(flag, "it is for live mode (--webcam / --camera)")
    return notes


def _live(
    spec: str | Path | int, output: str | Path | None, options: MatteOptions, engine: MattingEngine | None
) -> MatteResult:
    from .io.camera import CameraSource
    from .live import run_live
    from .pipeline.subject import selection_of

    engine = engine or open_engine(options)
    stats = run_live(
        CameraSource(spec, realtime=options.realtime),
        engine=engine,
        output=output,
        background=options.background or "checker",
        smooth=options.smooth,
        window=options.window,
        max_frames=options.max_frames,
        overwrite=options.overwrite,
        quality=options.quality,
        subject=selection_of(options),
    )
    for line in stats.subject:
        log.info("%s", line)
    return MatteResult("camera", stats.output, live=stats)
