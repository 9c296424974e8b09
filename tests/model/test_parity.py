"""The PyTorch port against the reference ONNX graph run by onnxruntime (fp32, state carried)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import moving_clip
from vidmatte import load_model

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def session(reference_onnx):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(reference_onnx, providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module")
def model():
    return load_model("cpu", torch.float32)


@pytest.mark.parametrize(
    "height,width,ratio",
    [
        (256, 256, 1.0),
        (480, 640, 0.5),
        (720, 1280, 0.25),
        (241, 333, 0.5),  # odd sizes exercise the ceil-mode pooling and crop-after-upsample paths
    ],
)
def test_matches_reference_graph(session, model, sample_rgb, height, width, ratio):
    clip = moving_clip(sample_rgb, height, width, frames=4)
    ref_state = [np.zeros((1, 1, 1, 1), np.float32)] * 4
    state = [None] * 4
    for frame in clip:
        src = (frame.transpose(2, 0, 1)[None] / np.float32(255)).astype(np.float32)
        ref_fgr, ref_pha, *ref_state = session.run(
            None,
            {
                "src": src,
                "r1i": ref_state[0],
                "r2i": ref_state[1],
                "r3i": ref_state[2],
                "r4i": ref_state[3],
                "downsample_ratio": np.array([ratio], np.float32),
            },
        )
        with torch.no_grad():
            fgr, pha, *state = model(torch.from_numpy(src), *state, downsample_ratio=ratio)
        assert fgr.shape == ref_fgr.shape and pha.shape == ref_pha.shape
        assert np.abs(pha.numpy() - ref_pha).max() <= TOLERANCE
        assert np.abs(fgr.numpy() - ref_fgr).max() <= TOLERANCE
        for ours, ref in zip(state, ref_state):
            assert ours.shape == ref.shape
    # the clip must contain a real matte, not a blank one that would trivially agree
    assert 0.1 < float(ref_pha.mean()) < 0.9
