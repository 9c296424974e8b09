"""MobileNetV3-Large feature extractor, as used by the matting network.

Batch norm is already folded into every convolution (the reference graph ships it that
way), so each conv carries a bias and there are no norm layers. The last stage is dilated
instead of strided, giving an output stride of 16 rather than 32: the decoder needs the
extra resolution for thin structures such as hair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .layout import Pointwise

# (in, kernel, expanded, out, squeeze-excite, activation, stride, dilation) for blocks 1..15,
# the MobileNetV3-Large table (Howard et al. 2019) with the last stride-2 stage dilated.
_BLOCKS = (
    (16, 3, 16, 16, False, "relu", 1, 1),
    (16, 3, 64, 24, False, "relu", 2, 1),
    (24, 3, 72, 24, False, "relu", 1, 1),
    (24, 5, 72, 40, True, "relu", 2, 1),
    (40, 5, 120, 40, True, "relu", 1, 1),
    (40, 5, 120, 40, True, "relu", 1, 1),
    (40, 3, 240, 80, False, "hardswish", 2, 1),
    (80, 3, 200, 80, False, "hardswish", 1, 1),
    (80, 3, 184, 80, False, "hardswish", 1, 1),
    (80, 3, 184, 80, False, "hardswish", 1, 1),
    (80, 3, 480, 112, True, "hardswish", 1, 1),
    (112, 3, 672, 112, True, "hardswish", 1, 1),
    (112, 5, 672, 160, True, "hardswish", 1, 2),
    (160, 5, 960, 160, True, "hardswish", 1, 2),
    (160, 5, 960, 160, True, "hardswish", 1, 2),
)

# Indices (into `features`) whose outputs feed the decoder: strides 2, 4, 8 and 16.
_TAPS = (1, 3, 6, 16)

_ACTIVATIONS = {"relu": nn.ReLU, "hardswish": nn.Hardswish}


def _squeeze_channels(channels: int) -> int:
    """Width of the squeeze-excite bottleneck: channels/4 rounded to a multiple of 8."""
    v = max(8, int(channels / 4 + 4) // 8 * 8)
    return v + 8 if v < 0.9 * channels / 4 else v


class ConvAct(nn.Sequential):
    """Convolution (with folded batch norm) followed by an optional activation."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        act: str | None = None,
    ) -> None:
        conv = (
            Pointwise(cin, cout)
            if kernel == 1 and stride == 1 and groups == 1
            else nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2 * dilation, dilation, groups)
        )
        layers: list[nn.Module] = [conv]
        if act is not None:
            layers.append(_ACTIVATIONS[act](inplace=True))
        super().__init__(*layers)


class SqueezeExcite(nn.Module):
    """Channel attention: global pool -> 1x1 -> ReLU -> 1x1 -> hard sigmoid -> scale."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = _squeeze_channels(channels)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    """MobileNetV3 bottleneck: expand 1x1, depthwise kxk, optional SE, project 1x1, residual."""

    def __init__(
        self, cin: int, kernel: int, cexp: int, cout: int, se: bool, act: str, stride: int, dilation: int
    ) -> None:
        super().__init__()
        self.expand = ConvAct(cin, cexp, 1, act=act) if cexp != cin else nn.Identity()
        self.depthwise = ConvAct(cexp, cexp, kernel, stride, dilation, groups=cexp, act=act)
        self.se = SqueezeExcite(cexp) if se else nn.Identity()
        self.project = ConvAct(cexp, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class MobileNetV3Encoder(nn.Module):
    """`[N,3,H,W]` RGB in 0..1 -> features at strides 2, 4, 8, 16 with 16, 24, 40, 960 channels."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", _column(0.485, 0.456, 0.406), persistent=False)
        self.register_buffer("std", _column(0.229, 0.224, 0.225), persistent=False)
        self.features = nn.Sequential(
            ConvAct(3, 16, 3, stride=2, act="hardswish"),
            *(InvertedResidual(*cfg) for cfg in _BLOCKS),
            ConvAct(160, 960, 1, act="hardswish"),
        )

    mean: Tensor
    std: Tensor

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        x = (x - self.mean) / self.std
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                taps.append(x)
        f1, f2, f3, f4 = taps
        return f1, f2, f3, f4


def _column(*values: float) -> Tensor:
    return torch.tensor(values).view(1, -1, 1, 1)
