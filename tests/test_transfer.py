"""Host <-> device copies: exact round trips, C-ordered results, and the CUDA path where there is one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidmatte.transfer import to_device, to_host

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
def test_round_trip_is_exact_and_c_ordered(device):
    frames = np.random.default_rng(0).integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    on_device = to_device(frames[:, ::-1], torch.device(device))  # a strided view goes in
    assert on_device.device.type == device and on_device.dtype == torch.uint8
    planar = on_device.permute(0, 3, 1, 2)  # a permuted (non-contiguous) tensor comes back
    back = to_host(planar)
    assert back.flags.c_contiguous and back.shape == (2, 3, 37, 53)
    np.testing.assert_array_equal(back, frames[:, ::-1].transpose(0, 3, 1, 2))


@pytest.mark.gpu
def test_cuda_uploads_in_flight_do_not_clobber_each_other():
    """Several asynchronous uploads from pinned staging, queued before any is read, all arrive intact."""
    rng = np.random.default_rng(1)
    chunks = [rng.integers(0, 256, (4, 1080, 1920, 3), dtype=np.uint8) for _ in range(3)]
    on_device = [to_device(c, torch.device("cuda")) for c in chunks]
    for chunk, t in zip(chunks, on_device):
        assert t.is_cuda
        np.testing.assert_array_equal(to_host(t), chunk)
