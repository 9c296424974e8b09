"""Mixed precision on CPU: bf16 operands for the largest convolutions, fp32 everywhere else."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import vidmatte.engine as engine_module
from tests.conftest import moving_clip
from vidmatte import DeviceError, MattingEngine, load_model
from vidmatte.engine import PRECISIONS, resolve_precision
from vidmatte.model.layout import Pointwise, channels_last
from vidmatte.model.mixed import MixedConv2d, OperandCopies, flags_have_native_bf16
from vidmatte.model.network import MIXED_ENCODER_BLOCKS
from vidmatte.options import PRECISION_CHOICES

ZEN4_FLAGS = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\nbugs\t\t: sysret_ss_attrs\n"
AVX2_FLAGS = "processor\t: 0\nflags\t\t: fpu sse avx2 fma bmi2\n"


def test_native_bf16_is_read_from_the_flags_line():
    assert flags_have_native_bf16(ZEN4_FLAGS)
    assert flags_have_native_bf16("flags : avx512f amx_tile amx_bf16\n")
    assert not flags_have_native_bf16(AVX2_FLAGS)
    assert not flags_have_native_bf16("model name : avx512_bf16 in a name, not a flag\n")
    assert not flags_have_native_bf16("")


def test_precision_names_are_decided_once():
    assert set(PRECISIONS) == set(PRECISION_CHOICES) - {"auto"}


@pytest.mark.parametrize("native,expected", [(True, "mixed"), (False, "fp32")])
def test_auto_on_cpu_follows_the_processor(monkeypatch, native, expected):
    monkeypatch.setattr(engine_module, "cpu_has_native_bf16", lambda: native)
    assert resolve_precision("auto", torch.device("cpu")) == expected
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"  # asked for: kept on any processor
    engine = MattingEngine(device="cpu", model=nn.Identity())
    assert engine.precision == expected and engine.dtype == torch.float32


def test_mixed_is_for_the_cpu():
    with pytest.raises(DeviceError, match="mixed precision is for the CPU"):
        resolve_precision("mixed", torch.device("cuda"))
    with pytest.raises(DeviceError, match="mixed"):
        resolve_precision("fp16", torch.device("cpu"))


def test_mixed_convolution_keeps_the_parameters_and_rounds_only_operands():
    torch.manual_seed(0)
    plain = nn.Conv2d(24, 16, 3, padding=1)
    mixed = MixedConv2d(24, 16, 3, padding=1)
    mixed.load_state_dict(plain.state_dict())  # same keys: the converted weights load as they are
    x = channels_last(torch.randn(1, 24, 20, 30))
    with torch.inference_mode():
        exact = plain(x)
        assert torch.equal(mixed(x), exact)  # off by default
        mixed.use_operands(torch.bfloat16)
        assert mixed.operands == torch.bfloat16
        y = mixed(x)
        assert y.dtype == torch.float32 and y.shape == exact.shape
        error = (y - exact).abs().max() / exact.abs().max()
        assert 0 < error < 2e-2  # bf16 operands (8-bit mantissa), fp32 sums: not exact, not far
        mixed.use_operands(None)
        assert torch.equal(mixed(x), exact)


def test_mixed_engine_alpha_stays_within_a_rounding_of_fp32(sample_rgb):
    clip = moving_clip(sample_rgb, 144, 256, frames=6)
    fp32 = MattingEngine(device="cpu", precision="fp32", model=load_model("cpu"))
    mixed = MattingEngine(device="cpu", precision="mixed", model=fp32.model)
    # the fp32 engine keeps its model as it was: the mixed one switched a copy
    assert mixed.model is not fp32.model
    assert mixed.model.conv_operands == torch.bfloat16 and fp32.model.conv_operands is None
    assert MattingEngine(device="cpu", precision="mixed", model=mixed.model).model is mixed.model  # no copy needed
    assert mixed.describe() == "cpu, mixed (bf16 convolutions, fp32 state)"
    a = torch.cat([fp32(frame).alpha for frame in clip])  # state carried frame by frame
    b = torch.cat([mixed(frame).alpha for frame in clip])
    difference = (a - b).abs()
    assert 0 < difference.max() < 0.05 and difference.mean() < 1e-3
    assert b.amin() >= 0 and b.amax() <= 1
    # the same matte: the portrait's body is foreground, the corners background
    assert b[-1, 0, 100:, 110:150].mean() > 0.8 and b[-1, 0, :20, :20].mean() < 0.1


def test_pointwise_multiplies_bf16_rows_and_stays_nhwc():
    torch.manual_seed(0)
    layer = Pointwise(96, 40)
    x = channels_last(torch.randn(2, 96, 12, 20))
    with torch.inference_mode():
        exact = layer(x)
        layer.use_operands(torch.bfloat16)
        y = layer(x)
    assert y.dtype == torch.float32 and y.shape == exact.shape and y.stride(1) == 1  # NHWC, as before
    error = (y - exact).abs().max() / exact.abs().max()
    assert 0 < error < 2e-2


def test_mixed_reaches_the_decoder_and_the_encoder_last_stage_only():
    model = load_model("cpu")
    model.use_conv_operands(torch.bfloat16)
    operands = {name: module.operands for name, module in model.named_modules() if isinstance(module, OperandCopies)}
    assert operands["decoder.decode0.conv2"] == torch.bfloat16
    assert operands["decoder.decode4.gru.gates"] == torch.bfloat16
    assert operands["aspp.branch"] == torch.bfloat16
    assert operands[f"backbone.features.{MIXED_ENCODER_BLOCKS}.expand.0"] == torch.bfloat16
    assert operands["backbone.features.16.0"] == torch.bfloat16
    assert operands[f"backbone.features.{MIXED_ENCODER_BLOCKS - 1}.expand.0"] is None  # higher resolution: fp32
    assert operands["project_mat"] is None and operands["backbone.features.2.expand.0"] is None
    model.use_conv_operands(None)
    assert all(module.operands is None for module in model.modules() if isinstance(module, OperandCopies))
