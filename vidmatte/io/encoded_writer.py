"""Video file output through FFmpeg (PyAV): VP9-alpha WebM, ProRes 4444 MOV, H.264 MP4/MKV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import cast

import av
import cv2
import numpy as np
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from av.video.stream import VideoStream

from vidmatte.cpus import available_cpus
from vidmatte.io.atomic import Staging, write_error
from vidmatte.io.audio import AudioTrack
from vidmatte.io.formats import EncoderSettings
from vidmatte.io.writer_base import VideoWriter
from vidmatte.options import log

# Matroska stores timestamps in milliseconds whatever the stream asks for, so frames are
# timed in that unit directly; MP4/MOV keep the source's own time base (exact, e.g. 1001/24000).
_MATROSKA_TIME_BASE = Fraction(1, 1000)
_MUXER_OPTIONS = {"mp4": {"movflags": "+faststart"}}  # index first: web players start at once
_BT709 = 1  # AVCOL_PRI_BT709 / AVCOL_TRC_BT709 / AVCOL_SPC_BT709
_LIMITED_RANGE = 1  # AVCOL_RANGE_MPEG


class EncodedVideoWriter(VideoWriter):
    """Encodes RGB(A) frames with one FFmpeg encoder into a temporary file, optionally with audio.

    `stored_width`/`stored_height` are the size in the file: the frames' own, except that
    H.264 rounds an odd size up to even (the last column/row repeated; a warning on the `vidmatte` logger
    warning says so when the writer opens).
    """

    def __init__(
        self,
        path: Path,
        *,
        form: str,
        muxer: str,
        settings: EncoderSettings,
        width: int,
        height: int,
        carries_alpha: bool,
        frame_rate: Fraction | None,
        time_base: Fraction,
        audio_from: Path | None,
        overwrite: bool,
    ) -> None:
        staging = Staging(path, folder=False, overwrite=overwrite)
        super().__init__(
            path,
            width=width,
            height=height,
            carries_alpha=carries_alpha,
            frame_rate=frame_rate,
            time_base=time_base,
            staging=staging,
        )
        self.form = form
        self._container: av.container.OutputContainer | None = None
        self._audio: AudioTrack | None = None
        try:
            self._open(muxer, settings, audio_from)
        except OSError as error:
            self.abort()
            raise write_error(path, error) from error
        except BaseException:
            self.abort()
            raise

    @property
    def audio_codec(self) -> str | None:
        """Codec of the output's audio track, None when it has none."""
        return self._audio.codec_name if self._audio else None

    def _open(self, muxer: str, settings: EncoderSettings, audio_from: Path | None) -> None:
        self._tick = stream_tick(muxer, self.time_base)
        options = container_options(muxer, self._tick, audio_from)
        self._container = av.open(str(self._staging.temp), "w", format=muxer, options=options)
        stream = cast(VideoStream, self._container.add_stream(settings.codec, options=settings.options))
        self.stored_width, self.stored_height = _stored_size(self.width, self.height, settings)
        self._pad = (self.stored_height - self.height, self.stored_width - self.width)
        if any(self._pad):
            log.warning(
                f"note: {self.path}: H.264 as every player decodes it (4:2:0) needs even sizes; the {self.width}x"
                f"{self.height} picture is stored as {self.stored_width}x{self.stored_height}, its last "
                f"{_edges(self._pad)} repeated (.webm and .mov keep odd sizes exactly)"
            )
        stream.width = self.stored_width
        stream.height = self.stored_height
        stream.pix_fmt = settings.pix_fmt
        codec = stream.codec_context
        codec.time_base = self._tick
        stream.time_base = self._tick
        if self.frame_rate:
            codec.framerate = self.frame_rate
        if settings.codec == "prores_ks":
            codec.thread_type = "FRAME"  # measured ~25% faster than its default slice threads
        # Tag what the conversion below produces, so players do not guess the matrix.
        codec.color_primaries = _BT709
        codec.color_trc = _BT709
        codec.colorspace = _BT709
        codec.color_range = _LIMITED_RANGE
        self._stream = stream
        self._pix_fmt = settings.pix_fmt
        self._reformatter = VideoReformatter()  # reused: keeps one scaler context for all frames
        self._threads = min(available_cpus(), 8)
        self._last_tick: int | None = None
        if audio_from is not None:
            self._audio = AudioTrack.open(audio_from, self._container, muxer)

    def _write_frame(self, image: np.ndarray, seconds: Fraction) -> None:
        if any(self._pad):
            # replicate, not black: a player that shows the extra line shows more of the edge
            image = cv2.copyMakeBorder(image, 0, self._pad[0], 0, self._pad[1], cv2.BORDER_REPLICATE)
        # Zero-copy view of the caller's array; the conversion below makes the encoder's copy
        # before this call returns, so the caller may reuse its buffer.
        source = av.VideoFrame.from_numpy_buffer(image, format="rgba" if image.shape[2] == 4 else "rgb24")
        frame = self._reformatter.reformat(
            source,
            format=self._pix_fmt,
            dst_colorspace=Colorspace.ITU709,
            dst_color_range=ColorRange.MPEG,
            threads=self._threads,
        )
        tick = round(seconds / self._tick)
        if self._last_tick is not None and tick <= self._last_tick:
            # Equal or backward times (a broken source, or two frames inside one millisecond)
            # would make the muxer fail or drop frames; nudge forward to keep every frame.
            tick = self._last_tick + 1
        self._last_tick = tick
        frame.pts = tick
        frame.time_base = self._tick
        assert self._container is not None
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.feed_until(float(seconds))

    def _finish(self) -> None:
        assert self._container is not None
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        if self._audio is not None:
            self._audio.finish()
        self._container.close()

    def _release(self) -> None:
        if self._audio is not None:
            self._audio.close()
        if self._container is not None:
            try:
                self._container.close()
            except (av.FFmpegError, OSError):
                pass  # the output is being deleted; its trailer does not matter


