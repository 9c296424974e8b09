"""Edge-band refinement of a network alpha: closed-form matting in the uncertain band, then
foreground colours re-estimated there so composites show no fringe."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..options import Progress, ProgressCallback
from .foreground import RADII, blur_fusion
from .laplacian import BandOperator, solve_alpha
from .trimap import HIGH, LOW, unknown_band

#: Foreground strips hold about this many pixels (bounded memory on very large pictures).
STRIP_PIXELS = 2_000_000


def refine_edges(
    image: Tensor,
    alpha: Tensor,
    foreground: Tensor | None = None,
    *,
    band: int = 7,
    scale: float = 1.0,
    radius: int = 1,
    eps: float = 1e-5,
    lambda_net: float = 0.0,
    iterations: int = 50,
    tol: float = 1e-3,
    low: float = LOW,
    high: float = HIGH,
    radii: tuple[int, ...] = RADII,
    tile: int = 32,
    inplace: bool = False,
) -> tuple[Tensor, Tensor]:
    """Refine the network's alpha and foreground along its edges.

    image [3,H,W] RGB, float 0..1 or uint8/uint16 (scaled by its peak), alpha [1,H,W] float 0..1
    (the network's), foreground [3,H,W] or None (then the image stands in for it) -> (refined
    alpha [1,H,W], refined foreground [3,H,W]), same device and dtype as `alpha`/`foreground`
    (float32 for an integer image without foreground); computed in float32. Only the band's
    bounding box is converted and solved, so a huge picture costs little beyond its band.
    inplace: write into `alpha` and `foreground` (given) instead of copies: no full-size copies.

    band: width in pixels of the unknown strip around the network's 0.5 contour (its fractional
    pixels are unknown too, grown by band // 2); outside it nothing changes. scale: resolution
    of the alpha solve (0.5: half; the correction is upsampled). radius, eps: window radius and
    ridge of the matting Laplacian. lambda_net: weight of a data
    term pulling the band towards the network's alpha (0: pure closed-form matting with the
    confident pixels as hard constraints). iterations, tol: bound and relative stopping tolerance
    of the conjugate-gradient solve. low, high: alpha bounds of the confident regions. radii:
    window radii of the foreground estimation rounds. tile: tile size of the band solver.
    """
    if image.dim() != 3 or image.shape[0] != 3 or alpha.shape != (1, *image.shape[1:]):
        raise ValueError(f"expected image [3,H,W] and alpha [1,H,W], got {tuple(image.shape)} and {tuple(alpha.shape)}")
    with torch.inference_mode():
        fg_in = foreground if foreground is not None else image if image.is_floating_point() else _unit(image)
        a = alpha.float()
        unknown = unknown_band(a[None], band, low, high)[0]
        if not bool(unknown.any()):
            return (alpha, fg_in) if inplace and foreground is not None else (alpha.clone(), fg_in.clone())
        # everything below works on the band's bounding box plus the foreground windows' reach
        top, bottom, left, right = _bounds(unknown, margin=max(radii, default=0) + 2 * radius + tile)
        crop = (slice(None), slice(top, bottom), slice(left, right))
        img = _unit(image[crop])
        refined = _solve(
            img,
            a[crop],
            unknown[crop],
            scale=scale,
            radius=radius,
            eps=eps,
            lambda_net=lambda_net,
            iterations=iterations,
            tol=tol,
            tile=tile,
        )
        refined = torch.where(unknown[crop], refined, a[crop])
        fg_crop = _foreground(img, refined, unknown[crop], fg_in[crop].float(), radii)
        alpha_out = alpha if inplace else alpha.clone()
        alpha_out[crop] = refined.to(alpha.dtype)
        fg_out = fg_in if inplace and foreground is not None else fg_in.clone()
        fg_out[crop] = fg_crop.to(fg_out.dtype)
    return alpha_out, fg_out


def _unit(image: Tensor) -> Tensor:
    """RGB as float32 in 0..1, whatever its sample type."""
    if image.dtype == torch.uint8:
        return image.float().div_(255)
    if image.dtype in (torch.uint16, torch.int32) or not image.is_floating_point():
        return image.float().div_(65535)
    return image.float()


def refine_edges_in_strips(
    image: Tensor,
    alpha: Tensor,
    foreground: Tensor,
    *,
    strip_pixels: int = 4_000_000,
    overlap: int = 128,
    progress: ProgressCallback | None = None,
    **options,
) -> None:
    """`refine_edges` in place on a large picture, a strip of rows at a time (bounded memory).

    Strips overlap by `overlap` rows on each side so the solve and the foreground windows see
    their surroundings; each strip's own rows are written back, every strip reading the
    network's (unrefined) values. Pictures of up to `strip_pixels` go in one piece.
    progress: gets `Progress("refine", strips done, strips)` before the first strip and after each.
    """
    height, width = alpha.shape[-2:]
    rows = max(2 * overlap, strip_pixels // max(1, width))
    strips = -(-height // rows)
    if progress is not None:
        progress(Progress("refine", 0, strips))
    if rows >= height:
        refine_edges(image, alpha, foreground, inplace=True, **options)
        if progress is not None:
            progress(Progress("refine", 1, 1))
        return
    saved: tuple[Tensor, Tensor] | None = None  # the network's values of rows the previous strip has overwritten
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        lo, hi = max(0, top - overlap), min(height, bottom + overlap)
        a, f = alpha[:, lo:hi].clone(), foreground[:, lo:hi].clone()
        if saved is not None:
            a[:, : top - lo], f[:, : top - lo] = saved
        tail = slice(max(0, bottom - overlap), bottom)
        saved = alpha[:, tail].clone(), foreground[:, tail].clone()
        refine_edges(image[:, lo:hi], a, f, inplace=True, **options)
        alpha[:, top:bottom], foreground[:, top:bottom] = a[:, top - lo : bottom - lo], f[:, top - lo : bottom - lo]
        if progress is not None:
            progress(Progress("refine", top // rows + 1, strips))


def refine_edges_numpy(
    image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None, **options
) -> tuple[np.ndarray, np.ndarray]:
    """`refine_edges` on arrays: image (H,W,3) uint8/uint16/float 0..1, alpha (H,W) float 0..1,
    foreground (H,W,3) float 0..1 or None -> (alpha (H,W), foreground (H,W,3)) float32."""
    peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(image.dtype, 1.0)
    img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1) / peak
    a = torch.from_numpy(np.ascontiguousarray(alpha, dtype=np.float32))[None]
    fg = (
        None
        if foreground is None
        else torch.from_numpy(np.ascontiguousarray(foreground, dtype=np.float32)).permute(2, 0, 1)
    )
    a_out, fg_out = refine_edges(img, a, fg, **options)
    return a_out[0].numpy(), fg_out.permute(1, 2, 0).contiguous().numpy()


def _bounds(mask: Tensor, margin: int) -> tuple[int, int, int, int]:
    rows = mask.any(dim=-1)[0].nonzero()
    cols = mask.any(dim=-2)[0].nonzero()
    height, width = mask.shape[-2:]
    return (
        max(0, int(rows[0]) - margin),
        min(height, int(rows[-1]) + 1 + margin),
        max(0, int(cols[0]) - margin),
        min(width, int(cols[-1]) + 1 + margin),
    )


def _solve(
    image: Tensor,
    alpha: Tensor,
    unknown: Tensor,
    *,
    scale: float,
    radius: int,
    eps: float,
    lambda_net: float,
    iterations: int,
    tol: float,
    tile: int,
) -> Tensor:
    """Closed-form alpha in the band, solved at `scale` of the picture's resolution."""
    if scale >= 1:
        operator = BandOperator(image, unknown, radius=radius, eps=eps, tile=tile)
        return solve_alpha(operator, alpha, unknown, lambda_net=lambda_net, iterations=iterations, tol=tol)
    size = (max(1, round(image.shape[-2] * scale)), max(1, round(image.shape[-1] * scale)))
    small_image = F.interpolate(image[None], size=size, mode="area")[0]
    small_alpha = F.interpolate(alpha[None], size=size, mode="area")[0]
    small_unknown = F.adaptive_max_pool2d(unknown[None].float(), size)[0] > 0
    operator = BandOperator(small_image, small_unknown, radius=radius, eps=eps, tile=tile)
    solved = solve_alpha(operator, small_alpha, small_unknown, lambda_net=lambda_net, iterations=iterations, tol=tol)
    # upsample the correction, not the solved alpha: the network's full-resolution detail stays
    correction = F.interpolate(
        (solved - small_alpha)[None], size=image.shape[-2:], mode="bilinear", align_corners=False
    )[0]
    return (alpha + correction).clamp(0, 1)


def _foreground(image: Tensor, alpha: Tensor, unknown: Tensor, foreground: Tensor, radii: tuple[int, ...]) -> Tensor:
    """Blur-fusion foreground in the band, the network's elsewhere; in row strips to bound memory."""
    height, width = image.shape[-2:]
    reach = sum(radii) + 8 * len(radii)  # how far a pixel's estimate looks; the strips overlap by it
    step = max(64, STRIP_PIXELS // max(1, width))
    out = foreground.clone()
    for start in range(0, height, step):
        stop = min(height, start + step)
        if not bool(unknown[:, start:stop].any()):
            continue
        lo, hi = max(0, start - reach), min(height, stop + reach)
        fg, _ = blur_fusion(image[None, :, lo:hi], alpha[None, :, lo:hi], radii)
        inner = (slice(None), slice(start, stop))
        out[inner] = torch.where(unknown[inner], fg[0, :, start - lo : stop - lo], foreground[inner])
    return out
