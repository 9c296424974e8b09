"""Lite R-ASPP head (Howard et al. 2019): a 1x1 branch gated by a global-context branch."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from .layout import Pointwise


class LRASPP(nn.Module):
    """`[N,960,h,w]` -> `[N,128,h,w]`."""

    def __init__(self, cin: int = 960, cout: int = 128) -> None:
        super().__init__()
        self.branch = Pointwise(cin, cout)  # batch norm folded in, hence the bias
        self.gate = Pointwise(cin, cout, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.branch(x)) * self.gate(F.adaptive_avg_pool2d(x, 1)).sigmoid()
