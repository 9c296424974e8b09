"""Folding the time axis into the batch axis, written once for the whole network.

Every block except the ConvGRU is per-frame, so a `[B, T, C, H, W]` clip is run as
`[B*T, C, H, W]` and only the recurrent cells look at the time axis.
"""

from __future__ import annotations

from torch import Tensor

#: `(B, T)` of a folded clip, or `None` for a plain `[B, C, H, W]` batch of single frames.
TimeShape = "tuple[int, int] | None"


def fold_time(x: Tensor) -> tuple[Tensor, tuple[int, int] | None]:
    """`[B,T,C,H,W]` -> (`[B*T,C,H,W]`, (B, T)); `[B,C,H,W]` -> (x, None)."""
    if x.ndim == 5:
        return x.flatten(0, 1), (x.shape[0], x.shape[1])
    if x.ndim != 4:
        raise ValueError(f"expected a [B,C,H,W] or [B,T,C,H,W] tensor, got shape {tuple(x.shape)}")
    return x, None


def unfold_time(x: Tensor, bt: tuple[int, int] | None) -> Tensor:
    """Inverse of `fold_time`."""
    return x if bt is None else x.unflatten(0, bt)
