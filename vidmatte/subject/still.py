"""The subject gate for a single picture (no tracking)."""

from __future__ import annotations

import numpy as np

from .selection import Selection
from .tracker import SubjectTracker


def still_gate(
    alpha: np.ndarray, picture: np.ndarray, selection: Selection, frame_size: tuple[int, int]
) -> tuple[np.ndarray, list[str]]:
    """Gate `(h,w)` float32 for one picture, and the report lines saying who was chosen.

    alpha: the network's alpha `(h,w)` in 0..1 at the size it ran at (still mode's converged
    low-resolution alpha); picture: the network's input `(h,w,3)` (uint8, or float in 0..1);
    selection: in the picture's full-resolution pixels, `frame_size` = (width, height).
    Raises a one-line InputError for a point on the background, an empty box, a mask of the
    wrong size.
    """
    tracker = SubjectTracker(
        Selection(selection.points, selection.boxes, selection.mask, selection.mask_name, selection.largest, 0),
        frame_size,
        place="in the picture",
    )
    gate = tracker.update(alpha, picture)
    lines = tracker.report() or [f"subject: nobody found for {selection.describe()}"]
    return gate, lines
