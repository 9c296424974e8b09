"""NHWC execution on CPU: same numbers as the NCHW ops, and the layout survives each step."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vidmatte.model.layout import Pointwise, cat_channels, channels_last, is_channels_last


def _nhwc(*shape: int) -> torch.Tensor:
    return channels_last(torch.randn(*shape))


def test_cat_channels_equals_cat_and_stays_nhwc():
    a, b = _nhwc(2, 5, 7, 9), _nhwc(2, 3, 7, 9)
    sliced = _nhwc(2, 8, 7, 9)[:, 2:6]  # a channel slice: torch.cat alone would give NCHW here
    out = cat_channels([a, b, sliced])
    assert torch.equal(out, torch.cat([a, b, sliced], 1))
    assert out.is_contiguous(memory_format=torch.channels_last)
    planar = cat_channels([a.contiguous(), b])
    assert torch.equal(planar, torch.cat([a, b], 1)) and planar.is_contiguous()


def test_channels_last_gives_canonical_strides():
    x = _nhwc(1, 3, 4, 5)
    odd = x[None].flatten(0, 1)  # batch of one with a stride oneDNN reads as NCHW
    odd = odd.as_strided(odd.shape, (3, 1, 15, 3))
    assert odd.is_contiguous(memory_format=torch.channels_last)
    fixed = channels_last(odd)
    assert fixed.stride() == (60, 1, 15, 3) and fixed.data_ptr() == odd.data_ptr()
    assert torch.equal(fixed, x)
    assert is_channels_last(fixed) and not is_channels_last(x.contiguous())


def test_pointwise_is_a_1x1_convolution():
    torch.manual_seed(0)
    for bias in (True, False):
        conv = Pointwise(12, 7, bias=bias)
        for x in (_nhwc(2, 12, 5, 6), torch.randn(2, 12, 5, 6)):
            expected = F.conv2d(x, conv.weight, conv.bias)
            out = conv(x)
            assert torch.allclose(out, expected, atol=1e-5)
            assert out.is_contiguous(memory_format=torch.channels_last) == is_channels_last(x)
    assert set(Pointwise(4, 2).state_dict()) == {"weight", "bias"}  # loads the same weights as Conv2d
