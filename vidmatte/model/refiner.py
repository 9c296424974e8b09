"""Deep guided filter (Wu et al. 2018): carries the low-resolution prediction to full resolution.

The filter fits, per low-resolution pixel, a local linear model `y = A * x + b` from the image
`x` (RGB + grey) to the prediction `y` (foreground residual + alpha). The coefficients are
predicted by a small network from the local covariance statistics, upsampled, and applied to
the full-resolution image, so edges follow the full-resolution picture.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .resample import resize_bilinear


def _with_grey(x: Tensor) -> Tensor:
    return torch.cat([x, x.mean(1, keepdim=True)], 1)


class DeepGuidedFilter(nn.Module):
    """(fine image `[N,3,H,W]`, base image `[N,3,h,w]`, base prediction `[N,4,h,w]`,
    hidden `[N,16,h,w]`) -> prediction `[N,4,H,W]`."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        # a learned 3x3 local mean, shared by all four statistics
        self.box_filter = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hidden, hidden, 1), nn.ReLU(inplace=True),  # batch norms folded in
            nn.Conv2d(hidden, hidden, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 4, 1),
        )

    def forward(self, fine_src: Tensor, base_src: Tensor, base_y: Tensor, base_hid: Tensor) -> Tensor:
        ab = self.coefficients(base_src, base_y, base_hid)
        # one resize for both coefficient maps, one fused multiply-add: the full-resolution
        # steps dominate the cost at small downsample ratios
        ab = resize_bilinear(ab, fine_src.shape[2:])
        return self.apply_coefficients(ab, fine_src)

    def coefficients(self, base_src: Tensor, base_y: Tensor, base_hid: Tensor) -> Tensor:
        """The low-resolution linear models `[N,8,h,w]`: A (4 channels) then b (4 channels).

        Split from `forward` so a caller can upsample them piece by piece (stills refine huge
        pictures in strips of rows to bound memory).
        """
        base_x = _with_grey(base_src)
        mean_x = self.box_filter(base_x)
        mean_y = self.box_filter(base_y)
        cov_xy = self.box_filter(base_x * base_y) - mean_x * mean_y
        var_x = self.box_filter(base_x * base_x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], 1))
        b = mean_y - a * mean_x
        return torch.cat([a, b], 1)

    @staticmethod
    def apply_coefficients(ab: Tensor, fine_src: Tensor) -> Tensor:
        """`A * x + b` with coefficients `ab` `[N,8,H,W]` already at the fine image's size."""
        return torch.addcmul(ab[:, 4:], ab[:, :4], _with_grey(fine_src))
