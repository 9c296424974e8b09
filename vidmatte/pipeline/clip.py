"""One clip from a source to an output file or folder: plan, chain, runner and writer put together.

`matte_source` is what every clip goes through (video files, frame sequences, and the segments
workers write); `matte_video` opens a video file for it.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing
from pathlib import Path

import numpy as np

from ..compose import check_background, make_background
from ..engine import MattingEngine
from ..errors import InputError, OutputError
from ..io.atomic import check_target
from ..io.formats import default_output, output_form, resolve_output_type
from ..io.sources import FrameSource
from ..io.video_reader import VideoReader
from ..io.video_writer import open_writer
from ..options import MatteOptions, Progress, ProgressCallback, log
from ..plan import applied, describe_run, plan_run
from ..types import ClipInfo, Rendered, VideoFrame
from .chain import Prepared, StageChain
from .runner import chunks, run_chain
from .subject import SubjectGates, prefix_gates, selection_of


def build_chain(
    engine: MattingEngine,
    clip: ClipInfo,
    output_type: str,
    options: MatteOptions,
    reopen: Callable[[], FrameSource] | None = None,
) -> StageChain:
    """The chain for a file-like clip (every frame, in order) with the options' filters and
    subject choice. A choice on a frame after the first needs `reopen` (a fresh source of the
    same clip) for the frames before it."""
    plan = plan_run(
        engine,
        (clip.height, clip.width),
        smooth=bool(options.smooth),
        refine=options.video_refine,
        chunk_size=options.chunk_size,
    )
    background = None
    if output_type == "composite":
        background = make_background(options.video_background, clip.width, clip.height, engine.device, engine.dtype)
    chain = StageChain(
        engine,
        plan,
        output_type,
        background,
        smooth=options.smooth,
        scene_reset=options.scene_reset,
        warmup=options.warmup,
    )
    selection = selection_of(options)
    if selection is not None:
        size, fps = (clip.width, clip.height), float(clip.frame_rate or 30)
        selection.check_frame(*size)  # before any work
        if selection.frame > 0:
            if reopen is None:
                raise InputError("--subject-frame after the first frame needs a file or a frame sequence")
            chain.subject = prefix_gates(reopen, chain, selection, size, fps)
        else:
            chain.subject = SubjectGates(selection, size, fps)
    return chain


def check_video_job(output: str | Path, options: MatteOptions) -> str:
    """Refuse what cannot work before any input is opened or the model loaded; returns the output type."""
    output_type = resolve_output_type(output, options.output_type)
    if options.background is not None or output_type == "composite":
        check_background(options.video_background)  # a given one is checked even where unused: a typo
    check_target(Path(output), folder=output_form(output) == "png", overwrite=options.overwrite)
    return output_type


def matte_source(
    source: FrameSource,
    output: str | Path,
    *,
    engine: MattingEngine,
    options: MatteOptions,
    progress: ProgressCallback | None = None,
    reopen: Callable[[], FrameSource] | None = None,
) -> Path:
    """Matte every frame of `source` into `output` (its form follows the name: .webm VP9+alpha,
    .mov ProRes 4444, folder/ PNG sequence, .mp4/.mkv H.264 composite); returns the output path.

    Timestamps and audio follow the source. Nothing is left at `output` unless the whole clip
    was written. `progress` gets a "frames" report as each chunk is written; how the run uses
    the machine is logged (info), and so is who was chosen (`options.subjects`...) and why.
    `reopen` gives a fresh source of the same clip (for a subject chosen on a later frame).
    """
    clip = source.clip
    output_type = check_video_job(output, options)
    chain = build_chain(engine, clip, output_type, options, reopen)
    if options.video_refine and not chain.plan.refine_edges:
        log.warning(
            "note: --refine does nothing here: the network already runs at full resolution on %dx%d "
            "frames, with no detail to recover",
            clip.width,
            clip.height,
        )
    log.info(describe_run(engine, engine.network_size(clip.height, clip.width), (clip.height, clip.width)))
    done = 0

    with open_writer(
        output,
        width=clip.width,
        height=clip.height,
        frame_rate=clip.frame_rate,
        time_base=clip.time_base,
        alpha=output_type == "rgba",
        audio_from=clip.audio_from,
        quality=options.quality,
        overwrite=options.overwrite,
    ) as writer:

        def write(rendered: Rendered) -> None:
            nonlocal done
            for picture, frame in zip(rendered.pictures, rendered.frames):
                writer.write(picture, frame.pts)
            done += len(rendered)
            if progress is not None:
                progress(Progress("frames", done, clip.frame_count, clip.name))

        run_chain(source, chain, write)
    if chain.subject is not None:
        for line in chain.subject.report():
            log.info("%s", line)
    return Path(output)


def matte_video(
    source: str | Path,
    output: str | Path | None = None,
    *,
    engine: MattingEngine | None = None,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Matte a video file into `output` (default `<stem>_matte.webm`); returns the output path.

    See `matte_source`. `engine` defaults to a new `MattingEngine` for the options' device.
    """
    options = options or MatteOptions()
    source = Path(source)
    # keep the caller's spelling: a trailing '/' (which Path drops) asks for a PNG folder
    spec = output if output is not None else default_output(source, "video")
    check_video_job(spec, options)  # refuse before opening the source
    if Path(spec).exists() and Path(spec).resolve() == source.resolve():
        raise OutputError(f"output {spec} is the input itself; choose another -o")
    with VideoReader(source) as reader:
        engine = engine or MattingEngine(options.device, options.precision, options.downsample_ratio)
        matte_source(
            reader, spec, engine=engine, options=options, progress=progress, reopen=lambda: VideoReader(source)
        )
    return Path(spec)


def matte_frames(frames: Iterable[VideoFrame], chain: StageChain) -> Iterator[tuple[np.ndarray, VideoFrame]]:
    """The chain over any iterable of frames of one clip, for callers with their own sink:
    yields (picture, frame) in order. The stages run on the caller's thread, the source is read
    on a thread of its own where the plan says so (a bounded distance ahead)."""
    from ..concurrency import background_iter

    chain.reset()
    ahead: Generator[Prepared, None, None] = (chain.front(c) for c in chunks(frames, chain.plan.front_chunk))
    if chain.plan.read_ahead:
        ahead = background_iter(ahead, maxsize=chain.plan.queue, name="decode")
    with applied(chain.plan), closing(ahead):
        for item in ahead:
            for chunk in chain.recurrent(item):
                rendered = chain.finish(chunk)
                yield from zip(rendered.pictures, rendered.frames)
