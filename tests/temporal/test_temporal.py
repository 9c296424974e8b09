"""Temporal stability: the smoother damps still flicker without lagging moving edges, the
scene-cut detector fires on cuts only, and resetting at a cut equals a fresh run."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import moving_clip
from vidmatte import Matte, Matter
from vidmatte.temporal import AlphaSmoother, SceneCutDetector, smoother_for, split_at_cuts


def texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random colour picture `(H,W,3)` uint8 (blobs of a few tens of px)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3)).astype(np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def matte_of(alpha: np.ndarray, frames: np.ndarray, dtype=torch.float32, device="cpu") -> Matte:
    """A `Matte` from `(T,H,W)` float alpha; the foreground is the frames themselves."""
    a = torch.from_numpy(alpha.astype(np.float32))[:, None]
    f = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    return Matte(f.to(device, dtype), a.to(device, dtype))


def step_edge_clip(frames: int, height: int = 48, speed: float = 3.0, x0: float = 40.0, contrast: float | None = None):
    """A bright foreground left of a vertical edge moving right at `speed` px/frame over a
    textured background; returns (frames uint8, true alpha float, edge positions).
    With `contrast`, the foreground is the background's mean colour + `contrast` levels."""
    width = int(x0 + speed * frames + 40)
    bg = texture(height, width, seed=3).astype(np.float32)
    xs = np.arange(width, dtype=np.float32)
    positions = x0 + speed * np.arange(frames)
    alpha = np.clip(positions[:, None] - xs[None, :] + 0.5, 0, 1)  # edge at `position`, 1 px ramp
    alpha = np.repeat(alpha[:, None, :], height, axis=1)
    fg = np.array([230, 220, 200], np.float32) if contrast is None else bg.mean((0, 1)) + contrast
    pictures = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    # pixel i covers [i, i+1): the edge lies half a pixel right of `position`
    return np.clip(pictures + 0.5, 0, 255).astype(np.uint8), alpha, positions + 0.5


def edge_position(alpha: np.ndarray) -> np.ndarray:
    """Per frame, the edge's x: the foreground width = row sums of alpha, averaged over rows."""
    return alpha.sum(-1).mean(-1)


def flicker(alpha: np.ndarray) -> float:
    return float(np.abs(np.diff(alpha, axis=0)).mean())


def smooth(smoother: AlphaSmoother, alpha: np.ndarray, frames: np.ndarray, chunk: int = 0, **kw) -> np.ndarray:
    if chunk:
        parts = [
            smoother(matte_of(alpha[i : i + chunk], frames[i : i + chunk], **kw), frames[i : i + chunk])
            for i in range(0, len(frames), chunk)
        ]
        return np.concatenate([p.alpha[:, 0].float().cpu().numpy() for p in parts])
    return smoother(matte_of(alpha, frames, **kw), frames).alpha[:, 0].float().cpu().numpy()


# --- smoother ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def still_scene():
    """30 frames of a still picture with sensor noise, and an alpha with per-frame noise."""
    rng = np.random.default_rng(1)
    base = texture(64, 96, seed=1)
    frames = np.clip(base[None].astype(np.int16) + rng.integers(-3, 4, (30, 64, 96, 3)), 0, 255).astype(np.uint8)
    true_alpha = np.zeros((64, 96), np.float32)
    true_alpha[16:56, 24:72] = 1
    true_alpha = cv2.GaussianBlur(true_alpha, (0, 0), 3)
    noisy = np.clip(true_alpha + rng.normal(0, 0.04, (30, 64, 96)), 0, 1).astype(np.float32)
    return frames, noisy, true_alpha


def test_smoother_damps_flicker_of_a_still_scene(still_scene):
    frames, noisy, true_alpha = still_scene
    out = smooth(AlphaSmoother(), noisy, frames)
    assert flicker(out) < 0.5 * flicker(noisy)
    # and it is closer to the truth, not just flatter
    assert np.abs(out[10:] - true_alpha).mean() < 0.7 * np.abs(noisy[10:] - true_alpha).mean()
    np.testing.assert_array_equal(out[0], noisy[0])  # the first frame passes through


