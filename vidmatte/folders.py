"""Folders: `vidmatte folder/` (every image and video, recursing) and `vidmatte frames/ --sequence`
(a folder of numbered frames as one clip)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator

from tqdm import tqdm

from .compose import check_background
from .errors import InputError, OutputError, VidmatteError
from .io import VideoFrame, output_form
from .matter import Matter
from .pipeline import ClipSpec, VideoOptions, matte_video, resolve_output_type, write_clip
from .stills import DEFAULT_MAX_PASSES, DEFAULT_TOL, is_image_path, matte_image, read_image

#: Suffixes treated as videos inside a folder (anything FFmpeg reads; GIFs are clips).
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv",
                            ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".gif"})

Notify = Callable[[str], None]


def is_video_path(path: str | Path) -> bool:
    """True for a file name that vidmatte treats as a video (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def _say(message: str) -> None:
    tqdm.write(message, file=sys.stderr)  # above the progress bar, not through it


@dataclass
class FolderSummary:
    """What `matte_folder` did: outputs written, files that failed (with the reason), files skipped."""

    output_dir: Path
    done: list[tuple[Path, Path]] = field(default_factory=list)  # (source, output)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (source, one-line reason)
    skipped: list[Path] = field(default_factory=list)  # not images or videos

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        parts = [f"{len(self.done)} done", f"{len(self.failed)} failed"]
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped (not images or videos)")
        return f"{', '.join(parts)}; outputs in {self.output_dir}"


def _named(folder: str | Path) -> Path:
    folder = Path(folder)
    return folder if folder.name else folder.resolve()  # `.` has no name of its own


def default_folder_output(source_dir: str | Path) -> Path:
    """`folder/` -> `folder_matte/` beside it."""
    source_dir = _named(source_dir)
    return source_dir.with_name(f"{source_dir.name}_matte")


def plan_folder(source_dir: Path, output_dir: Path, image_suffix: str = ".png", video_suffix: str = ".webm"
                ) -> tuple[list[tuple[Path, Path]], list[Path]]:
    """([(source, output)] for every image and video, [non-media files]), in a stable order.

    Outputs keep the relative path and stem, with the output suffix. Hidden files and folders,
    and the output folder itself when it lies inside the source, are left out.
    """
    media: list[Path] = []
    other: list[Path] = []
    out_resolved = output_dir.resolve()
    for root, dirs, files in os.walk(source_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (here / d).resolve() != out_resolved)
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = here / name
            (media if is_image_path(path) or is_video_path(path) else other).append(path)
    by_target: dict[Path, list[Path]] = {}
    for path in media:
        rel = path.relative_to(source_dir)
        suffix = image_suffix if is_image_path(path) else video_suffix
        by_target.setdefault(output_dir / rel.parent / f"{rel.stem}{suffix}", []).append(path)
    jobs: list[tuple[Path, Path]] = []
    for target, sources in by_target.items():
        for path in sources:
            # a.jpg and a.png would both become a.png: keep the full names apart (a.jpg.png, a.png.png)
            jobs.append((path, target if len(sources) == 1 else target.with_name(path.name + target.suffix)))
    jobs.sort(key=lambda job: job[0])
    return jobs, other


def matte_folder(source_dir: str | Path, output_dir: str | Path | None = None, *, matter: Matter | None = None,
                 output_type: str | None = None, background: str | None = "green",
                 passes: int = DEFAULT_MAX_PASSES, tol: float = DEFAULT_TOL,
                 refine: bool = True, video_options: VideoOptions | None = None, image_suffix: str = ".png",
                 video_suffix: str = ".webm", overwrite: bool = False, progress: bool = False,
                 notify: Notify = _say) -> FolderSummary:
    """Matte every image and video under `source_dir` into `output_dir` (default `<folder>_matte/`).

    Images go through `matte_image` (converged still mode), videos through `matte_video`; the
    relative paths are kept. Files that are neither are skipped with a notice; a file that fails
    is reported through `notify` and the rest continue. Each output is written atomically.
    Returns the summary; `summary.ok` is False when any file failed.
    """
    source_dir = Path(source_dir)
    background = background or "green"
    if not source_dir.is_dir():
        raise InputError(f"{source_dir} is not a folder")
    output_dir = Path(output_dir) if output_dir is not None else default_folder_output(source_dir)
    if output_dir.resolve() == source_dir.resolve():
        raise OutputError("the output folder is the input folder; choose another -o")
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir} exists and is not a folder; choose another -o")
    if not output_dir.parent.is_dir():
        raise OutputError(f"folder {output_dir.parent} does not exist; create it first")
    check_background(background)
    jobs, other = plan_folder(source_dir, output_dir, image_suffix, video_suffix)
    if not jobs:
        raise InputError(f"no images or videos in {source_dir}")
    summary = FolderSummary(output_dir)
    for path in other:
        notify(f"skipped {path}: not an image or video")
        summary.skipped.append(path)
    matter = matter or Matter()
    options = video_options or VideoOptions(output_type=output_type, background=background, overwrite=overwrite)
    with tqdm(jobs, unit="file", disable=not progress, dynamic_ncols=True, desc=source_dir.name) as bar:
        for path, target in bar:
            bar.set_postfix_str(path.name, refresh=False)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if is_image_path(path):
                    matte_image(path, target, matter=matter, output_type=output_type, background=background,
                                passes=passes, tol=tol, refine=refine, overwrite=overwrite)
                else:
                    matte_video(path, target, matter=matter, options=options)
            except VidmatteError as error:
                summary.failed.append((path, str(error)))
            except Exception as error:  # damaged media, odd codecs, out of memory: report, go on
                summary.failed.append((path, f"{type(error).__name__}: {error}"))
            else:
                summary.done.append((path, target))
                continue
            notify(f"failed {path}: {summary.failed[-1][1]}")
    return summary


