"""Host <-> device copies: exact round trips, C-ordered results, and the CUDA path where there is one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidmatte.transfer import to_device, to_host

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))]


@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_is_exact_and_c_ordered(device):
    frames = np.random.default_rng(0).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    on_device = to_device(frames[:, ::-1], torch.device(device))  # a strided view goes in
    assert on_device.device.type == device and on_device.dtype == torch.uint8
    planar = on_device.permute(0, 3, 1, 2)  # a permuted (non-contiguous) tensor comes back
    back = to_host(planar)
    assert back.flags.c_contiguous and back.shape == (2, 3, 37, 53)
    np.testing.assert_array_equal(back, frames[:, ::-1].transpose(0, 3, 1, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
def test_cuda_upload_is_asynchronous_from_pinned_memory():
    frames = np.zeros((4, 1080, 1920, 3), np.uint8)
    t = to_device(frames, torch.device("cuda"))
    torch.cuda.synchronize()
    assert t.is_cuda and int(t.sum()) == 0
