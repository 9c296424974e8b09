"""The matting network: encoder -> LR-ASPP -> recurrent decoder -> projection -> guided filter.

Contract (the reference ONNX graph's semantics):
  fgr, pha, r1, r2, r3, r4 = net(src, r1, r2, r3, r4, downsample_ratio)
  src: `[B,3,H,W]` or `[B,T,3,H,W]` float RGB in 0..1
  r1..r4: recurrent states from the previous call, `None` (zeros) on the first
  fgr `[B,(T),3,H,W]` foreground colour in 0..1, pha `[B,(T),1,H,W]` alpha in 0..1
A `[B,T,...]` chunk gives the same result as T single-frame calls with the state carried.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .decoder import RecurrentDecoder
from .encoder import MobileNetV3Encoder
from .lraspp import LRASPP
from .refiner import DeepGuidedFilter
from .timefold import fold_time, unfold_time


class MattingNetwork(nn.Module):
    """Robust Video Matting, MobileNetV3-Large variant (Lin et al. 2021, arXiv 2108.11515)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = MobileNetV3Encoder()
        self.aspp = LRASPP(960, 128)
        self.decoder = RecurrentDecoder()
        self.project_mat = nn.Conv2d(16, 4, 1)
        self.refiner = DeepGuidedFilter()

    def forward(self, src: Tensor, r1: Tensor | None = None, r2: Tensor | None = None,
                r3: Tensor | None = None, r4: Tensor | None = None,
                downsample_ratio: float = 1.0) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        if not 0 < downsample_ratio <= 1:
            raise ValueError(f"downsample_ratio must be in (0, 1], got {downsample_ratio}")
        src_f, bt = fold_time(src)
        small = src_f
        if downsample_ratio != 1:
            # scale-based (not size-based) resize, so output size and sampling grid match the reference
            small = F.interpolate(src_f, scale_factor=downsample_ratio, mode="bilinear",
                                  align_corners=False, recompute_scale_factor=False)
        f1, f2, f3, f4 = self.backbone(small)
        hid, r1, r2, r3, r4 = self.decoder(small, f1, f2, f3, self.aspp(f4), r1, r2, r3, r4, bt)
        # The reference graph applies the guided filter at every ratio, 1.0 included.
        y = self.refiner(src_f, small, self.project_mat(hid), hid)
        fgr = y[:, :3].add_(src_f).clamp_(0.0, 1.0)
        pha = y[:, 3:].clamp_(0.0, 1.0)
        return unfold_time(fgr, bt), unfold_time(pha, bt), r1, r2, r3, r4
