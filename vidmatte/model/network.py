"""The matting network: encoder -> LR-ASPP -> recurrent decoder -> projection -> guided filter.

Contract (the reference ONNX graph's semantics):
  fgr, pha, r1, r2, r3, r4 = net(src, r1, r2, r3, r4, downsample_ratio)
  src: `[B,3,H,W]` or `[B,T,3,H,W]` float RGB in 0..1
  r1..r4: recurrent states from the previous call, `None` (zeros) on the first
  fgr `[B,(T),3,H,W]` foreground colour in 0..1, pha `[B,(T),1,H,W]` alpha in 0..1
A `[B,T,...]` chunk gives the same result as T single-frame calls with the state carried.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from .decoder import RecurrentDecoder
from .encoder import MobileNetV3Encoder
from .layout import Pointwise, channels_last
from .lraspp import LRASPP
from .mixed import OperandCopies
from .refiner import DeepGuidedFilter
from .resample import scale_bilinear
from .timefold import fold_time, unfold_time


class Coarse:
    """Low-resolution output of the recurrent part, with what the refiner needs (time folded).

    src `[N,3,H,W]`: full-resolution input, float in 0..1 or uint8 (see Features); small
    `[N,3,h,w]`: the network's input; y `[N,4,h,w]`: foreground residual + alpha; hid
    `[N,16,h,w]`: decoder features; bt: (B, T) or None.

    `y` and `hid` come from the decoder's last block (at the network's full size, without memory)
    and the projection. Given `head` instead, they are computed where first read, once: the
    pipeline's full-resolution stage reads them on its own thread, which takes that block off the
    recurrent thread, the CPU pipeline's critical path (benchmarks/speed.md).
    """

    def __init__(
        self,
        src: Tensor,
        small: Tensor,
        y: Tensor | None = None,
        hid: Tensor | None = None,
        bt: tuple[int, int] | None = None,
        *,
        head: Callable[[], tuple[Tensor, Tensor]] | None = None,
    ) -> None:
        if (y is None or hid is None) and head is None:
            raise ValueError("Coarse needs y and hid, or the head that computes them")
        self.src, self.small, self.bt = src, small, bt
        self._y, self._hid, self._head = y, hid, head
        self._lock = threading.Lock()

    def _computed(self) -> tuple[Tensor, Tensor]:
        with self._lock:  # two readers on two threads compute it once
            if self._y is None or self._hid is None:
                assert self._head is not None
                self._y, self._hid = self._head()
                self._head = None  # lets go of the decoder's intermediate maps
            return self._y, self._hid

    @property
    def y(self) -> Tensor:
        return self._y if self._y is not None else self._computed()[0]

    @property
    def hid(self) -> Tensor:
        return self._hid if self._hid is not None else self._computed()[1]


@dataclass
class Features:
    """Output of the stateless front (resize, encoder, LR-ASPP) for N = B*T frames (time folded).

    Split from the recurrent decoder so a pipeline can encode frame t+1 while frame t decodes.
    """

    src: Tensor  # [N,3,H,W] full-resolution input; uint8 when Matter.encode keeps CPU frames as bytes
    small: Tensor  # [N,3,h,w] the network's input
    f1: Tensor
    f2: Tensor
    f3: Tensor
    f4: Tensor  # after LR-ASPP
    bt: tuple[int, int] | None

    def frames(self, start: int, end: int) -> Features:
        """Frames start..end of a single clip (B = 1)."""
        if self.bt is not None and self.bt[0] != 1:
            raise ValueError("frames() slices the time axis of one clip (batch of 1)")
        cut = slice(start, end)
        bt = None if self.bt is None else (1, len(range(*cut.indices(self.bt[1]))))
        return Features(self.src[cut], self.small[cut], self.f1[cut], self.f2[cut], self.f3[cut], self.f4[cut], bt)


def prefers_channels_last(device: torch.device) -> bool:
    """The default layout per device: NHWC on CPU (oneDNN, measured in benchmarks/speed.md) and
    on CUDA (cuDNN's half-precision tensor-core convolutions are NHWC kernels; NCHW input is
    transposed around each one); NCHW elsewhere."""
    return device.type in ("cpu", "cuda")


def _decoder_layout(f: Features, nhwc: bool) -> Features:
    """The decoder's inputs laid out NHWC when `nhwc` (`layout`); a no-op for those that are."""
    if not nhwc:
        return f
    return replace(
        f,
        small=channels_last(f.small),
        f1=channels_last(f.f1),
        f2=channels_last(f.f2),
        f3=channels_last(f.f3),
        f4=channels_last(f.f4),
    )


#: the encoder's blocks from this one on (112-960 channels at 1/16 of the input) take bf16
#: operands in their 1x1 convolutions under `use_conv_operands`
MIXED_ENCODER_BLOCKS = 11


