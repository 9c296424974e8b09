"""`AlphaSmoother`: causal temporal filter on the network's alpha and foreground that damps
flicker where subject and picture are still, follows what moves, and leaves nothing behind a
subject that moves away.

Per pixel, the output is a recursive average `out_t = lerp(raw_t, past, w)`, `past` being the
previous output fetched along the optical flow (a motion-compensated recursive filter) or held in
place where the flow is not trusted, whose weight `w` on the past is `strength` where the pixel
is steady and falls to 0 wherever anything says it changed:

    w = strength * steady_picture * steady_alpha * steady_network    (x t/warmup for the first frames)

- flow: OpenCV DIS (ultrafast preset) from each frame to the previous one on a grey thumbnail of
  `flow_size` px on the long side. The past is fetched along it where it is trusted: consistent
  forwards and backwards (within `consistency` thumbnail px, none beyond twice that: the
  disocclusions behind a moving subject) and, over 5x5 thumbnail px, explaining the picture
  better than holding still does; elsewhere the past is held in place. Warping everywhere dragged
  a fast subject's alpha into the background at disocclusions and jittered still scenes.
- motion: the flow's magnitude, mapped from 0 (<= `motion_still` px per 256 px of the
  thumbnail's long side) to 1 (>= `motion_moving`), counted only where the picture itself changed
  (a 3x3 mean colour change reaching `motion_picture`: DIS fills a uniform region, such as the
  inside of a dark figure, with motion that changes nothing there), spread over 5x5 thumbnail px
  and remembered (`moved = max(moving, memory * moved)`): where something moved recently.
- `steady_picture`: the colour change of the thumbnail from the *reference* (the past
  thumbnails averaged with the same weights, fetched along the same flow), spread to the
  neighbouring thumbnail pixels, 1 for <= `picture_still`, 0 for >= `picture_moving`.
- `steady_alpha`: the new alpha against `past`. Rising, and falling where nothing moved: 1 for
  a difference <= `alpha_still`, 0 for >= `alpha_moving`, so still flicker is damped in both
  directions. Falling where something moved recently and the network's alpha is below
  `release_below`: the tight `release_still` .. `release_moving`, so alpha the network let go
  of behind a moving subject is let go of at once: the past is never held above it.
- `steady_network`: where something moved recently, the network's own change at the pixel,
  `|a_t - a_(t-1)|` (both fetched alike): 1 for <= `change_still`, 0 for >= `change_moving`.
- the past's ceiling: where something moved recently, the past is capped at the highest
  network alpha now over the pixel's neighbourhood (radius `clamp` px per 512 px of the long
  side, at least 1), as temporal anti-aliasing in games clamps its history: a trail the
  network lets go of over a few frames, in steps each under the gates above, is followed down.
  Only from above: a floor as well (the full range) stopped the damping of dips in regions
  whose alpha swings as a whole (benchmarks/temporal.md); with `flow=False` the floor stays,
  where it keeps the held past from lagging below an arriving subject.
- `warmup`: an unprimed network's first frames after a reset improve quickly as its recurrent
  state fills; the weight ramps up over these frames so the smoother does not hold on to them.
  After a network primed on the shot's first frame (the pipeline's default) there is nothing to
  ramp over: `smoother_for` decides.

`flow=False` holds the past in place everywhere (no warp; cheaper, weaker on moving footage).
Causal: past frames only, no added latency. Defaults chosen, and cost per frame measured, in
benchmarks/temporal.md.
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..options import SMOOTH_STRENGTH
from ..types import Matte


def smoother_for(strength: float, *, primed: bool, **options: Any) -> AlphaSmoother:
    """The smoother a pipeline runs after the network: without the warm-up ramp where the network
    is primed on each shot's first frame (its first outputs are then as settled as the later ones;
    the ramp only gave up damping there: benchmarks/temporal.md), with it where it is not.
    `options`: other `AlphaSmoother` parameters."""
    if primed:
        options.setdefault("warmup", 0)
    return AlphaSmoother(strength, **options)


class AlphaSmoother:
    """Causal motion-adaptive smoothing of a stream of mattes; the state lives in the object.

    >>> smoother = AlphaSmoother()
    >>> for frames in chunks:                 # uint8 (T,H,W,3) consecutive frames of one shot
    ...     matte = smoother(matter(frames), frames)
    >>> smoother.reset()                      # at a new clip or a scene cut

    strength: weight of the past at a perfectly steady pixel, in [0, 1); 0 turns smoothing off
        (output == input exactly). Higher is steadier; the gates keep changing pixels unsmoothed
        at any strength.
    flow: fetch the past along the optical flow where it is trusted (False: hold it in place
        everywhere); the flow is used to find motion either way.
    smooth_foreground: apply the same weights to the foreground colour.
    The other parameters are described in the module docstring (colour and alpha in 0..1).
    Defaults chosen on synthetic and real clips: benchmarks/temporal.md.
    """

    def __init__(
        self,
        strength: float = SMOOTH_STRENGTH,
        *,
        flow: bool = True,
        flow_size: int = 512,
        consistency: float = 0.5,
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
        motion_picture: float = 0.05,
        memory: float = 0.9,
        warmup: int = 4,
        clamp: float = 1.2,
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
        if flow_size < 8 or warmup < 0 or still_flow < 0 or clamp < 0 or consistency <= 0 or motion_picture < 0:
            raise ValueError(
                "flow_size must be >= 8, consistency > 0, warmup, still_flow, motion_picture and clamp >= 0"
            )
        self.strength = float(strength)
        self.flow, self.flow_size, self.still_flow = bool(flow), int(flow_size), float(still_flow)
        self.consistency, self.motion_picture = float(consistency), float(motion_picture)
        self.picture_still, self.picture_moving = float(picture_still), float(picture_moving)
        self.alpha_still, self.alpha_moving = float(alpha_still), float(alpha_moving)
        self.release_still, self.release_moving = float(release_still), float(release_moving)
        self.change_still, self.change_moving = float(change_still), float(change_moving)
        self.warmup = int(warmup)
        self.release_below = float(release_below)
        self.motion_still, self.motion_moving, self.memory = float(motion_still), float(motion_moving), float(memory)
        self.smooth_foreground = smooth_foreground
        self.clamp = float(clamp)
        self._dis: Any = None  # cv2.DISOpticalFlow, made on first use
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame passes through unchanged and starts the average."""
        self._alpha: Tensor | None = None  # [1,1,H,W] smoothed alpha of the last frame
        self._raw: Tensor | None = None  # [1,1,H,W] the network's alpha of the last frame
        self._foreground: Tensor | None = None  # [1,3,H,W] smoothed foreground of the last frame
        self._reference: np.ndarray | None = None  # (h,w,3) float32 thumbnail the smoothed alpha belongs to
        self._gray: np.ndarray | None = None  # (h,w) uint8 grey thumbnail of the last frame
        self._thumb: np.ndarray | None = None  # (h,w,3) float32 colour thumbnail of the last frame
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
        self._thumb = self._reference

    def _blend(self, a: Tensor, f: Tensor, rgb: np.ndarray) -> tuple[Tensor, Tensor]:
        assert self._alpha is not None and self._raw is not None and self._foreground is not None
        assert self._reference is not None and self._gray is not None and self._thumb is not None
        thumb, gray = self._thumbnail(rgb)
        sh, sw = gray.shape
        flow = self._flow(gray, self._gray)
        # recent motion: flow magnitude (thresholds per 256 thumbnail px) where the picture
        # changed, spread to the neighbours, remembered with `memory` per frame; where something
        # moved, a falling network alpha is let go at once
        per_px = max(sh, sw) / 256
        speed = np.hypot(flow[..., 0], flow[..., 1])
        moving = np.clip(
            (speed - self.motion_still * per_px) / ((self.motion_moving - self.motion_still) * per_px), 0, 1
        )
        frame_change = cv2.absdiff(thumb, self._thumb)  # (h,w,3) from the last frame's thumbnail
        if self.motion_picture > 0:
            changed = cv2.blur(_largest_channel(frame_change), (3, 3))
            moving *= np.clip(changed / self.motion_picture, 0, 1)
        moving = cv2.dilate(moving, np.ones((5, 5), np.uint8))
        self._moved = moving if self._moved is None else np.maximum(moving, self._moved * self.memory)
        moved = self._moved
        warp = self.flow and float(np.abs(flow).max()) >= self.still_flow
        reference = self._reference
        if warp:
            flow = self._trusted(flow, gray, thumb, frame_change)
            reference = _fetch(reference, flow)
        change = cv2.dilate(_largest_channel(cv2.absdiff(thumb, reference)), np.ones((3, 3), np.uint8))
        steady = np.clip((self.picture_moving - change) / (self.picture_moving - self.picture_still), 0, 1)
        self._reference = reference + (thumb - reference) * (1 - self.strength * steady[..., None])
        self._gray, self._thumb = gray, thumb

        h, w = a.shape[-2:]
        past = [self._alpha, self._raw] + ([self._foreground] if self.smooth_foreground else [])
        if warp:
            past = _warp(past, flow)
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
            # frames), the past may not rise above the most the network gives the pixel's
            # neighbourhood now: a trail the network is letting go of slowly (its recurrent memory
            # fading over a few frames) is followed down, not held above it
            radius = max(1, round(self.clamp * max(h, w) / 512))
            # held in place (flow=False), the past gets a floor too: the range, so it does not
            # lag below a subject arriving; fetched along the flow, it has arrived with it
            capped = torch.minimum(prev, _neighbourhood_max(a, radius))
            if not self.flow:
                capped = torch.maximum(capped, -_neighbourhood_max(-a, radius))
            prev = torch.lerp(prev, capped, (2 * moved_t).clamp_(max=1))
        a = torch.lerp(a, prev, weight)
        if self.smooth_foreground and prev_f is not None:
            f = torch.lerp(f, prev_f, weight.expand_as(f))
        return a, f

    def _flow(self, gray: np.ndarray, previous: np.ndarray) -> np.ndarray:
        """(h,w,2) float32: where each thumbnail pixel of `gray` was in `previous`."""
        if self._dis is None:
            self._dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)  # type: ignore[attr-defined]
        return np.asarray(self._dis.calc(gray, previous, None), dtype=np.float32)

    def _trusted(self, flow: np.ndarray, gray: np.ndarray, thumb: np.ndarray, frame_change: np.ndarray) -> np.ndarray:
        """`flow` where the past may be fetched along it, 0 (hold in place) elsewhere;
        `frame_change` is |thumb - the last frame's thumbnail|."""
        assert self._gray is not None and self._thumb is not None
        # forwards-backwards: the backward flow at the pixel's source should lead back to it;
        # trusted within `consistency` px, not at all beyond twice that (disocclusions)
        back = self._flow(self._gray, gray)
        back = _fetch(back, flow)
        back += flow
        error = np.hypot(back[..., 0], back[..., 1])
        flow = flow * np.clip(2 - error / self.consistency, 0, 1)[..., None]
        # fetch along the flow only where that explains this picture better than holding still
        along = cv2.blur(_channel_sum(cv2.absdiff(thumb, _fetch(self._thumb, flow))), (5, 5))
        held = cv2.blur(_channel_sum(frame_change), (5, 5))
        return np.ascontiguousarray(flow * (along < held)[..., None])


