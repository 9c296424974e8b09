"""Temporal stability: motion-adaptive alpha smoothing and scene-cut state resets.

- `AlphaSmoother(strength=0.97)`: `smoother(matte, frames) -> matte` for T consecutive frames
  `(T,H,W,3)` uint8 and their `Matte`; causal (past frames only, no added latency), state kept
  inside, on the matte's device and dtype. Averages alpha (and foreground colour) over time
  along the motion where the picture is steady, passes changing pixels through. `reset()` forgets.
  `smoother_for(strength, primed=...)`: the one a pipeline runs (no warm-up ramp after a primed network).
- `SceneCutDetector(threshold=0.35)`: `detector.update(rgb) -> bool`, True when the frame
  `(H,W,3)` uint8 starts a new shot (never for the first frame after `reset()`).
- `split_at_cuts(frames, detector) -> [(start, end, new_shot), ...]`: a chunk `(T,H,W,3)` cut
  into sub-chunks `frames[start:end]` at the detected cuts. `new_shot` is True when the
  sub-chunk's first frame starts a new shot: reset the recurrent state (`Matter.reset()`, or
  `EMPTY_STATE` for `Matter.step`) and the smoother before it. The detector keeps its own state
  across calls, so a cut that falls on a chunk boundary comes back as `(0, k, True)`.

Wiring into a frame loop (the network never sees two shots in one forward, and both halves
see every reset in order)::

    detector, smoother = SceneCutDetector(), AlphaSmoother()
    matter.reset(); smoother.reset(); detector.reset()    # new clip
    for rgb in chunks:                                     # (T,H,W,3) uint8
        for start, end, new_shot in split_at_cuts(rgb, detector):
            part = rgb[start:end]
            if new_shot:
                matter.reset(); smoother.reset()
            matte = smoother(matter(part), part)

When the recurrent half (`Matter.coarse`) and the full-resolution half (`Matter.refine`) run on
different threads, reset the matter on the coarse thread before `coarse(part)` and carry
`new_shot` with the item to the refine thread, which resets the smoother before smoothing it.
"""

from __future__ import annotations

import numpy as np

from .scenecut import SceneCutDetector
from .smoother import AlphaSmoother, smoother_for

__all__ = ["AlphaSmoother", "SceneCutDetector", "smoother_for", "split_at_cuts"]


def split_at_cuts(frames: np.ndarray, detector: SceneCutDetector) -> list[tuple[int, int, bool]]:
    """`(start, end, new_shot)` sub-chunks of `frames` `(T,H,W,3)` (or `(H,W,3)`), split at cuts.

    Every frame goes through `detector.update` once, in order. The ranges cover `0..T` without
    gaps; only the first may have `new_shot` False (when the chunk continues the previous shot).
    """
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    parts: list[tuple[int, int, bool]] = []
    start, new_shot = 0, False
    for i, rgb in enumerate(frames):
        if detector.update(rgb):
            if i > start:
                parts.append((start, i, new_shot))
            start, new_shot = i, True
    if len(frames) > start:
        parts.append((start, len(frames), new_shot))
    return parts
