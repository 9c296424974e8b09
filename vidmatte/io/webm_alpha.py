"""Read VP9 WebM frames with their alpha channel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from vidmatte.errors import InputError
from vidmatte.io._av_util import av_reason


def read_webm_alpha_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield each frame of a VP9 WebM as (H, W, 4) uint8 RGBA, C-contiguous.

    FFmpeg's native vp9 decoder ignores the alpha plane WebM stores beside each frame;
    libvpx's decoder reads it, so this decodes with libvpx explicitly. A stream without
    alpha comes out opaque (alpha 255).
    """
    path = Path(path)
    try:
        container = av.open(str(path), "r")
    except (av.FFmpegError, OSError) as error:
        raise InputError(f"cannot read {path} ({av_reason(error)}); give a VP9 WebM file") from error
    with container:
        if not container.streams.video or container.streams.video[0].codec.name != "vp9":
            raise InputError(f"{path} has no VP9 video stream; give a VP9 WebM file")
        stream = container.streams.video[0]
        decoder = av.CodecContext.create("libvpx-vp9", "r")
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # end-of-stream marker; flushed below
                for frame in decoder.decode(packet):
                    yield np.ascontiguousarray(frame.to_ndarray(format="rgba"))
            for frame in decoder.decode(None):
                yield np.ascontiguousarray(frame.to_ndarray(format="rgba"))
        except av.FFmpegError as error:
            raise InputError(f"{path} is damaged ({av_reason(error)})") from error
