"""Folders: `vidmatte folder/` (every image and video, recursing) and `vidmatte frames/ --sequence`
(a folder of numbered frames as one clip)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .compose import check_background
from .engine import MattingEngine
from .errors import InputError, OutputError, VidmatteError
from .io.formats import default_output, is_image_path, is_video_path
from .io.sources import ImageSequenceSource
from .options import MatteOptions, Progress, ProgressCallback, log
from .pipeline.clip import check_video_job, matte_source, matte_video
from .stills import matte_image


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


def plan_folder(
    source_dir: Path, output_dir: Path, image_suffix: str = ".png", video_suffix: str = ".webm"
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


def matte_folder(
    source_dir: str | Path,
    output_dir: str | Path | None = None,
    *,
    engine: MattingEngine | None = None,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
    image_suffix: str = ".png",
    video_suffix: str = ".webm",
) -> FolderSummary:
    """Matte every image and video under `source_dir` into `output_dir` (default `<folder>_matte/`).

    Images go through `matte_image` (converged still mode), videos through `matte_video`; the
    relative paths are kept. Files that are neither are skipped with a notice; a file that fails
    is logged (warning) and the rest continue. Each output is written atomically, and
    folders this run created that stay empty (an interrupted run) are removed again.
    `progress` gets a "files" report per file plus the files' own reports.
    Returns the summary; `summary.ok` is False when any file failed.
    """
    source_dir = Path(source_dir)
    options = options or MatteOptions()
    if not source_dir.is_dir():
        raise InputError(f"{source_dir} is not a folder")
    output_dir = Path(output_dir) if output_dir is not None else default_output(source_dir, "folder")
    if output_dir.resolve() == source_dir.resolve():
        raise OutputError("the output folder is the input folder; choose another -o")
    if output_dir.exists() and not output_dir.is_dir():
        raise OutputError(f"{output_dir} exists and is not a folder; choose another -o")
    if not output_dir.parent.is_dir():
        raise OutputError(f"folder {output_dir.parent} does not exist; create it first")
    check_background(options.video_background)
    jobs, other = plan_folder(source_dir, output_dir, image_suffix, video_suffix)
    if not jobs:
        raise InputError(f"no images or videos in {source_dir}")
    summary = FolderSummary(output_dir)
    for path in other:
        log.warning("skipped %s: not an image or video", path)
        summary.skipped.append(path)
    engine = engine or MattingEngine(options.device, options.precision, options.downsample_ratio)
    created: list[Path] = []
    try:
        for number, (path, target) in enumerate(jobs):
            if progress is not None:
                progress(Progress("files", number, len(jobs), path.name))
            try:
                _make_folders(target.parent, created)
                if is_image_path(path):
                    matte_image(path, target, engine=engine, options=options, progress=progress)
                else:
                    matte_video(path, target, engine=engine, options=options, progress=progress)
            except VidmatteError as error:
                summary.failed.append((path, str(error)))
            except Exception as error:  # damaged media, odd codecs, out of memory: report, go on
                summary.failed.append((path, f"{type(error).__name__}: {error}"))
            else:
                summary.done.append((path, target))
                continue
            log.warning("failed %s: %s", path, summary.failed[-1][1])
        if progress is not None:
            progress(Progress("files", len(jobs), len(jobs)))
    finally:
        for folder in reversed(created):  # deepest first
            try:
                folder.rmdir()  # only if empty: whatever was written stays
            except OSError:
                pass
    return summary


def _make_folders(folder: Path, created: list[Path]) -> None:
    """`mkdir -p folder`, remembering each folder it made (for removal if it stays empty)."""
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir()
        created.append(path)


def matte_sequence(
    frames_dir: str | Path,
    output: str | Path | None = None,
    *,
    engine: MattingEngine | None = None,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Matte a folder of numbered frames as one clip (recurrent state carried) into a video.

    Frames are ordered numerically (`f2` before `f10`), must all have one size, and are timed
    at `options.fps`. The output follows its name as for videos (.webm default, .mov, .mp4,
    folder/). Nothing is left at `output` unless the whole clip was written.
    """
    options = options or MatteOptions()
    spec = output if output is not None else default_output(frames_dir, "sequence")
    check_video_job(spec, options)  # refuse before reading frames
    with ImageSequenceSource(frames_dir, options.fps) as source:
        engine = engine or MattingEngine(options.device, options.precision, options.downsample_ratio)
        matte_source(
            source,
            spec,
            engine=engine,
            options=options,
            progress=progress,
            reopen=lambda: ImageSequenceSource(frames_dir, options.fps),
        )
    return Path(spec)
