"""Mixed precision on CPU: the largest convolutions multiply bf16 operands, all else stays fp32.

On processors with bf16 dot-product instructions (AVX512_BF16, AMX-BF16) oneDNN runs a bf16
convolution or matrix product at about twice the rate of an fp32 one, accumulating in fp32. The
recurrent decoder's 3x3 convolutions and the 1x1 convolutions of the encoder's last, widest
stage (and LR-ASPP's) are most of a CPU frame's arithmetic, already at the fp32 peak of a core
(benchmarks/speed.md), so they take bf16 operands (`MattingNetwork.use_conv_operands`), while
their inputs and outputs, the recurrent state, the gates' activations, the encoder's other
layers, the projection and the guided filter stay fp32: the rounding is that of the operands
only, not compounded through the state (benchmarks/mixed.md measures the alpha). Where the
processor lacks those instructions bf16 is emulated and slower, so `auto` keeps fp32 there.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: CPU flags (Linux /proc/cpuinfo names) of instructions that multiply bf16 natively
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def flags_have_native_bf16(cpuinfo: str) -> bool:
    """True when a /proc/cpuinfo text lists a bf16 dot-product instruction set."""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag in NATIVE_BF16_FLAGS for flag in line.partition(":")[2].split())
    return False


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this machine's CPU multiplies bf16 natively (read once; False where it cannot be told)."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return False
    try:
        return flags_have_native_bf16(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


class OperandCopies:
    """Mixin for a convolution: copies of its weight and bias in another type (bf16) that it
    multiplies instead when given fp32 input, returning fp32; set by `use_operands`, off by default."""

    weight: Tensor
    bias: Tensor | None
    _operands: tuple[Tensor, Tensor | None] | None = None

    def use_operands(self, dtype: torch.dtype | None) -> None:
        """Multiply `dtype` operands from now on (None: the weights' own type, as `nn.Conv2d`)."""
        if dtype is None:
            self._operands = None
            return
        padding = getattr(self, "padding_mode", "zeros")
        if padding != "zeros":  # the forwards pad as F.conv2d does: with zeros only
            raise ValueError(f"{padding} padding has no {dtype} path")
        weight = self.weight.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        bias = None if self.bias is None else self.bias.detach().to(dtype)
        self._operands = (weight, bias)

    @property
    def operands(self) -> torch.dtype | None:
        """The operand type in use, or None."""
        return None if self._operands is None else self._operands[0].dtype

    def operands_for(self, x: Tensor) -> tuple[Tensor, Tensor | None] | None:
        """(weight, bias) to multiply `x` by: the copies for fp32 input on their device, else None."""
        operands = self._operands
        if operands is None or x.dtype != torch.float32 or x.device != operands[0].device:
            return None
        return operands


class MixedConv2d(OperandCopies, nn.Conv2d):
    """A convolution (same parameters, same state-dict keys as `nn.Conv2d`) with `OperandCopies`."""

    def forward(self, x: Tensor) -> Tensor:
        operands = self.operands_for(x)
        if operands is None:
            return super().forward(x)
        weight, bias = operands
        y = F.conv2d(x.to(weight.dtype), weight, bias, self.stride, self.padding, self.dilation, self.groups)
        return y.float()
