"""Bilinear resizing with the reference graph's sampling, through OpenCV where that is exact and faster.

OpenCV's `INTER_LINEAR` samples at the same half-pixel centres as `F.interpolate(...,
mode="bilinear", align_corners=False)` without antialiasing, and on CPU float32 planes it is
4-10x faster (one thread: 3.6 vs 17 ms for the guided filter's 8 coefficient maps of a 720p
frame, 0.5 vs 5.4 ms for shrinking a 720p frame to a quarter). Results agree to ~1e-5. Anything
else (GPU, other dtypes, autograd) goes through torch.
"""

from __future__ import annotations

import cv2
import torch
import torch.nn.functional as F
from torch import Tensor


def _opencv_ok(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32 and not x.requires_grad and x.dim() == 4


def _opencv_resize(x: Tensor, height: int, width: int) -> Tensor:
    out = torch.empty((*x.shape[:2], height, width), dtype=x.dtype)
    src, dst = x.contiguous().numpy(), out.numpy()
    for n in range(src.shape[0]):
        for c in range(src.shape[1]):
            cv2.resize(src[n, c], (width, height), dst=dst[n, c], interpolation=cv2.INTER_LINEAR)
    return out


def resize_bilinear(x: Tensor, size: tuple[int, int]) -> Tensor:
    """`F.interpolate(x, size, mode="bilinear", align_corners=False)` for `[N,C,H,W]`."""
    height, width = int(size[0]), int(size[1])
    if not _opencv_ok(x):
        return F.interpolate(x, (height, width), mode="bilinear", align_corners=False)
    return _opencv_resize(x, height, width)


def scale_bilinear(x: Tensor, factor: float) -> Tensor:
    """`F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False,
    recompute_scale_factor=False)`: the grid follows `factor`, the size is floor(size * factor)."""
    height, width = (int(n * factor) for n in x.shape[-2:])
    # OpenCV derives its grid from the sizes: the same grid only when they are exact multiples
    if _opencv_ok(x) and height == x.shape[-2] * factor and width == x.shape[-1] * factor:
        return _opencv_resize(x, height, width)
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=False)
