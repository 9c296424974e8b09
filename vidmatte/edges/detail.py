"""How much finer than its real detail a picture is stored: the enlargement factor of an upscaled photo.

A picture enlarged k times has almost nothing in its finest log2(k) octaves. Measured on the
Laplacian pyramid of its grey levels (energy of each band-pass level per pixel of that level):
for photos stored at their own resolution each octave holds 0.46-1.0x the energy of the next
coarser one; after a 2x enlargement the finest holds 0.32-0.35x, after 3x 0.32, after 6x 0.15-0.18
(cubic, linear and Lanczos alike; benchmarks/stills.md, "Quality at every size"). Still mode uses
the factor to run the network and the edge refinement at the picture's real resolution instead of
on a giant blurred person (an 8000x8000 enlargement of a 320 px crop otherwise scored 2.4x worse).
"""

from __future__ import annotations

import cv2
import numpy as np

#: An octave holding less than this share of the next coarser octave's energy counts as empty.
EMPTY_OCTAVE = 0.42
#: ...or less than this mean squared band-pass value (grey levels 0..255): what 8-bit rounding
#: leaves in an enlargement's finest octaves (~0.05 there), far below any photo's (13 and more for
#: the evaluation pictures' finest octave).
NOISE_FLOOR = 1.0
#: Pictures are judged on their grey levels; below this many pixels a side nothing is concluded.
MIN_SIDE = 64
#: Never more than 2**MAX_OCTAVES.
MAX_OCTAVES = 5


def detail_factor(rgb: np.ndarray) -> int:
    """The picture's enlargement factor, a power of two >= 1 (1: detail down to the pixel).

    Conservative: never above the true enlargement, and often half of it (the octave just below
    the original's own resolution still holds some energy): 2x enlargements mostly read 1, 4x
    read 2, 6x-8x 4, 12.5x 16 and 25x 32 once 8-bit rounding is all the finest octaves hold.

    rgb: `(H,W,3)` uint8 or uint16. Counts the finest pyramid octaves that are empty (each below
    `EMPTY_OCTAVE` of the next, or below `NOISE_FLOOR`), stopping at the first that is not. A
    picture with no energy to speak of at any octave (flat) is left at factor 1. Costs about two
    passes over the picture's grey levels (~0.6 s for 64 MP here).
    """
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if rgb.dtype == np.uint16:
        grey /= 257.0
    energies: list[float] = []
    level: np.ndarray = grey
    for _ in range(MAX_OCTAVES + 1):
        if min(level.shape) < 2 * MIN_SIDE:
            break
        coarser = cv2.pyrDown(level)
        band = level - cv2.pyrUp(coarser, dstsize=(level.shape[1], level.shape[0]))
        energies.append(float(np.square(band, out=band).mean()))
        level = coarser
    if not energies or energies[-1] < NOISE_FLOOR:
        return 1  # flat: no detail to lose, nothing to judge by
    empty = 0
    for finer, next_coarser in zip(energies, energies[1:]):
        if finer >= NOISE_FLOOR and finer >= EMPTY_OCTAVE * next_coarser:
            break
        empty += 1
    return 2 ** min(empty, MAX_OCTAVES)