def stream_tick(muxer: str, time_base: Fraction) -> Fraction:
    """The unit a video stream of `muxer` is timed in: Matroska's millisecond, else the source's."""
    return _MATROSKA_TIME_BASE if muxer in ("webm", "matroska") else time_base


def container_options(muxer: str, tick: Fraction, audio_from: Path | None) -> dict[str, str]:
    """The muxer options of an output container (also used where segments are joined)."""
    options = dict(_MUXER_OPTIONS.get(muxer, {}))
    if muxer in ("mp4", "mov"):
        # Edit lists (a start offset, B-frame delay) are stored in the movie time scale,
        # 1/1000 s by default, which would move every frame; use the track's own unit.
        options["movie_timescale"] = str(tick.denominator)
    if audio_from is not None and muxer == "matroska" and _starts_slightly_negative(audio_from):
        # Copied AAC from MP4 starts with a priming packet before 0; Matroska would shift
        # every track to make it non-negative. A small negative block time is valid (FFmpeg
        # writes one for its own AAC/Opus encoders) and keeps the source timestamps.
        options["avoid_negative_ts"] = "disabled"
    return options


def _stored_size(width: int, height: int, settings: EncoderSettings) -> tuple[int, int]:
    """The size the encoder is given: the frame's, rounded up to even where it must be."""
    if settings.even_size:
        return width + width % 2, height + height % 2
    return width, height


def _edges(pad: tuple[int, int]) -> str:
    rows, columns = pad
    return " and ".join(name for name, n in (("column", columns), ("row", rows)) if n)


def _starts_slightly_negative(source: Path) -> bool:
    """True when the first audio packet of `source` has a time in [-1 s, 0): codec priming."""
    try:
        with av.open(str(source), "r") as probe:
            if not probe.streams.audio:
                return False
            for packet in probe.demux(probe.streams.audio[0]):
                if packet.pts is None:
                    continue
                return -1.0 <= float(packet.pts * packet.time_base) < 0
    except (av.FFmpegError, OSError):
        return False  # AudioTrack reports unreadable sources properly
    return False
