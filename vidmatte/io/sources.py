"""Frame sources: everything the pipeline mattes comes through one protocol.

A `FrameSource` is a context manager with a `clip` description (size, rate, time base, an
estimated frame count, where the audio comes from) and an iterator of `VideoFrame`s in order.
Three kinds satisfy it:

- `VideoReader`: a video file, every frame with its exact timestamp;
- `ImageSequenceSource`: a folder of numbered pictures, timed at a given frame rate;
- `CameraSource`: a camera (or a file standing in for one), newest frame only (`live` is True:
  frames the consumer had no time for are dropped, so nothing may read ahead of the consumer).

`open_source(spec, kind)` picks and opens the right one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Protocol, runtime_checkable

from vidmatte.errors import InputError
from vidmatte.io.formats import is_image_path
from vidmatte.types import ClipInfo, VideoFrame


@runtime_checkable
class FrameSource(Protocol):
    """Frames of one clip, in order; a context manager."""

    #: True for sources that hand out only their newest frame (cameras)
    live: bool

    @property
    def clip(self) -> ClipInfo:
        """What a sink needs before the first frame."""
        ...

    def __iter__(self) -> Iterator[VideoFrame]: ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


_NUMBER = re.compile(r"(\d+)")


def _natural_key(path: Path) -> list[int | str]:
    """`frame2.png` before `frame10.png`: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in _NUMBER.split(path.name)]


def sequence_frames(frames_dir: str | Path) -> list[Path]:
    """The image files of a frame folder (not recursing), in numeric order."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise InputError(f"{frames_dir} is not a folder")
    files = [p for p in frames_dir.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_path(p)]
    if not files:
        raise InputError(f"no image frames in {frames_dir}")
    return sorted(files, key=_natural_key)


class ImageSequenceSource:
    """A folder of numbered pictures as one clip, timed at `fps` (frame i at i / fps).

    Frames are ordered numerically (`f2` before `f10`) and must all have one size. The first
    picture is decoded on opening, so a folder of unreadable files fails before any work.
    """

    live = False

    def __init__(self, frames_dir: str | Path, fps: Fraction | int | str = Fraction(25)) -> None:
        from vidmatte.io.images import read_image

        self.path = Path(frames_dir)
        self.files = sequence_frames(self.path)
        self.fps = Fraction(fps)
        if self.fps <= 0:
            raise InputError(f"frame rate must be positive, got {self.fps}")
        self._read = read_image
        self._first = read_image(self.files[0])

    @property
    def clip(self) -> ClipInfo:
        name = self.path.name or self.path.resolve().name
        return ClipInfo(self._first.width, self._first.height, self.fps, 1 / self.fps, len(self.files), name=name)

    def __iter__(self) -> Iterator[VideoFrame]:
        width, height = self._first.width, self._first.height
        for index, path in enumerate(self.files):
            picture = self._first if index == 0 else self._read(path)
            if (picture.height, picture.width) != (height, width):
                raise InputError(
                    f"{path} is {picture.width}x{picture.height} but the sequence is "
                    f"{width}x{height}; all frames must have one size"
                )
            yield VideoFrame(picture.rgb8(), index, 1 / self.fps)

    def close(self) -> None:
        """Nothing is held open between frames."""

    def __enter__(self) -> ImageSequenceSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_source(
    spec: str | Path | int, kind: str = "video", *, fps: Fraction | int | str = Fraction(25), realtime: bool = True
) -> FrameSource:
    """Open the source for an input: `kind` "video" (a file), "sequence" (a folder of numbered
    pictures at `fps`) or "camera" (an index, /dev/videoX, or a file played like a camera; with
    `realtime=False` a file gives every frame instead of the newest). Raises InputError."""
    if kind == "video":
        from vidmatte.io.video_reader import VideoReader

        return VideoReader(Path(spec))  # type: ignore[arg-type]
    if kind == "sequence":
        return ImageSequenceSource(Path(spec), fps)  # type: ignore[arg-type]
    if kind == "camera":
        from vidmatte.io.camera import CameraSource

        return CameraSource(spec, realtime=realtime).open()
    raise ValueError(f"no source for {kind!r} inputs")
