"""Value types that cross module boundaries: frames, clip descriptions, mattes, recurrent state,
and the chunk of work that travels between pipeline stages.

This is the ground floor: it imports nothing from the rest of vidmatte, and torch only when a
`Matte` is converted, so the command line can describe its options without loading torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

    from .model.network import Coarse

#: Hidden states r1..r4 of the four ConvGRU cells; all `None` at the start of a clip.
RecurrentState = tuple[Optional["Tensor"], Optional["Tensor"], Optional["Tensor"], Optional["Tensor"]]
EMPTY_STATE: RecurrentState = (None, None, None, None)


@dataclass(frozen=True, eq=False)
class VideoFrame:
    """One decoded, upright frame: `rgb` is (H, W, 3) uint8, C-contiguous.

    `pts` is the presentation time in `time_base` units (None when the source has none).
    """

    rgb: np.ndarray
    pts: int | None
    time_base: Fraction

    @property
    def time(self) -> float | None:
        """Presentation time in seconds, or None when the file has no timestamp for it."""
        return None if self.pts is None else float(self.pts * self.time_base)


@dataclass(frozen=True, eq=False)
class CapturedFrame(VideoFrame):
    """A frame from a live source: `index` counts every captured frame (gaps are frames that were
    dropped), `captured` is `time.monotonic()` at capture."""

    index: int = 0
    captured: float = 0.0


@dataclass(frozen=True)
class ClipInfo:
    """What a sink needs to know of a clip before its first frame.

    `frame_count` is an estimate for progress reports (None when unknown, e.g. a camera);
    `audio_from` names the file whose audio track an output copies (None: no audio).
    """

    width: int
    height: int
    frame_rate: Fraction | None
    time_base: Fraction
    frame_count: int | None = None
    audio_from: Path | None = None
    name: str = ""


@dataclass
class Matte:
    """Network output for T frames, on the engine's device.

    foreground: `[T,3,H,W]` predicted foreground colour in 0..1 (meaningful where alpha > 0)
    alpha: `[T,1,H,W]` in 0..1
    """

    foreground: Tensor
    alpha: Tensor

    def __len__(self) -> int:
        return int(self.alpha.shape[0])

    def alpha_uint8(self) -> np.ndarray:
        """`(T,H,W)` uint8 alpha."""
        return _to_uint8(self.alpha[:, 0])

    def foreground_uint8(self) -> np.ndarray:
        """`(T,H,W,3)` uint8 foreground colour."""
        return _to_uint8(self.foreground.permute(0, 2, 3, 1))

    def rgba(self) -> np.ndarray:
        """`(T,H,W,4)` uint8 straight (not premultiplied) RGBA: foreground colour + alpha."""
        import torch

        return _to_uint8(torch.cat([self.foreground, self.alpha], 1).permute(0, 2, 3, 1))


def _to_uint8(x: Tensor) -> np.ndarray:
    import torch

    from .transfer import to_host

    return to_host(x.float().mul(255).round_().to(torch.uint8))


@dataclass
class Chunk:
    """What crosses from the recurrent stage to the full-resolution stage: consecutive frames of
    one shot and the network's low-resolution output for them.

    `rgb` is the frames stacked `(T,H,W,3)` uint8; `new_shot` is True when the first frame starts
    a shot (the temporal filters reset before it); `gate` holds, per frame, the low-resolution
    weight `(h,w)` of the chosen people (`--subject`), None when everyone is kept.
    """

    frames: list[VideoFrame]
    rgb: np.ndarray
    coarse: Coarse
    new_shot: bool
    gate: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class Rendered:
    """The full-resolution stage's output for one chunk: `pictures` `(T,H,W,C)` uint8 (C = 4 for
    rgba, else 3) in the order of `frames`."""

    frames: list[VideoFrame]
    pictures: np.ndarray
    rgb: np.ndarray = field(repr=False, default_factory=lambda: np.empty(0, np.uint8))

    def __len__(self) -> int:
        return len(self.frames)
