"""The full-resolution half on CPU in one pass: guided filter, clamping and composing, band by band.

`MattingEngine.refine` followed by `compose.render` materialises full-resolution float frames
several times over (coefficients, foreground, alpha, composite, rounding), each pass a
trip through main memory, and freshly allocated buffers that size page-fault on first
touch. Here the guided filter's coefficients are resized once into a reused buffer and
everything after runs on bands of rows that stay in cache, straight from the uint8 source
frames to the uint8 pictures the writers take. Same numbers as the two-step path, to
within one level of rounding (tests/test_fused_render.py); 720p composite: ~15 vs 27-55 ms a
frame on one core (benchmarks/stages.md).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from ..compose import Background, ColorBackground
from ..engine import MattingEngine
from ..io.formats import OUTPUT_TYPES
from ..model.network import Coarse
from ..subject import gate_coefficients

#: Rows per band: the band's working set (~12 float planes of 64x1280) stays in L2/L3 cache.
BAND_ROWS = 64


class FusedRenderer:
    """`render(engine.refine(coarse), output_type, frames, background)` in one pass, for float32
    engines on the CPU (whether to use it is `plan.plan_run`'s decision).

    One instance serves one thread (it keeps scratch buffers between calls).
    """

    def __init__(self, engine: MattingEngine, output_type: str, background: Background | None = None) -> None:
        if engine.device.type != "cpu" or engine.dtype != torch.float32 or output_type not in OUTPUT_TYPES:
            raise ValueError(f"no fused path for {output_type!r} on {engine.device} {engine.dtype}")
        if output_type == "composite" and background is None:
            raise ValueError("a composite needs a background")
        self.engine, self.output_type, self.background = engine, output_type, background
        self._scratch: dict[str, Tensor] = {}

    def _buffer(self, name: str, shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> Tensor:
        buf = self._scratch.get(name)
        if buf is None or buf.shape != shape:
            buf = self._scratch[name] = torch.empty(shape, dtype=dtype)
        return buf

    @torch.inference_mode()
    def __call__(self, coarse: Coarse, frames: np.ndarray, gate: list[np.ndarray] | None = None) -> np.ndarray:
        """`(T,H,W,3)` uint8 source frames of `coarse` -> `(T,H,W,4 or 3)` uint8 pictures.

        `gate`: per frame, the chosen people's low-resolution weight (`--subject`), multiplied
        into the guided filter's alpha model before it is upsampled (`gate_coefficients`)."""
        if frames.ndim == 3:
            frames = frames[None]
        count, height, width = frames.shape[:3]
        coeff = self.engine.guided_coefficients(coarse).float()
        if gate is not None:
            coeff = gate_coefficients(coeff, gate)
        if coeff.shape[0] != count:
            raise ValueError(f"{count} frames for a coarse matte of {coeff.shape[0]}")
        # Work in 0..255 units straight from the bytes. The network's foreground is a residual
        # over the source (A + 1) and its alpha reads the grey mean (A / 3); both folds are
        # linear, so they commute with the bilinear resize and cost nothing at low resolution.
        coeff[:, :3] += 1
        coeff[:, 3] /= 3
        coeff[:, 4:] *= 255
        background = self._background(frames)
        channels = 4 if self.output_type == "rgba" else 3
        out = np.empty((count, height, width, channels), np.uint8)
        coeff_np = coeff.contiguous().numpy()
        full = self._buffer("coeff", (8, height, width))
        full_np = full.numpy()
        for t in range(count):
            for c in range(8):
                cv2.resize(coeff_np[t, c], (width, height), dst=full_np[c], interpolation=cv2.INTER_LINEAR)
            bg = None if background is None else background[min(t, background.shape[0] - 1)]
            for y0 in range(0, height, BAND_ROWS):
                y1 = min(height, y0 + BAND_ROWS)
                bg_band = bg if bg is None or bg.shape[1] == 1 else bg[:, y0:y1]
                self._band(full[:, y0:y1], frames[t, y0:y1], bg_band, out[t, y0:y1])
        return out

    def _background(self, frames: np.ndarray) -> Tensor | None:
        """The background in 0..255, `[T or 1,3,H,W]` or `[1,3,1,1]` for a colour."""
        if self.output_type != "composite":
            return None
        assert self.background is not None
        if isinstance(self.background, ColorBackground):
            return self.background.color.float().mul(255)
        return self.background.for_frames(frames).float().mul(255)

    def _band(self, coeff: Tensor, src: np.ndarray, background: Tensor | None, out: np.ndarray) -> None:
        rows, width = src.shape[:2]
        x = self._buffer("x", (3, BAND_ROWS, width))[:, :rows]
        for c, plane in enumerate(cv2.split(src)):
            x[c].copy_(torch.from_numpy(plane))
        fg = torch.addcmul(coeff[4:7], coeff[:3], x, out=self._buffer("fg", (3, BAND_ROWS, width))[:, :rows])
        fg.clamp_(0, 255)
        grey = torch.sum(x, 0, out=self._buffer("sum", (BAND_ROWS, width))[:rows])
        alpha = torch.addcmul(coeff[7], coeff[3], grey, out=self._buffer("alpha", (BAND_ROWS, width))[:rows])
        alpha.clamp_(0, 255)
        kind = self.output_type
        if kind == "rgba":
            planes = [fg.round_(), alpha.round_()[None]]
        elif kind == "alpha":
            planes = [alpha.round_()[None].expand(3, -1, -1)]
        elif kind == "foreground":
            planes = [fg.mul_(alpha.div_(255)).round_()]
        else:
            assert background is not None
            # straight-alpha over, as compose.composite: bg + a * (fg - bg)
            planes = [fg.sub_(background).mul_(alpha.div_(255)).add_(background).round_()]
        u8 = self._buffer("u8", (out.shape[-1], BAND_ROWS, width), torch.uint8)[:, :rows]
        start = 0
        for p in planes:
            u8[start : start + p.shape[0]].copy_(p)
            start += p.shape[0]
        cv2.merge([p.numpy() for p in u8], dst=out)
