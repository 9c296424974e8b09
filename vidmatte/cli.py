"""Command line: parse options, call `vidmatte.api.matte_path`, turn user errors into one line and an exit code.

Nothing heavy is imported until a run starts, so `vidmatte --help` answers at once.
"""

from __future__ import annotations

import logging
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from . import __version__
from .distributed.split import DEFAULT_PREROLL
from .errors import FolderFailures, VidmatteError
from .io.formats import OUTPUT_TYPES
from .options import (
    PRECISION_CHOICES,
    PRECISION_HELP,
    SMOOTH_STRENGTH,
    STILL_PASSES,
    WARMUP_PASSES,
    MatteOptions,
    Progress,
    log,
)

if TYPE_CHECKING:
    from .api import MatteResult


def _ratio(ctx: click.Context, param: click.Parameter, value: str) -> float | str:
    if value == "auto":
        return value
    try:
        ratio = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number; use 'auto' or a number in (0, 1]") from None
    if not 0 < ratio <= 1:
        raise click.BadParameter(f"{value} is not in (0, 1]; use 'auto' or a number in (0, 1]")
    return ratio


def _fps(ctx: click.Context, param: click.Parameter, value: str) -> Fraction:
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"{value!r} is not a frame rate; use e.g. 25 or 30000/1001") from None
    if not 0 < rate <= 1000:
        raise click.BadParameter(f"{value} is not a frame rate between 0 and 1000")
    return rate


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input", required=False, type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(),  # a str, so a trailing '/' (PNG folder) survives
    help="Output path; its form follows the name: .webm (VP9+alpha, default), .mov (ProRes 4444+alpha), "
    "folder/ (RGBA PNGs), .mp4/.mkv (H.264 composite).",
)
@click.option(
    "--output-type",
    type=click.Choice(OUTPUT_TYPES),
    help="rgba (default where the form carries alpha), alpha (grey matte), foreground (on black), "
    "composite (default for .mp4/.mkv).",
)
@click.option(
    "--background",
    default=None,
    help="For composites: a colour (name, #rrggbb), an image, a video (looped), or 'blur' "
    "[default: green; live: checker, which is live-only].",
)
@click.option(
    "--downsample-ratio",
    default="auto",
    show_default=True,
    callback=_ratio,
    help="Fraction of the input size the network runs at; auto = min(1, 512/longest side).",
)
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@click.option(
    "--precision",
    default="auto",
    show_default=True,
    type=click.Choice(PRECISION_CHOICES),
    help=PRECISION_HELP,
)
@click.option(
    "--quality", type=int, help="Encoder CRF, lower is better (WebM 0-63, default 30; H.264 0-51, default 18)."
)
@click.option("-y", "--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--smooth", is_flag=True, help="Temporal smoothing of the alpha where the picture is still.")
@click.option(
    "--smooth-strength",
    type=click.FloatRange(0, 1, max_open=True),
    default=SMOOTH_STRENGTH,
    show_default=True,
    help="Weight of the past at a perfectly still pixel (tuned in benchmarks/temporal.md).",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=WARMUP_PASSES,
    show_default=True,
    help="Video: passes of each shot's first frame that prime the network's memory before output; 0 = off.",
)
@click.option(
    "--refine/--no-refine",
    default=None,
    help="Closed-form matting in the edge band (full resolution for images, half for video), foreground "
    "colour re-estimated there [default: on for images, off for video (slow, see "
    "benchmarks/video_quality.md)].",
)
@click.option("--no-scene-reset", is_flag=True, help="Keep the recurrent state across detected hard cuts.")
@click.option("--webcam", is_flag=True, help="Live preview from a camera with the background replaced.")
@click.option("--camera", help="Live source: camera index N, /dev/videoX, or a video file (implies --webcam).")
@click.option(
    "--every-frame",
    is_flag=True,
    help="Live mode with a video file as the camera: matte every frame instead of playing it in real "
    "time (where frames the matting has no time for are dropped, as with a camera).",
)
@click.option("--no-window", is_flag=True, help="Live mode without a window (e.g. with -o rec.webm).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Live mode: stop after N frames.")
@click.option("--sequence", is_flag=True, help="INPUT is a folder of numbered frames: matte it as one clip.")
@click.option(
    "--fps", default="25", show_default=True, callback=_fps, help="Frame rate of a --sequence (e.g. 25, 30000/1001)."
)
@click.option(
    "--passes",
    type=click.IntRange(min=1),
    default=STILL_PASSES,
    show_default=True,
    help="Stills: most network passes over the picture until alpha settles; 1 = single pass.",
)
@click.option(
    "--subject",
    "subjects",
    multiple=True,
    metavar="X,Y|largest",
    help="Keep only the person at pixel X,Y (repeat for several people), or the largest person "
    "(chosen again at each hard cut); everyone else goes to alpha 0. Live: click a person.",
)
@click.option(
    "--subject-box",
    "subject_boxes",
    multiple=True,
    metavar="X0,Y0,X1,Y1",
    help="Keep only the person (or people) inside this box; repeatable.",
)
@click.option(
    "--subject-mask",
    type=click.Path(),
    help="A mask image of the subject (white, or its alpha) on the subject frame, the frame's size.",
)
@click.option(
    "--subject-frame",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="The frame the subject options refer to (frames before it are tracked backward).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Run on N Ray workers, each holding one model (needs vidmatte[ray]): files in parallel, long "
    "clips split at hard cuts and into segments, joined into exactly the sequential output.",
)
@click.option(
    "--cluster",
    metavar="ADDRESS|auto",
    help="Join this Ray cluster ('auto': RAY_ADDRESS or the local one) instead of starting Ray in the run.",
)
@click.option(
    "--gpus-per-worker", type=click.FloatRange(min=0, min_open=True), help="GPU share each worker asks Ray for."
)
@click.option(
    "--segment-frames",
    type=click.IntRange(min=1),
    help="Longest segment a clip is split into for workers [default: the longer of 10 s and 20x the preroll].",
)
@click.option(
    "--preroll",
    type=click.IntRange(min=0),
    default=DEFAULT_PREROLL,
    show_default=True,
    help="Frames each segment starts early (run, then discarded) to settle the network's memory.",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar, no notices.")
@click.version_option(__version__, "--version")
def cli(
    input: Path | None, output: str | None, quiet: bool, webcam: bool, camera: str | None, sequence: bool, **flags: Any
) -> None:
    """Cut the people out of a video, image or folder and write it with an alpha channel.

    \b
      vidmatte clip.mp4                 -> clip_matte.webm (VP9 with alpha), audio kept
      vidmatte clip.mp4 -o clip.mov     -> ProRes 4444 with alpha
      vidmatte clip.mp4 -o frames/      -> RGBA PNG sequence
      vidmatte clip.mp4 -o green.mp4    -> composite over --background
      vidmatte photo.jpg                -> photo_matte.png (RGBA); -o x.webp lossless, -o x.jpg composite
      vidmatte shoot/                   -> shoot_matte/ (every image and video, same relative names)
      vidmatte clip.mp4 --workers 2     on 2 Ray workers: long clips split, joined exactly
      vidmatte frames/ --sequence -o clip.mov --fps 30   numbered frames as one clip
      vidmatte --webcam                 live preview (q quit, b background, v view, s snapshot)
      vidmatte serve                    HTTP API and web page on 127.0.0.1:7000 (vidmatte serve --help)
    """
    from .api import matte_path

    live = webcam or camera is not None
    if not live and input is None:
        raise click.UsageError("give an input video, image or folder (or --webcam)")
    options = _options(flags)
    strength_given = (
        click.get_current_context().get_parameter_source("smooth_strength") != click.core.ParameterSource.DEFAULT
    )
    with _Reporter(quiet) as reporter:
        if strength_given and not flags["smooth"]:
            log.warning("note: --smooth-strength does nothing without --smooth")
        result = matte_path(
            camera if live else input, output, options, camera=live, sequence=sequence, progress=reporter.progress
        )
    _conclude(result, quiet)


def _options(flags: dict[str, Any]) -> MatteOptions:
    """The options object for the flags (one place that maps flag names to options)."""
    return MatteOptions(
        output_type=flags["output_type"],
        background=flags["background"],
        quality=flags["quality"],
        overwrite=flags["overwrite"],
        device=flags["device"],
        precision=flags["precision"],
        downsample_ratio=flags["downsample_ratio"],
        smooth=flags["smooth_strength"] if flags["smooth"] else None,
        scene_reset=not flags["no_scene_reset"],
        warmup=flags["warmup"],
        refine=flags["refine"],
        passes=flags["passes"],
        fps=flags["fps"],
        window=not flags["no_window"],
        max_frames=flags["max_frames"],
        realtime=not flags["every_frame"],
        subjects=tuple(flags["subjects"]),
        subject_boxes=tuple(flags["subject_boxes"]),
        subject_mask=flags["subject_mask"],
        subject_frame=flags["subject_frame"],
        workers=flags["workers"] or (1 if flags["cluster"] else None),
        cluster=flags["cluster"],
        gpus_per_worker=flags["gpus_per_worker"],
        segment_frames=flags["segment_frames"],
        preroll=flags["preroll"],
    )


def _conclude(result: MatteResult, quiet: bool) -> None:
    if result.folder is not None:
        summary = result.folder
        if summary.failed:
            raise FolderFailures(
                f"{len(summary.failed)} of {len(summary.done) + len(summary.failed)} files failed "
                f"(listed above); {summary}"
            )
        if not quiet:
            click.echo(str(summary), err=True)
    elif result.live is not None:
        if not quiet:
            click.echo(f"live: {result.live.summary()}", err=True)
    elif not quiet:
        click.echo(f"wrote {result.output}", err=True)


class _Reporter(logging.Handler):
    """Progress bars (tqdm, one per kind of work: files, frames, passes, refine) and the library's
    notices on stderr, written above the bars. Quiet: no bars, warnings only."""

    def __init__(self, quiet: bool) -> None:
        super().__init__(logging.WARNING if quiet else logging.INFO)
        self.quiet = quiet
        self._bars: dict[str, Any] = {}

    def __enter__(self) -> _Reporter:
        log.addHandler(self)
        log.setLevel(logging.INFO)
        log.propagate = False  # said here once, not again by a root handler
        return self

    def __exit__(self, *exc: object) -> None:
        log.removeHandler(self)
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm

        tqdm.write(f"vidmatte: {record.getMessage()}", file=sys.stderr)

    def progress(self, report: Progress) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        bar = self._bars.get(report.task)
        if bar is not None and (report.done < bar.n or bar.desc != report.name):  # a new file or run
            bar.close()
            bar = None
        if bar is None:
            unit = {"files": "file", "frames": "frame", "passes": "pass"}.get(report.task, "step")
            bar = self._bars[report.task] = tqdm(
                total=report.total,
                unit=unit,
                desc=report.name,
                dynamic_ncols=True,
                leave=report.task in ("files", "frames"),
            )
        bar.total = report.total
        bar.update(report.done - bar.n)
        if report.total is not None and report.done >= report.total:
            bar.close()
            del self._bars[report.task]


def _fewer_malloc_arenas() -> None:
    """glibc gives every thread its own malloc arena; with frames allocated on one thread and
    freed on another each arena keeps its own high-water mark (+80 MB at 1080p, measured).
    Two arenas serve the pipeline's threads as fast. No-op off glibc."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> None:
    """Entry point: `vidmatte` and `python -m vidmatte`; `vidmatte serve ...` runs the server
    (a file named serve is matted as `./serve`)."""
    from .signals import Terminated, raise_on_termination

    _fewer_malloc_arenas()
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["serve"]:
        from .server.main import main as serve

        serve(args[1:])  # uvicorn handles SIGINT/SIGTERM itself: a clean shutdown re-queues running jobs
        return
    try:
        # kill, timeout, a closed terminal: cleaned up like Ctrl-C
        with raise_on_termination():
            cli.main(args=argv, prog_name="vidmatte", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _last_words("vidmatte: interrupted; the unfinished output was discarded")
        # the output is already cleaned up; skip interpreter shutdown, where a worker thread
        # stopped mid-operation (codec, torch) can hold the exit up
        os._exit(130)
    except Terminated as stop:
        _last_words(f"vidmatte: {stop}; the unfinished output was discarded")
        os._exit(stop.exit_code)
    except click.UsageError as error:  # one line, as every other error, pointing at the help
        click.echo(f"vidmatte: error: {error.format_message()} (see vidmatte --help)", err=True)
        sys.exit(error.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except VidmatteError as error:
        click.echo(f"vidmatte: error: {error}", err=True)
        sys.exit(error.exit_code)


def _last_words(message: str) -> None:
    """One line on stderr before a prompt exit; silent when stderr is gone (SIGHUP: the terminal closed)."""
    try:
        click.echo(message, err=True)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def entry() -> None:
    """Console entry point (`vidmatte`, `python -m vidmatte`): `main`, then a prompt exit.

    Everything is written, closed and flushed when `main` returns; tearing the interpreter down
    with torch loaded would add ~0.3 s to every run (benchmarks/speed.md). Errors leave through
    `main`'s own exits. Call `main` from Python, not this.
    """
    main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`| head`) or a closed stream
            pass
    os._exit(0)
