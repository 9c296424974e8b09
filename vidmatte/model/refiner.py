"""Deep guided filter (Wu et al. 2018): carries the low-resolution prediction to full resolution.

The filter fits, per low-resolution pixel, a local linear model `y = A * x + b` from the image
`x` (RGB + grey) to the prediction `y` (foreground residual + alpha). The coefficients are
predicted by a small network from the local covariance statistics, upsampled, and applied to
the full-resolution image, so edges follow the full-resolution picture.
"""

from __future__ import annotations

import cv2
import torch
from torch import Tensor, nn

from .layout import cat_channels
from .resample import resize_bilinear


def _with_grey(x: Tensor) -> Tensor:
    return cat_channels([x, x.mean(1, keepdim=True)])


class DeepGuidedFilter(nn.Module):
    """(fine image `[N,3,H,W]`, base image `[N,3,h,w]`, base prediction `[N,4,h,w]`,
    hidden `[N,16,h,w]`) -> prediction `[N,4,H,W]`."""

    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        # a learned 3x3 local mean, shared by all four statistics
        self.box_filter = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
        self.conv = nn.Sequential(
            nn.Conv2d(4 * 2 + hidden, hidden, 1),
            nn.ReLU(inplace=True),  # batch norms folded in
            nn.Conv2d(hidden, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 4, 1),
        )

    def forward(self, fine_src: Tensor, base_src: Tensor, base_y: Tensor, base_hid: Tensor) -> Tensor:
        ab = self.coefficients(base_src, base_y, base_hid)
        # one resize for both coefficient maps, one fused multiply-add: the full-resolution
        # steps dominate the cost at small downsample ratios
        ab = resize_bilinear(ab, (fine_src.shape[2], fine_src.shape[3]))
        return self.apply_coefficients(ab, fine_src)

    def coefficients(self, base_src: Tensor, base_y: Tensor, base_hid: Tensor) -> Tensor:
        """The low-resolution linear models `[N,8,h,w]` (planar): A (4 channels) then b (4 channels).

        Split from `forward` so a caller can upsample them piece by piece (stills refine huge
        pictures in strips of rows to bound memory) or fuse their application with compositing.
        """
        if base_src.device.type == "cpu" and base_src.dtype == torch.float32:
            return torch.stack([self._coefficients_cpu(*frame) for frame in zip(base_src, base_y, base_hid)])
        base_x = _with_grey(base_src)
        mean_x = self.box_filter(base_x)
        mean_y = self.box_filter(base_y)
        cov_xy = self.box_filter(base_x * base_y) - mean_x * mean_y
        var_x = self.box_filter(base_x * base_x) - mean_x * mean_x
        a = self.conv(torch.cat([cov_xy, var_x, base_hid], 1))
        b = mean_y - a * mean_x
        return torch.cat([a, b], 1)

    def _coefficients_cpu(self, src: Tensor, y: Tensor, hid: Tensor) -> Tensor:
        """`coefficients` for one frame on CPU: the same sums on planar `[C, h*w]` matrices.

        The general version, all small-channel tensors, costs ~7.7 ms a frame at 320x180 on
        one core; here the sixteen box filters are OpenCV calls on contiguous planes and the
        1x1 convolutions matrix products, ~3.8 ms.
        """
        _, h, w = src.shape
        stats = torch.empty(16, h * w)
        stats[:3] = src.reshape(3, -1)
        torch.mean(stats[:3], 0, out=stats[3])
        stats[4:8] = y.reshape(4, -1)
        torch.mul(stats[:4], stats[4:8], out=stats[8:12])
        torch.mul(stats[:4], stats[:4], out=stats[12:])
        means = torch.empty(16, h * w)
        kernels = self.box_filter.weight[:, 0].detach().numpy()
        src_planes, dst_planes = stats.view(16, h, w).numpy(), means.view(16, h, w).numpy()
        for c in range(16):
            # zero padding, as the convolution's padding=1
            cv2.filter2D(src_planes[c], -1, kernels[c % 4], dst=dst_planes[c], borderType=cv2.BORDER_CONSTANT)
        mean_x, mean_y = means[:4], means[4:8]
        stat = torch.empty(8, h * w)
        torch.addcmul(means[8:12], mean_x, mean_y, value=-1, out=stat[:4])  # covariance x, y
        torch.addcmul(means[12:], mean_x, mean_x, value=-1, out=stat[4:])  # variance of x
        convs = [self.conv[i] for i in (0, 2, 4)]
        w1, w2, w3 = (conv.weight[:, :, 0, 0] for conv in convs if isinstance(conv, nn.Conv2d))
        b1, b2, b3 = (conv.bias[:, None] for conv in convs if isinstance(conv, nn.Conv2d) and conv.bias is not None)
        # NHWC features (the decoder's CPU layout) enter the product as a transposed view, uncopied
        hid = hid.reshape(16, -1) if hid.is_contiguous() else hid.permute(1, 2, 0).reshape(-1, 16).t()
        hidden = torch.addmm(b1, w1[:, :8], stat).addmm_(w1[:, 8:], hid).relu_()
        hidden = torch.addmm(b2, w2, hidden).relu_()
        out = torch.empty(8, h, w)
        a = torch.addmm(b3, w3, hidden, out=out.view(8, -1)[:4])
        torch.addcmul(mean_y, a, mean_x, value=-1, out=out.view(8, -1)[4:])
        return out

    @staticmethod
    def apply_coefficients(ab: Tensor, fine_src: Tensor) -> Tensor:
        """`A * x + b` with coefficients `ab` `[N,8,H,W]` already at the fine image's size."""
        return torch.addcmul(ab[:, 4:], ab[:, :4], _with_grey(fine_src))