def test_smoother_for_a_primed_network_damps_from_the_second_frame(still_scene):
    """After a primed network (the pipeline's default) the first frames are as settled as the rest:
    no warm-up ramp, so the flicker of the first frames is damped like any other; unprimed, the
    ramp lets them through."""
    frames, noisy, true_alpha = still_scene
    primed = smooth(smoother_for(0.97, primed=True), noisy, frames)
    unprimed = smooth(smoother_for(0.97, primed=False), noisy, frames)
    np.testing.assert_array_equal(primed[0], noisy[0])  # the first frame still passes through
    first = slice(0, 4)
    assert flicker(primed[first]) < 0.5 * flicker(unprimed[first])
    assert np.abs(primed[1:4] - true_alpha).mean() < np.abs(unprimed[1:4] - true_alpha).mean()
    assert smoother_for(0.97, primed=True, warmup=2).warmup == 2  # an explicit option wins


@pytest.mark.parametrize("speed", [1.0, 3.0, 8.0])
def test_smoother_does_not_lag_a_moving_edge(speed):
    frames, alpha, positions = step_edge_clip(24, speed=speed)
    rng = np.random.default_rng(2)
    noisy = np.clip(alpha + rng.normal(0, 0.03, alpha.shape) * (alpha > 0), 0, 1).astype(np.float32)
    out = smooth(AlphaSmoother(), noisy, frames)
    assert np.abs(edge_position(alpha) - positions).max() < 1e-3
    assert np.abs(edge_position(out) - edge_position(noisy)).max() < 1.0
    # the noise in the still foreground behind the edge is damped all the same
    assert flicker(out[:, :, :30]) < 0.6 * flicker(noisy[:, :, :30])


@pytest.mark.parametrize("speed", [0.25, 0.5])
def test_smoother_does_not_drift_behind_a_slow_faint_edge(speed):
    # 12 levels of contrast moving a fraction of a pixel per frame: each frame alone looks
    # still, but the change from the picture the smoothed alpha belongs to adds up
    frames, alpha, positions = step_edge_clip(40, speed=speed, contrast=12)
    out = smooth(AlphaSmoother(), alpha.astype(np.float32), frames)
    assert np.abs(edge_position(out) - positions).max() < 0.5


def test_smoother_clean_moving_edge_is_untouched():
    frames, alpha, _ = step_edge_clip(16, speed=2.0)
    out = smooth(AlphaSmoother(strength=0.9), alpha.astype(np.float32), frames)
    np.testing.assert_allclose(out, alpha, atol=1e-6)


def test_chunks_equal_single_frames_and_reset_forgets(still_scene):
    frames, noisy, _ = still_scene
    smoother = AlphaSmoother()
    whole = smooth(smoother, noisy[:12], frames[:12])
    smoother.reset()
    chunked = smooth(smoother, noisy[:12], frames[:12], chunk=5)
    smoother.reset()
    singles = smooth(smoother, noisy[:12], frames[:12], chunk=1)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    np.testing.assert_allclose(singles, whole, atol=1e-6)
    # after reset, the same frames give the same output as a fresh smoother
    smoother.reset()
    again = smooth(smoother, noisy[:6], frames[:6])
    np.testing.assert_array_equal(again, smooth(AlphaSmoother(), noisy[:6], frames[:6]))
    # ...whereas without a reset the past still counts
    carried = smooth(smoother, noisy[:6], frames[:6])
    assert np.abs(carried[0] - noisy[0]).max() > 1e-3


def same_colour_walk(frames: int = 40, speed: int = 10, seed: int = 7):
    """A textured subject with a soft (fur-like, alpha 0.35) fringe walking sideways at `speed`
    px/frame over a background of the same mean colour, stopping halfway (frames 15-24), then
    walking on; the network's alpha is the truth with a little noise on the subject (a network
    that has let go of the background). Returns (frames uint8, true alpha, network alpha)."""
    rng = np.random.default_rng(seed)
    height, width = 64, 64 + speed * frames
    bg = texture(height, width, seed=seed).astype(np.float32)
    bg = bg.mean((0, 1)) + 0.2 * (bg - bg.mean((0, 1)))  # a low-contrast background...
    skin = texture(height, 48, seed=seed + 1).astype(np.float32)
    skin = bg.mean((0, 1)) + 4 + 0.2 * (skin - skin.mean((0, 1)))  # ...and a subject of its colour
    shape = np.zeros((height, 48), np.float32)
    shape[8:, 8:40] = 1
    fringe = cv2.dilate(shape, np.ones((9, 9), np.uint8)) - shape  # 4 px of fur around the body
    cutout = shape + 0.35 * fringe
    xs = np.concatenate([np.arange(15), np.full(10, 15), np.arange(15, frames - 10)])[:frames] * speed
    pictures, truth = [], []
    for x in xs:
        a = np.zeros((height, width), np.float32)
        f = np.zeros((height, width, 3), np.float32)
        a[:, x : x + 48], f[:, x : x + 48] = cutout, skin
        pictures.append(a[..., None] * f + (1 - a[..., None]) * bg + rng.normal(0, 1.5, bg.shape))
        truth.append(a)
    truth = np.stack(truth)
    noisy = np.clip(truth + rng.normal(0, 0.03, truth.shape) * (truth > 0), 0, 1).astype(np.float32)
    return np.clip(np.stack(pictures) + 0.5, 0, 255).astype(np.uint8), truth, noisy


