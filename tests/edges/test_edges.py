"""Edge-band refinement: synthetic pictures with known alpha, foreground and background.

The "network alpha" is the true alpha blurred, the network's typical error on hair (edges too
smooth); the refinement must recover a clearly better alpha and a foreground without the
background's colour in it.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from vidmatte.edges import BandOperator, MattingLaplacian, blur_fusion, refine_edges, refine_edges_numpy, unknown_band


def _scene(size: int = 128, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H,W,3), true alpha (H,W), true foreground (H,W,3)): a head-like disc with fine
    curly strands over a smoothly varying, lightly textured background; all float32 0..1."""
    rng = np.random.default_rng(seed)
    up = 4  # strands drawn at 4x and area-downsampled: sub-pixel widths, fractional alpha
    big = np.zeros((size * up, size * up), np.float32)
    cv2.circle(big, (size * up // 2, size * up + size), int(size * up * 0.75), 1.0, -1, lineType=cv2.LINE_AA)
    for _ in range(60):
        angle = rng.uniform(-2.5, -0.64)
        points = [(rng.uniform(0.15, 0.85) * size * up, size * up * 0.45)]
        for _ in range(12):
            angle += rng.normal(0, 0.08)
            points.append((points[-1][0] + np.cos(angle) * 12, points[-1][1] + np.sin(angle) * 12))
        cv2.polylines(big, [np.array(points, np.int32)], False, 1.0, thickness=3, lineType=cv2.LINE_AA)
    alpha = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).clip(0, 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    fg = np.stack([0.6 + 0.08 * np.sin(xx / 9), 0.4 + 0.05 * np.cos(yy / 7), 0.25 + 0 * xx], -1)
    bg = np.stack([0.15 + 0.6 * xx / size, 0.55 + 0.3 * yy / size, 0.9 - 0.5 * xx / size], -1)
    bg = bg + 0.04 * cv2.GaussianBlur(rng.standard_normal((size, size, 3)).astype(np.float32), (0, 0), 2)
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg.clip(0, 1)
    return image.astype(np.float32), alpha, fg.astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    image, alpha, fg = _scene()
    network = cv2.GaussianBlur(alpha, (0, 0), 1.5)  # too-smooth edges, the network's usual error
    refined_alpha, refined_fg = refine_edges(torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(network)[None])
    return image, alpha, fg, network, refined_alpha[0].numpy(), refined_fg.permute(1, 2, 0).numpy()


def test_refined_alpha_is_clearly_better_than_the_blurred_one(scene):
    _, truth, _, network, refined, _ = scene
    before, after = np.abs(network - truth).mean(), np.abs(refined - truth).mean()
    assert after < 0.75 * before, (before, after)  # measured: 0.064 -> 0.040


def test_confident_pixels_are_unchanged(scene):
    image, _, _, network, refined, fg = scene
    band = unknown_band(torch.from_numpy(network)[None, None], 7)[0, 0].numpy()
    assert band.any() and not band.all()
    assert np.array_equal(refined[~band], network[~band])
    assert np.array_equal(fg[~band], image[~band])  # no foreground given: the image stands in outside


def test_foreground_reestimation_removes_the_background_fringe(scene):
    image, truth, true_fg, _, _, fg = scene
    edge = (truth > 0.05) & (truth < 0.95)
    weight = truth[edge][:, None]  # a foreground colour matters in proportion to its alpha

    def error(estimate: np.ndarray) -> float:
        return float((np.abs(estimate[edge] - true_fg[edge]) * weight).sum() / (3 * weight.sum()))

    naive = error(image)  # using the picture as foreground: background colour bleeds into the hair
    assert error(fg) < 0.6 * naive, (naive, error(fg))  # measured: 0.078 -> 0.038


def test_blur_fusion_with_true_alpha_recovers_the_foreground():
    image, alpha, true_fg = _scene(96, seed=1)
    fg, _ = blur_fusion(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(alpha)[None, None])
    edge = (alpha > 0.05) & (alpha < 0.95)
    err = np.abs(fg[0].permute(1, 2, 0).numpy()[edge] - true_fg[edge]).mean()
    naive = np.abs(image[edge] - true_fg[edge]).mean()
    assert err < 0.3 * naive, (naive, err)


def test_given_foreground_is_kept_outside_the_band():
    image, alpha, _ = _scene(64)
    network = torch.from_numpy(cv2.GaussianBlur(alpha, (0, 0), 1.0))[None]
    given = torch.full((3, 64, 64), 0.25)
    _, fg = refine_edges(torch.from_numpy(image).permute(2, 0, 1), network, given, band=3)
    band = unknown_band(network[None], 3)[0]
    assert torch.equal(fg[:, ~band[0]], given[:, ~band[0]])
    assert not torch.equal(fg[:, band[0]], given[:, band[0]])


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_no_band_comes_back_unchanged(value):
    image = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0))
    alpha = torch.full((1, 40, 50), value)
    fg = torch.rand(3, 40, 50)
    out_alpha, out_fg = refine_edges(image, alpha, fg)
    assert torch.equal(out_alpha, alpha) and torch.equal(out_fg, fg)
    assert out_alpha is not alpha  # a copy: callers may write into it
    _, out_fg = refine_edges(image, alpha)
    assert torch.equal(out_fg, image)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (5, 4), (17, 9)])
