"""Edge refinement of a still-mode matte, at the picture's real resolution (see `refine_still`)."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from ..options import ProgressCallback
from .refine import refine_edges_in_strips

#: Where the network ran below this share of the picture's resolution, its alpha is smooth over
#: several picture pixels and the closed-form windows are widened to radius 2 (5x5): on the whole
#: portrait over four backgrounds Grad fell 8-17% and MAD 0-12% against radius 1; where the
#: network ran at full resolution (the 320 px crops) radius 2 made 8 of 80 crops more than 5%
#: worse, so they keep radius 1 (benchmarks/stills.md).
WIDE_WINDOWS_BELOW = 0.6
#: The ridge of the wide windows (1e-5 with radius 1): 1e-6 kept more strand contrast in Grad.
WIDE_EPS = 1e-6


def still_options(network_scale: float) -> dict:
    """`refine_edges` settings for a picture the network saw at `network_scale` of its resolution."""
    if network_scale < WIDE_WINDOWS_BELOW:
        return {"radius": 2, "eps": WIDE_EPS}
    return {}


def refine_still(
    rgb: np.ndarray,
    alpha: np.ndarray,
    foreground: np.ndarray,
    *,
    network_scale: float = 1.0,
    detail: int = 1,
    progress: ProgressCallback | None = None,
) -> None:
    """Refine a still's matte in place along its edges.

    rgb `(H,W,3)` uint8/uint16; alpha `(H,W)` and foreground `(H,W,3)` float32, written in place.
    network_scale: network size / picture size (`StillResult.scale`). detail: the picture's
    enlargement factor (`detail_factor`, `StillResult.detail`): above 1 the refinement runs on the
    picture reduced by it, where its edges have their real width, and the corrections it makes
    are enlarged back (bilinear), so an enlarged photo gets about what the original would, and
    the work and memory are those of the reduced picture (an 8000x8000 enlargement of a 320 px
    crop reads 32: refined at 250x250).
    """
    if detail <= 1:
        refine_edges_in_strips(
            torch.from_numpy(rgb).permute(2, 0, 1),
            torch.from_numpy(alpha)[None],
            torch.from_numpy(foreground).permute(2, 0, 1),
            progress=progress,
            **still_options(network_scale),
        )
        return
    height, width = alpha.shape
    size = (max(1, -(-width // detail)), max(1, -(-height // detail)))
    # the picture holds nothing finer than the reduced size, so an interpolating reduction loses
    # nothing, where area averaging blurs the strands (tests/edges/test_strands.py: a 4x cubic
    # enlargement reduced by area refined to 4.3x the native error, reduced cubic to 1.0x)
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
    small_alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    small_fg = cv2.resize(foreground, size, interpolation=cv2.INTER_LINEAR)
    alpha_before, fg_before = small_alpha.copy(), small_fg.copy()
    refine_edges_in_strips(
        torch.from_numpy(small_rgb).permute(2, 0, 1),
        torch.from_numpy(small_alpha)[None],
        torch.from_numpy(small_fg).permute(2, 0, 1),
        progress=progress,
        **still_options(network_scale * detail),
    )
    small_alpha -= alpha_before
    small_fg -= fg_before
    _add_enlarged(alpha, small_alpha)
    _add_enlarged(foreground, small_fg)
    np.clip(alpha, 0, 1, out=alpha)
    np.clip(foreground, 0, 1, out=foreground)


def _add_enlarged(target: np.ndarray, small: np.ndarray, strip_pixels: int = 2_000_000) -> None:
    """target += bilinear enlargement of `small` to target's size (align_corners=False), by strips
    of rows: no full-size temporary."""
    height, width = target.shape[:2]
    h = small.shape[0]
    wide = cv2.resize(small, (width, h), interpolation=cv2.INTER_LINEAR)  # rows first: h x W, small
    if wide.ndim < target.ndim:
        wide = wide[..., None]
    rows = max(1, strip_pixels // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        y = np.maximum((np.arange(top, bottom) + 0.5) * (h / height) - 0.5, 0)
        y0 = np.minimum(np.floor(y).astype(np.int64), h - 1)
        y1 = np.minimum(y0 + 1, h - 1)
        weight = (y - y0).astype(np.float32).reshape(-1, *([1] * (target.ndim - 1)))
        target[top:bottom] += wide[y0] + weight * (wide[y1] - wide[y0])