def left_behind(alpha: np.ndarray, truth: np.ndarray, window: int = 30) -> float:
    """Alpha mass (px per frame) where the truth is 0 now and was > 0.5 in the last `window` frames."""
    total = 0.0
    for t in range(1, len(alpha)):
        trail = (truth[max(0, t - window) : t].max(0) > 0.5) & (truth[t] == 0)
        total += float(alpha[t][trail].sum())
    return total / len(alpha)


@pytest.mark.parametrize("flow", [False, True])
def test_smoother_leaves_no_ghost_behind_a_fast_subject_on_a_same_coloured_background(flow):
    frames, truth, noisy = same_colour_walk()
    out = smooth(AlphaSmoother(flow=flow), noisy, frames)
    # nothing the network let go of is carried along the path the subject took
    assert left_behind(noisy, truth) == 0.0
    assert left_behind(out, truth) < 0.5  # alpha-px per frame, over a 64-px-tall subject
    trail = np.stack([(truth[max(0, t - 30) : t].max(0) > 0.5) & (truth[t] == 0) for t in range(1, len(truth))])
    assert out[1:][trail].max() < 0.05
    if not flow:  # held in place: closer to the truth than the network, and the standing subject's noise damped
        assert np.abs(out - truth).mean() <= np.abs(noisy - truth).mean()
        assert flicker(out[19:25]) < 0.3 * flicker(noisy[19:25])


def test_old_style_hold_would_ghost_here():
    """The same clip through a filter that holds the past wherever the picture barely changes
    (the picture and alpha gates only, no motion memory): it does leave a trail, so the test
    above can fail."""
    frames, truth, noisy = same_colour_walk()
    held = smooth(AlphaSmoother(motion_still=1e3, motion_moving=2e3, release_below=1e-6), noisy, frames)
    assert left_behind(held, truth) > 10.0


def lagging(truth: np.ndarray, noisy: np.ndarray, start: float = 0.7, step: float = 0.04) -> np.ndarray:
    """The network alpha of `same_colour_walk` as a recurrent network gives it: where the subject
    has just left, its memory lets go over several frames (from `start`, `step` a frame, down to
    0.3, then at once), each step small enough to look like flicker."""
    raw = noisy.copy()
    for t in range(1, len(truth)):
        for k in range(1, len(truth)):
            level = start - step * (k - 1)
            if t - k < 0 or level < 0.3:
                break
            left = (truth[t - k] > 0.5) & (truth[t] == 0)
            raw[t][left] = np.maximum(raw[t][left], level)
    return raw


def test_smoother_follows_a_fading_trail_down_instead_of_holding_it():
    frames, truth, noisy = same_colour_walk()
    raw = lagging(truth, noisy)
    assert left_behind(raw, truth) > 50  # the network's own trail: what a smoother must not add to
    out = smooth(AlphaSmoother(), raw, frames)
    assert left_behind(out, truth) <= 1.03 * left_behind(raw, truth)  # measured 1.016
    # without the clamp of the past to the network's range, the average holds on to the trail
    held = smooth(AlphaSmoother(clamp=0), raw, frames)
    assert left_behind(held, truth) > 1.2 * left_behind(raw, truth)  # measured 1.26