def test_tiny_pictures(shape):
    generator = torch.Generator().manual_seed(1)
    image = torch.rand(3, *shape, generator=generator)
    alpha = torch.rand(1, *shape, generator=generator)
    out_alpha, out_fg = refine_edges(image, alpha)
    assert out_alpha.shape == alpha.shape and out_fg.shape == image.shape
    assert torch.isfinite(out_alpha).all() and torch.isfinite(out_fg).all()
    assert out_alpha.min() >= 0 and out_alpha.max() <= 1 and out_fg.min() >= 0 and out_fg.max() <= 1


def test_dtype_device_range_and_determinism():
    image, alpha, _ = _scene(64, seed=2)
    img = torch.from_numpy(image).permute(2, 0, 1).double()
    net = torch.from_numpy(cv2.GaussianBlur(alpha, (0, 0), 1.2).clip(0, 1))[None].double()
    first = refine_edges(img, net, band=5, scale=0.5)
    second = refine_edges(img, net, band=5, scale=0.5)
    for got, ref in zip(first, (net, img)):
        assert got.dtype == torch.float64 and got.shape == ref.shape and got.device == ref.device
        assert got.min() >= 0 and got.max() <= 1
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    half_alpha, _ = refine_edges(img.half(), net.half())
    assert half_alpha.dtype == torch.float16


def test_numpy_convenience_accepts_uint8():
    image, alpha, _ = _scene(64, seed=3)
    network = cv2.GaussianBlur(alpha, (0, 0), 1.2)
    out_alpha, out_fg = refine_edges_numpy((image * 255).round().astype(np.uint8), network)
    assert out_alpha.shape == (64, 64) and out_fg.shape == (64, 64, 3)
    assert out_alpha.dtype == np.float32 and out_fg.dtype == np.float32
    assert np.abs(out_alpha - alpha).mean() < np.abs(network - alpha).mean()


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError):
        refine_edges(torch.rand(3, 8, 8), torch.rand(1, 8, 9))


