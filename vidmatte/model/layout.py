"""Memory layout: the network runs channels-last (NHWC) on CPU and CUDA (`network.prefers_channels_last`).

oneDNN's 3x3 convolutions at the decoder's sizes run ~25% faster on NHWC tensors than on
NCHW ones, which it reorders on every call (benchmarks/speed.md). That pays only if the
tensors stay NHWC between convolutions; `torch.cat` falls back to NCHW as soon as one input
is a channel slice, hence `cat_channels`. A 1x1 convolution on NHWC is a plain matrix
product (`Pointwise`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .mixed import OperandCopies

CHANNELS_LAST = torch.channels_last


def is_channels_last(x: Tensor) -> bool:
    """True for a 4-d tensor laid out NHWC (channels innermost), slices of one included."""
    return x.dim() == 4 and x.stride(1) == 1 and x.shape[1] > 1


def channels_last(x: Tensor) -> Tensor:
    """`x` laid out NHWC with canonical strides (no copy if it already is NHWC).

    Canonical matters: a size-1 axis may carry any stride (`flatten` of a time axis of one
    leaves odd ones), `is_contiguous` ignores it, but oneDNN's layout choice does not and
    quietly falls back to NCHW.
    """
    if not x.is_contiguous(memory_format=CHANNELS_LAST):
        return x.contiguous(memory_format=CHANNELS_LAST)
    _n, c, h, w = x.shape
    canonical = (h * w * c, 1, w * c, c)
    return x if x.stride() == canonical else x.as_strided(x.shape, canonical)


def cat_channels(tensors: Sequence[Tensor]) -> Tensor:
    """`torch.cat(tensors, 1)` laid out like the first tensor (NHWC stays NHWC)."""
    first = tensors[0]
    if not is_channels_last(first):
        return torch.cat(list(tensors), 1)
    n, _, h, w = first.shape
    out = torch.empty(
        (n, sum(t.shape[1] for t in tensors), h, w), dtype=first.dtype, device=first.device, memory_format=CHANNELS_LAST
    )
    return torch.cat(list(tensors), 1, out=out)


class Pointwise(OperandCopies, nn.Conv2d):
    """A 1x1 convolution (same parameters, same state-dict keys) that runs NHWC CPU input as
    one matrix product.

    PyTorch sends single-threaded, batch-1 1x1 convolutions to its generic path, whose bias
    initialisation alone costs 2 ms on a 64x90x160 NHWC output; `addmm` on the `[N*H*W, C]`
    view of the same memory does the same sums without it, and its output is NHWC again.
    With `OperandCopies` set (mixed precision) it multiplies bf16 rows and weights, returning fp32.
    """

    def __init__(self, cin: int, cout: int, bias: bool = True) -> None:
        super().__init__(cin, cout, 1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or not is_channels_last(x):
            return super().forward(x)
        n, c, h, w = x.shape
        rows = x.permute(0, 2, 3, 1).reshape(-1, c)
        weight, bias = self.operands_for(x) or (self.weight, self.bias)
        weight = weight.view(self.out_channels, c).t()
        rows = rows.to(weight.dtype)
        out = rows @ weight if bias is None else torch.addmm(bias, rows, weight)
        return out.to(x.dtype).view(n, h, w, self.out_channels).permute(0, 3, 1, 2)
