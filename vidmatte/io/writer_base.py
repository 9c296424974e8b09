"""The writer interface: validation, timestamps, atomic finish and clean abort for every form."""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import numpy as np

from vidmatte.io.atomic import Staging, write_error


class VideoWriter(ABC):
    """Writes frames to one output; a context manager.

    Leaving the `with` block normally finishes the output and renames it into place; leaving
    it through any exception (Ctrl-C included) removes everything written so far.
    """

    form: str
    """"webm", "prores", "png" or "h264"."""

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        carries_alpha: bool,
        frame_rate: Fraction | None,
        time_base: Fraction,
        staging: Staging,
    ) -> None:
        self.path = path
        self.width = width
        self.height = height
        self.carries_alpha = carries_alpha
        self.frame_rate = frame_rate
        self.time_base = time_base
        self.frames_written = 0
        self._staging = staging
        self._state = "open"  # -> "committed" | "aborted"

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, image: np.ndarray, pts: int | None = None) -> None:
        """Append one frame.

        `image` is (H, W, 4) uint8 RGBA when `carries_alpha`, else (H, W, 3) uint8 RGB;
        an RGB image is also accepted by alpha forms and written opaque. `pts` is the
        source timestamp in `time_base` units; None means "next frame at `frame_rate`".
        """
        if self._state != "open":
            raise RuntimeError(f"writer for {self.path} is already {self._state}")
        image = self._check(image)
        seconds = self._seconds(pts)
        try:
            self._write_frame(image, seconds)
        except OSError as error:
            self.abort()
            raise write_error(self.path, error) from error
        except BaseException:
            self.abort()
            raise
        self.frames_written += 1

    def close(self) -> None:
        """Finish the output (flush, trailer) and move it to its final name."""
        if self._state == "committed":
            return
        if self._state != "open":
            raise RuntimeError(f"writer for {self.path} is already {self._state}")
        try:
            self._finish()
            self._staging.commit()
        except OSError as error:
            self.abort()
            raise write_error(self.path, error) from error
        except BaseException:
            self.abort()
            raise
        self._state = "committed"

    def abort(self) -> None:
        """Stop and remove everything written; safe to call more than once."""
        if self._state != "open":
            return
        self._state = "aborted"
        try:
            self._release()
        finally:
            self._staging.discard()

    def _check(self, image: np.ndarray) -> np.ndarray:
        # Wrong shapes are bugs in the caller, not user errors: ValueError, not OutputError.
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError("frames must be uint8 arrays of shape (H, W, 3) or (H, W, 4)")
        channels = (3, 4) if self.carries_alpha else (3,)
        if image.shape[2] not in channels:
            raise ValueError(
                f"{self.form} output without alpha takes (H, W, 3) RGB frames, got {image.shape}; "
                "composite RGBA frames first"
            )
        if image.shape[:2] != (self.height, self.width):
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, writer is {self.width}x{self.height}")
        if image.strides[1:] != (image.shape[2], 1) or image.strides[0] < image.shape[1] * image.shape[2]:
            # Encoders read rows of packed pixels; views (slices, size-1 axes with odd strides)
            # get one packed copy.
            image = np.array(image, order="C", copy=True)
        return image

    def _seconds(self, pts: int | None) -> Fraction:
        """Exact presentation time of the next frame, from its pts or its index."""
        if pts is not None:
            return pts * self.time_base
        if self.frame_rate is None:
            raise ValueError("frames without pts need a frame_rate to time them")
        return self.frames_written / self.frame_rate

    @abstractmethod
    def _write_frame(self, image: np.ndarray, seconds: Fraction) -> None:
        """Encode and store one checked, C-contiguous frame."""

    @abstractmethod
    def _finish(self) -> None:
        """Complete the temporary output (everything but the rename)."""

    @abstractmethod
    def _release(self) -> None:
        """Free resources after an abort, ignoring secondary errors."""