def _dense_laplacian(image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Levin et al.'s matting Laplacian written out, windows clipped at the border."""
    _, h, w = image.shape
    colours = image.reshape(3, -1).T
    lap = np.zeros((h * w, h * w))
    for ky in range(h):
        for kx in range(w):
            idx = [
                y * w + x
                for y in range(max(0, ky - radius), min(h, ky + radius + 1))
                for x in range(max(0, kx - radius), min(w, kx + radius + 1))
            ]
            window = colours[idx] - colours[idx].mean(0)
            n = len(idx)
            inverse = np.linalg.inv(window.T @ window / n + eps / n * np.eye(3))
            lap[np.ix_(idx, idx)] += np.eye(n) - (1 + window @ inverse @ window.T) / n
    return lap


def test_matrix_free_laplacian_matches_the_dense_one():
    generator = torch.Generator().manual_seed(3)
    image = torch.rand(1, 3, 7, 6, generator=generator, dtype=torch.float64)
    p = torch.rand(1, 1, 7, 6, generator=generator)
    dense = _dense_laplacian(image[0].numpy(), 1, 1e-3)
    op = MattingLaplacian(image.float(), radius=1, eps=1e-3)
    np.testing.assert_allclose(op(p).numpy().ravel(), dense @ p.numpy().ravel().astype(np.float64), atol=1e-4)
    np.testing.assert_allclose(op.diagonal.numpy().ravel(), np.diag(dense), atol=1e-4)


def test_band_tiles_give_the_whole_picture_laplacian():
    generator = torch.Generator().manual_seed(4)
    image = torch.rand(3, 50, 70, generator=generator)
    unknown = torch.zeros(1, 50, 70, dtype=torch.bool)
    unknown[:, 10:30, 20:60] = True  # away from the border, where tiles replicate the picture
    p = torch.rand(1, 50, 70, generator=generator)
    whole = MattingLaplacian(image[None], radius=1, eps=1e-5)(p[None])[0]
    op = BandOperator(image, unknown, radius=1, eps=1e-5, tile=16)
    tiled = op.scatter(op.apply_full(p), torch.zeros(1, 50, 70))
    np.testing.assert_allclose(tiled[unknown].numpy(), whole[unknown].numpy(), rtol=1e-4, atol=1e-3)


def test_integer_images_and_in_place_refinement_match_the_float_path(scene):
    image, _, _, network, refined_alpha, _ = scene
    quantised = (image * 255).round().astype(np.uint8)
    img8 = torch.from_numpy(quantised).permute(2, 0, 1)  # a view, as stills pass it
    float_alpha, float_fg = refine_edges(
        img8.float() / 255, torch.from_numpy(network)[None], torch.from_numpy(image).permute(2, 0, 1).clone()
    )
    alpha = torch.from_numpy(network.copy())[None]
    fg = torch.from_numpy(image.copy()).permute(2, 0, 1)
    out_alpha, out_fg = refine_edges(img8, alpha, fg, inplace=True)
    assert out_alpha.data_ptr() == alpha.data_ptr() and out_fg.data_ptr() == fg.data_ptr()
    assert torch.allclose(alpha, float_alpha, atol=1e-5) and torch.allclose(fg, float_fg, atol=1e-5)
    assert np.abs(alpha[0].numpy() - refined_alpha).mean() < 0.005  # 8-bit input: about the same solution


def test_video_refiner_refines_every_frame_of_a_chunk(scene):
    from vidmatte import Matte
    from vidmatte.edges import VideoEdgeRefiner

    image, alpha, _, network, _, _ = scene
    frames = np.stack([(image * 255).round().astype(np.uint8)] * 2)
    matte = Matte(
        torch.from_numpy(image).permute(2, 0, 1)[None].repeat(2, 1, 1, 1),
        torch.from_numpy(network)[None, None].repeat(2, 1, 1, 1),
    )
    out = VideoEdgeRefiner(scale=1.0)(matte, frames)  # full resolution: the synthetic hair is 1-2 px wide
    assert out.alpha.shape == matte.alpha.shape and out.foreground.shape == matte.foreground.shape
    assert torch.equal(matte.alpha[0, 0], torch.from_numpy(network))  # the input matte is left alone
    for t in range(2):
        assert np.abs(out.alpha[t, 0].numpy() - alpha).mean() < 0.8 * np.abs(network - alpha).mean()


def _noisy_clip(image, network, frames=6, shift=0):
    rng = np.random.default_rng(5)
    pictures, alphas = [], []
    for t in range(frames):
        moved = np.roll(image, shift * t, axis=1)
        noisy = moved + rng.normal(0, 3 / 255, moved.shape).astype(np.float32)
        pictures.append((noisy.clip(0, 1) * 255).round().astype(np.uint8))
        alphas.append(np.roll(network, shift * t, axis=1))
    from vidmatte import Matte

    matte = Matte(
        torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float() / 255,
        torch.from_numpy(np.stack(alphas))[:, None],
    )
    return np.stack(pictures), matte


def test_video_refiner_steadies_the_correction_on_a_still_picture(scene):
    from vidmatte.edges import VideoEdgeRefiner

    image, _, _, network, _, _ = scene
    frames, matte = _noisy_clip(image, network)
    steady = VideoEdgeRefiner()(matte, frames).alpha[:, 0].numpy()
    fresh = VideoEdgeRefiner(strength=0)(matte, frames).alpha[:, 0].numpy()
    flicker = lambda a: np.abs(np.diff(a, axis=0)).mean()  # noqa: E731
    assert flicker(steady) < 0.5 * flicker(fresh)
    assert np.array_equal(steady[0], fresh[0])  # nothing to steady on the first frame


def test_video_refiner_follows_motion_without_lag(scene):
    from vidmatte.edges import VideoEdgeRefiner

    image, _, _, network, _, _ = scene
    frames, matte = _noisy_clip(image, network, frames=3, shift=6)  # 6 px per frame: every edge block moves
    steady = VideoEdgeRefiner()(matte, frames).alpha[:, 0].numpy()
    fresh = VideoEdgeRefiner(strength=0)(matte, frames).alpha[:, 0].numpy()
    edge = (network > 0.02) & (network < 0.98)
    for t in range(3):
        assert np.abs(steady[t] - fresh[t])[np.roll(edge, 6 * t, axis=1)].mean() < 0.01


def test_strips_give_about_the_whole_picture_result():
    from vidmatte.edges import refine_edges_in_strips

    image, alpha, _ = _scene(192, seed=4)
    network = cv2.GaussianBlur(alpha, (0, 0), 1.5)
    img = torch.from_numpy((image * 255).round().astype(np.uint8)).permute(2, 0, 1)
    whole_alpha, whole_fg = refine_edges(img, torch.from_numpy(network)[None], torch.from_numpy(image).permute(2, 0, 1))
    a, f = torch.from_numpy(network.copy())[None], torch.from_numpy(image.copy()).permute(2, 0, 1)
    refine_edges_in_strips(img, a, f, strip_pixels=64 * 192, overlap=32)  # 3 strips
    assert (a - whole_alpha).abs().mean() < 0.1 * np.abs(network - alpha).mean()
    assert np.abs(a[0].numpy() - alpha).mean() < 0.8 * np.abs(network - alpha).mean()
    assert (a - whole_alpha).abs().max() < 0.2 and (f - whole_fg).abs().mean() < 0.01
