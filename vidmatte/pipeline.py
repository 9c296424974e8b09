"""The one loop: source -> matter (recurrent state) -> temporal -> compose -> sink.

`matte_video` is what `vidmatte clip.mp4` runs; `matte_frames` is the same loop over any
iterable of frames for callers that bring their own source and sink.
"""

from __future__ import annotations

import os
from contextlib import closing, contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .compose import OUTPUT_TYPES, Background, check_background, make_background, render
from .concurrency import BackgroundConsumer, background_iter
from .edges import VideoEdgeRefiner
from .errors import OutputError
from .fused_render import FusedRenderer, fused_render_supported
from .io import VideoFrame, VideoReader, open_writer, output_form
from .matter import Matter
from .model.network import Coarse, Features
from .temporal import AlphaSmoother, SceneCutDetector, split_at_cuts

T = TypeVar("T")

#: Default passes of a shot's first frame that prime the recurrent state (benchmarks/video_quality.md).
WARMUP_PASSES = 4

#: Chunks queued between stages: enough to absorb jitter; each holds full-resolution frames.
QUEUE = 2

#: Output forms whose container carries an alpha channel.
ALPHA_FORMS = ("webm", "prores", "png")


@dataclass
class VideoOptions:
    """What to write. `output_type` None means rgba where the form carries alpha, else composite."""

    output_type: str | None = None
    background: str = "green"
    quality: int | None = None
    overwrite: bool = False
    chunk_size: int | None = None  # frames per forward; None picks by device
    smooth: float | None = None  # AlphaSmoother strength; None = off
    scene_reset: bool = True  # reset the recurrent state (and smoother) at hard cuts
    warmup: int = WARMUP_PASSES  # passes of each shot's first frame priming the recurrent state; 0 = off
    refine: bool = False  # closed-form matting in every frame's edge band (vidmatte.edges) where the
    # network runs below full resolution (ratio < 1); slow


def default_chunk_size(device: torch.device) -> int:
    """Frames per network call: 1 on CPU, where full-resolution tensors of several frames fall
    out of cache and cost ~30% more per frame (measured at 720p), 4 on GPUs, which want batches."""
    return 1 if device.type == "cpu" else 4


@contextmanager
def stage_settings(device: torch.device) -> Iterator[None]:
    """Process-wide settings for one video run on `device`, restored afterwards.

    CPU: each of the two model stages gets half the cores. The recurrent half and the
    full-resolution half run on separate threads; each sharing one torch pool of all cores
    made them fight: 9.8 -> 15.0 frames/s at 720p on 2 cores (benchmarks/speed.md). Torch's
    thread count is process-wide, hence set and restored here.
    CUDA: cuDNN times its convolution algorithms once per shape and keeps the fastest; every
    frame of a clip has the same shape, so the search pays for itself within a few frames.
    """
    if device.type == "cuda":
        before_benchmark = torch.backends.cudnn.benchmark
        torch.backends.cudnn.benchmark = True
        try:
            yield
        finally:
            torch.backends.cudnn.benchmark = before_benchmark
        return
    if device.type != "cpu":
        yield
        return
    before, before_cv = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    # OpenCV's own pool would fan every resize out over all cores, under the stages' feet
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        cv2.setNumThreads(before_cv)


def separate_encoder_stage(device: torch.device) -> bool:
    """Whether the encoder gets a thread of its own, after the one that renders the pictures.

    On a GPU the model is far faster than the codecs, so the encoder (pixel-format conversion
    and compression) is the slowest stage and must never wait for the GPU's readback. On a
    2-core CPU the split measured within noise (720p, 150 frames, medians of 3 alternated runs:
    mp4 10.9 s inline vs 11.3 s split, webm 13.1 vs 12.4 s), so the CPU keeps three threads.
    """
    return device.type != "cpu"


def default_output_path(source: str | Path) -> Path:
    """`clip.mp4` -> `clip_matte.webm`, next to the input."""
    source = Path(source)
    return source.with_name(f"{source.stem}_matte.webm")


