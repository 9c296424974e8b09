"""Generated people clips for the subject tracker, matted by the real network.

The person is the bundled public-domain astronaut portrait, cut out once by still mode; clips
composite it and mirrored, smaller copies of it over a smooth random backdrop at 256x144 (the
network then runs at full size, so its low-resolution alpha is the clip's own size). Every
clip records each person's true visible alpha (its alpha with the people in front cut out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import torch

from vidmatte import EMPTY_STATE, Matter

WIDTH, HEIGHT = 256, 144


@dataclass
class Clip:
    frames: np.ndarray  # (T,H,W,3) uint8
    visible: np.ndarray  # (T,P,H,W) float32: each person's visible alpha
    alpha: np.ndarray  # (T,H,W) float32: the network's low-resolution alpha (= full size here)
    small: np.ndarray  # (T,H,W,3) uint8: the picture the network saw


def backdrop(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, (HEIGHT // 30 + 2, WIDTH // 30 + 2, 3)).astype(np.uint8)
    return cv2.resize(small, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255


@pytest.fixture(scope="session")
def matter() -> Iterator[Matter]:
    # one thread: these small frames gain nothing from more, and on a busy machine two threads
    # per test process can be ten times slower than one
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Matter(device="cpu")
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def person(matter, sample_rgb) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut cut out: premultiplied colour (h,w,3) and alpha (h,w), cropped to her, at 192 px."""
    from vidmatte.stills import matte_still

    rgb = cv2.resize(sample_rgb, (192, 192), interpolation=cv2.INTER_AREA)
    result = matte_still(matter, rgb, max_passes=6)
    alpha = np.where(result.alpha > 0.02, result.alpha, 0).astype(np.float32)
    ys, xs = np.nonzero(alpha)
    box = slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)
    return np.ascontiguousarray((result.foreground * alpha[..., None])[box]), np.ascontiguousarray(alpha[box])


def place(person, cx: float, height: float, mirror: bool) -> tuple[np.ndarray, np.ndarray]:
    fg, a = person
    if mirror:
        fg, a = fg[:, ::-1], a[:, ::-1]
    k = height / a.shape[0]
    # standing on the bottom edge (a bust: cut by the frame)
    m = np.float32([[k, 0, cx - k * a.shape[1] / 2], [0, k, HEIGHT + 4 - k * a.shape[0]]])
    rgba = cv2.warpAffine(np.dstack([fg, a]).astype(np.float32), m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR)
    return rgba[..., :3], np.clip(rgba[..., 3], 0, 1)


def make_clip(matter: Matter, person, paths: list[tuple[list[float], float, bool, int]], seed: int = 0) -> Clip:
    """paths: per person (centre x per frame, height, mirrored, depth: larger is in front)."""
    count = len(paths[0][0])
    back = backdrop(seed)
    rng = np.random.default_rng(seed)
    frames, visible = [], []
    for t in range(count):
        placed = [place(person, xs[t], h, mirror) for xs, h, mirror, _ in paths]
        order = sorted(range(len(paths)), key=lambda i: paths[i][3])
        img = back.copy()
        for i in order:
            img = img * (1 - placed[i][1][..., None]) + placed[i][0]
        vis = []
        for i in range(len(paths)):
            v = placed[i][1].copy()
            for j in order:
                if paths[j][3] > paths[i][3]:
                    v *= 1 - placed[j][1]
            vis.append(v)
        noise = rng.normal(0, 1.5 / 255, img.shape)
        frames.append(np.clip((img + noise) * 255 + 0.5, 0, 255).astype(np.uint8))
        visible.append(np.stack(vis))
    frames = np.stack(frames)
    state = matter.warm_up(frames[0], 4, EMPTY_STATE)
    alphas, smalls = [], []
    for t in range(count):
        coarse, state = matter.step_coarse(frames[t], state)
        alphas.append(coarse.y[0, 3].clamp(0, 1).numpy().copy())
        smalls.append((coarse.small[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    return Clip(frames, np.stack(visible).astype(np.float32), np.stack(alphas), np.stack(smalls))


def lerp(a: float, b: float, n: int) -> list[float]:
    return list(np.linspace(a, b, n))


@pytest.fixture(scope="session")
def crossing(matter, person) -> Clip:
    """Person 0 (nearer, bigger) walks left to right in front of person 1 (mirrored, smaller,
    walking the other way); at the middle person 1 is almost hidden."""
    n = 26
    return make_clip(matter, person, [(lerp(40, 216, n), 120, False, 1), (lerp(216, 40, n), 96, True, 0)])


@pytest.fixture(scope="session")
def leaving(matter, person) -> Clip:
    """Person 0 walks out of the picture to the right; person 1 stands still on the left."""
    n = 16
    return make_clip(matter, person, [(lerp(160, 340, n), 112, False, 0), ([56.0] * n, 112, True, 0)], seed=1)


def point_on(clip: Clip, k: int, t: int = 0) -> tuple[int, int]:
    """A pixel deep inside person k on frame t (full-resolution = clip coordinates)."""
    inside = (clip.visible[t, k] > 0.95).astype(np.uint8)
    d = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return int(x), int(y)


def kept(pred: np.ndarray, truth: np.ndarray) -> float:
    """Share of `truth` kept by `pred`."""
    return float(np.minimum(pred, truth).sum() / max(truth.sum(), 1e-6))
