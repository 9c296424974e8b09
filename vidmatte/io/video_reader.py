"""Decode a video file into upright RGB frames with their original timestamps."""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from vidmatte.cpus import available_cpus
from vidmatte.errors import InputError
from vidmatte.io._av_util import av_reason, looks_like_video_container
from vidmatte.types import ClipInfo, VideoFrame

# Containers whose headers state the video's length reliably enough to tell a file that was
# cut short. Others (MPEG-TS, AVI, ...) only have FFmpeg's estimates, which can be far off.
_RELIABLE_DURATION_FORMATS = ("mov", "mp4", "matroska", "webm")
_DURATION_TAG = re.compile(r"^(\d+):(\d\d):(\d\d(?:\.\d+)?)$")

#: Largest video frame read: 8192x8192 (67 MP) holds 8K UHD, DCI 8K and 8K x 8K VR. Several
#: frames are in flight at once at about 40 bytes a pixel, so a larger one would not fit in
#: memory anyway; refusing it from the stream header keeps a bogus or hostile header (FFmpeg
#: accepts up to 268 MP) from being decoded at all.
MAX_FRAME_PIXELS = 8192 * 8192


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it all.

    `width`/`height` are the display size, after rotation. `frame_count` and `duration` come
    from the container and are estimates meant for progress bars; iterate to get the truth.
    `rotation` is how many degrees (0, 90, 180, 270) frames are turned counter-clockwise to
    make them upright, as the file's display matrix asks.
    """

    width: int
    height: int
    frame_rate: Fraction | None
    time_base: Fraction
    frame_count: int | None
    duration: float | None
    has_audio: bool
    rotation: int


class VideoReader:
    """Context manager that opens a video and iterates over all its frames, in order.

    Opening already decodes the first frame, so a file that is not a readable video fails
    here with an `InputError`, before any work is done on it. A `FrameSource`.
    """

    live = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._container = _open_input(self.path)
        try:
            self._stream = _video_stream(self._container, self.path)
            codec = self._stream.codec_context
            _check_frame_size(self.path, codec.width, codec.height)  # from the header, before any decoding
            # and a frame that grows mid-stream past the limit fails to decode instead of being allocated
            codec.options = {**codec.options, "max_pixels": str(MAX_FRAME_PIXELS)}
            self._stream.thread_type = "AUTO"  # frame + slice threads: decoding is not the bottleneck
            self._time_base = Fraction(self._stream.time_base or Fraction(1, 1000))
            self._frames: Generator[av.VideoFrame, None, None] = self._decode()
            first = next(self._frames, None)
            if first is None:
                raise InputError(f"{self.path}: no video frame could be decoded; the file is empty or damaged")
            _check_frame_size(self.path, first.width, first.height)  # for headers that did not say
            self._first: av.VideoFrame | None = first
            self._coded_size = (first.width, first.height)
            self._turns = round((first.rotation or 0) / 90) % 4
            self.info = self._describe(first)
        except BaseException:
            self._container.close()
            raise
        self._iterated = False
        # One scaler context for the whole file (PyAV would make one per frame), threaded.
        self._reformatter = VideoReformatter()
        self._threads = min(available_cpus(), 8)

    @property
    def clip(self) -> ClipInfo:
        """What a sink needs before the first frame (the FrameSource protocol); audio comes from this file."""
        info = self.info
        return ClipInfo(
            info.width,
            info.height,
            info.frame_rate,
            info.time_base,
            info.frame_count,
            audio_from=self.path,
            name=self.path.name,
        )

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the file; safe to call more than once."""
        self._frames.close()
        self._container.close()

    def start_at(self, index: int, pts: int | None) -> None:
        """Make iteration begin at frame `index` (counted from 0), whose timestamp is `pts`
        (as a full pass yields it; None when the file has none). Call before iterating.

        Seeks to the keyframe at or before `pts` and decodes on from there, dropping the frames
        before it: the frames come out exactly as a full pass gives them. Where the file cannot
        be seeked to it (no timestamps, a seek that lands past the frame) it decodes from the
        start and drops `index` frames instead.
        """
        if self._iterated:
            raise RuntimeError("start_at must be called before iterating")
        if index <= 0:
            return
        if pts is not None:
            try:
                self._frames.close()
                self._container.seek(pts, stream=self._stream, backward=True, any_frame=False)
                frames = self._decode()
                first = next(frames, None)
                while first is not None and first.pts is not None and first.pts < pts:
                    first = next(frames, None)
                if first is not None and first.pts == pts:
                    self._first, self._frames = first, frames
                    return
                frames.close()
            except av.FFmpegError:
                pass
        # no timestamps, or the seek missed: decode from the beginning of the file again
        self._frames.close()
        self._container.close()
        self._container = _open_input(self.path)
        self._stream = _video_stream(self._container, self.path)
        codec = self._stream.codec_context
        codec.options = {**codec.options, "max_pixels": str(MAX_FRAME_PIXELS)}
        self._stream.thread_type = "AUTO"
        self._frames = self._decode()
        for _ in range(index):
            if next(self._frames, None) is None:
                raise InputError(f"{self.path} has fewer than {index + 1} frames")
        self._first = next(self._frames, None)

    def __iter__(self) -> Iterator[VideoFrame]:
        # One pass only: seeking back would need a second decode, which callers never want.
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated only once")
        self._iterated = True
        return self._iterate()

    def _iterate(self) -> Iterator[VideoFrame]:
        width, height = self._coded_size
        time_base = self.info.time_base
        first, self._first = self._first, None
        if first is not None:
            yield VideoFrame(self._to_rgb(first, width, height), first.pts, time_base)
        for frame in self._frames:
            yield VideoFrame(self._to_rgb(frame, width, height), frame.pts, time_base)

    def _to_rgb(self, frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
        # Passing the first frame's size makes a rare mid-stream resolution change come out
        # scaled to one size, which is what every consumer of a frame sequence needs.
        rgb = self._reformatter.reformat(
            frame, format="rgb24", width=width, height=height, threads=self._threads
        ).to_ndarray()
        if self._turns:
            rgb = np.rot90(rgb, self._turns)
        return np.ascontiguousarray(rgb)

    def _decode(self) -> Generator[av.VideoFrame, None, None]:
        count = 0
        last: av.VideoFrame | None = None
        try:
            for packet in self._container.demux(self._stream):
                for frame in packet.decode():
                    count += 1
                    last = frame
                    yield frame
        except av.FFmpegError as error:
            raise InputError(
                f"{self.path} is damaged or truncated at frame {count} ({av_reason(error)}); "
                "re-export or re-download it"
            ) from error
        if last is not None and count > 1:
            self._check_complete(count, last)

    def _check_complete(self, count: int, last: av.VideoFrame) -> None:
        """Raise when the decodable video ends well before the length the header declares.

        Demuxers stop quietly at the end of a file that was cut short (an interrupted copy or
        download); without this check the output would silently be shorter than the input.
        """
        declared = _declared_video_end(self._container, self._stream)
        if declared is None or last.pts is None:
            return
        interval = 1 / self.info.frame_rate if self.info.frame_rate else 0.0
        decoded_end = float(last.pts * self._time_base) + float(interval)
        if declared - decoded_end > max(0.5, 3 * float(interval)):
            raise InputError(
                f"{self.path} is truncated: the video stops at frame {count} ({decoded_end:.2f} s) "
                f"but the file says it lasts {declared:.2f} s; re-export or re-download it"
            )

    def _describe(self, first: av.VideoFrame) -> VideoInfo:
        stream, container = self._stream, self._container
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        frame_rate = Fraction(rate) if rate else None
        duration: float | None = None
        if stream.duration:
            duration = float(stream.duration * self._time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        first_time = None if first.pts is None else float(first.pts * self._time_base)
        frame_count = _estimate_frame_count(self.path, container, stream, first_time, frame_rate)
        if frame_count is None and duration and frame_rate:
            frame_count = max(1, round(duration * frame_rate))
        width, height = first.width, first.height
        if self._turns % 2:
            width, height = height, width
        return VideoInfo(
            width=width,
            height=height,
            frame_rate=frame_rate,
            time_base=self._time_base,
            frame_count=frame_count,
            duration=duration,
            has_audio=bool(container.streams.audio),
            rotation=self._turns * 90,
        )


#: ISO media (MP4, MOV, 3GP): the header's sample count is exact, variable frame rate included,
#: but counts samples an edit list hides (a clip cut with a start before its first shown frame).
_ISO_MEDIA = "mov"
#: Packets read at most at each end of the file to find what it really shows (no decoding).
_PROBE_PACKETS = 2000


def _estimate_frame_count(
    path: Path,
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    first_time: float | None,
    rate: Fraction | None,
) -> int | None:
    """The number of frames the decoder will deliver, for a progress bar; None when unknown.

    Container durations do not say the same thing everywhere: Matroska and FLV measure from
    zero, MPEG-TS from the first timestamp, MPEG-PS guesses from the bit rate, and MP4's
    sample count includes frames its edit list hides. So the file's ends are read instead
    (packets only, in a second handle): ISO media give their count less the hidden packets,
    everything else the span from the first decoded frame to the end of the last packet.
    """
    hidden, end = 0, None
    if path.is_file():  # a second reader of anything but a plain file could take the first one's data
        try:
            hidden, end = _probe_ends(path, stream.index)
        except (av.FFmpegError, OSError, ValueError, OverflowError):
            pass
    if stream.frames and container.format.name.split(",")[0] == _ISO_MEDIA:
        return max(1, stream.frames - hidden)
    if end is not None and first_time is not None and rate:
        return max(1, round((end - first_time) * rate))
    return stream.frames or None


def _probe_ends(path: Path, index: int) -> tuple[int, float | None]:
    """(packets the demuxer marks as not shown at the head and the tail of the video stream,
    end time in seconds of its last shown packet or None)."""
    with av.open(str(path), "r") as probe:
        stream = probe.streams[index]
        time_base = stream.time_base
        if time_base is None:
            return 0, None
        hidden = 0
        for count, packet in enumerate(probe.demux(stream)):
            if count >= _PROBE_PACKETS or (packet.size and not packet.is_discard):
                break
            hidden += bool(packet.size)
        # Seek to the last keyframe: far past any end the file could claim, searching backwards.
        target = (stream.start_time or 0) + int(1e7 / time_base)  # ~115 days in the stream's unit
        probe.seek(target, backward=True, any_frame=False, stream=stream)
        end: float | None = None
        tail_hidden = 0
        interval = 1 / stream.average_rate if stream.average_rate else Fraction(0)
        for count, packet in enumerate(probe.demux(stream)):
            if count >= _PROBE_PACKETS:
                return hidden, None  # the seek did not reach the end: do not guess
            if not packet.size or packet.pts is None:
                continue
            if packet.is_discard:
                tail_hidden += 1
                continue
            tail_hidden = 0  # only discarded packets after the last shown one are hidden at the end
            stop = (packet.pts + packet.duration) * time_base if packet.duration else packet.pts * time_base + interval
            end = float(stop) if end is None else max(end, float(stop))
        return hidden + tail_hidden, end


def _open_input(path: Path) -> av.container.InputContainer:
    if not path.exists():
        raise InputError(f"{path}: no such file; check the path")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not a video file")
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path} is empty (0 bytes), not a video file")
        return av.open(str(path), "r")
    except PermissionError as error:
        raise InputError(f"cannot read {path}: permission denied") from error
    except av.FFmpegError as error:
        if looks_like_video_container(path):
            raise InputError(
                f"{path} looks like a video but cannot be read ({av_reason(error)}); "
                "it is probably truncated or damaged: re-export or re-download it"
            ) from error
        raise InputError(f"{path} is not a video file (or not in a format FFmpeg can read)") from error


def _check_frame_size(path: Path, width: int, height: int) -> None:
    if width * height > MAX_FRAME_PIXELS:
        raise InputError(
            f"{path} has {width}x{height} frames ({width * height / 1e6:.0f} MP); videos up to "
            f"{MAX_FRAME_PIXELS / 1e6:.0f} MP a frame fit in memory; downscale it first"
        )


def _video_stream(container: av.container.InputContainer, path: Path) -> av.video.stream.VideoStream:
    # Cover art in audio files shows up as a one-picture "video" stream: not a video.
    candidates = [s for s in container.streams.video if not (s.disposition & av.stream.Disposition.attached_pic)]
    if not candidates:
        raise InputError(f"{path} has no video stream (audio only?); give a video file")
    stream = candidates[0]
    if stream.codec_context is None:
        raise InputError(
            f"{path} uses the video codec '{stream.codec.name}', which this FFmpeg build cannot decode; "
            "convert it to H.264 first"
        )
    return stream


def _declared_video_end(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float | None:
    """Where the header says the video track ends, in seconds, for containers that say it reliably."""
    if not any(name in container.format.name.split(",") for name in _RELIABLE_DURATION_FORMATS):
        return None
    if stream.duration and stream.time_base:
        return float(((stream.start_time or 0) + stream.duration) * stream.time_base)
    match = _DURATION_TAG.match(stream.metadata.get("DURATION", ""))
    if match:  # Matroska: per-track end time written by the muxer
        hours, minutes, seconds = match.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    if len(container.streams) == 1 and container.duration:
        return ((container.start_time or 0) + container.duration) / av.time_base
    return None
