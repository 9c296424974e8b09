"""Bilinear resizing through OpenCV: the same grid and values as torch's `F.interpolate`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vidmatte.model.layout import channels_last
from vidmatte.model.resample import resize_bilinear, scale_bilinear, scale_bilinear_bytes


def _reference(x: torch.Tensor, factor: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False, recompute_scale_factor=False)


@pytest.mark.parametrize("height,width,factor", [(720, 1280, 0.25), (240, 320, 0.5), (64, 96, 0.125), (8, 8, 0.5)])
def test_scale_bilinear_bytes_matches_torch(height, width, factor):
    frames = np.random.default_rng(1).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    small = scale_bilinear_bytes(frames, factor)
    expected = _reference(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255, factor)
    assert small.shape == expected.shape
    assert (small - expected).abs().max() < 1e-6
    assert small.is_contiguous(memory_format=torch.channels_last)


def test_scale_bilinear_bytes_declines_grids_it_cannot_match():
    frames = np.zeros((1, 100, 130, 3), np.uint8)
    assert scale_bilinear_bytes(frames, 0.375) is None  # 37.5 rows: OpenCV's grid would differ
    assert scale_bilinear_bytes(frames[:, :96, :128], 1.0) is None


@pytest.mark.parametrize("layout", ["nchw", "nhwc"])
def test_resize_and_scale_match_torch_in_both_layouts(layout):
    x = torch.rand(2, 8, 23, 40)
    if layout == "nhwc":
        x = channels_last(x)
    up = resize_bilinear(x, (45, 80))
    assert (up - F.interpolate(x, (45, 80), mode="bilinear", align_corners=False)).abs().max() < 1e-5
    assert up.is_contiguous(memory_format=torch.channels_last) == (layout == "nhwc")
    doubled = scale_bilinear(x, 2.0)
    assert (doubled - _reference(x, 2.0)).abs().max() < 1e-5
