"""What the live preview shows: views of a matte, a checkerboard for transparency, the overlay
text, and the OpenCV window (with a clear error where there is no display or no GUI)."""

from __future__ import annotations

import os
import re
import sys
from typing import Protocol

import cv2
import numpy as np
import torch
from torch import Tensor

from ..compose import Background, ColorBackground, ImageBackground, make_background, over_bytes
from ..errors import DisplayError

#: What the `v` key cycles through: the camera picture, the subject over the background, the matte.
VIEWS = ("matte", "original", "alpha")
#: What the `b` key cycles through (a user's own --background is put first).
BACKGROUNDS = ("checker", "green", "blur", "white", "black")

NO_DISPLAY = "no display available; use --no-window (optionally with -o rec.webm)"
NO_GUI = (
    "this OpenCV build has no GUI support (opencv-python-headless); use --no-window "
    "(optionally with -o rec.webm), or install opencv-python"
)


class CheckerBackground:
    """Grey checkerboard, the usual picture of "transparent" (a compose.Background)."""

    def __init__(
        self,
        width: int,
        height: int,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        square: int = 16,
    ) -> None:
        ys, xs = np.indices((height, width))
        light = (ys // square + xs // square) % 2 == 0
        grey = np.where(light, 204, 153).astype(np.float32) / 255
        self.image: Tensor = torch.from_numpy(grey).to(device, dtype).expand(3, height, width)[None].contiguous()

    def for_frames(self, frames: np.ndarray) -> Tensor:
        return self.image


def make_live_background(
    spec: str, width: int, height: int, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> Background:
    """`'checker'` or anything `compose.make_background` takes (colour, 'blur', image, video)."""
    if spec.strip().lower() in ("checker", "checkerboard", "transparent"):
        return CheckerBackground(width, height, device, dtype)
    return make_background(spec, width, height, device, dtype)


def render_view(view: str, rgba: np.ndarray, rgb: np.ndarray, background: np.ndarray | None) -> np.ndarray:
    """`(H,W,3)` uint8 RGB picture of one frame for a view name in `VIEWS`, from the frame's
    `(H,W,4)` uint8 straight RGBA matte, its picture and the `(H,W,3)` uint8 background."""
    if view == "original":
        return rgb
    if view == "alpha":
        return cv2.cvtColor(np.ascontiguousarray(rgba[..., 3]), cv2.COLOR_GRAY2RGB)
    if view == "matte":
        if background is None:
            raise ValueError("the matte view needs a background")
        return over_bytes(rgba, background)
    raise ValueError(f"unknown view {view!r}; use one of {', '.join(VIEWS)}")


class BackgroundCycle:
    """The user's background first, then the built-in ones (`b` cycles); each made on first use.

    `picture(rgb)` is the current background for a frame as `(H,W,3)` uint8: made once for the
    ones that do not change (colours, images, the checkerboard), per frame for the others
    (`blur` follows the picture, a video advances).
    """

    _STATIC = (ColorBackground, ImageBackground, CheckerBackground)

    def __init__(self, first: str, width: int, height: int, device: torch.device, dtype: torch.dtype) -> None:
        self.names = [first] + [b for b in BACKGROUNDS if b != first.strip().lower()]
        self.position = 0
        self._made: dict[str, Background] = {}
        self._pictures: dict[str, np.ndarray] = {}
        self._args = (width, height, device, dtype)
        _ = self.current  # the user's own spec fails here, before the loop starts

    @property
    def name(self) -> str:
        return self.names[self.position]

    @property
    def current(self) -> Background:
        name = self.name
        if name not in self._made:
            self._made[name] = make_live_background(name, *self._args)
        return self._made[name]

    def picture(self, rgb: np.ndarray) -> np.ndarray:
        """The current background behind the frame `rgb` `(H,W,3)`, as `(H,W,3)` uint8."""
        name, background = self.name, self.current
        if name in self._pictures:
            return self._pictures[name]
        height, width = rgb.shape[:2]
        picture = background.for_frames(rgb[None])[0].float().mul(255).round_().to(torch.uint8)
        out = np.ascontiguousarray(picture.expand(3, height, width).permute(1, 2, 0).cpu().numpy())
        if isinstance(background, self._STATIC):
            self._pictures[name] = out
        return out

    def advance(self) -> None:
        self.position = (self.position + 1) % len(self.names)


def draw_overlay(bgr: np.ndarray, lines: list[str]) -> np.ndarray:
    """Write `lines` top-left on `bgr` in place (white on a dark band, readable on any picture)."""
    scale = max(0.4, min(1.0, bgr.shape[1] / 1280 * 0.8))
    thickness = 1
    y = 0
    for line in lines:
        (w, h), base = cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = y
        y += h + base + 6
        band = bgr[top:y, : w + 10]
        band[:] = band // 3  # darken behind the text
        cv2.putText(
            bgr, line, (5, y - base - 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA
        )
    return bgr


class Display(Protocol):
    """Where the live view goes; `CvWindow` is the real one, tests bring their own."""

    def show(self, bgr: np.ndarray) -> None:
        """Show one (H,W,3) uint8 BGR picture."""

    def poll_key(self) -> int:
        """The key pressed since the last call (its character code), or -1."""

    def poll_click(self) -> tuple[int, int] | None:
        """Where the picture was last clicked since the last call, (x, y) in its pixels, or None."""

    def close(self) -> None:
        """Close the window."""


def opencv_has_gui() -> bool:
    """False for headless OpenCV builds (their build information says `GUI: NONE`)."""
    match = re.search(r"^\s*GUI:\s*(\S+)", cv2.getBuildInformation(), re.MULTILINE)
    return match is None or match.group(1).upper() != "NONE"


def check_display() -> None:
    """Raise DisplayError unless a window can be opened here (a display and a GUI-capable OpenCV)."""
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
            # checked first: OpenCV's Qt/GTK back ends abort the whole process without a display
            raise DisplayError(NO_DISPLAY)
    if not opencv_has_gui():
        raise DisplayError(NO_GUI)


class CvWindow:
    """An OpenCV HighGUI window; closing it counts as pressing q."""

    def __init__(self, title: str = "vidmatte") -> None:
        check_display()
        self.title = title
        try:
            cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
            cv2.setMouseCallback(title, self._on_mouse)
        except cv2.error:
            raise DisplayError(NO_GUI) from None
        self._shown = False
        self._click: tuple[int, int] | None = None

    def _on_mouse(self, event: int, x: int, y: int, flags: int, param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:  # OpenCV gives picture coordinates, whatever the window's size
            self._click = (x, y)

    def poll_click(self) -> tuple[int, int] | None:
        click, self._click = self._click, None
        return click

    def show(self, bgr: np.ndarray) -> None:
        try:
            cv2.imshow(self.title, bgr)
        except cv2.error:
            raise DisplayError(NO_GUI) from None
        self._shown = True

    def poll_key(self) -> int:
        key = cv2.waitKey(1)
        if self._shown and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            return ord("q")  # the user closed the window
        return -1 if key < 0 else key & 0xFF

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # let the GUI thread process the close
        except cv2.error:
            pass