def resolve_output_type(form: str, output_type: str | None) -> str:
    """The output type for a form, refusing combinations the container cannot hold."""
    if output_type is None:
        return "rgba" if form in ALPHA_FORMS else "composite"
    if output_type not in OUTPUT_TYPES:
        raise OutputError(f"unknown output type {output_type!r}; use one of {', '.join(OUTPUT_TYPES)}")
    if output_type == "rgba" and form not in ALPHA_FORMS:
        raise OutputError(f"{form} video cannot carry alpha; write .webm, .mov or a folder/, "
                          f"or use --output-type composite")
    return output_type


def _chunks(frames: Iterable[VideoFrame], size: int) -> Iterator[list[VideoFrame]]:
    chunk: list[VideoFrame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _coarse_mattes(frames: Iterable[VideoFrame], matter: Matter, chunk_size: int | None,
                   detector: SceneCutDetector | None = None, warmup: int = 0, encode_ahead: bool | None = None
                   ) -> Iterator[tuple[Coarse, np.ndarray, list[VideoFrame], bool]]:
    """(coarse matte, stacked RGB, source frames, starts a new shot) per chunk.

    Decoding runs on a worker thread ahead. With a detector, chunks are split at hard cuts and
    the recurrent state is reset there, so no memory of the old shot smears the new one. With
    `warmup`, each shot's first frame primes the state that many times before it is matted.
    """
    size = chunk_size or default_chunk_size(matter.device)
    # On CPU the stateless encoder runs on the decoding thread, ahead of the recurrent decoder:
    # three stages instead of two keep both cores busy (benchmarks/speed.md). A GPU gains
    # nothing from that, but the decoding thread uploads the frames there, so pinning and
    # copying them overlaps the network's work on the previous chunk.
    if encode_ahead is None:
        encode_ahead = matter.device.type == "cpu"

    def decoded() -> Iterator[tuple[list[VideoFrame], np.ndarray, Features | torch.Tensor]]:
        for chunk in _chunks(frames, size):
            rgb = np.stack([f.rgb for f in chunk])
            yield chunk, rgb, matter.encode(rgb) if encode_ahead else matter.to_tensor(rgb)

    def part(ready: Features | torch.Tensor, start: int, end: int) -> Features | torch.Tensor:
        return ready.frames(start, end) if isinstance(ready, Features) else ready[start:end]

    first = True
    with closing(background_iter(decoded(), maxsize=QUEUE, name="decode")) as ahead:
        for chunk, rgb, ready in ahead:
            parts = split_at_cuts(rgb, detector) if detector is not None else [(0, len(chunk), False)]
            for start, end, new_shot in parts:
                if new_shot:
                    matter.reset()
                if first or new_shot:
                    matter.prime(part(ready, start, start + 1), warmup)
                    first = False
                yield matter.coarse(part(ready, start, end)), rgb[start:end], chunk[start:end], new_shot


def matte_frames(frames: Iterable[VideoFrame], matter: Matter, output_type: str,
                 background: Background | None = None, chunk_size: int | None = None, warmup: int = 0
                 ) -> Iterator[tuple[np.ndarray, VideoFrame]]:
    """Matte a stream of frames of one clip; yields (picture, source frame) in order."""
    matter.reset()
    fused = FusedRenderer(matter, output_type, background) if fused_render_supported(matter, output_type) else None
    for coarse, rgb, chunk, _ in _coarse_mattes(frames, matter, chunk_size, warmup=warmup):
        if fused is not None:
            pictures = fused(coarse, rgb)
        else:
            pictures = render(matter.refine(coarse), output_type, rgb, background)
        yield from zip(pictures, chunk)


@dataclass(frozen=True)
class ClipSpec:
    """What the writer needs to know of a clip before its first frame."""

    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    frame_count: int | None = None  # for the progress bar
    audio_from: Path | None = None  # copy (or transcode) this file's audio track
    name: str = ""


def write_clip(frames: Iterable[VideoFrame], output: str | Path, clip: ClipSpec, *, matter: Matter,
               options: VideoOptions, progress: bool = False) -> None:
    """The loop every clip goes through: frames -> recurrent half -> full-resolution half ->
    smoothing -> compose -> encoder, with decoding, inference and encoding overlapped.

    `output` is written atomically (nothing is left there unless the whole clip was written).
    """
    output_type = resolve_output_type(output_form(output), options.output_type)
    check_background(options.background)
    matter.reset()
    background = None
    if output_type == "composite":
        background = make_background(options.background, clip.width, clip.height, matter.device, matter.dtype)
    smoother = AlphaSmoother(options.smooth) if options.smooth else None
    detector = SceneCutDetector() if options.scene_reset else None
    # the refinement recovers detail the network's reduced-resolution pass lost; where it ran at
    # full resolution it only adds noise (benchmarks/video_quality.md), so it is skipped there
    edges = VideoEdgeRefiner() if options.refine and matter.ratio_for(clip.height, clip.width) < 1 else None
    # with nothing between the guided filter and the picture, both run fused (on CPU)
    fused = None
    if edges is None and smoother is None and fused_render_supported(matter, output_type):
        fused = FusedRenderer(matter, output_type, background)

    def write_chunk(item: tuple[Coarse, np.ndarray, list[VideoFrame], bool]) -> None:
        # The full-resolution half (refiner, smoothing, composing, encoding) runs here, so the
        # recurrent half on the caller's thread can start the next frame meanwhile.
        coarse, rgb, chunk, new_shot = item
        if fused is not None:
            pictures = fused(coarse, rgb)
        else:
            matte = matter.refine(coarse)
            if edges is not None:
                if new_shot:
                    edges.reset()
                matte = edges(matte, rgb)
            if smoother is not None:
                if new_shot:
                    smoother.reset()
                matte = smoother(matte, rgb)
            pictures = render(matte, output_type, rgb, background)
        encode((pictures, chunk))

    def encode_pictures(item: tuple[np.ndarray, list[VideoFrame]]) -> None:
        for picture, frame in zip(*item):
            writer.write(picture, frame.pts)

    # the settings are entered first and left last: they change only while no worker runs
    with stage_settings(matter.device), \
            open_writer(output, width=clip.width, height=clip.height, frame_rate=clip.frame_rate,
                        time_base=clip.time_base, alpha=output_type == "rgba", audio_from=clip.audio_from,
                        quality=options.quality, overwrite=options.overwrite) as writer, \
            tqdm(total=clip.frame_count, unit="frame", disable=not progress, dynamic_ncols=True,
                 desc=clip.name) as bar, \
            _maybe_in_background(encode_pictures, separate_encoder_stage(matter.device), "encode") as encode, \
            BackgroundConsumer(write_chunk, maxsize=QUEUE, name="render") as sink:
        # closing(): on an error or Ctrl-C the decoding thread is stopped here and now, not when
        # the interpreter shuts down (where joining a thread can hang)
        with closing(_coarse_mattes(frames, matter, options.chunk_size, detector, options.warmup)) as items:
            for item in items:
                sink.put(item)
                bar.update(len(item[2]))


@contextmanager
def _maybe_in_background(consume: Callable[[T], None], wanted: bool, name: str) -> Iterator[Callable[[T], None]]:
    """What to call with each item: `consume` itself, or when `wanted` the `put` of a
    BackgroundConsumer running it on a thread of its own."""
    if not wanted:
        yield consume
        return
    with BackgroundConsumer(consume, maxsize=QUEUE, name=name) as consumer:
        yield consumer.put


def matte_video(source: str | Path, output: str | Path | None = None, *, matter: Matter | None = None,
                options: VideoOptions | None = None, progress: bool = False) -> Path:
    """Matte a video file into `output` (default `<stem>_matte.webm`); returns the output path.

    The output's form follows its name (.webm VP9+alpha, .mov ProRes 4444, folder/ PNG
    sequence, .mp4/.mkv H.264 composite); frame count, timestamps and audio follow the source.
    Nothing is left at `output` unless the whole clip was written.
    """
    options = options or VideoOptions()
    source = Path(source)
    # keep the caller's spelling: a trailing '/' (which Path drops) asks for a PNG folder
    spec = output if output is not None else default_output_path(source)
    target = Path(spec)
    resolve_output_type(output_form(spec), options.output_type)  # refuse before opening the source
    check_background(options.background)
    if target.exists() and target.resolve() == source.resolve():
        raise OutputError(f"output {target} is the input itself; choose another -o")
    with VideoReader(source) as reader:
        info = reader.info
        clip = ClipSpec(info.width, info.height, info.frame_rate, info.time_base, info.frame_count,
                        audio_from=source, name=source.name)
        write_clip(reader, spec, clip, matter=matter or Matter(), options=options, progress=progress)
    return target