def test_smoother_damps_a_bump_of_a_whole_moving_region():
    """A region of partial alpha (a translucent sleeve, a figure the network is unsure of) moving
    with the picture, whose alpha rises by 0.1 everywhere for one frame: fetched along the motion
    and capped only from above (so a trail is still followed down), the past damps the bump; a
    floor at the network's neighbourhood minimum (the held filter's full range) follows it up."""
    frames_n, speed = 24, 2
    big = texture(64, 96 + speed * frames_n, seed=5)
    # the window slides right over the texture, mirrored: the picture moves right 2 px a frame
    frames = np.ascontiguousarray(np.stack([big[:, speed * t : speed * t + 96][:, ::-1] for t in range(frames_n)]))
    alpha = np.zeros((frames_n, 64, 96), np.float32)
    for t in range(frames_n):  # the region moves with the picture
        alpha[t, 16:48, 20 + speed * t : 50 + speed * t] = 0.5
    alpha[16] *= 0.6 / 0.5  # the bump: 0.5 -> 0.6 over the whole region
    inside = (slice(20, 44), slice(28 + speed * 16, 44 + speed * 16))
    out = smooth(AlphaSmoother(), alpha, frames)
    assert out[16][inside].mean() < 0.55  # more than half the bump damped (measured 0.537)
    held = smooth(AlphaSmoother(flow=False), alpha, frames)
    assert held[16][inside].mean() > 0.58  # 0.600, as with a floor under the warped past


def test_smoother_foreground_and_strength_zero(still_scene):
    frames, noisy, _ = still_scene
    matte = matte_of(noisy[:5], frames[:5])
    matte.foreground = matte.foreground + torch.randn_like(matte.foreground) * 0.02
    out = AlphaSmoother()(matte, frames[:5])
    assert out.foreground.shape == matte.foreground.shape
    assert flicker(out.foreground.numpy()) < flicker(matte.foreground.numpy())
    off = AlphaSmoother(strength=0)(matte, frames[:5])
    assert torch.equal(off.alpha, matte.alpha) and torch.equal(off.foreground, matte.foreground)
    kept = AlphaSmoother(smooth_foreground=False)(matte, frames[:5])
    assert torch.equal(kept.foreground, matte.foreground)


def test_smoother_refuses_mismatches(still_scene):
    frames, noisy, _ = still_scene
    smoother = AlphaSmoother()
    with pytest.raises(ValueError):
        smoother(matte_of(noisy[:2], frames[:2]), frames[:3])
    smoother(matte_of(noisy[:2], frames[:2]), frames[:2])
    small = np.ascontiguousarray(frames[:1, :32, :32])
    with pytest.raises(ValueError, match="reset"):
        smoother(matte_of(noisy[:1, :32, :32], small), small)
    with pytest.raises(ValueError):
        AlphaSmoother(strength=1.0)


def _half_supported(device: str) -> bool:
    try:
        x = torch.zeros(1, 1, 4, 4, dtype=torch.float16, device=device)
        torch.nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False)
        torch.lerp(x, x, x)
        return True
    except (RuntimeError, NotImplementedError):
        return False


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"))],
)
def test_smoother_keeps_device_and_half_precision(still_scene, device):
    if not _half_supported(device):
        pytest.skip(f"fp16 interpolate/lerp not available on {device} in this torch")
    frames, noisy, _ = still_scene
    out16 = smooth(AlphaSmoother(), noisy[:8], frames[:8], dtype=torch.float16, device=device)
    out32 = smooth(AlphaSmoother(), noisy[:8], frames[:8])
    np.testing.assert_allclose(out16, out32, atol=3e-3)
    m = AlphaSmoother()(matte_of(noisy[:2], frames[:2], dtype=torch.float16, device=device), frames[:2])
    assert m.alpha.dtype == torch.float16 and m.alpha.device.type == device


# --- scene-cut detector ------------------------------------------------------------------------


def pan(picture: np.ndarray, frames: int, height: int, width: int, dx: int, dy: int) -> np.ndarray:
    """`frames` crops of `picture` sliding by (dx, dy) px per frame."""
    x0, y0 = max(0, -dx * (frames - 1)), max(0, -dy * (frames - 1))
    return np.stack(
        [picture[y0 + dy * t : y0 + dy * t + height, x0 + dx * t : x0 + dx * t + width] for t in range(frames)]
    )


def cuts(detector: SceneCutDetector, frames: np.ndarray) -> list[int]:
    return [i for i, rgb in enumerate(frames) if detector.update(rgb)]


def test_detector_fires_on_a_hard_cut_only():
    a = pan(texture(200, 300, seed=10), 12, 90, 160, 4, 2)
    b = pan(texture(200, 300, seed=11), 12, 90, 160, -3, 1)[:, ::-1]
    clip = np.ascontiguousarray(np.concatenate([a, b]))
    detector = SceneCutDetector()
    assert cuts(detector, clip) == [12]
    detector.reset()
    assert detector.update(clip[12]) is False  # the first frame is never a cut


