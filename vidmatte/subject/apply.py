"""Applying a subject gate to the network's output.

The gate lives at the network's low resolution. Two places to apply it, both measured in
benchmarks/subject.md:

- `gate_alpha`: multiply the finished full-resolution alpha by the gate, upsampled bilinearly
  exactly as the guided filter upsamples its coefficients (the same grid);
- `gate_coefficients`: multiply the guided filter's low-resolution alpha model (its `A` and `b`
  for the alpha channel) by the gate before they are upsampled and applied.

Either way the foreground colour is untouched (it only matters where alpha > 0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..model.resample import resize_bilinear

Gate = np.ndarray | Tensor


def track_coarse(
    tracker, coarse, new_shots: Sequence[bool] | None = None, first_index: int | None = None
) -> list[np.ndarray]:
    """`tracker.update` for each frame of a chunk of `Matter.step_coarse` output, in order.

    coarse: the `Coarse` of T frames (its `y[:, 3]` is the low-resolution alpha, `small` the
    picture the network saw); new_shots: per frame, whether it starts a new shot (scene cut).
    Returns the T gates `(h,w)` float32.
    """
    count = coarse.y.shape[0]
    flags = list(new_shots) if new_shots is not None else [False] * count
    gates = []
    for i in range(count):
        index = None if first_index is None else first_index + i
        alpha = coarse.y[i, 3].clamp(0, 1)
        gates.append(tracker.update(alpha, coarse.small[i], new_shot=bool(flags[i]), index=index))
    return gates


def _stack(gates: Gate | Sequence[Gate], device: torch.device, dtype: torch.dtype) -> Tensor:
    """One `(h,w)` gate or T of them -> `[T,1,h,w]` tensor."""
    if isinstance(gates, (list, tuple)):
        parts = [torch.as_tensor(np.asarray(g) if not isinstance(g, Tensor) else g) for g in gates]
        g = torch.stack([p.reshape(p.shape[-2:]) for p in parts])
    else:
        g = torch.as_tensor(gates) if isinstance(gates, Tensor) else torch.from_numpy(np.ascontiguousarray(gates))
        g = g.reshape(-1, *g.shape[-2:])
    return g[:, None].to(device=device, dtype=dtype)


def upsample_gate(
    gate: Gate | Sequence[Gate],
    size: tuple[int, int],
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """`[T,1,H,W]` gate at full resolution `size` = (H, W), on the guided filter's sampling grid."""
    g = _stack(gate, torch.device(device), torch.float32 if torch.device(device).type == "cpu" else dtype)
    return resize_bilinear(g, size).clamp_(0.0, 1.0).to(dtype)


def gate_alpha(alpha: Tensor, gate: Gate | Sequence[Gate]) -> Tensor:
    """Full-resolution alpha `[T,1,H,W]` (or `[1,H,W]`) times the upsampled gate (new tensor)."""
    squeeze = alpha.dim() == 3
    a = alpha[None] if squeeze else alpha
    g = upsample_gate(gate, (a.shape[-2], a.shape[-1]), a.device, a.dtype)
    out = a * g
    return out[0] if squeeze else out


def gate_coefficients(ab: Tensor, gate: Gate | Sequence[Gate]) -> Tensor:
    """The guided filter's low-resolution coefficients `[N,8,h,w]` (A for fgr-residual RGB + alpha,
    then b likewise) with the alpha's A and b multiplied by the gate (new tensor)."""
    g = _stack(gate, ab.device, ab.dtype)[:, 0]
    out = ab.clone()
    out[:, 3] *= g
    out[:, 7] *= g
    return out
