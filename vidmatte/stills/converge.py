"""Still mode for the recurrent network: converged alpha, a processing size chosen for stills,
and a full-resolution pass in strips so very large pictures fit in memory.

A recurrent matting network starts every clip from empty state, so its first frame is its worst:
the ConvGRU memory has not yet settled on what is person and what is background. For a still we
feed the same picture again and again until the low-resolution alpha stops changing (bounded),
then run the full-resolution guided filter once. Only the recurrent low-resolution half runs
per pass; the full-resolution half, which dominates at small ratios, runs once.

Measured on benchmarks/stills.md; the defaults below are chosen there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..edges.detail import detail_factor
from ..engine import MattingEngine
from ..model.network import Coarse
from ..options import STILL_PASSES as DEFAULT_MAX_PASSES
from ..options import STILL_TOL as DEFAULT_TOL
from ..options import Progress, ProgressCallback
from ..types import EMPTY_STATE, Matte, RecurrentState

#: Still mode runs the network on about this many pixels (aspect kept); smaller pictures run at
#: their own size (enlarging hurts: the network then sees a giant, cropped person).
STILL_PIXELS = 384_000
#: ...but the network never runs below this longest side: on tiny pictures (128 px) its alpha is
#: erratic and repeated passes can even fade the person out completely; such pictures are enlarged.
MIN_NETWORK_SIDE = 256
#: Rows of the full-resolution pass are processed in strips of about this many pixels.
STRIP_PIXELS = 2_000_000


@dataclass
class StillResult:
    """Full-resolution matte of one picture as CPU arrays.

    alpha: `(H,W)` float32 in 0..1; foreground: `(H,W,3)` float32 RGB in 0..1.
    passes: network passes run; change: the last max |delta alpha| (0 for a single pass).
    scale: network size / picture size. detail: the picture's enlargement factor (`detail_factor`;
    1 when it was not measured), for the edge refinement. small_alpha `(h,w)` float32 and
    small_rgb `(h,w,3)` uint8: the converged low-resolution alpha and the picture the network saw
    (what choosing a subject works on).
    """

    alpha: np.ndarray
    foreground: np.ndarray
    passes: int
    change: float
    scale: float
    detail: int = 1
    small_alpha: np.ndarray | None = None
    small_rgb: np.ndarray | None = None


def still_scale(
    height: int, width: int, pixels: int = STILL_PIXELS, min_side: int = MIN_NETWORK_SIDE, detail: int = 1
) -> float:
    """Network size / picture size for still mode: about `pixels` pixels, never enlarged unless
    the longest side would be under `min_side`.

    detail: the picture's enlargement factor (`detail_factor`): the network then sees no more
    than the picture's real resolution, as it would the original (enlarging hurts it: an
    8000x8000 enlargement of a 320 px hair crop went from MAD 173 to 383 x1e3 at 620 px).
    """
    scale = min(1.0, math.sqrt(pixels / (height * width)), 1.0 / max(1, detail))
    return max(scale, min_side / max(height, width))


def network_input_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """(height, width) still mode runs the network at for a picture of this size."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def network_input(rgb: np.ndarray, scale: float, device: torch.device, dtype: torch.dtype) -> Tensor:
    """The picture at the network's size, `[1,3,h,w]` in 0..1.

    Area averaging (anti-aliased) rather than the video path's bilinear sampling, which at
    ratios far below 0.5 skips most pixels and aliases hair and fine edges.
    """
    peak = 255.0 if rgb.dtype == np.uint8 else 65535.0
    h, w = network_input_size(rgb.shape[0], rgb.shape[1], scale)
    if (h, w) == rgb.shape[:2]:
        small = rgb
    elif scale < 1:
        small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
    else:  # enlarging a tiny picture: interpolate in float, not in 8-bit steps
        small = cv2.resize(rgb.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    t = torch.from_numpy(np.ascontiguousarray(small)).to(device).permute(2, 0, 1)[None]
    return t.to(dtype).div_(peak)


@torch.inference_mode()
def converge_coarse(
    engine: MattingEngine,
    small: Tensor,
    max_passes: int = DEFAULT_MAX_PASSES,
    tol: float = DEFAULT_TOL,
    state: RecurrentState = EMPTY_STATE,
    progress: ProgressCallback | None = None,
) -> tuple[Coarse, int, float]:
    """Run the recurrent half on the same network-size picture until its alpha settles.

    Stops after the first pass whose low-resolution alpha differs from the previous pass's by
    less than `tol` everywhere, or after `max_passes`. Returns (coarse output, passes, change).
    `progress` gets a "passes" report after each pass (the total is the bound).
    """
    if max_passes < 1:
        raise ValueError(f"max_passes must be at least 1, got {max_passes}")
    previous: Tensor | None = None
    change = 0.0
    passes = 0
    for passes in range(1, max_passes + 1):
        coarse, state = engine.step_small(small, state)
        if progress is not None:
            progress(Progress("passes", passes, max_passes))
        alpha = coarse.y[:, 3:].clamp(0, 1)
        if previous is not None:
            change = float((alpha - previous).abs().max())
            if change < tol:
                break
        previous = alpha
    return coarse, passes, change


def converge(
    engine: MattingEngine, rgb: np.ndarray, max_passes: int = DEFAULT_MAX_PASSES, tol: float = DEFAULT_TOL
) -> Matte:
    """The converged matte of one uint8 RGB picture with the engine's own ratio and resampling.

    The plain form: same processing as a video frame, just repeated until alpha settles.
    `engine.state` is left untouched. `matte_still` adds the still-mode size and memory bounds.
    """
    state: RecurrentState = EMPTY_STATE
    src = engine.to_tensor(rgb)  # converted once, reused by every pass
    previous: Tensor | None = None
    for _ in range(max_passes):
        coarse, state = engine.step_coarse(src, state)
        alpha = coarse.y[:, 3:].clamp(0, 1)
        if previous is not None and float((alpha - previous).abs().max()) < tol:
            break
        previous = alpha
    return engine.refine(coarse)


def still_engine(engine: MattingEngine) -> MattingEngine:
    """The engine still mode runs: `engine`, or where `auto` chose mixed precision an fp32 one on
    the same weights. Still mode repeats the network over one picture until it settles, and on a
    few hard pictures bf16 roundings send that to another outcome (benchmarks/mixed.md); the
    network is a small part of a still's time."""
    if engine.precision == "mixed" and engine.requested_precision == "auto":
        return engine.with_precision("fp32")
    return engine


@torch.inference_mode()
def matte_still(
    engine: MattingEngine,
    rgb: np.ndarray,
    *,
    max_passes: int = DEFAULT_MAX_PASSES,
    tol: float = DEFAULT_TOL,
    scale: float | None = None,
    flip: bool = False,
    detail: int | None = None,
    progress: ProgressCallback | None = None,
) -> StillResult:
    """Still-mode matte of one RGB picture (uint8 or uint16 `(H,W,3)`).

    `scale` is network size / picture size; None means the engine's fixed downsample ratio if it
    has one, else `still_scale` at the picture's real resolution. `detail` is its enlargement
    factor; None measures it (`detail_factor`). `flip` also runs the mirrored picture and
    averages the two (the average of the guided filter's linear models, so the full-resolution
    pass runs once). `progress` gets "passes" and "full resolution" (rows) reports. Runs on
    `still_engine(engine)`.
    """
    engine = still_engine(engine)
    height, width = rgb.shape[:2]
    if detail is None:
        detail = detail_factor(rgb)
    if scale is None:
        scale = (
            still_scale(height, width, detail=detail)
            if engine.downsample_ratio == "auto"
            else float(engine.downsample_ratio)
        )
    small = network_input(rgb, scale, engine.device, engine.dtype)
    coarse, passes, change = converge_coarse(engine, small, max_passes, tol, progress=progress)
    ab = engine.guided_coefficients(coarse)
    if flip:
        mirrored = small.flip(-1)
        coarse_m, passes_m, change_m = converge_coarse(engine, mirrored, max_passes, tol, progress=progress)
        ab_m = engine.guided_coefficients(coarse_m)
        ab = (ab + ab_m.flip(-1)) / 2  # the linear models are per pixel: mirroring them back is exact
        passes, change = passes + passes_m, max(change, change_m)
    alpha, foreground = refine_in_strips(ab, rgb, progress=progress)
    small_alpha = coarse.y[0, 3].float().clamp(0, 1).cpu().numpy()
    small_rgb = (small[0].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return StillResult(alpha, foreground, passes, change, scale, detail, small_alpha, small_rgb)


def refine_in_strips(
    ab: Tensor, rgb: np.ndarray, strip_pixels: int = STRIP_PIXELS, progress: ProgressCallback | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's full-resolution step, a strip of rows at a time.

    Same result as the network's own refine (bilinear upsampling of the coefficients, then
    `A * x + b`), but the full-resolution floats never exist for the whole picture at once:
    an 8000x8000 picture needs ~1.2 GB of output arrays plus ~100 MB of working memory.
    """
    height, width = rgb.shape[:2]
    peak = 255.0 if rgb.dtype == np.uint8 else 65535.0
    device, dtype = ab.device, ab.dtype
    # bilinear upsampling is separable: widen every coefficient row once (small: h x W)...
    h = ab.shape[2]
    wide = F.interpolate(ab, size=(h, width), mode="bilinear", align_corners=False)
    alpha = np.empty((height, width), np.float32)
    foreground = np.empty((height, width, 3), np.float32)
    rows = max(1, strip_pixels // width)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        # ...then blend two coefficient rows per output row (align_corners=False coordinates)
        y = np.maximum((np.arange(top, bottom) + 0.5) * (h / height) - 0.5, 0)
        y0 = np.minimum(np.floor(y).astype(np.int64), h - 1)
        y1 = np.minimum(y0 + 1, h - 1)
        weight = torch.from_numpy((y - y0).astype(np.float32)).to(device, dtype).view(1, 1, -1, 1)
        y0, y1 = torch.from_numpy(y0).to(device), torch.from_numpy(y1).to(device)
        coeffs = torch.lerp(wide[:, :, y0], wide[:, :, y1], weight)
        src = torch.from_numpy(rgb[top:bottom]).to(device).permute(2, 0, 1)[None].to(dtype).div_(peak)
        out = MattingEngine.apply_coefficients(coeffs, src)
        fgr = out[:, :3].add_(src).clamp_(0, 1)
        pha = out[:, 3:].clamp_(0, 1)
        alpha[top:bottom] = pha[0, 0].float().cpu().numpy()
        foreground[top:bottom] = fgr[0].permute(1, 2, 0).float().cpu().numpy()
        if progress is not None:
            progress(Progress("full resolution", bottom, height))
    return alpha, foreground