def test_detector_ignores_pans_fast_motion_and_brightness_drift(sample_rgb):
    detector = SceneCutDetector()
    # a pan over the portrait with noise (conftest's test clip), and a faster one
    assert cuts(detector, moving_clip(sample_rgb, 144, 256, frames=20)) == []
    detector.reset()
    big = cv2.resize(sample_rgb, (900, 600))
    assert cuts(detector, pan(big, 25, 288, 512, 14, 6)) == []
    # brightness drifting down by 40% over 20 frames, then a one-frame global flash
    detector.reset()
    still = cv2.resize(sample_rgb, (256, 144))
    gains = np.concatenate([np.linspace(1.0, 0.6, 20), [1.5], [0.6, 0.6]])
    drift = np.clip(still[None].astype(np.float32) * gains[:, None, None, None], 0, 255).astype(np.uint8)
    assert cuts(detector, drift) == []
    # a person-sized object crossing a still background fast
    detector.reset()
    bg = texture(144, 256, seed=5)
    frames = np.repeat(bg[None], 16, axis=0)
    for t in range(16):
        frames[t, 30:130, 16 * t : 16 * t + 50] = (200, 180, 160)
    assert cuts(detector, frames) == []


def test_detector_adapts_to_a_shot_of_constant_fast_motion():
    rng = np.random.default_rng(4)
    # a shot where half the picture is new noise every frame (e.g. water, confetti)
    bg = texture(90, 160, seed=6)
    frames = np.repeat(bg[None], 20, axis=0)
    frames[:, :, 80:] = rng.integers(0, 256, (20, 90, 80, 3), dtype=np.uint8)
    detector = SceneCutDetector()
    assert len(cuts(detector, frames)) <= 1  # at most where the noise starts to count as the norm


def test_split_at_cuts_ranges():
    a = pan(texture(200, 300, seed=20), 7, 72, 128, 3, 1)
    b = pan(texture(200, 300, seed=21), 6, 72, 128, 2, 2)
    clip = np.concatenate([a, b])
    detector = SceneCutDetector()
    assert split_at_cuts(clip[:4], detector) == [(0, 4, False)]
    assert split_at_cuts(clip[4:], detector) == [(0, 3, False), (3, 9, True)]
    detector.reset()
    assert split_at_cuts(clip[:7], detector) == [(0, 7, False)]
    assert split_at_cuts(clip[7:], detector) == [(0, 6, True)]  # cut on the chunk boundary
    assert split_at_cuts(clip[7], SceneCutDetector()) == [(0, 1, False)]


# --- with the network -----------------------------------------------------------------------


@pytest.fixture
def one_thread():
    """One torch thread: these frames are tiny, and on a shared 2-core machine two threads
    oversubscribed by other jobs run ~50x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_reset_at_detected_cut_equals_a_fresh_run_on_the_second_shot(sample_rgb, one_thread):
    shot_a = moving_clip(sample_rgb, 144, 256, frames=6, seed=1)
    # shot B: the portrait mirrored, cropped tighter and colour-shifted, drifting the other way
    other = cv2.resize(sample_rgb[60:, ::-1], (300, 300))
    other = np.clip(other.astype(np.int16) * np.array([0.8, 1.0, 1.2]) + 10, 0, 255).astype(np.uint8)
    shot_b = np.stack([other[40 + t : 184 + t, 30 - 2 * t : 286 - 2 * t] for t in range(6)])
    clip = np.concatenate([shot_a, shot_b])

    matter = Matter(device="cpu")
    detector, smoother = SceneCutDetector(), AlphaSmoother()
    alphas, new_shots = [], []
    for chunk in (clip[:4], clip[4:8], clip[8:]):  # the cut (frame 6) falls inside a chunk
        for start, end, new_shot in split_at_cuts(chunk, detector):
            if new_shot:
                matter.reset()
                smoother.reset()
                new_shots.append(len(np.concatenate(alphas)) if alphas else 0)
            part = chunk[start:end]
            alphas.append(smoother(matter(part), part).alpha)
    alphas = torch.cat(alphas)
    assert new_shots == [6]

    fresh_matter = Matter(device="cpu", model=matter.model)
    fresh_raw = fresh_matter(shot_b)
    fresh = AlphaSmoother()(fresh_raw, shot_b).alpha
    assert (alphas[6:] - fresh).abs().max() < 1e-5
    # without the reset, the frames after the cut differ: the state matters
    fresh_matter.reset()
    fresh_matter(shot_a)
    assert (fresh_matter(shot_b).alpha - fresh_raw.alpha).abs().max() > 1e-3
