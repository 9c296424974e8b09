"""Output as a folder of numbered PNG frames (000000.png, 000001.png, ...)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from vidmatte.cpus import available_cpus
from vidmatte.io.atomic import Staging
from vidmatte.io.writer_base import VideoWriter

# FFmpeg's PNG encoder at zlib level 1 with frame threads measured ~1.6x faster than OpenCV
# (libpng) at the same file size on 720p mattes; higher levels cost ~2x time for ~15% size.
_ENCODER_OPTIONS = {"compression_level": "1"}


class PngSequenceWriter(VideoWriter):
    """Writes each frame as an RGBA (or RGB) PNG file. Timestamps are not stored: PNGs have none."""

    form = "png"

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        carries_alpha: bool,
        frame_rate: Fraction | None,
        time_base: Fraction,
        overwrite: bool,
    ) -> None:
        staging = Staging(path, folder=True, overwrite=overwrite)
        super().__init__(
            path,
            width=width,
            height=height,
            carries_alpha=carries_alpha,
            frame_rate=frame_rate,
            time_base=time_base,
            staging=staging,
        )
        encoder = av.CodecContext.create("png", "w")
        encoder.width = width
        encoder.height = height
        encoder.pix_fmt = "rgba" if carries_alpha else "rgb24"
        encoder.time_base = Fraction(1, 1)  # required by FFmpeg, meaningless for stills
        # Frame threads compress several PNGs at once; output order stays input order.
        encoder.thread_type = "FRAME"
        encoder.thread_count = max(1, min(available_cpus(), 8))
        encoder.options = dict(_ENCODER_OPTIONS)
        self._encoder = encoder
        self._files_written = 0

    def _write_frame(self, image: np.ndarray, seconds: Fraction) -> None:
        # from_ndarray copies: frame-threaded encoding still reads the frame after this call
        # returns, and the caller may reuse its buffer by then.
        frame = av.VideoFrame.from_ndarray(image, format="rgba" if image.shape[2] == 4 else "rgb24")
        if frame.format.name != self._encoder.pix_fmt:
            frame = frame.reformat(format=self._encoder.pix_fmt)  # RGB into an RGBA folder: opaque
        frame.pts = self.frames_written
        self._store(self._encoder.encode(frame))

    def _finish(self) -> None:
        self._store(self._encoder.encode(None))

    def _release(self) -> None:
        pass  # the encoder is freed with the object; the folder is removed by the staging

    def _store(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            _save(self._staging.temp / f"{self._files_written:06d}.png", packet)
            self._files_written += 1


def _save(target: Path, packet: av.Packet) -> None:
    # Plain file I/O: an OSError here says why (disk full, permission), and is translated
    # into an OutputError by the writer.
    with open(target, "wb") as file:
        file.write(memoryview(packet))
