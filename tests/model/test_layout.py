"""NHWC execution: same numbers as the NCHW ops, the layout survives each step, and the network's
layout switch changes nothing but speed."""

from __future__ import annotations

import pytest
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


@pytest.mark.parametrize("ratio", [0.5, 1.0])
def test_network_gives_the_same_matte_in_either_layout(sample_rgb, ratio):
    """The layout switch (NHWC by default on CPU and CUDA) changes speed, not results."""
    from tests.conftest import moving_clip
    from vidmatte import load_model

    clip = torch.from_numpy(moving_clip(sample_rgb, 96, 160, frames=3)).permute(0, 3, 1, 2).contiguous() / 255
    results = {}
    for nhwc in (True, False):
        model = load_model("cpu", channels_last=nhwc)
        state = [None] * 4
        outs = []
        with torch.inference_mode():
            for frame in clip:
                fgr, pha, *state = model(frame[None], *state, downsample_ratio=ratio)
                outs.append(torch.cat([fgr, pha], 1))
        results[nhwc] = (torch.cat(outs), state)
    (nhwc_out, nhwc_state), (nchw_out, nchw_state) = results[True], results[False]
    assert nhwc_state[0].is_contiguous(memory_format=torch.channels_last)
    assert not is_channels_last(nchw_state[0])
    assert (nhwc_out - nchw_out).abs().max() < 1e-5
    for a, b in zip(nhwc_state, nchw_state):
        assert (a - b).abs().max() < 1e-4  # unbounded hidden values; the parity tests' bound


def test_default_layout_per_device():
    from vidmatte.model.network import prefers_channels_last

    assert prefers_channels_last(torch.device("cpu")) and prefers_channels_last(torch.device("cuda"))
    assert not prefers_channels_last(torch.device("mps"))
