"""The fused full-resolution pass gives the pictures of `refine` + `render`, to one level of rounding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import moving_clip
from vidmatte.compose import make_background, render
from vidmatte.io.formats import OUTPUT_TYPES
from vidmatte.pipeline.fused import BAND_ROWS, FusedRenderer

HEIGHT, WIDTH = BAND_ROWS * 2 + 17, 256  # a last band shorter than the others


@pytest.fixture(scope="module")
def half(engine):
    return engine.with_ratio(0.5)


@pytest.fixture(scope="module")
def clip(sample_rgb):
    return moving_clip(sample_rgb, HEIGHT, WIDTH, frames=3)


def _both(net, clip, output_type, background=None):
    """(fused, two-step) pictures of the same coarse mattes."""
    coarse, _ = net.step_coarse(net.encode(clip))
    fused = FusedRenderer(net, output_type, background)(coarse, clip)
    return fused, render(net.refine(coarse), output_type, clip, background)


def _assert_same(fused, expected):
    assert fused.shape == expected.shape and fused.dtype == np.uint8
    diff = np.abs(fused.astype(np.int16) - expected)
    assert diff.max() <= 1  # float sums in another order round a rare value the other way
    assert (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("output_type", OUTPUT_TYPES)
def test_every_output_type_matches_the_two_step_path(half, clip, output_type):
    background = make_background("green", WIDTH, HEIGHT) if output_type == "composite" else None
    fused, expected = _both(half, clip, output_type, background)
    _assert_same(fused, expected)
    if output_type == "rgba":  # a real matte: subject and background both present
        assert fused[..., 3].max() == 255 and fused[..., 3].min() == 0


def test_picture_backgrounds(half, clip, tmp_path):
    picture = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "bg.png"), picture)
    for spec in (str(tmp_path / "bg.png"), "blur", "#3366cc"):
        fused, expected = _both(half, clip, "composite", make_background(spec, WIDTH, HEIGHT))
        _assert_same(fused, expected)


def test_full_resolution_network_and_one_frame(engine, sample_rgb):
    net = engine.with_ratio(1.0)  # source frames become float for the encoder
    frame = moving_clip(sample_rgb, 96, 128, frames=1)[0]
    coarse, _ = net.step_coarse(net.encode(frame))
    fused = FusedRenderer(net, "rgba")(coarse, frame)
    _assert_same(fused, render(net.refine(coarse), "rgba"))


def test_refusals(half, clip):
    with pytest.raises(ValueError, match="sepia"):
        FusedRenderer(half, "sepia")
    with pytest.raises(ValueError, match="background"):
        FusedRenderer(half, "composite")
    coarse, _ = half.step_coarse(half.encode(clip[:2]))
    with pytest.raises(ValueError, match="frames"):
        FusedRenderer(half, "rgba")(coarse, clip)
