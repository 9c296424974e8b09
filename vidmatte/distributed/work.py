"""The work itself, free of Ray: scanning a clip, matting one segment, joining segments, and the
manifest that makes a run resumable. Workers (`vidmatte.distributed.driver`) call these; so can
tests and anything else.

Joining: every segment is written by its own encoder, so it starts with a keyframe and refers
to nothing before it; joined by packet copy (no second encode), with the source's timestamps
kept and the audio muxed once from the source, the output has the form a sequential run writes:
same codec, pixel format, frame count and timestamps. ProRes and PNG are intra-only anyway; VP9
and H.264 gain one keyframe per segment (about every 10 s).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import OutputError

if TYPE_CHECKING:
    import av
from ..io.formats import muxer_name, output_form
from ..options import MatteOptions
from .split import Segment

#: Bump when the segment files' form changes: older work folders are then started afresh.
WORK_VERSION = 1


@dataclass
class Scan:
    """What one decoding pass tells of a clip: every frame's timestamp (None where the file has
    none) and the first frame of each new shot, found by the same detector a sequential run
    uses, over the same frames, so the cuts are the ones that run resets at."""

    frames: int
    pts: list[int | None]
    cuts: list[int]
    frame_rate: Fraction | None


def scan_clip(path: Path, scene_reset: bool) -> Scan:
    """Decode `path` once: timestamps and (with `scene_reset`) hard cuts."""
    from ..io.video_reader import VideoReader
    from ..temporal import SceneCutDetector

    detector = SceneCutDetector() if scene_reset else None
    pts: list[int | None] = []
    cuts: list[int] = []
    with VideoReader(path) as reader:
        rate = reader.clip.frame_rate
        for index, frame in enumerate(reader):
            pts.append(frame.pts)
            if detector is not None and detector.update(frame.rgb):
                cuts.append(index)
    return Scan(len(pts), pts, cuts, rate)


class KnownCuts:
    """Stands in for the chain's scene-cut detector in a segment: says "new shot" exactly at the
    cuts the scan found over the whole clip (a detector started mid-clip has no history and could
    decide otherwise). Counts frames from `first`, the segment's first frame read."""

    def __init__(self, cuts: Iterable[int], first: int) -> None:
        self.cuts = frozenset(cuts)
        self.first = first
        self._next = first

    def reset(self) -> None:
        self._next = self.first

    def update(self, rgb: object) -> bool:
        index, self._next = self._next, self._next + 1
        return index > self.first and index in self.cuts


@dataclass(frozen=True)
class SegmentJob:
    """One segment of one clip to matte into `path` (a file, or a folder for PNG output)."""

    source: Path
    path: Path
    segment: Segment
    read_pts: int | None
    cuts: tuple[int, ...]
    options: MatteOptions
    output_type: str


@dataclass(frozen=True)
class SegmentDone:
    """A finished segment file and what identifies its content."""

    index: int
    path: Path
    frames: int
    size: int
    sha256: str


def run_segment(job: SegmentJob, engine: object, progress: Callable[[int], None] | None = None) -> SegmentDone:
    """Matte one segment: read from its preroll start, run every frame read through the chain,
    write only the segment's own frames (with their source timestamps, no audio) into
    `job.path` under a temporary name, renamed when complete."""
    from ..engine import MattingEngine
    from ..io.video_reader import VideoReader
    from ..io.video_writer import open_writer
    from ..pipeline.clip import build_chain
    from ..pipeline.runner import run_chain

    assert isinstance(engine, MattingEngine)
    segment, options = job.segment, job.options
    with VideoReader(job.source) as reader:
        clip = reader.clip
        reader.start_at(segment.read_from, job.read_pts)
        chain = build_chain(engine, clip, job.output_type, options)
        if chain.detector is not None:
            chain.detector = KnownCuts(job.cuts, segment.read_from)  # type: ignore[assignment]
        frames = itertools.islice(iter(reader), segment.end - segment.read_from)
        with open_writer(
            job.path if job.path.suffix else f"{job.path}/",  # no suffix: a PNG folder
            width=clip.width,
            height=clip.height,
            frame_rate=clip.frame_rate,
            time_base=clip.time_base,
            alpha=job.output_type == "rgba",
            audio_from=None,
            quality=options.quality,
            overwrite=True,
        ) as writer:
            seen = 0

            def write(rendered: object) -> None:
                nonlocal seen
                written = 0
                for picture, frame in zip(rendered.pictures, rendered.frames):  # type: ignore[attr-defined]
                    if segment.read_from + seen >= segment.start:
                        writer.write(picture, frame.pts)
                        written += 1
                    seen += 1
                if progress is not None and written:
                    progress(written)

            run_chain(frames, chain, write)
        if writer.frames_written != segment.frames:
            raise OutputError(
                f"{job.source}: frames {segment.start}-{segment.end} gave {writer.frames_written} frames "
                f"instead of {segment.frames}; the file changed while it was being matted"
            )
    size, digest = content_id(job.path)
    return SegmentDone(segment.index, job.path, segment.frames, size, digest)


