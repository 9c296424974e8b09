"""Edge-band refinement for video: `refine_edges` on every frame, its correction kept steady in time."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..types import Matte
from .refine import refine_edges

#: Side of the blocks whose mean colour decides whether the picture moved (noise averages out).
BLOCK = 8


class VideoEdgeRefiner:
    """`refiner(matte, frames) -> matte` for T consecutive frames `(T,H,W,3)` uint8 of one shot.

    Each frame's network alpha and foreground are refined in its edge band (closed-form matting,
    then foreground re-estimation; `scale` and `options` go to `refine_edges`). A per-frame solve reacts to
    sensor noise and to the band's outline changing, which flickers; so the *correction* it makes
    to the network's alpha is averaged over time where the picture is still:

        correction_t = lerp(fresh_t, correction_{t-1}, strength * still)

    `still` is 1 where no 8x8 block's mean colour moved by more than `picture_still` (0..1) since
    the last frame and 0 beyond `picture_moving`: moving edges get the fresh solve, no lag. The
    network's own output is not smoothed (that is `AlphaSmoother`'s job). `reset()` at a new shot.
    """

    def __init__(
        self,
        strength: float = 0.9,
        picture_still: float = 0.015,
        picture_moving: float = 0.05,
        scale: float = 0.5,
        **options,
    ) -> None:
        if not 0 <= strength < 1:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        self.strength, self.picture_still, self.picture_moving = strength, picture_still, picture_moving
        # half resolution: as sharp on video as a full solve, steadier and 2x cheaper
        # (benchmarks/video_quality.md); stills solve at full resolution
        self.options = {"scale": scale, **options}
        self.reset()

    def reset(self) -> None:
        """Forget the shot: the next frame gets a fresh solve."""
        self._correction: Tensor | None = None
        self._thumb: np.ndarray | None = None

    @torch.inference_mode()
    def __call__(self, matte: Matte, frames: np.ndarray) -> Matte:
        alpha, foreground = matte.alpha.clone(), matte.foreground.clone()
        for t in range(len(alpha)):
            image = torch.from_numpy(np.ascontiguousarray(frames[t])).to(alpha.device).permute(2, 0, 1)
            network = matte.alpha[t].float()
            refined, _ = refine_edges(image, alpha[t], foreground[t], inplace=True, **self.options)
            fresh = refined.float() - network
            still = self._still(frames[t], network)
            if self._correction is not None and still is not None and self.strength > 0:
                fresh = torch.lerp(fresh, self._correction, still * self.strength)
            self._correction = fresh
            alpha[t] = (network + fresh).clamp_(0, 1).to(alpha.dtype)
        return Matte(foreground, alpha)

    def _still(self, frame: np.ndarray, like: Tensor) -> Tensor | None:
        """[1,H,W] in 0..1: 1 where the picture did not move since the last frame; None at first."""
        height, width = frame.shape[:2]
        size = (max(1, -(-width // BLOCK)), max(1, -(-height // BLOCK)))
        thumb = cv2.resize(frame, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        previous, self._thumb = self._thumb, thumb
        if previous is None:
            return None
        change = torch.from_numpy(np.abs(thumb - previous).max(axis=2)).to(like.device)[None, None]
        change = F.max_pool2d(change, 3, stride=1, padding=1)  # a block next to motion is not still
        still = ((self.picture_moving - change) / (self.picture_moving - self.picture_still)).clamp_(0, 1)
        return F.interpolate(still, size=(height, width), mode="bilinear", align_corners=False)[0]
