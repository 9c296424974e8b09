"""`AlphaSmoother`: causal temporal filter on the network's alpha and foreground that damps
flicker where subject and picture are still and leaves nothing behind a subject that moves away.

Per pixel, the output is a recursive average `out_t = lerp(raw_t, past, w)`, `past` being the
previous output held in place (or, with `flow=True`, warped along the optical flow), whose
weight `w` on the past is `strength` where the pixel is steady and falls to 0 wherever anything
says it changed:

    w = strength * steady_picture * steady_alpha * steady_network    (x t/warmup for the first frames)

- motion: optical flow from each frame to the previous one (OpenCV DIS, ultrafast preset, on a
  grey thumbnail of `flow_size` px on the long side). Its magnitude, mapped from 0 (<=
  `motion_still` thumbnail px) to 1 (>= `motion_moving`), spread over 5x5 thumbnail px and
  remembered (`moved = max(moving, memory * moved)`), marks where something moved recently,
  also where the picture hardly changes (a subject over a background of its own colour).
- `steady_picture`: the colour change of the thumbnail from the *reference* (the past
  thumbnails averaged with the same weights), spread to the neighbouring thumbnail pixels,
  1 for <= `picture_still`, 0 for >= `picture_moving`. Slow motion adds up frame after frame.
- `steady_alpha`: the new alpha against `past`. Rising, and falling where nothing moved: 1 for
  a difference <= `alpha_still`, 0 for >= `alpha_moving`, so still flicker is damped in both
  directions. Falling where something moved recently and the network's alpha is below
  `release_below`: the tight `release_still` .. `release_moving`, so alpha the network let go
  of behind a moving subject is let go of at once: the past is never held above it.
- `steady_network`: where something moved recently, the network's own change at the pixel,
  `|a_t - a_(t-1)|`: 1 for <= `change_still`, 0 for >= `change_moving`.
- the past's range: where something moved recently, the past is clamped to the range of the
  network's alpha now over the pixel's neighbourhood (`clamp` px per 512 px of the long side),
  as temporal anti-aliasing in games clamps its history. A recurrent network lets go of a
  trail behind a moving subject over a few frames, in small steps each under the gates above;
  the recursive average held above it left faint ghosts (benchmarks/temporal.md). At an edge the
  neighbourhood spans the edge's range, so its flicker is still damped there.
- `warmup`: the network's first frames after a reset improve quickly as its recurrent state
  fills; the weight ramps up over these frames so the smoother does not hold on to them.

`flow=True` also warps the past along the flow (a motion-compensated recursive filter). Measured
on the benchmark's clips it was worse than holding in place combined with the release above
(DIS errors at the disocclusions of a fast subject carry its alpha into the background) and
costs a full-resolution warp, so it is off by default; see benchmarks/temporal.md.
Causal: past frames only, no added latency. Cost per frame: a thumbnail, DIS flow (~1 ms) and
about twenty full-resolution element-wise operations. Measured: benchmarks/temporal.md.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..types import Matte


class AlphaSmoother:
    """Causal motion-adaptive smoothing of a stream of mattes; the state lives in the object.

    >>> smoother = AlphaSmoother()
    >>> for frames in chunks:                 # uint8 (T,H,W,3) consecutive frames of one shot
    ...     matte = smoother(matter(frames), frames)
    >>> smoother.reset()                      # at a new clip or a scene cut

    strength: weight of the past at a perfectly steady pixel, in [0, 1); 0 turns smoothing off
        (output == input exactly). Higher is steadier; the gates keep changing pixels unsmoothed
        at any strength.
    flow: also warp the past along the optical flow (off by default: measured worse, see the
        module docstring); the flow is used to find motion either way.
    smooth_foreground: apply the same weights to the foreground colour.
    The other parameters are described in the module docstring (colour and alpha in 0..1).
    Defaults chosen on synthetic and real clips: benchmarks/temporal.md.
    """

    def __init__(
        self,
        strength: float = 0.94,
        *,
        flow: bool = False,
        flow_size: int = 256,
        picture_still: float = 0.015,
        picture_moving: float = 0.05,
        alpha_still: float = 0.3,
        alpha_moving: float = 0.7,
        release_still: float = 0.0,
        release_moving: float = 0.03,
        change_still: float = 0.05,
        change_moving: float = 0.2,
        still_flow: float = 0.05,
        release_below: float = 0.3,
        motion_still: float = 0.5,
        motion_moving: float = 1.0,
        memory: float = 0.9,
        warmup: int = 4,
        clamp: int = 2,
        smooth_foreground: bool = True,
    ) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        for still, moving in (
            (picture_still, picture_moving),
            (alpha_still, alpha_moving),
            (release_still, release_moving),
            (change_still, change_moving),
        ):
            if not 0 <= still < moving:
                raise ValueError("each gate needs 0 <= still < moving")
        if flow_size < 8 or warmup < 0 or still_flow < 0 or clamp < 0:
            raise ValueError("flow_size must be >= 8, warmup, still_flow and clamp >= 0")
        self.strength = float(strength)
        self.flow, self.flow_size, self.still_flow = bool(flow), int(flow_size), float(still_flow)
        self.picture_still, self.picture_moving = float(picture_still), float(picture_moving)
        self.alpha_still, self.alpha_moving = float(alpha_still), float(alpha_moving)
        self.release_still, self.release_moving = float(release_still), float(release_moving)
        self.change_still, self.change_moving = float(change_still), float(change_moving)
        self.warmup = int(warmup)
        self.release_below = float(release_below)
        self.motion_still, self.motion_moving, self.memory = float(motion_still), float(motion_moving), float(memory)
        self.smooth_foreground = smooth_foreground
        self.clamp = int(clamp)
        self._dis: Any = None  # cv2.DISOpticalFlow, made on first use
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame passes through unchanged and starts the average."""
        self._alpha: Tensor | None = None  # [1,1,H,W] smoothed alpha of the last frame
        self._raw: Tensor | None = None  # [1,1,H,W] the network's alpha of the last frame
        self._foreground: Tensor | None = None  # [1,3,H,W] smoothed foreground of the last frame
        self._reference: np.ndarray | None = None  # (h,w,3) float32 thumbnail the smoothed alpha belongs to
        self._gray: np.ndarray | None = None  # (h,w) uint8 grey thumbnail of the last frame
        self._moved: np.ndarray | None = None  # (h,w) float32 memory of recent motion, 1 = moving now
        self._seen = 0  # frames since reset

    def __call__(self, matte: Matte, frames: np.ndarray) -> Matte:
        """Smooth T consecutive mattes given their source frames `(T,H,W,3)` uint8 RGB.

        Returns a new `Matte` on the same device and dtype; chunks of any size give the same
        result as one frame at a time.
        """
        alpha, foreground = matte.alpha, matte.foreground
        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        t, _, h, w = alpha.shape
        if frames.dtype != np.uint8 or frames.shape != (t, h, w, 3):
            raise ValueError(
                f"expected uint8 frames of shape {(t, h, w, 3)} for this matte, got {frames.dtype} {frames.shape}"
            )
        if self._alpha is not None and tuple(self._alpha.shape[-2:]) != (h, w):
            raise ValueError("the smoother's state belongs to frames of another size; call reset() first")
        out_alpha, out_fgr = [], []
        with torch.inference_mode():
            for i in range(t):
                a, f = alpha[i : i + 1], foreground[i : i + 1]
                raw = a
                if self.strength > 0 and self._alpha is not None:
                    a, f = self._blend(a, f, frames[i])
                else:
                    self._start(frames[i])
                self._alpha, self._raw, self._foreground = a, raw, f
                self._seen += 1
                out_alpha.append(a)
                out_fgr.append(f)
        if t == 1:
            return Matte(out_fgr[0], out_alpha[0])
        return Matte(torch.cat(out_fgr), torch.cat(out_alpha))

    # ---- per frame -----------------------------------------------------------------------

    def _thumbnail(self, rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(colour (h,w,3) float32 0..1, grey (h,w) uint8) area means, `flow_size` on the long side."""
        h, w = rgb.shape[:2]
        k = min(1.0, self.flow_size / max(h, w))
        size = (max(8, round(w * k)), max(8, round(h * k)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size != (w, h) else rgb
        return small.astype(np.float32) / 255, cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)

    def _start(self, rgb: np.ndarray) -> None:
        self._reference, self._gray = self._thumbnail(rgb)

    def _blend(self, a: Tensor, f: Tensor, rgb: np.ndarray) -> tuple[Tensor, Tensor]:
        assert self._alpha is not None and self._raw is not None and self._foreground is not None
        assert self._reference is not None and self._gray is not None
        thumb, gray = self._thumbnail(rgb)
        sh, sw = gray.shape
        flow = self._flow(gray)
        # recent motion: flow magnitude (thumbnail px), spread to the neighbours, remembered with
        # `memory` per frame; where something moved, a falling network alpha is let go at once
        speed = np.sqrt((flow**2).sum(-1))
        moving = np.clip((speed - self.motion_still) / (self.motion_moving - self.motion_still), 0, 1)
        moving = cv2.dilate(moving, np.ones((5, 5), np.uint8))
        self._moved = moving if self._moved is None else np.maximum(moving, self._moved * self.memory)
        moved = self._moved
        warp = self.flow and float(np.abs(flow).max()) >= self.still_flow
        reference = self._reference
        if warp:
            gx, gy = np.meshgrid(np.arange(sw, dtype=np.float32), np.arange(sh, dtype=np.float32))
            reference = cv2.remap(
                reference, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
        change = cv2.dilate(np.abs(thumb - reference).max(-1), np.ones((3, 3), np.uint8))
        steady = np.clip((self.picture_moving - change) / (self.picture_moving - self.picture_still), 0, 1)
        self._reference = reference + (thumb - reference) * (1 - self.strength * steady[..., None])
        self._gray = gray

        h, w = a.shape[-2:]
        past = [self._alpha, self._raw] + ([self._foreground] if self.smooth_foreground else [])
        if warp:
            past = list(
                _warp(torch.cat(past, 1), torch.from_numpy(flow).to(a.device, a.dtype)).split([1, 1, 3][: len(past)], 1)
            )
        prev, prev_raw = past[0], past[1]
        prev_f = past[2] if self.smooth_foreground else None
        maps = torch.from_numpy(np.stack([steady * self.strength, moved])).to(a.device, a.dtype)[None]
        if (sh, sw) != (h, w):
            maps = F.interpolate(maps, size=(h, w), mode="bilinear", align_corners=False)
        weight, moved_t = maps[:, :1], maps[:, 1:]
        diff = a - prev
        rising = _gate(diff, self.alpha_still, self.alpha_moving)
        falling = _gate(diff, self.release_still, self.release_moving)
        # the tight release where something moved recently and near the background (below
        # `release_below`); the symmetric gate elsewhere, so still flicker is damped both ways
        near = (1 - a / self.release_below).clamp_(0, 1) if self.release_below > 0 else torch.ones_like(a)
        falling = torch.lerp(rising, falling, near * moved_t)
        weight = weight * torch.where(diff >= 0, rising, falling)
        weight = weight * torch.lerp(
            torch.ones_like(a), _gate(a - prev_raw, self.change_still, self.change_moving), moved_t
        )
        if self._seen < self.warmup:
            weight = weight * (self._seen / self.warmup)
        if self.clamp > 0 and float(moved.max()) > 0:  # a still scene has nothing to clamp (weight 0)
            # where something moved recently (fully while its memory is above one half, ~7
            # frames), the past may not leave the range the network gives the pixel's
            # neighbourhood now: a trail the network is letting go of slowly (its recurrent memory
            # fading over a few frames) is followed down, not held above it
            radius = self.clamp * max(1, round(max(h, w) / 512))
            prev = torch.lerp(prev, _clamp_to_neighbourhood(prev, a, radius), (2 * moved_t).clamp_(max=1))
        a = torch.lerp(a, prev, weight)
        if self.smooth_foreground and prev_f is not None:
            f = torch.lerp(f, prev_f, weight.expand_as(f))
        return a, f

    def _flow(self, gray: np.ndarray) -> np.ndarray:
        """(h,w,2) float32: where each thumbnail pixel of this frame was in the previous one."""
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)  # type: ignore[attr-defined]
        return np.asarray(self._dis.calc(gray, self._gray, None), dtype=np.float32)


def _gate(diff: Tensor, still: float, moving: float) -> Tensor:
    """1 where |diff| <= still, 0 where >= moving, linear between."""
    scale = 1 / (moving - still)
    return diff.abs().mul_(-scale).add_(moving * scale).clamp_(0, 1)


def _clamp_to_neighbourhood(past: Tensor, now: Tensor, radius: int) -> Tensor:
    """`past` `[1,1,H,W]` clamped to the range of `now` over the (2 radius + 1)^2 window around
    each pixel."""
    k = 2 * radius + 1
    if now.device.type == "cpu" and now.dtype == torch.float32:
        # OpenCV's rectangular min/max filters: ~1 ms at 720p, where torch's max_pool2d with a
        # 9x9 window took ~100 ms (benchmarks/temporal.md)
        plane, kernel = now[0, 0].contiguous().numpy(), np.ones((k, k), np.uint8)
        high = torch.from_numpy(cv2.dilate(plane, kernel, borderType=cv2.BORDER_REPLICATE))[None, None]
        low = torch.from_numpy(cv2.erode(plane, kernel, borderType=cv2.BORDER_REPLICATE))[None, None]
    else:  # separable: two 1-d passes
        high = F.max_pool2d(F.max_pool2d(now, (1, k), 1, (0, radius)), (k, 1), 1, (radius, 0))
        low = F.max_pool2d(F.max_pool2d(-now, (1, k), 1, (0, radius)), (k, 1), 1, (radius, 0)).neg_()
    return torch.minimum(torch.maximum(past, low), high)


def _warp(past: Tensor, flow: Tensor) -> Tensor:
    """`past` `[1,C,H,W]` sampled (bilinear, edges repeated) at each pixel + `flow` `(h,w,2)`,
    the flow in thumbnail pixels, upsampled to H x W."""
    h, w = past.shape[-2:]
    sh, sw = flow.shape[:2]
    flow = flow.permute(2, 0, 1)[None]
    if (sh, sw) != (h, w):
        flow = F.interpolate(flow, size=(h, w), mode="bilinear", align_corners=False)
    # align_corners=False: pixel centre x sits at (2x + 1) / W - 1
    xs = torch.arange(w, device=past.device, dtype=past.dtype).mul_(2 / w).add_(1 / w - 1)
    ys = torch.arange(h, device=past.device, dtype=past.dtype).mul_(2 / h).add_(1 / h - 1)
    gx, gy = flow[0, 0] * (2 / sw), flow[0, 1] * (2 / sh)  # thumbnail px -> grid units
    grid = torch.stack((gx + xs[None, :], gy + ys[:, None]), -1)[None]
    return F.grid_sample(past, grid, mode="bilinear", padding_mode="border", align_corners=False)