_NUMBER = re.compile(r"(\d+)")


def _natural_key(path: Path) -> list:
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


def default_sequence_output(frames_dir: str | Path) -> Path:
    """`frames/` -> `frames_matte.webm` beside it."""
    frames_dir = _named(frames_dir)
    return frames_dir.with_name(f"{frames_dir.name}_matte.webm")


def matte_sequence(frames_dir: str | Path, output: str | Path | None = None, *, fps: Fraction = Fraction(25),
                   matter: Matter | None = None, options: VideoOptions | None = None,
                   progress: bool = False) -> Path:
    """Matte a folder of numbered frames as one clip (recurrent state carried) into a video.

    Frames are ordered numerically (`f2` before `f10`), must all have one size, and are timed
    at `fps`. `options` as for videos (output type, background, smoothing, scene-cut resets,
    warm-up); the output follows its name as for videos (.webm default, .mov, .mp4, folder/).
    Nothing is left at `output` unless the whole clip was written.
    """
    options = options or VideoOptions()
    files = sequence_frames(frames_dir)
    fps = Fraction(fps)
    if fps <= 0:
        raise InputError(f"frame rate must be positive, got {fps}")
    spec = output if output is not None else default_sequence_output(frames_dir)
    resolve_output_type(output_form(spec), options.output_type)  # refuse before reading frames
    first = read_image(files[0])
    height, width = first.height, first.width

    def frames() -> Iterator[VideoFrame]:
        for index, path in enumerate(files):
            picture = first if index == 0 else read_image(path)
            if (picture.height, picture.width) != (height, width):
                raise InputError(f"{path} is {picture.width}x{picture.height} but the sequence is "
                                 f"{width}x{height}; all frames must have one size")
            yield VideoFrame(picture.rgb8(), index, 1 / fps)

    clip = ClipSpec(width, height, fps, 1 / fps, len(files), name=Path(frames_dir).name)
    write_clip(frames(), spec, clip, matter=matter or Matter(), options=options, progress=progress)
    return Path(spec)
