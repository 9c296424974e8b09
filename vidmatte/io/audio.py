"""Carry a source file's audio into an output container, copied when possible, else transcoded.

Audio is fed in step with the video (`feed_until`) so the output is interleaved for players
and memory stays bounded; timestamps come from the source so audio and video stay in sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import cast

import av
from av.audio.stream import AudioStream

from vidmatte.errors import InputError
from vidmatte.io._av_util import av_reason

# Audio codecs each muxer takes as they are (copied without re-encoding).
_COPYABLE = {
    "webm": frozenset({"opus", "vorbis"}),
    "mp4": frozenset({"aac", "mp3", "opus", "alac"}),
    "mov": frozenset({"aac", "mp3", "alac"}),  # plus any PCM, see _can_copy
}
# Encoder used when the source codec cannot be copied, and the sample format it takes.
_TRANSCODE = {"webm": ("libopus", "flt"), "mp4": ("aac", "fltp"), "mov": ("aac", "fltp"), "matroska": ("aac", "fltp")}
_AAC_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000})
_FRAME_SIZE = {"aac": 1024, "libopus": 960}  # samples per encoded frame (Opus: 20 ms at 48 kHz)


class AudioTrack:
    """The audio of one source file, being written into one output container."""

    def __init__(self, source: Path, output: av.container.OutputContainer, muxer: str) -> None:
        self.source = source
        self._output = output
        try:
            self._input = av.open(str(source), "r")
        except (av.FFmpegError, OSError) as error:
            raise InputError(f"cannot read the audio of {source} ({av_reason(error)})") from error
        try:
            self._in_stream = self._input.streams.audio[0]
            self._copy = _can_copy(muxer, self._in_stream.codec.name, output)
            if self._copy:
                self._out_stream = output.add_stream_from_template(self._in_stream)
            else:
                self._setup_transcode(output, muxer)
        except BaseException:
            self._input.close()
            raise
        self._time_base = Fraction(self._in_stream.time_base or Fraction(1, 1000))
        self._packets: Iterator[av.Packet] = self._input.demux(self._in_stream)
        self._pending: av.Packet | None = None
        self._done = False

    @classmethod
    def open(cls, source: Path, output: av.container.OutputContainer, muxer: str) -> AudioTrack | None:
        """An AudioTrack for `source`, or None when it has no audio stream."""
        try:
            with av.open(str(source), "r") as probe:
                if not probe.streams.audio:
                    return None
        except (av.FFmpegError, OSError) as error:
            raise InputError(f"cannot read the audio of {source} ({av_reason(error)})") from error
        return cls(source, output, muxer)

    @property
    def copied(self) -> bool:
        """True when packets are copied unchanged, False when transcoded."""
        return self._copy

    @property
    def codec_name(self) -> str:
        """Name of the audio codec in the output."""
        return self._in_stream.codec.name if self._copy else self._out_stream.codec_context.name

    def feed_until(self, seconds: float) -> None:
        """Write all source audio that starts at or before `seconds` (source timeline)."""
        while not self._done:
            packet = self._pending if self._pending is not None else next(self._packets, None)
            self._pending = None
            if packet is None:
                self._done = True
                break
            start = packet.pts if packet.pts is not None else packet.dts
            if start is None:
                continue  # the demuxer's empty end-of-stream packet
            if float(start * (packet.time_base or self._time_base)) > seconds:
                self._pending = packet  # belongs after the next video frames
                return
            self._write(packet)

    def finish(self) -> None:
        """Write the rest of the audio and flush the encoder."""
        try:
            self.feed_until(float("inf"))
            if not self._copy:
                self._flush_transcoder()
        finally:
            self._input.close()

    def close(self) -> None:
        """Release the source file without writing anything more."""
        self._input.close()

    def _write(self, packet: av.Packet) -> None:
        if self._copy:
            packet.stream = self._out_stream
            self._output.mux(packet)
            return
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError as error:
            raise InputError(f"the audio of {self.source} is damaged ({av_reason(error)})") from error
        for frame in frames:
            self._resample_and_encode(frame)

    def _setup_transcode(self, output: av.container.OutputContainer, muxer: str) -> None:
        codec, sample_format = _TRANSCODE.get(muxer, ("aac", "fltp"))
        source = self._in_stream.codec_context
        if source is None:
            raise InputError(
                f"{self.source} has audio in '{self._in_stream.codec.name}', which this FFmpeg build "
                "cannot decode; convert its audio first"
            )
        if codec == "libopus":
            rate = 48000  # Opus codes only a few rates; 48 kHz is the one every player expects
        else:
            rate = source.sample_rate if source.sample_rate in _AAC_RATES else 48000
        # Mono and stereo pass through; other layouts are mixed down to stereo so every
        # target encoder accepts them.
        layout = source.layout.name if source.layout.nb_channels in (1, 2) else "stereo"
        self._out_stream = cast(AudioStream, output.add_stream(codec, rate=rate))
        encoder = self._out_stream.codec_context
        encoder.layout = layout
        encoder.format = sample_format
        encoder.time_base = Fraction(1, rate)
        self._decoder = source
        self._resampler = av.AudioResampler(
            format=sample_format, layout=layout, rate=rate, frame_size=_FRAME_SIZE[codec]
        )
        self._rate = rate
        self._next_pts: int | None = None

    def _resample_and_encode(self, frame: av.AudioFrame | None) -> None:
        """Encode one decoded frame; `None` flushes what the resampler still holds."""
        stream = self._out_stream
        if self._next_pts is None and frame is not None:
            # The first sample keeps its source time; later ones follow by sample count,
            # which is what keeps long transcoded tracks from drifting.
            self._next_pts = round(frame.time * self._rate) if frame.time is not None else 0
        for out in self._resampler.resample(frame):
            out.pts = self._next_pts or 0
            out.time_base = stream.codec_context.time_base
            self._next_pts = out.pts + out.samples
            for packet in stream.encode(out):
                self._output.mux(packet)

    def _flush_transcoder(self) -> None:
        for frame in self._decoder.decode(None):
            self._resample_and_encode(frame)
        self._resample_and_encode(None)
        for packet in self._out_stream.encode(None):
            self._output.mux(packet)


def _can_copy(muxer: str, codec: str, output: av.container.OutputContainer) -> bool:
    if muxer == "matroska":
        return codec in output.supported_codecs
    if muxer == "mov" and codec.startswith("pcm_"):
        return True
    return codec in _COPYABLE.get(muxer, frozenset())