def _fetch(picture: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """`picture` (h,w[,c]) float32 sampled at each pixel + `flow` (h,w,2)."""
    return _sample(picture, flow + _grid(*flow.shape[:2]))


def _sample(picture: np.ndarray, where: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """`picture` (h,w[,c]) float32 sampled at `where` (h,w,2) x, y pixel positions: bilinear,
    edges repeated (as `grid_sample`'s border padding in `_warp`)."""
    return cv2.remap(picture, where, None, cv2.INTER_LINEAR, dst=dst, borderMode=cv2.BORDER_REPLICATE)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """(h,w,2) float32 pixel coordinates (x, y); read only."""
    grid = np.stack(np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)), -1)
    grid.setflags(write=False)
    return grid


def _largest_channel(x: np.ndarray) -> np.ndarray:
    """(h,w) largest of the 3 channels of `x` (h,w,3); numpy's reduction over a last axis of 3
    is an order of magnitude slower at 1024 px."""
    return np.maximum(np.maximum(x[..., 0], x[..., 1]), x[..., 2])


def _channel_sum(x: np.ndarray) -> np.ndarray:
    """(h,w) sum of the 3 channels of `x` (h,w,3)."""
    return x[..., 0] + x[..., 1] + x[..., 2]


def _gate(diff: Tensor, still: float, moving: float) -> Tensor:
    """1 where |diff| <= still, 0 where >= moving, linear between."""
    scale = 1 / (moving - still)
    return diff.abs().mul_(-scale).add_(moving * scale).clamp_(0, 1)


