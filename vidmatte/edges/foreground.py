"""Foreground colour re-estimation for a refined alpha ("blur fusion", Forte & Pitie 2021).

With alpha known, every pixel obeys I = alpha F + (1 - alpha) B. Local alpha-weighted averages
give smooth guesses of F and B; the compositing error of those guesses is then handed back to
F in proportion to alpha (and to B in proportion to 1 - alpha), which is the least-squares
correction under the compositing equation. Two rounds, a wide then a narrow window, remove the
background colour that otherwise bleeds into F along hair and makes composites fringe.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from .laplacian import box_mean

#: Window radii of the two rounds, in pixels of the picture.
RADII = (90, 6)
#: Wide windows are averaged on a grid this many times coarser than the radius / 8 (cheap, smooth anyway).
_COARSE_STEPS = 8


def _smooth(x: Tensor, radius: int) -> Tensor:
    """Box mean of x [N,C,H,W]; wide boxes are taken on a coarser grid and upsampled."""
    factor = max(1, radius // _COARSE_STEPS)
    if factor == 1 or min(x.shape[-2:]) < 2 * factor:
        return box_mean(x, radius)
    small = F.avg_pool2d(x, factor, factor, ceil_mode=True)
    small = box_mean(small, max(1, round(radius / factor)))
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


def blur_fusion(
    image: Tensor,
    alpha: Tensor,
    radii: tuple[int, ...] = RADII,
    *,
    foreground: Tensor | None = None,
    background: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Foreground and background colours [N,3,H,W] consistent with image [N,3,H,W] and alpha [N,1,H,W].

    `foreground`/`background` are starting guesses (default: the image itself).
    """
    tiny = 1e-5
    fg = image if foreground is None else foreground
    bg = image if background is None else background
    for radius in radii:
        weight_f = _smooth(alpha, radius)
        weight_b = 1 - weight_f  # box means are linear: mean(1 - a) = 1 - mean(a)
        mean_f = _smooth(fg * alpha, radius) / (weight_f + tiny)
        mean_b = _smooth(bg * (1 - alpha), radius) / (weight_b + tiny)
        error = image - alpha * mean_f - (1 - alpha) * mean_b
        fg = (mean_f + alpha * error).clamp(0, 1)
        bg = (mean_b + (1 - alpha) * error).clamp(0, 1)
    return fg, bg
