"""Command line: parse options, call the library, turn user errors into one line and an exit code."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from pathlib import Path

import click

from . import __version__
from .compose import OUTPUT_TYPES
from .errors import FolderFailures, InputError, VidmatteError
from .pipeline import WARMUP_PASSES


def _ratio(value: str) -> float | str:
    if value == "auto":
        return value
    try:
        ratio = float(value)
    except ValueError:
        raise click.BadParameter("use 'auto' or a number in (0, 1]") from None
    if not 0 < ratio <= 1:
        raise click.BadParameter("use 'auto' or a number in (0, 1]")
    return ratio


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("input", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(),  # a str, so a trailing '/' (PNG folder) survives
              help="Output path; its form follows the name: .webm (VP9+alpha, default), .mov (ProRes 4444+alpha), "
                   "folder/ (RGBA PNGs), .mp4/.mkv (H.264 composite).")
@click.option("--output-type", type=click.Choice(OUTPUT_TYPES),
              help="rgba (default where the form carries alpha), alpha (grey matte), foreground (on black), "
                   "composite (default for .mp4/.mkv).")
@click.option("--background", default=None,
              help="For composites: a colour (name, #rrggbb), an image, a video (looped), or 'blur' "
                   "[default: green; live: checker, which is live-only].")
@click.option("--downsample-ratio", default="auto", show_default=True,
              help="Fraction of the input size the network runs at; auto = min(1, 512/longest side).")
@click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda", "mps"]))
@click.option("--precision", default="auto", show_default=True, type=click.Choice(["auto", "fp32", "fp16", "bf16"]),
              help="auto = fp16 on CUDA, fp32 elsewhere.")
@click.option("--quality", type=int, help="Encoder CRF, lower is better (WebM 0-63, default 30; H.264 0-51, default 18).")
@click.option("-y", "--overwrite", is_flag=True, help="Replace an existing output.")
@click.option("--smooth", is_flag=True, help="Temporal smoothing of the alpha where the picture is still.")
@click.option("--smooth-strength", type=click.FloatRange(0, 1, max_open=True), default=0.94, show_default=True,
              help="Weight of the past at a perfectly still pixel (tuned in benchmarks/temporal.md).")
@click.option("--warmup", type=click.IntRange(min=0), default=None,
              help="Video: passes of each shot's first frame that prime the network's memory before output "
                   "[default: %d; 0 = off]." % WARMUP_PASSES)
@click.option("--refine/--no-refine", default=None,
              help="Closed-form matting in the edge band (full resolution for images, half for video), foreground "
                   "colour re-estimated there [default: on for images, off for video (slow, see "
                   "benchmarks/video_quality.md)].")
@click.option("--no-scene-reset", is_flag=True, help="Keep the recurrent state across detected hard cuts.")
@click.option("--webcam", is_flag=True, help="Live preview from a camera with the background replaced.")
@click.option("--camera", help="Live source: camera index N, /dev/videoX, or a video file (implies --webcam).")
@click.option("--no-window", is_flag=True, help="Live mode without a window (e.g. with -o rec.webm).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Live mode: stop after N frames.")
@click.option("--sequence", is_flag=True, help="INPUT is a folder of numbered frames: matte it as one clip.")
@click.option("--fps", default="25", show_default=True, help="Frame rate of a --sequence (e.g. 25, 30000/1001).")
@click.option("--passes", type=click.IntRange(min=1), default=None,
              help="Stills: most network passes over the picture until alpha settles [default: 16; 1 = single pass].")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.version_option(__version__, "--version")
def cli(input: Path | None, output: str | None, output_type: str | None, background: str | None,
        downsample_ratio: str, device: str, precision: str, quality: int | None, overwrite: bool,
        smooth: bool, smooth_strength: float, warmup: int | None, refine: bool | None, no_scene_reset: bool,
        webcam: bool, camera: str | None,
        no_window: bool, max_frames: int | None, sequence: bool, fps: str, passes: int | None, quiet: bool) -> None:
    """Cut the people out of a video, image or folder and write it with an alpha channel.

    \b
      vidmatte clip.mp4                 -> clip_matte.webm (VP9 with alpha), audio kept
      vidmatte clip.mp4 -o clip.mov     -> ProRes 4444 with alpha
      vidmatte clip.mp4 -o frames/      -> RGBA PNG sequence
      vidmatte clip.mp4 -o green.mp4    -> composite over --background
      vidmatte photo.jpg                -> photo_matte.png (RGBA); -o x.webp lossless, -o x.jpg composite
      vidmatte shoot/                   -> shoot_matte/ (every image and video, same relative names)
      vidmatte frames/ --sequence -o clip.mov --fps 30   numbered frames as one clip
      vidmatte --webcam                 live preview (q quit, b background, v view, s snapshot)
    """
    from .matter import Matter

    ratio = _ratio(downsample_ratio)
    if webcam or camera is not None:
        _live(camera, output, background, ratio, device, precision, quality, overwrite, no_window, max_frames, quiet,
              smooth_strength if smooth else None)
        return
    from .pipeline import VideoOptions, matte_video
    from .stills import DEFAULT_MAX_PASSES, is_image_path, matte_image

    if input is None:
        raise click.UsageError("give an input video, image or folder (or --webcam)")
    if not input.exists():
        raise InputError(f"{input} does not exist")
    options = VideoOptions(output_type=output_type, background=background or "green", quality=quality,
                           overwrite=overwrite, smooth=smooth_strength if smooth else None,
                           scene_reset=not no_scene_reset, warmup=WARMUP_PASSES if warmup is None else warmup,
                           refine=bool(refine))
    still_refine = refine is None or refine
    if sequence and not input.is_dir():
        raise InputError(f"--sequence needs a folder of numbered frames; {input} is a file")
    matter = Matter(device=device, precision=precision, downsample_ratio=ratio)
    passes = passes or DEFAULT_MAX_PASSES
    if input.is_dir() and not sequence:
        _folder(input, output, matter, options, passes, still_refine, quiet)
        return
    if sequence:
        from .folders import matte_sequence

        written = matte_sequence(input, output, fps=_fps(fps), matter=matter, options=options, progress=not quiet)
    elif is_image_path(input):
        written = matte_image(input, output, matter=matter, output_type=output_type, background=background,
                              passes=passes, refine=still_refine, overwrite=overwrite)
    else:
        written = matte_video(input, output, matter=matter, options=options, progress=not quiet)
    if not quiet:
        click.echo(f"wrote {written}", err=True)


def _fps(value: str) -> Fraction:
    try:
        rate = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise click.BadParameter(f"{value!r} is not a frame rate; use e.g. 25 or 30000/1001",
                                 param_hint="--fps") from None
    if not 0 < rate <= 1000:
        raise click.BadParameter(f"{value} is not a frame rate between 0 and 1000", param_hint="--fps")
    return rate


def _folder(source: Path, output: str | None, matter, options, passes: int, refine: bool, quiet: bool) -> None:
    from .folders import matte_folder

    summary = matte_folder(source, output, matter=matter, output_type=options.output_type,
                           background=options.background, passes=passes, refine=refine, video_options=options,
                           overwrite=options.overwrite, progress=not quiet)
    if summary.failed:
        raise FolderFailures(f"{len(summary.failed)} of {len(summary.done) + len(summary.failed)} files failed "
                             f"(listed above); {summary}")
    if not quiet:
        click.echo(str(summary), err=True)


def _live(camera: str | None, output: str | None, background: str | None, ratio: float | str, device: str,
          precision: str, quality: int | None, overwrite: bool, no_window: bool, max_frames: int | None,
          quiet: bool, smooth: float | None) -> None:
    from .io.camera import CameraSource
    from .live import run_live
    from .matter import Matter

    matter = Matter(device=device, precision=precision, downsample_ratio=ratio)
    from .temporal import AlphaSmoother

    smoother = AlphaSmoother(smooth) if smooth else None
    stats = run_live(CameraSource(camera if camera is not None else 0), matter=matter, output=output,
                     smoother=smoother,
                     background=background or "checker", window=not no_window, max_frames=max_frames,
                     overwrite=overwrite, quality=quality)
    if not quiet:
        click.echo(f"live: {stats.summary()}", err=True)


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
    """Entry point: `vidmatte` and `python -m vidmatte`."""
    from .signals import Terminated, raise_on_termination

    _fewer_malloc_arenas()
    try:
        # kill, timeout, a closed terminal: cleaned up like Ctrl-C; notices from the writers as one line each
        with raise_on_termination(), _notices_as_lines():
            cli.main(args=argv, prog_name="vidmatte", standalone_mode=False)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _last_words("vidmatte: interrupted; the unfinished output was discarded")
        # the output is already cleaned up; skip interpreter shutdown, where a worker thread
        # stopped mid-operation (codec, torch) can hold the exit up
        os._exit(130)
    except Terminated as stop:
        _last_words(f"vidmatte: {stop}; the unfinished output was discarded")
        os._exit(stop.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except VidmatteError as error:
        click.echo(f"vidmatte: error: {error}", err=True)
        sys.exit(error.exit_code)


@contextmanager
def _notices_as_lines() -> Iterator[None]:
    """Show each `OutputNotice` warning as "vidmatte: note: ..." (above a progress bar); other warnings as usual."""
    from tqdm import tqdm

    from .io.formats import OutputNotice

    with warnings.catch_warnings():  # restores showwarning and the filters afterwards
        warnings.simplefilter("always", OutputNotice)  # one per output, even for repeated sizes in a folder
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
            if issubclass(category, OutputNotice):
                tqdm.write(f"vidmatte: note: {message}", file=sys.stderr)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


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
