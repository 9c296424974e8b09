"""`AlphaSmoother`: causal, motion-adaptive temporal filter on the network's alpha and foreground.

Per pixel, the output is a recursive average `out_t = lerp(raw_t, out_{t-1}, w)` whose weight
`w` on the past is `strength` where the pixel is still and falls to 0 where it moves:

    w = strength * still_picture * still_alpha          (x t/warmup for the first frames)

- `still_picture` comes from the source frames, on `block` x `block` px block means (area
  averages, so sensor noise averages out): the largest colour change of a block from the
  *reference* picture, spread to the blocks around it (`spread` blocks, max filter), mapped
  linearly from 1 (change <= `picture_still`) to 0 (change >= `picture_moving`) and upsampled
  to full resolution. The reference is the past pictures averaged with the same weights, i.e.
  the picture the smoothed alpha belongs to: slow motion adds up frame after frame until it
  opens the gate, so the output cannot drift behind a slowly moving edge.
- `still_alpha` compares the new alpha with the smoothed one: 1 for a difference <=
  `alpha_still`, 0 for >= `alpha_moving`, a bound on how far the output can trail the network
  when the picture test misses a change.
- `warmup`: the network's first frames after a reset improve quickly as its recurrent state
  fills; the weight ramps up over these frames so the smoother does not hold on to them.

So the flicker of a still picture is averaged away while moving edges pass through unchanged:
no lag, and no added latency since only past frames are used. Cost: a block-mean thumbnail
(OpenCV) and about ten full-resolution element-wise operations per frame.
"""

from __future__ import annotations

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

    strength: weight of the past at a perfectly still pixel, in [0, 1); 0 turns smoothing off
        (output == input exactly). Higher is steadier; the gates keep moving pixels unsmoothed
        at any strength.
    smooth_foreground: apply the same weights to the foreground colour.
    The other parameters are described in the module docstring (colour and alpha in 0..1).
    Defaults tuned on real and synthetic clips: benchmarks/temporal.md.
    """

    def __init__(
        self,
        strength: float = 0.94,
        *,
        picture_still: float = 0.015,
        picture_moving: float = 0.05,
        alpha_still: float = 0.3,
        alpha_moving: float = 0.7,
        block: int = 2,
        spread: int = 1,
        warmup: int = 4,
        smooth_foreground: bool = True,
    ) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        if not 0 <= picture_still < picture_moving or not 0 <= alpha_still < alpha_moving:
            raise ValueError("each gate needs 0 <= still < moving")
        if block < 1 or spread < 0 or warmup < 0:
            raise ValueError("block must be >= 1, spread and warmup >= 0")
        self.strength = float(strength)
        self.picture_still, self.picture_moving = float(picture_still), float(picture_moving)
        self.alpha_still, self.alpha_moving = float(alpha_still), float(alpha_moving)
        self.block, self.spread, self.warmup = int(block), int(spread), int(warmup)
        self.smooth_foreground = smooth_foreground
        self.reset()

    def reset(self) -> None:
        """Forget the past: the next frame passes through unchanged and starts the average."""
        self._alpha: Tensor | None = None  # [1,1,H,W] smoothed alpha of the last frame
        self._foreground: Tensor | None = None  # [1,3,H,W] smoothed foreground of the last frame
        self._reference: Tensor | None = None  # [1,3,h,w] block means the smoothed alpha belongs to
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
            thumbs = self._thumbnails(frames, alpha)
            for i in range(t):
                a, f = alpha[i : i + 1], foreground[i : i + 1]
                still = self._still_picture(thumbs[i : i + 1])
                if still is not None and self.strength > 0 and self._alpha is not None:
                    assert self._foreground is not None
                    weight = F.interpolate(still, size=(h, w), mode="bilinear", align_corners=False)
                    weight.mul_(self._alpha_gate(a))
                    if self._seen < self.warmup:
                        weight.mul_(self._seen / self.warmup)
                    a = torch.lerp(a, self._alpha, weight)
                    if self.smooth_foreground:
                        f = torch.lerp(f, self._foreground, weight.expand_as(f))
                self._alpha, self._foreground = a, f
                self._seen += 1
                out_alpha.append(a)
                out_fgr.append(f)
        if t == 1:
            return Matte(out_fgr[0], out_alpha[0])
        return Matte(torch.cat(out_fgr), torch.cat(out_alpha))

    def _thumbnails(self, frames: np.ndarray, like: Tensor) -> Tensor:
        """Block means of the frames, `[T,3,h,w]` in 0..1 on the matte's device and dtype."""
        h, w = frames.shape[1:3]
        size = (max(1, -(-w // self.block)), max(1, -(-h // self.block)))
        blocks = np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])
        thumbs = torch.from_numpy(blocks).to(like.device, non_blocking=True).permute(0, 3, 1, 2)
        return thumbs.to(like.dtype).div_(255)

    def _still_picture(self, thumb: Tensor) -> Tensor | None:
        """`strength` x the stillness of each block vs the reference, `[1,1,h,w]`; None for a
        first frame. Moves the reference towards `thumb` with the same weights."""
        reference, self._reference = self._reference, thumb
        if reference is None:
            return None
        change = (thumb - reference).abs_().amax(1, keepdim=True)
        if self.spread > 0:  # motion reaches the blocks around it too
            change = _dilate(change, self.spread)
        scale = self.strength / (self.picture_moving - self.picture_still)
        still = change.mul_(-scale).add_(self.picture_moving * scale).clamp_(0, self.strength)
        self._reference = torch.lerp(thumb, reference, still)
        return still

    def _alpha_gate(self, alpha: Tensor) -> Tensor:
        """1 where the new alpha is within `alpha_still` of the smoothed one, 0 beyond `alpha_moving`."""
        assert self._alpha is not None
        scale = 1 / (self.alpha_moving - self.alpha_still)
        return (alpha - self._alpha).abs_().mul_(-scale).add_(self.alpha_moving * scale).clamp_(0, 1)


def _dilate(x: Tensor, radius: int) -> Tensor:
    """Max over a (2r+1)^2 square around each pixel of a non-negative `[N,C,H,W]` map.

    Separable, zero padded (the neutral value here); ~10x faster than `max_pool2d` on CPU."""
    n = 2 * radius + 1
    p = F.pad(x, (radius, radius, radius, radius))
    h, w = x.shape[-2:]
    rows = p[..., 0:h, :]
    for i in range(1, n):
        rows = torch.maximum(rows, p[..., i : i + h, :])
    out = rows[..., 0:w]
    for i in range(1, n):
        out = torch.maximum(out, rows[..., i : i + w])
    return out