class MattingNetwork(nn.Module):
    """Robust Video Matting, MobileNetV3-Large variant (Lin et al. 2021, arXiv 2108.11515)."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = MobileNetV3Encoder()
        self.aspp = LRASPP(960, 128)
        self.decoder = RecurrentDecoder()
        self.project_mat = Pointwise(16, 4)
        self.refiner = DeepGuidedFilter()
        #: run the convolutions NHWC: True, False, or None for the device's default (`prefers_channels_last`)
        self.channels_last: bool | None = None

    def use_conv_operands(self, dtype: torch.dtype | None) -> None:
        """Let the largest convolutions multiply `dtype` operands (bf16: `vidmatte.model.mixed`), or
        None for the weights' own type; for an fp32 model on CPU. They are the recurrent decoder's
        and the 1x1 ones of the encoder's last stage and LR-ASPP; the encoder's earlier layers,
        at higher resolution, stay fp32 (in bf16 they quadrupled the alpha's difference to fp32:
        benchmarks/speed.md)."""
        for part in (self.decoder, self.backbone.features[MIXED_ENCODER_BLOCKS:], self.aspp):
            for module in part.modules():
                if isinstance(module, OperandCopies):
                    module.use_operands(dtype)

    @property
    def conv_operands(self) -> torch.dtype | None:
        """The operand type set by `use_conv_operands`, or None."""
        return next(m.operands for m in self.decoder.modules() if isinstance(m, OperandCopies))

    def uses_channels_last(self, device: torch.device) -> bool:
        """Whether the convolutions run NHWC on `device`: `channels_last`, or the device's default."""
        return prefers_channels_last(device) if self.channels_last is None else self.channels_last

    def forward(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        coarse, r1, r2, r3, r4 = self.coarse(src, r1, r2, r3, r4, downsample_ratio)
        fgr, pha = self.refine(coarse)
        return fgr, pha, r1, r2, r3, r4

    def coarse(
        self,
        src: Tensor,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        downsample_ratio: float = 1.0,
    ) -> tuple[Coarse, Tensor, Tensor, Tensor, Tensor]:
        """The low-resolution part: `encode` then `decode`."""
        return self.decode(self.encode(src, downsample_ratio), r1, r2, r3, r4)

    def encode(self, src: Tensor, downsample_ratio: float = 1.0, small: Tensor | None = None) -> Features:
        """The stateless front: resize to the network's size, encoder, LR-ASPP.

        `src` may be uint8 (0..255): it is then carried along as bytes for the full-resolution
        half. `small`, when given, is `src` already resized (float in 0..1, same batch shape).
        """
        if not 0 < downsample_ratio <= 1:
            raise ValueError(f"downsample_ratio must be in (0, 1], got {downsample_ratio}")
        src_f, bt = fold_time(src)
        if small is not None:
            small = fold_time(small)[0]
        else:
            x = src_f if src_f.is_floating_point() else src_f.to(self.project_mat.weight.dtype).div_(255)
            # scale-based (not size-based) resize, so output size and sampling grid match the reference
            small = x if downsample_ratio == 1 else scale_bilinear(x, downsample_ratio)
        nhwc = self.uses_channels_last(small.device)
        small = channels_last(small) if nhwc else small.contiguous()  # see layout
        f1, f2, f3, f4 = self.backbone(small)
        features = Features(src_f, small, f1, f2, f3, self.aspp(f4), bt)
        return _decoder_layout(features, nhwc)

    def decode(
        self,
        features: Features,
        r1: Tensor | None = None,
        r2: Tensor | None = None,
        r3: Tensor | None = None,
        r4: Tensor | None = None,
        *,
        defer_head: bool = False,
    ) -> tuple[Coarse, Tensor, Tensor, Tensor, Tensor]:
        """The recurrent decoder and projection: everything that must run frame after frame.

        `defer_head`: the decoder's last block and the projection, which have no memory, run
        when the result's `y` or `hid` is first read (see `Coarse`), in the grad and inference
        modes of this call.
        """
        f = _decoder_layout(features, self.uses_channels_last(features.f1.device))
        x1, r1, r2, r3, r4 = self.decoder(f.small, f.f1, f.f2, f.f3, f.f4, r1, r2, r3, r4, f.bt)
        grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()

        def head() -> tuple[Tensor, Tensor]:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                hid = self.decoder.decode0(x1, f.small)
                return self.project_mat(hid), hid

        if not defer_head:
            y, hid = head()
            return Coarse(f.src, f.small, y, hid, f.bt), r1, r2, r3, r4
        return Coarse(f.src, f.small, bt=f.bt, head=head), r1, r2, r3, r4

    def refine(self, coarse: Coarse) -> tuple[Tensor, Tensor]:
        """The full-resolution part: stateless, so it can run for frame t while `coarse` runs t+1."""
        src = coarse.src
        if not src.is_floating_point():  # frames kept as bytes until now (Matter on CPU)
            src = src.contiguous().to(coarse.y.dtype).div_(255)
        # The reference graph applies the guided filter at every ratio, 1.0 included.
        y = self.refiner(src, coarse.small, coarse.y, coarse.hid)
        fgr = y[:, :3].add_(src).clamp_(0.0, 1.0)
        pha = y[:, 3:].clamp_(0.0, 1.0)
        return unfold_time(fgr, coarse.bt), unfold_time(pha, coarse.bt)