def _neighbourhood_max(now: Tensor, radius: int) -> Tensor:
    """The largest value of `now` `[1,1,H,W]` over the (2 radius + 1)^2 window around each pixel."""
    k = 2 * radius + 1
    if now.device.type == "cpu" and now.dtype == torch.float32:
        # OpenCV's rectangular max filter: ~1 ms at 720p, where torch's max_pool2d with a 9x9
        # window took ~100 ms (benchmarks/temporal.md)
        plane, kernel = now[0, 0].contiguous().numpy(), np.ones((k, k), np.uint8)
        return torch.from_numpy(cv2.dilate(plane, kernel, borderType=cv2.BORDER_REPLICATE))[None, None]
    # separable: two 1-d passes
    return F.max_pool2d(F.max_pool2d(now, (1, k), 1, (0, radius)), (k, 1), 1, (radius, 0))


def _warp(past: list[Tensor], flow: np.ndarray) -> list[Tensor]:
    """Each `[1,C,H,W]` of `past` sampled (bilinear, edges repeated) at each pixel + `flow`
    `(h,w,2)`, the flow in thumbnail pixels, upsampled to H x W."""
    h, w = past[0].shape[-2:]
    sh, sw = flow.shape[:2]
    if past[0].device.type == "cpu" and all(p.dtype == torch.float32 for p in past):
        # OpenCV's remap, plane by plane: a third of grid_sample's time at 720p (benchmarks/temporal.md)
        # scaled on the thumbnail (bilinear resizing is linear), so one full-size pass remains
        scaled = flow * np.array([w / sw, h / sh], np.float32)
        where = cv2.resize(scaled, (w, h), interpolation=cv2.INTER_LINEAR) if (sh, sw) != (h, w) else scaled
        where += _grid(h, w)
        out = []
        for p in past:
            planes = p[0].contiguous().numpy()
            warped = np.empty_like(planes)
            for c in range(len(planes)):
                _sample(planes[c], where, warped[c])
            out.append(torch.from_numpy(warped)[None])
        return out
    # elsewhere one grid_sample; its grid float32 whatever the dtype: half precision cannot place
    # a sample within a pixel at 720p
    grid_flow = torch.from_numpy(flow).to(past[0].device).permute(2, 0, 1)[None]
    if (sh, sw) != (h, w):
        grid_flow = F.interpolate(grid_flow, size=(h, w), mode="bilinear", align_corners=False)
    # align_corners=False: pixel centre x sits at (2x + 1) / W - 1
    xs = torch.arange(w, device=grid_flow.device, dtype=torch.float32).mul_(2 / w).add_(1 / w - 1)
    ys = torch.arange(h, device=grid_flow.device, dtype=torch.float32).mul_(2 / h).add_(1 / h - 1)
    gx, gy = grid_flow[0, 0] * (2 / sw), grid_flow[0, 1] * (2 / sh)  # thumbnail px -> grid units
    grid = torch.stack((gx + xs[None, :], gy + ys[:, None]), -1)[None]
    stacked = torch.cat(past, 1)
    out_all = F.grid_sample(stacked.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return list(out_all.to(stacked.dtype).split([p.shape[1] for p in past], 1))