# ---- content checks ---------------------------------------------------------------------------


def content_id(path: Path) -> tuple[int, str]:
    """(bytes, sha256) of a file, or of a folder's files in name order (names included)."""
    digest = hashlib.sha256()
    size = 0
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return size, digest.hexdigest()


def source_key(source: Path, options: MatteOptions, **settings: object) -> str:
    """What a finished piece of work depends on: the source file (path, size, modification
    time), every option that changes pixels, the split settings and the work format."""
    from .. import __version__

    info = source.stat()
    fields = {k: str(v) for k, v in asdict(options).items() if k not in _NOT_PIXELS}
    text = json.dumps(
        {
            "source": str(source.resolve()),
            "size": info.st_size,
            "mtime": info.st_mtime_ns,
            "options": fields,
            "settings": {k: str(v) for k, v in settings.items()},
            "version": __version__,
            "work": WORK_VERSION,
        },
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


#: Options that change how a run is carried out, not what it writes.
_NOT_PIXELS = frozenset(
    {"overwrite", "workers", "cluster", "gpus_per_worker", "window", "max_frames", "realtime", "passes", "tol"}
)


# ---- the work folder and its manifest -----------------------------------------------------------


def work_dir(target: Path) -> Path:
    """The hidden folder beside `target` where its segments and manifest live while it is made."""
    return target.parent / f".{target.name}.vidmatte-work"


def segment_path(folder: Path, target: str | Path, segment: Segment) -> Path:
    """Where a segment of `target` is written: a file of the target's form, or a PNG folder."""
    name = f"seg-{segment.start:08d}-{segment.end:08d}"
    if output_form(target) == "png":
        return folder / name
    return folder / f"{name}{Path(target).suffix.lower()}"


@dataclass
class Manifest:
    """`manifest.json` in a target's work folder: the key of the work (`source_key`), the clip's
    scan (so a rerun does not decode the clip again) and each finished segment's content."""

    path: Path
    key: str
    scan: Scan | None = None
    done: dict[str, dict[str, object]] = field(default_factory=dict)

    @classmethod
    def open(cls, folder: Path, key: str) -> Manifest:
        """The folder's manifest for `key`; a missing, unreadable or other key's one starts afresh
        (its segment files removed: they belong to other work)."""
        path = folder / "manifest.json"
        try:
            data = json.loads(path.read_text())
            if data.get("key") == key:
                scan = data.get("scan")
                return cls(
                    path,
                    key,
                    Scan(
                        scan["frames"],
                        scan["pts"],
                        scan["cuts"],
                        Fraction(scan["frame_rate"]) if scan.get("frame_rate") else None,
                    )
                    if scan
                    else None,
                    dict(data.get("done", {})),
                )
        except (OSError, ValueError, KeyError, TypeError):
            pass
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        return cls(path, key)

    def save(self) -> None:
        """Write the manifest atomically (a temporary, then a rename)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scan = None
        if self.scan is not None:
            scan = {
                "frames": self.scan.frames,
                "pts": self.scan.pts,
                "cuts": self.scan.cuts,
                "frame_rate": str(self.scan.frame_rate) if self.scan.frame_rate else None,
            }
        temp = self.path.with_name(f".manifest.{os.getpid()}.tmp")
        temp.write_text(json.dumps({"key": self.key, "scan": scan, "done": self.done}))
        os.replace(temp, self.path)

    def record(self, done: SegmentDone) -> None:
        self.done[done.path.name] = {"frames": done.frames, "size": done.size, "sha256": done.sha256}
        self.save()

    def finished(self, path: Path, frames: int) -> bool:
        """True when `path` is a segment this manifest recorded and its content still matches."""
        entry = self.done.get(path.name)
        if entry is None or entry.get("frames") != frames or not path.exists():
            return False
        try:
            size, digest = content_id(path)
        except OSError:
            return False
        return entry.get("size") == size and entry.get("sha256") == digest


# ---- joining ------------------------------------------------------------------------------------


def join_segments(parts: list[Path], target: str | Path, *, audio_from: Path | None, overwrite: bool) -> None:
    """Join finished segments (in order) into `target`, atomically: a PNG folder by linking the
    frames under their numbers in the whole clip, a file by packet copy with the source's audio."""
    if output_form(target) == "png":
        _join_png(parts, Path(target), overwrite)
    else:
        _join_encoded(parts, Path(target), audio_from, overwrite)


def _join_png(parts: list[Path], target: Path, overwrite: bool) -> None:
    from ..io.atomic import Staging

    staging = Staging(target, folder=True, overwrite=overwrite)
    try:
        number = 0
        for part in parts:
            for frame in sorted(part.iterdir()):
                destination = staging.temp / f"{number:06d}.png"
                try:
                    os.link(frame, destination)  # instant, no second copy of the frames on disk
                except OSError:
                    shutil.copyfile(frame, destination)
                number += 1
        staging.commit()
    except BaseException:
        staging.discard()
        raise


def _join_encoded(parts: list[Path], target: Path, audio_from: Path | None, overwrite: bool) -> None:
    import av

    from ..io.atomic import Staging, write_error
    from ..io.audio import AudioTrack
    from ..io.encoded_writer import container_options

    muxer = muxer_name(target)
    assert muxer is not None
    staging = Staging(target, folder=False, overwrite=overwrite)
    audio: AudioTrack | None = None
    output: av.container.OutputContainer | None = None
    try:
        with av.open(str(parts[0]), "r") as first:
            template = first.streams.video[0]
            tick = Fraction(template.time_base)
            alpha = template.metadata.get("alpha_mode") == "1" or template.metadata.get("ALPHA_MODE") == "1"
            output = av.open(str(staging.temp), "w", format=muxer, options=container_options(muxer, tick, audio_from))
            stream = output.add_stream_from_template(template)
            stream.time_base = tick
            if template.codec_context.codec_tag:
                # ProRes's FourCC names its profile (ap4h: 4444) and decoders read the bit depth from it
                stream.codec_context.codec_tag = template.codec_context.codec_tag
            if alpha:
                stream.metadata["alpha_mode"] = "1"  # Matroska's AlphaMode: the BlockAdditional planes are alpha
            extradata = template.codec_context.extradata
        if audio_from is not None:
            audio = AudioTrack.open(audio_from, output, muxer)
        for part in parts:
            with av.open(str(part), "r") as container:
                video = container.streams.video[0]
                if video.codec_context.extradata != extradata:
                    raise OutputError(f"segment {part.name} was encoded with other settings; remove {part.parent}")
                packets: Iterable[av.Packet] = (p for p in container.demux(video) if p.size)
                if muxer == "matroska":
                    packets = _with_decode_times(list(packets))
                for packet in packets:
                    seconds = float(packet.pts * packet.time_base) if packet.pts is not None else None
                    packet.stream = stream
                    output.mux(packet)
                    if audio is not None and seconds is not None:
                        audio.feed_until(seconds)
        if audio is not None:
            audio.finish()
            audio = None
        output.close()
        output = None
        staging.commit()
    except OSError as error:
        _close_quietly(audio, output)
        staging.discard()
        raise write_error(target, error) from error
    except BaseException:
        _close_quietly(audio, output)
        staging.discard()
        raise


def _with_decode_times(packets: list[av.Packet]) -> list[av.Packet]:
    """Matroska stores no decode times; packets copied from one segment after another need them
    (else the muxer sees B-frames' times going backwards). In decode order the decode times are
    the sorted presentation times, shifted back by the encoder's reordering delay."""
    times = [p.pts for p in packets]
    if any(t is None for t in times):
        return packets
    ordered = sorted(times)  # type: ignore[type-var]
    delay = max(o - t for o, t in zip(ordered, times))  # type: ignore[operator]
    for packet, time in zip(packets, ordered):
        packet.dts = time - delay  # type: ignore[operator]
    return packets


def _close_quietly(audio: object, output: object) -> None:
    for thing in (audio, output):
        if thing is not None:
            try:
                thing.close()  # type: ignore[attr-defined]
            except Exception:
                pass


def remove_work(folder: Path) -> None:
    """Remove a target's work folder once the target is complete."""
    shutil.rmtree(folder, ignore_errors=True)
