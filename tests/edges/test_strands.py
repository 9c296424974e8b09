"""Flyaway strands over a bright background, generated: thin dark strands leaving a head into a
bright window, and the network's typical failure on them (a blocky semi-transparent slab: the
truth averaged over 4x4 blocks and enlarged again, as a network run at a quarter of the
resolution gives). The still refinement must bring the strands back one by one."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vidmatte.edges import detail_factor, refine_edges_in_strips, refine_still
from vidmatte.stills import still_scale

SIZE = 192


def strands_over_bright(size: int = SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB picture, float32 true alpha): a dark-haired head at the bottom left, 40 strands
    0.5-1 px wide fanning out over a bright, slightly graded sky."""
    rng = np.random.default_rng(seed)
    up = 4  # drawn at 4x and area-reduced: sub-pixel widths, fractional alpha
    big = np.zeros((size * up, size * up), np.float32)
    cv2.circle(big, (0, size * up), int(size * up * 0.45), 1.0, -1, lineType=cv2.LINE_AA)
    for _ in range(40):
        angle = rng.uniform(-1.45, -0.15)
        radius = size * up * 0.45
        x, y = np.cos(angle) * radius * 0.9, size * up + np.sin(angle) * radius * 0.9
        points = [(x, y)]
        for _ in range(14):
            angle += rng.normal(0, 0.05)
            x, y = x + np.cos(angle) * 14, y + np.sin(angle) * 14
            points.append((x, y))
        cv2.polylines(
            big, [np.array(points, np.int32)], False, 1.0, thickness=int(rng.integers(2, 5)), lineType=cv2.LINE_AA
        )
    alpha = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    hair = np.stack([0.25 + 0.05 * xx, 0.17 + 0 * xx, 0.10 + 0 * xx], -1)
    sky = np.stack([0.86 + 0.08 * xx, 0.92 + 0.05 * yy, 0.97 + 0 * xx], -1)
    sky += 0.01 * rng.standard_normal(sky.shape).astype(np.float32)
    image = alpha[..., None] * hair + (1 - alpha[..., None]) * sky
    return np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), alpha


def slab(alpha: np.ndarray, factor: int = 4) -> np.ndarray:
    """The network's failure: alpha averaged over factor x factor blocks and enlarged bilinearly."""
    size = alpha.shape[::-1]
    small = cv2.resize(alpha, (size[0] // factor, size[1] // factor), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, size, interpolation=cv2.INTER_LINEAR)


@pytest.fixture(scope="module")
def scene():
    rgb, truth = strands_over_bright()
    network = slab(truth)
    alpha, fg = network.copy(), rgb.astype(np.float32) / 255
    refine_still(rgb, alpha, fg, network_scale=0.25)
    # where the strands are: off the head, in the sky
    zone = (cv2.dilate((truth > 0.05).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0) & (slab(truth, 16) < 0.5)
    return rgb, truth, network, alpha, zone


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_thin_strands_over_a_bright_background_come_back(scene):
    _, truth, network, refined, zone = scene
    assert zone.sum() > 1500  # the test is about many strand pixels, not a handful
    before, after = np.abs(network - truth)[zone].mean(), np.abs(refined - truth)[zone].mean()
    assert after < 0.6 * before, (before, after)
    # one by one: the refined alpha follows each strand (high correlation with the truth),
    # the slab does not
    assert _correlation(refined[zone], truth[zone]) > 0.85
    assert _correlation(network[zone], truth[zone]) < 0.7


def test_the_gaps_between_strands_open_up(scene):
    _, truth, network, refined, zone = scene
    gaps = zone & (truth < 0.02)  # sky between strands, which the slab covers in grey
    assert network[gaps].mean() > 0.1
    assert refined[gaps].mean() < 0.5 * network[gaps].mean(), (network[gaps].mean(), refined[gaps].mean())


def test_an_enlarged_picture_is_refined_as_its_original(scene):
    rgb, truth, network, refined, zone = scene
    factor = 4
    big_size = (SIZE * factor, SIZE * factor)
    big_rgb = cv2.resize(rgb, big_size, interpolation=cv2.INTER_CUBIC)
    big_truth = cv2.resize(truth, big_size, interpolation=cv2.INTER_LINEAR)
    big_network = cv2.resize(network, big_size, interpolation=cv2.INTER_LINEAR)
    assert detail_factor(big_rgb) in (factor // 2, factor)  # conservative: never above the enlargement
    alpha, fg = big_network.copy(), big_rgb.astype(np.float32) / 255
    refine_still(big_rgb, alpha, fg, network_scale=0.25 / factor, detail=factor)
    big_zone = cv2.resize(zone.astype(np.uint8), big_size, interpolation=cv2.INTER_NEAREST) > 0
    native = np.abs(refined - truth)[zone].mean()
    enlarged = np.abs(alpha - big_truth)[big_zone].mean()
    before = np.abs(big_network - big_truth)[big_zone].mean()
    assert enlarged < 1.25 * native and enlarged < 0.7 * before, (native, enlarged, before)
    assert alpha.min() >= 0 and alpha.max() <= 1 and fg.min() >= 0 and fg.max() <= 1


def test_detail_factor_of_native_enlarged_and_flat_pictures():
    rng = np.random.default_rng(3)
    texture = cv2.GaussianBlur(rng.uniform(0, 255, (256, 256, 3)).astype(np.float32), (0, 0), 0.7)
    native = np.clip(texture, 0, 255).astype(np.uint8)
    assert detail_factor(native) == 1
    found = {}
    for factor in (3, 4, 8, 16):
        enlarged = cv2.resize(native, (256 * factor, 256 * factor), interpolation=cv2.INTER_CUBIC)
        found[factor] = detail_factor(enlarged)
    # a power of two at most the enlargement and at least half of it (measured: 2, 2, 4, 8)
    assert all(factor / 2 <= f <= factor for factor, f in found.items() if factor != 3), found
    assert found[3] == 2, found
    assert detail_factor(np.full((512, 512, 3), 200, np.uint8)) == 1
    assert detail_factor(native[:40, :40]) == 1  # too small to judge


def test_still_scale_stays_at_the_real_resolution():
    assert still_scale(320, 320) == 1.0
    # 8000x8000 enlarged 25x from 320: the network would see 620 px; at the real resolution it
    # sees what fits the picture's detail, but never below its 256 px floor
    assert round(still_scale(8000, 8000) * 8000) == 620
    assert still_scale(8000, 8000, detail=32) == 256 / 8000
    assert still_scale(8000, 8000, detail=16) == 1 / 16


def test_refinement_reports_progress_strip_by_strip():
    rgb, truth = strands_over_bright(96)
    alpha, fg = slab(truth), rgb.astype(np.float32) / 255
    calls = []
    refine_edges_in_strips(
        torch.from_numpy(rgb).permute(2, 0, 1),
        torch.from_numpy(alpha)[None],
        torch.from_numpy(fg).permute(2, 0, 1),
        strip_pixels=32 * 96,
        overlap=16,
        progress=lambda p: calls.append((p.task, p.done, p.total)),
    )
    assert calls[0] == ("refine", 0, 3) and calls[-1] == ("refine", 3, 3)
    assert [c[1] for c in calls] == [0, 1, 2, 3]
