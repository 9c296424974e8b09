"""Recurrent decoder: ConvGRU cells at four scales carry memory from frame to frame.

Shapes (N = B*T frames folded into the batch, `bt` = (B, T) or None for single frames):
  x4 `[N,128,H/16,W/16]` -> x3 `[N,80,H/8]` -> x2 `[N,40,H/4]` -> x1 `[N,32,H/2]` -> hid `[N,16,H,W]`
  (the last step, `decode0`, has no memory and runs apart: see `RecurrentDecoder`)
Hidden states: r4 `[B,64,H/16]`, r3 `[B,40,H/8]`, r2 `[B,20,H/4]`, r1 `[B,16,H/2]`; `None` means zeros.
Each block sends half of its channels through the GRU and passes the other half straight on.
The 3x3 convolutions may multiply bf16 operands on CPU (`mixed`); states and gates stay fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layout import cat_channels
from .mixed import MixedConv2d
from .resample import scale_bilinear
from .timefold import unfold_time


class ConvGRU(nn.Module):
    """Convolutional GRU over the time axis; states are plain tensors passed in and returned."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gates = MixedConv2d(2 * channels, 2 * channels, 3, padding=1)  # reset and update gates
        self.candidate = MixedConv2d(2 * channels, channels, 3, padding=1)

    def step(self, x: Tensor, h: Tensor) -> Tensor:
        r, z = self.gates(cat_channels([x, h])).sigmoid_().split(self.channels, 1)
        c = self.candidate(cat_channels([x, r * h])).tanh_()
        return torch.lerp(h, c, z)  # (1 - z) * h + z * c in one pass

    def forward(self, x: Tensor, h: Tensor | None, bt: tuple[int, int] | None) -> tuple[Tensor, Tensor]:
        """x `[N,C,H,W]` (time folded) -> (outputs `[N,C,H,W]`, last state `[B,C,H,W]`)."""
        if bt is None or bt[1] == 1:  # one frame: no stacking (which would also lose the NHWC layout)
            h = self.step(x, torch.zeros_like(x) if h is None else h)
            return h, h
        x = unfold_time(x, bt)
        if h is None:
            h = torch.zeros_like(x[:, 0])
        outputs = []
        for t in range(x.shape[1]):
            h = self.step(x[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, 1).flatten(0, 1), h


class _HalfRecurrent(nn.Module):
    """Mixin: run the second half of the channels through a GRU, keep the first half."""

    gru: ConvGRU

    def _recur(self, x: Tensor, r: Tensor | None, bt: tuple[int, int] | None) -> tuple[Tensor, Tensor]:
        a, b = x.split(self.gru.channels, 1)
        b, r = self.gru(b, r, bt)
        return cat_channels([a, b]), r


class BottleneckBlock(_HalfRecurrent):
    """Lowest scale: the LR-ASPP output goes straight into the GRU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gru = ConvGRU(channels // 2)

    def forward(self, x: Tensor, r: Tensor | None, bt: tuple[int, int] | None) -> tuple[Tensor, Tensor]:
        return self._recur(x, r, bt)


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """2x bilinear upsampling, cropped to the skip connection's size (odd sizes round up)."""
    x = scale_bilinear(x, 2.0)
    return x[:, :, : like.shape[2], : like.shape[3]]


class UpsamplingBlock(_HalfRecurrent):
    """Upsample, join the encoder skip and the pooled image, 3x3 conv + ReLU, then the GRU."""

    def __init__(self, cin: int, cskip: int, cimg: int, cout: int) -> None:
        super().__init__()
        self.conv = MixedConv2d(cin + cskip + cimg, cout, 3, padding=1)  # batch norm folded in
        self.gru = ConvGRU(cout // 2)

    def forward(
        self, x: Tensor, skip: Tensor, img: Tensor, r: Tensor | None, bt: tuple[int, int] | None
    ) -> tuple[Tensor, Tensor]:
        x = cat_channels([_upsample_to(x, skip), skip, img])
        return self._recur(self.conv(x).relu_(), r, bt)


class OutputBlock(nn.Module):
    """Full (network) resolution: upsample, join the image, two 3x3 conv + ReLU."""

    def __init__(self, cin: int, cimg: int, cout: int) -> None:
        super().__init__()
        self.conv1 = MixedConv2d(cin + cimg, cout, 3, padding=1)
        self.conv2 = MixedConv2d(cout, cout, 3, padding=1)

    def forward(self, x: Tensor, img: Tensor) -> Tensor:
        x = cat_channels([_upsample_to(x, img), img])
        return self.conv2(self.conv1(x).relu_()).relu_()


class RecurrentDecoder(nn.Module):
    """Encoder features + recurrent states -> x1 `[N,32,H/2,W/2]` + new states (the blocks with
    memory); `decode0(x1, img)` then gives the hidden features `[N,16,H,W]`. That last block has no
    memory, so it may run later, on another thread (`MattingNetwork.decode`)."""

    def __init__(self) -> None:
        super().__init__()
        self.decode4 = BottleneckBlock(128)
        self.decode3 = UpsamplingBlock(128, 40, 3, 80)
        self.decode2 = UpsamplingBlock(80, 24, 3, 40)
        self.decode1 = UpsamplingBlock(40, 16, 3, 32)
        self.decode0 = OutputBlock(32, 3, 16)

    def forward(
        self,
        img: Tensor,
        f1: Tensor,
        f2: Tensor,
        f3: Tensor,
        f4: Tensor,
        r1: Tensor | None,
        r2: Tensor | None,
        r3: Tensor | None,
        r4: Tensor | None,
        bt: tuple[int, int] | None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        # ceil_mode keeps odd sizes aligned with the 2x upsampling-then-crop above
        s1 = F.avg_pool2d(img, 2, 2, ceil_mode=True, count_include_pad=False)
        s2 = F.avg_pool2d(s1, 2, 2, ceil_mode=True, count_include_pad=False)
        s3 = F.avg_pool2d(s2, 2, 2, ceil_mode=True, count_include_pad=False)
        x4, r4 = self.decode4(f4, r4, bt)
        x3, r3 = self.decode3(x4, f3, s3, r3, bt)
        x2, r2 = self.decode2(x3, f2, s2, r2, bt)
        x1, r1 = self.decode1(x2, f1, s1, r1, bt)
        return x1, r1, r2, r3, r4
