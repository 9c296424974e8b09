"""Turning a matte into output pictures: RGBA packing, alpha views and composites over backgrounds.

Pure functions and small background objects; everything works on torch tensors on the
engine's device so a GPU run never round-trips full-size floats through the CPU.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from torch import Tensor

from .errors import InputError
from .io.formats import OUTPUT_TYPES, is_image_path
from .transfer import to_device, to_host
from .types import Matte

NAMED_COLORS = {
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "red": (255, 0, 0),
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "grey": (128, 128, 128),
    "gray": (128, 128, 128),
    "magenta": (255, 0, 255),
    "yellow": (255, 255, 0),
    "cyan": (0, 255, 255),
}


def parse_color(spec: str) -> tuple[int, int, int] | None:
    """`'green'`, `'#00ff00'` or `'0,255,0'` -> RGB; None if `spec` is not a colour."""
    s = spec.strip().lower()
    if s in NAMED_COLORS:
        return NAMED_COLORS[s]
    if s.startswith("#") and len(s) == 7:
        try:
            return tuple(int(s[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            return None
    parts = s.split(",")
    if len(parts) == 3 and all(p.strip().isdigit() and int(p) <= 255 for p in parts):
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    return None


class Background(Protocol):
    """Supplies the picture behind the subject for a chunk of source frames."""

    def for_frames(self, frames: np.ndarray) -> Tensor:
        """`(T,H,W,3)` uint8 source frames -> `[T or 1,3,H,W]` float background in 0..1."""


class ColorBackground:
    def __init__(self, rgb: tuple[int, int, int], device: torch.device, dtype: torch.dtype) -> None:
        self.color = torch.tensor(rgb, device=device, dtype=dtype).view(1, 3, 1, 1) / 255

    def for_frames(self, frames: np.ndarray) -> Tensor:
        return self.color


def cover(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale `image` to cover `width`x`height` and centre-crop it (no bars, no distortion)."""
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    nw, nh = max(width, round(w * scale)), max(height, round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return resized[y0 : y0 + height, x0 : x0 + width]


def _to_tensor(frames: np.ndarray, device: torch.device, dtype: torch.dtype) -> Tensor:
    t = to_device(frames if frames.ndim == 4 else frames[None], device)
    return t.permute(0, 3, 1, 2).to(dtype) / 255


class ImageBackground:
    def __init__(self, path: Path, width: int, height: int, device: torch.device, dtype: torch.dtype) -> None:
        from .io.images import read_image

        try:
            picture = read_image(path)
        except InputError as error:
            raise InputError(f"background image: {error}; give a PNG/JPEG file, a colour or 'blur'") from None
        self.image = _to_tensor(cover(picture.rgb8(), width, height), device, dtype)

    def for_frames(self, frames: np.ndarray) -> Tensor:
        return self.image


class VideoBackground:
    """A background clip, looped for as long as the foreground runs."""

    def __init__(self, path: Path, width: int, height: int, device: torch.device, dtype: torch.dtype) -> None:
        self.path, self.size, self.device, self.dtype = path, (width, height), device, dtype
        self._frames = self._loop()

    def _loop(self) -> Iterator[np.ndarray]:
        from .io.sources import open_source

        while True:
            with open_source(self.path, "video") as source:
                for frame in source:
                    yield cover(frame.rgb, *self.size)

    def for_frames(self, frames: np.ndarray) -> Tensor:
        chunk = np.stack([next(self._frames) for _ in range(len(frames))])
        return _to_tensor(chunk, self.device, self.dtype)


class BlurBackground:
    """The original picture, strongly blurred (portrait-mode look)."""

    def __init__(self, device: torch.device, dtype: torch.dtype) -> None:
        self.device, self.dtype = device, dtype

    def for_frames(self, frames: np.ndarray) -> Tensor:
        out = np.empty_like(frames)
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            # blur at 1/8 size: same look as a huge kernel, a fraction of the cost
            small = cv2.resize(frame, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
            small = cv2.GaussianBlur(small, (0, 0), 3)
            out[i] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        return _to_tensor(out, self.device, self.dtype)


def check_background(spec: str) -> None:
    """Raise InputError unless `spec` names a colour, 'blur' or an existing file."""
    if spec.strip().lower() != "blur" and parse_color(spec) is None and not Path(spec).is_file():
        raise InputError(f"background {spec!r} is neither a colour, 'blur', nor an existing file")


def make_background(
    spec: str, width: int, height: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Background:
    """`spec` is a colour (name, #rrggbb, r,g,b), 'blur', an image file or a video file."""
    device = torch.device(device)
    if spec.strip().lower() == "blur":
        return BlurBackground(device, dtype)
    rgb = parse_color(spec)
    if rgb is not None:
        return ColorBackground(rgb, device, dtype)
    check_background(spec)
    path = Path(spec)
    if is_image_path(path):
        return ImageBackground(path, width, height, device, dtype)
    return VideoBackground(path, width, height, device, dtype)


def composite(foreground: Tensor, alpha: Tensor, background: Tensor) -> Tensor:
    """Straight-alpha over: `fg * a + bg * (1 - a)`; the predicted foreground colour avoids
    fringes of the old background at soft edges."""
    return background + alpha * (foreground - background)


def over_bytes(rgba: np.ndarray, background: np.ndarray) -> np.ndarray:
    """`(H,W,4)` uint8 straight RGBA over an `(H,W,3)` uint8 background -> `(H,W,3)` uint8: the same
    composite as `composite`, from pictures already rendered (the live view composes this way
    over whichever background the user switches to)."""
    weight = rgba[..., 3].astype(np.float32)
    weight *= 1 / 255
    foreground = cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)
    return cv2.blendLinear(foreground, np.ascontiguousarray(background), weight, 1 - weight)


def render(
    matte: Matte, output_type: str, frames: np.ndarray | None = None, background: Background | None = None
) -> np.ndarray:
    """The pictures to write for one chunk: `(T,H,W,4)` for rgba, `(T,H,W,3)` otherwise, uint8.

    rgba: foreground colour + alpha; alpha: the matte as grey; foreground: foreground colour
    over black; composite: over `background` (which may need the source `frames`).
    """
    if output_type == "rgba":
        return matte.rgba()
    if output_type == "alpha":
        return np.repeat(matte.alpha_uint8()[..., None], 3, axis=-1)
    if output_type == "foreground":
        picture = matte.foreground * matte.alpha
    elif output_type == "composite":
        if background is None or frames is None:
            raise ValueError("a composite needs a background and the source frames")
        picture = composite(matte.foreground, matte.alpha, background.for_frames(frames))
    else:
        raise ValueError(f"unknown output type {output_type!r}; use one of {', '.join(OUTPUT_TYPES)}")
    return to_host(picture.float().mul_(255).round_().to(torch.uint8).permute(0, 2, 3, 1))
