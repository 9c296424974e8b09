"""Who is cut out: the user's selection of people, parsed and checked.

A selection is given on one frame (`frame`, default 0) in that frame's full-resolution pixel
coordinates: points on people (`X,Y`), boxes around them (`X0,Y0,X1,Y1`), a mask image of
them, or `largest` (the biggest person, re-chosen at every hard cut). Points, boxes and a mask
may be combined (their people together are the subject); `largest` stands alone.

What can be checked without the network is checked here (syntax, inside the picture, the
mask's size); whether there is a person at a point or in a box is checked by the tracker on
the selection frame, where the network's alpha is known. Every problem is a one-line
`InputError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

Point = tuple[float, float]
Box = tuple[float, float, float, float]


def _numbers(spec: str, count: int, what: str, form: str) -> tuple[float, ...]:
    parts = [p.strip() for p in str(spec).split(",")]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != count or not all(np.isfinite(values)):
        raise InputError(f"{what} expects {form}, got {spec!r}")
    return values


def parse_point(spec: str) -> Point:
    """`"X,Y"` -> `(x, y)` in pixels; InputError on anything else."""
    x, y = _numbers(spec, 2, "--subject", "X,Y (a pixel on the person) or 'largest'")
    return x, y


def parse_box(spec: str) -> Box:
    """`"X0,Y0,X1,Y1"` -> `(x0, y0, x1, y1)` with x0 < x1 and y0 < y1; InputError otherwise."""
    x0, y0, x1, y1 = _numbers(spec, 4, "--subject-box", "X0,Y0,X1,Y1 (two opposite corners)")
    if not (x0 < x1 and y0 < y1):
        raise InputError(f"--subject-box {spec} needs X0 < X1 and Y0 < Y1 (left,top,right,bottom)")
    return x0, y0, x1, y1


def load_mask(path: str | Path) -> np.ndarray:
    """A mask image -> `(H,W)` bool, True on the subject.

    White (over half the format's range) is the subject; an image with transparency uses its
    alpha channel instead when that channel is not uniform (a cut-out PNG of the subject).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"subject mask {path} does not exist" if not path.exists() else f"subject mask {path} is not a file"
        )
    data = np.fromfile(str(path), np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"subject mask {path} is not an image vidmatte can read")
    return mask_from_image(image)


def mask_from_image(image: np.ndarray) -> np.ndarray:
    """A decoded mask image (grey, BGR or BGRA; 8 or 16 bit; or bool) -> `(H,W)` bool."""
    if image.dtype == bool:
        return image if image.ndim == 2 else np.asarray(image.any(-1))
    peak = float(np.iinfo(image.dtype).max) if np.issubdtype(image.dtype, np.integer) else 1.0
    if image.ndim == 3 and image.shape[2] == 4 and image[..., 3].min() != image[..., 3].max():
        plane = image[..., 3]
    elif image.ndim == 3:
        plane = image[..., :3].astype(np.float32).mean(-1)
    else:
        plane = image
    return np.asarray(plane, np.float32) > peak / 2


@dataclass(frozen=True)
class Selection:
    """The chosen people, in full-resolution pixels of frame `frame`.

    points: pixels on chosen people; boxes: (x0, y0, x1, y1) around chosen people;
    mask: `(H,W)` bool of the chosen people (`mask_name` names it in messages);
    largest: the biggest person instead, re-chosen at each hard cut.
    """

    points: tuple[Point, ...] = ()
    boxes: tuple[Box, ...] = ()
    mask: np.ndarray | None = field(default=None, compare=False)
    mask_name: str = "mask"
    largest: bool = False
    frame: int = 0

    def __post_init__(self) -> None:
        if self.frame < 0:
            raise InputError(f"--subject-frame must be 0 or more, got {self.frame}")
        if self.largest and (self.points or self.boxes or self.mask is not None):
            raise InputError("--subject largest cannot be combined with points, boxes or a mask")
        if not (self.largest or self.points or self.boxes or self.mask is not None):
            raise InputError("a subject selection needs a point, a box, a mask or 'largest'")

    @classmethod
    def parse(
        cls,
        subjects: Iterable[str] = (),
        boxes: Iterable[str] = (),
        mask: str | Path | np.ndarray | None = None,
        frame: int = 0,
    ) -> Selection | None:
        """From the command line's strings: `--subject` values (`X,Y` or `largest`, repeatable),
        `--subject-box` values, `--subject-mask` (a path, or an array from Python) and
        `--subject-frame`. None when nothing is selected (matte everyone, as without the options)."""
        subjects, boxes = list(subjects), list(boxes)
        largest = [s for s in subjects if str(s).strip().lower() == "largest"]
        points = tuple(parse_point(s) for s in subjects if s not in largest)
        if len(largest) > 1:
            raise InputError("--subject largest was given more than once")
        parsed_boxes = tuple(parse_box(b) for b in boxes)
        mask_array, mask_name = None, "mask"
        if isinstance(mask, np.ndarray):
            mask_array = mask_from_image(mask)
        elif mask is not None:
            mask_array, mask_name = load_mask(mask), str(mask)
        if not (largest or points or parsed_boxes or mask_array is not None):
            if frame:
                raise InputError("--subject-frame needs --subject, --subject-box or --subject-mask")
            return None
        return cls(points, parsed_boxes, mask_array, mask_name, bool(largest), int(frame))

    @classmethod
    def at(cls, x: float, y: float, frame: int = 0) -> Selection:
        """One point (a click in the live preview)."""
        return cls(points=((float(x), float(y)),), frame=frame)

    def check_frame(self, width: int, height: int) -> None:
        """Checks what needs only the frame size: points and boxes inside the picture, the mask's size.

        Call before the run so a typo fails at once, not at frame `frame`.
        """
        where = f"the {width}x{height} picture"
        for x, y in self.points:
            if not (0 <= x < width and 0 <= y < height):
                raise InputError(
                    f"--subject {_fmt(x)},{_fmt(y)} is outside {where} (x 0..{width - 1}, y 0..{height - 1})"
                )
        for x0, y0, x1, y1 in self.boxes:
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                raise InputError(f"--subject-box {_fmt(x0)},{_fmt(y0)},{_fmt(x1)},{_fmt(y1)} is outside {where}")
        if self.mask is not None:
            mh, mw = self.mask.shape[:2]
            if (mw, mh) != (width, height):
                hint = " (rotated?)" if (mh, mw) == (width, height) else ""
                raise InputError(
                    f"subject {self.mask_name} is {mw}x{mh} but the frame is {width}x{height}{hint}; "
                    "the mask must have the frame's size"
                )
            if not self.mask.any():
                raise InputError(f"subject {self.mask_name} is empty: no white (or opaque) pixels")

    def check_frame_count(self, frames: int) -> None:
        """InputError when the clip has no frame `frame` (it has `frames` frames)."""
        if self.frame >= frames:
            raise InputError(
                f"--subject-frame {self.frame} but the clip has {frames} frame{'s' * (frames != 1)} (0..{frames - 1})"
            )

    def describe(self) -> str:
        """The selection as the user gave it, for messages."""
        parts = ["the largest person"] if self.largest else []
        parts += [f"the person at {_fmt(x)},{_fmt(y)}" for x, y in self.points]
        parts += [f"the person in box {','.join(_fmt(v) for v in b)}" for b in self.boxes]
        if self.mask is not None:
            parts.append(f"the person in {self.mask_name}")
        return " + ".join(parts)


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"
