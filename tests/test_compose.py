"""Composing: colours, backgrounds of every kind, RGBA packing and composites, checked pixel by pixel."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.io.conftest import make_clip
from vidmatte.compose import (
    BlurBackground,
    ColorBackground,
    ImageBackground,
    VideoBackground,
    check_background,
    composite,
    cover,
    make_background,
    over_bytes,
    parse_color,
    render,
)
from vidmatte.errors import InputError
from vidmatte.types import Matte


def test_colours():
    assert parse_color("green") == (0, 255, 0) and parse_color(" Grey ") == (128, 128, 128)
    assert parse_color("#FF8000") == (255, 128, 0) and parse_color("10, 20,30") == (10, 20, 30)
    assert parse_color("#ff80") is None and parse_color("300,0,0") is None and parse_color("beach.jpg") is None


def test_cover_fills_without_bars_or_distortion():
    image = np.zeros((100, 200, 3), np.uint8)
    image[:, 95:105] = 255  # a centred stripe
    out = cover(image, 50, 50)
    assert out.shape == (50, 50, 3)
    assert out[:, 24:26].min() > 100 and out[:, :10].max() == 0  # centre-cropped, not squeezed


def test_background_kinds_by_name(tmp_path):
    jfif = tmp_path / "beach.jfif"
    cv2.imwrite(str(tmp_path / "beach.jpg"), np.full((40, 60, 3), (255, 0, 0), np.uint8))  # BGR blue
    (tmp_path / "beach.jpg").rename(jfif)  # an image by its suffix, whatever the suffix is
    clip = make_clip(tmp_path / "bg.mp4", width=40, height=30, frames=2)
    assert isinstance(make_background("blur", 32, 24), BlurBackground)
    assert isinstance(make_background("#00ff00", 32, 24), ColorBackground)
    image = make_background(str(jfif), 32, 24)
    assert isinstance(image, ImageBackground)
    assert image.for_frames(np.zeros((1, 24, 32, 3), np.uint8))[0, :, 12, 16].tolist() == pytest.approx(
        [0, 0, 1], abs=0.02
    )
    assert isinstance(make_background(str(clip), 32, 24), VideoBackground)
    with pytest.raises(InputError, match="neither a colour"):
        check_background("nosuchthing")


def test_video_background_loops_and_is_covered_to_size(tmp_path):
    clip = make_clip(tmp_path / "bg.mp4", width=40, height=30, frames=2)
    background = make_background(str(clip), 32, 24)
    chunk = background.for_frames(np.zeros((5, 24, 32, 3), np.uint8))
    assert chunk.shape == (5, 3, 24, 32)
    torch.testing.assert_close(chunk[0], chunk[2], atol=0.02, rtol=0)  # frame 0 again after the 2-frame loop


def test_composite_and_over_bytes_agree():
    rng = np.random.default_rng(0)
    fg = rng.random((1, 3, 20, 30), np.float32)
    alpha = rng.random((1, 1, 20, 30), np.float32)
    bg = rng.random((1, 3, 20, 30), np.float32)
    exact = composite(torch.from_numpy(fg), torch.from_numpy(alpha), torch.from_numpy(bg))[0].permute(1, 2, 0)
    matte = Matte(torch.from_numpy(fg), torch.from_numpy(alpha))
    rgba = matte.rgba()[0]
    over = over_bytes(rgba, np.round(bg[0].transpose(1, 2, 0) * 255).astype(np.uint8))
    assert np.abs(over.astype(float) - exact.numpy() * 255).max() <= 2  # inputs rounded to bytes first
    assert over_bytes(np.dstack([rgba[..., :3], np.zeros_like(rgba[..., 3])]), over).tolist() == over.tolist()


def test_render_output_types():
    fg = torch.full((2, 3, 4, 5), 0.5)
    alpha = torch.zeros(2, 1, 4, 5)
    alpha[..., :2] = 1
    matte = Matte(fg, alpha)
    rgba = render(matte, "rgba")
    assert rgba.shape == (2, 4, 5, 4) and rgba[0, 0, 0].tolist() == [128, 128, 128, 255]
    grey = render(matte, "alpha")
    assert grey.shape == (2, 4, 5, 3) and grey[0, 0, 4].tolist() == [0, 0, 0] and grey[0, 0, 0].tolist() == [255] * 3
    assert render(matte, "foreground")[0, 0, 4].tolist() == [0, 0, 0]
    red = make_background("red", 5, 4)
    assert render(matte, "composite", np.zeros((2, 4, 5, 3), np.uint8), red)[1, 3, 4].tolist() == [255, 0, 0]
    with pytest.raises(ValueError):
        render(matte, "composite")
    with pytest.raises(ValueError):
        render(matte, "sepia")
