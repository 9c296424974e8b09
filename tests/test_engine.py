"""The engine: chunks equal single steps, reset equals a fresh engine, ratios and inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import moving_clip
from vidmatte import DeviceError, Matter, MattingEngine, auto_downsample_ratio


@pytest.fixture(scope="module")
def clip(sample_rgb):
    return moving_clip(sample_rgb, 144, 256, frames=6)


def test_chunk_equals_single_steps(engine, clip):
    chunked, state_c = engine.step(clip)
    state = (None,) * 4
    singles = []
    for frame in clip:
        m, state = engine.step(frame, state)
        singles.append(m)
    assert torch.allclose(chunked.alpha, torch.cat([m.alpha for m in singles]), atol=1e-5)
    assert torch.allclose(chunked.foreground, torch.cat([m.foreground for m in singles]), atol=1e-5)
    for a, b in zip(state_c, state):  # hidden states in -1..1; batched and single convs round differently
        assert torch.allclose(a, b, atol=1e-4)


def test_state_is_carried_and_reset_equals_fresh_engine(engine, clip):
    engine.reset()
    first = engine(clip[:1]).alpha
    second = engine(clip[:1]).alpha  # same frame again, but with memory now
    assert (first - second).abs().max() > 1e-4
    engine(clip[1:])
    engine.reset()
    again = engine(clip[:1]).alpha
    fresh = MattingEngine(device="cpu", precision=engine.precision, model=engine.model)(clip[:1]).alpha
    assert torch.equal(again, fresh) and torch.equal(again, first)


def test_outputs_and_conversions(engine, clip):
    engine.reset()
    m = engine(clip[:2])
    assert m.alpha.shape == (2, 1, 144, 256) and m.foreground.shape == (2, 3, 144, 256)
    rgba = m.rgba()
    assert rgba.shape == (2, 144, 256, 4) and rgba.dtype == np.uint8
    assert np.array_equal(rgba[..., 3], m.alpha_uint8())
    assert np.array_equal(rgba[..., :3], m.foreground_uint8())
    # the portrait is found: the centre column is mostly foreground, the top corners background
    alpha = m.alpha_uint8()[1]
    assert alpha[100:, 110:150].mean() > 200 and alpha[:20, :20].mean() < 30


@pytest.mark.parametrize("ratio", [1.0, 0.5, 0.3])  # 0.3 of 144x256 is not whole: no byte shrink
def test_tensor_input_matches_uint8_input(engine, clip, ratio):
    other = MattingEngine(device="cpu", precision=engine.precision, downsample_ratio=ratio, model=engine.model)
    features = other.encode(clip[:2])
    assert features.src.dtype == torch.uint8  # CPU frames stay bytes until the full-resolution half
    a, _ = other.step(clip[:2])
    t = torch.from_numpy(clip[:2]).permute(0, 3, 1, 2).float() / 255
    b, _ = other.step(t)
    # the byte path blends before dividing by 255: float rounding, within the parity bound
    assert torch.allclose(a.alpha, b.alpha, atol=1e-4)
    assert torch.allclose(a.foreground, b.foreground, atol=1e-4)


def test_state_from_another_size_is_refused(engine, clip, sample_rgb):
    _, state = engine.step(clip[:1])
    with pytest.raises(ValueError, match="reset"):
        engine.step(sample_rgb[:100, :120], state)


def test_bad_frames_are_refused(engine):
    with pytest.raises(ValueError):
        engine.step(np.zeros((10, 10, 4), np.uint8))
    with pytest.raises(ValueError):
        engine.step(np.zeros((10, 10, 3), np.float32))


def test_auto_ratio():
    assert auto_downsample_ratio(256, 200) == 1.0
    assert auto_downsample_ratio(720, 1280) == 0.4
    assert auto_downsample_ratio(2160, 3840) == 512 / 3840
    assert MattingEngine(device="cpu", downsample_ratio=0.25, model=torch.nn.Identity()).ratio_for(720, 1280) == 0.25


def test_device_and_precision_errors():
    with pytest.raises(DeviceError):
        MattingEngine(device="cpu", precision="fp16", model=torch.nn.Identity())
    with pytest.raises(DeviceError):
        MattingEngine(device="cpu", precision="fp8", model=torch.nn.Identity())
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA"):
            MattingEngine(device="cuda", model=torch.nn.Identity())
    assert MattingEngine(device="cpu", model=torch.nn.Identity()).dtype == torch.float32


def test_warm_up_is_the_first_frame_run_repeatedly(engine, clip):
    state = (None,) * 4
    for _ in range(3):
        _, state = engine.step(clip[0], state)
    primed = engine.warm_up(clip[0], 3)
    from_features = engine.warm_up(engine.encode(clip[:2]), 3)  # the first frame of encoded ones
    for a, b, c in zip(primed, state, from_features):
        assert torch.allclose(a, b, atol=1e-4) and torch.allclose(a, c, atol=1e-5)
    assert engine.warm_up(clip[0], 0) == (None,) * 4
    engine.reset()
    engine.prime(clip[0], 3)
    warm = engine(clip[:1]).alpha
    cold = engine.step(clip[:1])[0].alpha
    expected = engine.step(clip[:1], state)[0].alpha
    assert torch.allclose(warm, expected, atol=1e-5)
    assert (warm - cold).abs().max() > 1e-3  # the memory changed the first output


def test_encoded_features_give_the_same_matte(engine, clip):
    """The pipeline encodes frames on one thread and decodes them on another: same result."""
    direct, state_d = engine.step_coarse(clip[:3])
    features = engine.encode(clip[:3])
    split, state_s = engine.step_coarse(features)
    assert torch.equal(engine.refine(direct).alpha, engine.refine(split).alpha)
    for a, b in zip(state_d, state_s):
        assert torch.equal(a, b)
    # a slice of a chunk's features is that sub-chunk's features, carrying the state on
    first, state = engine.step_coarse(features.frames(0, 1))
    rest, state = engine.step_coarse(features.frames(1, 3), state)
    assert torch.allclose(
        torch.cat([engine.refine(first).alpha, engine.refine(rest).alpha]), engine.refine(direct).alpha, atol=1e-5
    )


@pytest.mark.gpu
def test_cuda_fp16_agrees_with_cpu_fp32(engine, clip):
    """The CUDA path (fp16, NHWC, pinned uploads, chunks of 4) against the CPU reference path."""
    gpu = MattingEngine(device="cuda")
    assert gpu.dtype == torch.float16
    gpu_alpha = np.concatenate([gpu(clip[i : i + 4]).alpha_uint8() for i in range(0, len(clip), 4)])
    engine.reset()
    cpu_alpha = np.concatenate([engine(frame).alpha_uint8() for frame in clip])
    diff = np.abs(gpu_alpha.astype(int) - cpu_alpha)
    assert diff.mean() < 0.5 and np.percentile(diff, 99.9) <= 8


def test_old_name_and_an_empty_state_given_as_none(engine, clip):
    assert Matter is MattingEngine
    a, state = engine.step(clip[:2], None)
    b, _ = engine.step(clip[:2])
    assert torch.equal(a.alpha, b.alpha) and all(s is not None for s in state)
    coarse, _ = engine.step_coarse(clip[:1], None)
    assert coarse.y.shape[1] == 4


def test_with_ratio_shares_the_model_and_leaves_the_original(engine, clip):
    engine.reset()
    engine(clip[:1])
    half = engine.with_ratio(0.5)
    assert half.model is engine.model and half.downsample_ratio == 0.5 and half.state == (None,) * 4
    assert engine.downsample_ratio == "auto" and engine.state[0] is not None
    assert half.network_size(144, 256) == (72, 128)
    with pytest.raises(ValueError, match="downsample ratio"):
        engine.with_ratio(2)


def test_guided_coefficients_reproduce_refine(engine, clip):
    """What the fused renderer and still mode build on: A * [rgb, grey] + b, upsampled, is refine."""
    import torch.nn.functional as F

    coarse, _ = engine.step_coarse(clip[:2])
    ab = engine.guided_coefficients(coarse)
    assert ab.shape[:2] == (2, 8)
    src = torch.from_numpy(clip[:2]).permute(0, 3, 1, 2).float() / 255
    up = F.interpolate(ab, size=src.shape[-2:], mode="bilinear", align_corners=False)
    out = engine.apply_coefficients(up, src)
    expected = engine.refine(coarse)
    assert torch.allclose(out[:, 3:].clamp(0, 1), expected.alpha, atol=1e-4)
    assert torch.allclose(out[:, :3].add(src).clamp(0, 1), expected.foreground, atol=1e-4)


def test_describe_says_device_precision_and_why_not_a_gpu(engine):
    assert engine.describe() == "cpu, fp32"  # asked for by name: nothing to explain
    if not torch.cuda.is_available():
        auto = MattingEngine(model=engine.model)
        chosen = "mixed (bf16 convolutions, fp32 state)" if auto.precision == "mixed" else "fp32"
        assert auto.describe().startswith(f"cpu, {chosen} (") and "CUDA" in auto.describe()  # auto chose the CPU: why
        assert engine.model.conv_operands is None  # the model given was copied, not switched under `engine`


def test_the_memoryless_last_block_runs_where_its_output_is_first_read(engine, clip, monkeypatch):
    """On CPU `step_coarse` leaves the decoder's last block and the projection to the first
    reader of `y`/`hid` (in a pipeline: the full-resolution stage's thread), once, with the
    numbers the undeferred network gives."""
    import threading

    from vidmatte.model.network import Coarse

    last_block = engine.model.decoder.decode0
    calls: list[str] = []
    forward = last_block.forward

    def counted(*args):
        calls.append(threading.current_thread().name)
        return forward(*args)

    monkeypatch.setattr(last_block, "forward", counted)
    features = engine.encode(clip[:2])
    coarse, _ = engine.step_coarse(features)
    assert calls == []  # the recurrent part ran, the last block not yet
    reader = threading.Thread(target=lambda: coarse.y, name="render")
    reader.start()
    reader.join()
    assert calls == ["render"]
    hid, y = coarse.hid, coarse.y
    assert calls == ["render"]  # computed once
    with torch.inference_mode():
        direct, *_ = engine.model.decode(features)
    assert len(calls) == 2  # the undeferred call runs it in place
    assert torch.equal(y, direct.y) and torch.equal(hid, direct.hid)
    with pytest.raises(ValueError, match="head"):
        Coarse(features.src, features.small)
