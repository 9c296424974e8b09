"""The guided filter's CPU coefficient path computes what the general (all-torch) path does."""

from __future__ import annotations

import pytest
import torch

from vidmatte import load_model
from vidmatte.model.layout import channels_last


@pytest.fixture(scope="module")
def refiner():
    return load_model("cpu").refiner


@pytest.mark.parametrize("nhwc", [False, True])
def test_cpu_coefficients_equal_the_general_path(refiner, nhwc):
    torch.manual_seed(0)
    src, y, hid = torch.rand(2, 3, 37, 53), torch.randn(2, 4, 37, 53), torch.rand(2, 16, 37, 53)
    if nhwc:  # the decoder's CPU layout
        src, y, hid = channels_last(src), channels_last(y), channels_last(hid)
    with torch.no_grad():
        fast = refiner.coefficients(src, y, hid)
        general = refiner.double().coefficients(src.double(), y.double(), hid.double())  # float64: general path
        refiner.float()
    assert fast.shape == (2, 8, 37, 53) and fast.is_contiguous()
    assert (fast.double() - general).abs().max() < 5e-5
    assert general.abs().max() > 0.5  # not trivially zero
