"""The fused full-resolution pass gives the pictures of `refine` + `render`, to one level of rounding."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.conftest import moving_clip
from vidmatte import Matter
from vidmatte.compose import OUTPUT_TYPES, make_background, render
from vidmatte.fused_render import BAND_ROWS, FusedRenderer, fused_render_supported

HEIGHT, WIDTH = BAND_ROWS * 2 + 17, 256  # a last band shorter than the others


@pytest.fixture(scope="module")
def matter():
    return Matter(device="cpu", downsample_ratio=0.5)


@pytest.fixture(scope="module")
def clip(sample_rgb):
    return moving_clip(sample_rgb, HEIGHT, WIDTH, frames=3)


def _both(matter, clip, output_type, background=None):
    """(fused, two-step) pictures of the same coarse mattes."""
    coarse, _ = matter.step_coarse(matter.encode(clip))
    fused = FusedRenderer(matter, output_type, background)(coarse, clip)
    return fused, render(matter.refine(coarse), output_type, clip, background)


def _assert_same(fused, expected):
    assert fused.shape == expected.shape and fused.dtype == np.uint8
    diff = np.abs(fused.astype(np.int16) - expected)
    assert diff.max() <= 1  # float sums in another order round a rare value the other way
    assert (diff > 0).mean() < 1e-3


@pytest.mark.parametrize("output_type", OUTPUT_TYPES)
def test_every_output_type_matches_the_two_step_path(matter, clip, output_type):
    background = make_background("green", WIDTH, HEIGHT) if output_type == "composite" else None
    fused, expected = _both(matter, clip, output_type, background)
    _assert_same(fused, expected)
    if output_type == "rgba":  # a real matte: subject and background both present
        assert fused[..., 3].max() == 255 and fused[..., 3].min() == 0


def test_picture_backgrounds(matter, clip, tmp_path):
    picture = np.random.default_rng(0).integers(0, 256, (90, 120, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "bg.png"), picture)
    for spec in (str(tmp_path / "bg.png"), "blur", "#3366cc"):
        fused, expected = _both(matter, clip, "composite", make_background(spec, WIDTH, HEIGHT))
        _assert_same(fused, expected)


def test_full_resolution_network_and_one_frame(sample_rgb):
    matter = Matter(device="cpu", downsample_ratio=1.0)  # source frames become float for the encoder
    frame = moving_clip(sample_rgb, 96, 128, frames=1)[0]
    coarse, _ = matter.step_coarse(matter.encode(frame))
    fused = FusedRenderer(matter, "rgba")(coarse, frame)
    _assert_same(fused, render(matter.refine(coarse), "rgba"))


def test_refusals(matter, clip):
    assert fused_render_supported(matter, "rgba") and not fused_render_supported(matter, "sepia")
    with pytest.raises(ValueError, match="background"):
        FusedRenderer(matter, "composite")
    coarse, _ = matter.step_coarse(matter.encode(clip[:2]))
    with pytest.raises(ValueError, match="frames"):
        FusedRenderer(matter, "rgba")(coarse, clip)
