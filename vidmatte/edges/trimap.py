"""Trimap from a network alpha: where the refinement may change alpha and where it must not."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

#: Alpha at or below this counts as confident background, at or above HIGH as confident foreground.
LOW = 0.02
HIGH = 0.98


def dilate(mask: Tensor, radius: int) -> Tensor:
    """Square dilation of a bool mask [N,1,H,W] by `radius` pixels (separable max pooling)."""
    if radius <= 0:
        return mask
    if mask.device.type == "cpu":
        # OpenCV's byte dilation: ~10x faster than max pooling floats (a 720p band: 160 -> 15 ms)
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        planes = mask.reshape(-1, *mask.shape[-2:]).to(torch.uint8).numpy()
        grown = np.stack([cv2.dilate(plane, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) for plane in planes])
        return torch.from_numpy(grown).reshape(mask.shape).bool()
    x = mask.float()
    k = 2 * radius + 1
    x = F.max_pool2d(x, (1, k), stride=1, padding=(0, radius))
    x = F.max_pool2d(x, (k, 1), stride=1, padding=(radius, 0))
    return x > 0.5


def unknown_band(alpha: Tensor, band: int, low: float = LOW, high: float = HIGH) -> Tensor:
    """Bool mask [N,1,H,W] of pixels whose alpha the refinement solves for.

    The union of the fractional pixels (low < alpha < high) and the 0.5 contour, grown by
    `band // 2` pixels on each side, so a hard edge gets a strip about `band` pixels wide: the
    network's edges are too smooth *and* sometimes too hard (a crisp contour through hair), so
    both its soft zone and a strip around every hard transition are re-estimated.
    """
    fractional = (alpha > low) & (alpha < high)
    solid = alpha >= 0.5
    contour = dilate(solid, 1) & dilate(~solid, 1)  # both sides of every solid/clear transition
    return dilate(fractional | contour, band // 2)
