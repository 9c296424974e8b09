"""Test media for the codec layer, generated with PyAV directly (not with the code under test).

Fixtures hand out plain functions so tests need no imports from this folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest

AUDIO_RATE = 44100


def frame_image(index: int, width: int, height: int) -> np.ndarray:
    """An RGB test picture: red top-left quarter (orientation marker), grey level = index."""
    image = np.full((height, width, 3), (20 + 10 * index) % 256, np.uint8)
    image[: max(1, height // 4), : max(1, width // 4)] = (255, 0, 0)
    return image


def make_clip(
    path: Path,
    *,
    width: int = 64,
    height: int = 48,
    rate: Fraction = Fraction(24000, 1001),
    frames: int = 12,
    codec: str = "libx264",
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    audio: str | None = None,
    audio_seconds: float | None = None,
    images: np.ndarray | None = None,
) -> Path:
    """Write a short clip; `pts` (in `time_base`, default 1/rate) makes it variable-rate.

    `images` (T,H,W,3) uint8 replaces the generated test pictures (and sets size and count)."""
    if images is not None:
        frames, height, width = images.shape[:3]
    time_base = time_base or 1 / rate
    with av.open(str(path), "w") as container:
        options = {"preset": "ultrafast"} if codec == "libx264" else {}
        if codec == "libvpx-vp9":
            options = {"deadline": "realtime", "cpu-used": "8"}
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv422p10le" if codec == "prores_ks" else "yuv420p"
        stream.codec_context.time_base = time_base
        if rotation:
            stream.set_display_rotation(rotation)
        audio_stream = _add_audio(container, audio) if audio else None
        for index in range(frames):
            picture = images[index] if images is not None else frame_image(index, width, height)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = pts[index] if pts is not None else index
            frame.time_base = time_base
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
        if audio_stream is not None:
            seconds = audio_seconds if audio_seconds is not None else float(frames / rate)
            _write_tone(container, audio_stream, seconds)
    return path


def make_audio_only(path: Path, codec: str = "aac", seconds: float = 0.5) -> Path:
    with av.open(str(path), "w") as container:
        _write_tone(container, _add_audio(container, codec), seconds)
    return path


def make_no_frames(path: Path) -> Path:
    """A Matroska file whose H.264 track holds only access-unit delimiters: no picture at all."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for index in range(5):
            packet = av.Packet(b"\x00\x00\x00\x01\x09\x10" * 10)
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, 25)
            packet.stream = stream
            container.mux(packet)
    return path


def _add_audio(container: av.container.OutputContainer, codec: str) -> av.audio.stream.AudioStream:
    rate = 48000 if codec == "libopus" else AUDIO_RATE
    stream = container.add_stream(codec, rate=rate)
    stream.codec_context.layout = "stereo"
    return stream


def _write_tone(container: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    fmt = stream.codec_context.format.name if stream.codec_context.format else "fltp"
    resampler = av.AudioResampler(
        format=fmt, layout="stereo", rate=rate, frame_size=stream.codec_context.frame_size or 1024
    )
    total = int(seconds * rate)
    position = 0
    while position < total:
        count = min(1024, total - position)
        t = np.arange(position, position + count) / rate
        tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        frame.sample_rate = rate
        frame.pts = position
        for out in resampler.resample(frame):
            for packet in stream.encode(out):
                container.mux(packet)
        position += count
    for out in resampler.resample(None):
        for packet in stream.encode(out):
            container.mux(packet)
    for packet in stream.encode(None):
        container.mux(packet)


def decoded_video(path: Path) -> list[av.VideoFrame]:
    """All frames of the first video stream, decoded by FFmpeg's default decoder."""
    with av.open(str(path)) as container:
        return list(container.decode(video=0))


def stream_info(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        return {
            "video_codec": video.codec_context.name if video else None,
            "video_time_base": video.time_base if video else None,
            "pix_fmt": video.codec_context.pix_fmt if video else None,
            "audio_codec": audio.codec_context.name if audio else None,
            "metadata": dict(video.metadata) if video else {},
        }


def audio_span(path: Path) -> tuple[float, float]:
    """(first, end) time in seconds of the decoded audio of a file."""
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    first = frames[0]
    last = frames[-1]
    return float(first.time), float(last.time) + last.samples / last.sample_rate


def listing(folder: Path) -> list[str]:
    """Every name in a folder, hidden ones included: proof that nothing was left behind."""
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def media() -> SimpleNamespace:
    """The helpers above, for tests: media.make_clip(tmp_path / "a.mp4", ...)."""
    helpers = (frame_image, make_clip, make_audio_only, make_no_frames, decoded_video, stream_info, audio_span, listing)
    return SimpleNamespace(**{helper.__name__: helper for helper in helpers})
