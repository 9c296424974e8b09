"""The engine: the matting network plus its recurrent state.

`Matter` turns frames into foreground colour and alpha. The recurrent state is an explicit
value: `step(frames, state) -> (matte, state)` is pure, and calling the object uses and
updates `matter.state` for the common one-clip case. `reset()` starts a new clip.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np
import torch
from torch import Tensor

from .errors import DeviceError
from .model.network import Coarse, Features
from .model.resample import scale_bilinear_bytes
from .transfer import to_device, to_host
from .weights import load_model

#: Hidden states r1..r4 of the four ConvGRU cells; all `None` at the start of a clip.
RecurrentState = tuple[Union[Tensor, None], Union[Tensor, None], Union[Tensor, None], Union[Tensor, None]]
EMPTY_STATE: RecurrentState = (None, None, None, None)

#: Frames: uint8 RGB numpy `(H,W,3)` or `(T,H,W,3)`, or torch float RGB `[3,H,W]`/`[T,3,H,W]` in 0..1.
Frames = Union[np.ndarray, Tensor]

_PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an unavailable explicit choice raises DeviceError."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = device.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError("CUDA was requested but no CUDA GPU is available; use --device cpu")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("MPS was requested but is not available on this machine; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise DeviceError(f"unknown device {device!r}; use auto, cpu, cuda or mps") from None


def resolve_dtype(precision: str, device: torch.device) -> torch.dtype:
    """`auto` is fp16 on CUDA and fp32 elsewhere."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in _PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use auto, fp32, fp16 or bf16")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is not supported on the CPU; use fp32 or bf16")
    return _PRECISIONS[precision]


def auto_downsample_ratio(height: int, width: int) -> float:
    """The network works best with its input between 256 and 512 px: `min(1, 512 / max(H, W))`."""
    return min(1.0, 512 / max(height, width))


@dataclass
class Matte:
    """Network output for T frames, on the engine's device.

    foreground: `[T,3,H,W]` predicted foreground colour in 0..1 (meaningful where alpha > 0)
    alpha: `[T,1,H,W]` in 0..1
    """

    foreground: Tensor
    alpha: Tensor

    def __len__(self) -> int:
        return self.alpha.shape[0]

    def alpha_uint8(self) -> np.ndarray:
        """`(T,H,W)` uint8 alpha."""
        return _to_uint8(self.alpha[:, 0])

    def foreground_uint8(self) -> np.ndarray:
        """`(T,H,W,3)` uint8 foreground colour."""
        return _to_uint8(self.foreground.permute(0, 2, 3, 1))

    def rgba(self) -> np.ndarray:
        """`(T,H,W,4)` uint8 straight (not premultiplied) RGBA: foreground colour + alpha."""
        return _to_uint8(torch.cat([self.foreground, self.alpha], 1).permute(0, 2, 3, 1))


def _batch(frames: np.ndarray) -> np.ndarray:
    """uint8 `(H,W,3)` or `(T,H,W,3)` RGB -> `(T,H,W,3)`; anything else raises ValueError."""
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (3, 4):
        raise ValueError(f"expected uint8 (H,W,3) or (T,H,W,3) RGB, got {frames.dtype} {frames.shape}")
    return frames if frames.ndim == 4 else frames[None]


def _to_uint8(x: Tensor) -> np.ndarray:
    return to_host(x.float().mul(255).round_().to(torch.uint8))


class Matter:
    """Stateful matting engine: model, device, precision, ratio and the recurrent state.

    >>> matter = Matter()                   # device auto, bundled weights
    >>> for chunk in chunks_of_frames:      # uint8 (T,H,W,3) arrays of one clip, in order
    ...     matte = matter(chunk)           # state carried to the next call
    >>> matter.reset()                      # before the next clip
    """

    def __init__(self, device: str | torch.device = "auto", precision: str = "auto",
                 downsample_ratio: float | str = "auto", model: torch.nn.Module | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(precision, self.device)
        if downsample_ratio != "auto":
            downsample_ratio = float(downsample_ratio)
            if not 0 < downsample_ratio <= 1:
                raise ValueError(f"downsample ratio must be in (0, 1], got {downsample_ratio}")
        self.downsample_ratio = downsample_ratio
        self.model = model if model is not None else load_model(self.device, self.dtype)
        self.state: RecurrentState = EMPTY_STATE

    def reset(self) -> None:
        """Forget the clip so far: the next frame starts from empty state."""
        self.state = EMPTY_STATE

    def ratio_for(self, height: int, width: int) -> float:
        """The downsample ratio used for frames of this size."""
        if self.downsample_ratio == "auto":
            return auto_downsample_ratio(height, width)
        return float(self.downsample_ratio)

    def to_tensor(self, frames: Frames) -> Tensor:
        """Frames in any accepted form -> `[T,3,H,W]` on the engine's device and dtype."""
        if isinstance(frames, np.ndarray):
            # uploaded as bytes (pinned and asynchronous on CUDA), converted on the device;
            # planar (NCHW-contiguous) while still 1 byte a sample: the full-resolution guided
            # filter runs 2-3x slower on the strided view (benchmarks/speed.md)
            t = to_device(_batch(frames), self.device).permute(0, 3, 1, 2).contiguous()
            return t.to(self.dtype).div_(255)
        if isinstance(frames, Tensor):
            t = frames if frames.ndim == 4 else frames[None]
            if t.ndim != 4 or t.shape[1] != 3 or not t.is_floating_point():
                raise ValueError(f"expected float [3,H,W] or [T,3,H,W] RGB in 0..1, got {t.dtype} {tuple(frames.shape)}")
            return t.to(self.device, self.dtype, non_blocking=True).contiguous()  # planar, as above
        raise TypeError(f"frames must be a numpy array or a torch tensor, not {type(frames).__name__}")

    @torch.inference_mode()
    def encode(self, frames: Frames) -> Features:
        """The stateless front of the network for T frames (resize, encoder); `step_coarse` takes it.

        Split so a pipeline can encode the next frames on another thread while the recurrent
        decoder runs the current ones.
        """
        if isinstance(frames, np.ndarray) and self.device.type == "cpu":
            # Straight from the bytes: the network's small input is blended from the source rows
            # it reads, and the full-resolution frame stays uint8 (1 byte a sample while queued
            # between threads) until the full-resolution half needs it.
            batch = _batch(frames)
            ratio = self.ratio_for(*batch.shape[1:3])
            small = scale_bilinear_bytes(batch, ratio) if self.dtype == torch.float32 else None
            src = torch.from_numpy(batch).permute(0, 3, 1, 2)
            return self.model.encode(src[None], downsample_ratio=ratio, small=None if small is None else small[None])
        src = self.to_tensor(frames)
        return self.model.encode(src[None], downsample_ratio=self.ratio_for(*src.shape[-2:]))

    @torch.inference_mode()
    def step_coarse(self, frames: Frames | Features, state: RecurrentState = EMPTY_STATE) -> tuple[Coarse, RecurrentState]:
        """The recurrent low-resolution half of `step`; finish with `refine`.

        Split so a pipeline can refine frame t on one thread while this runs frame t+1.
        `frames` may be `encode`'s output for them.
        """
        features = frames if isinstance(frames, Features) else self.encode(frames)
        h, w = features.src.shape[-2:]
        ratio = self.ratio_for(h, w)
        if state[0] is not None:
            # r1 lives at half the network's resolution; a mismatch means frames of another clip
            expected = tuple(-(-int(n * ratio) // 2) for n in (h, w))
            if tuple(state[0].shape[-2:]) != expected:
                raise ValueError("the recurrent state belongs to frames of another size; call reset() first")
        coarse, *new_state = self.model.decode(features, *state)
        return coarse, tuple(new_state)  # type: ignore[return-value]

    @torch.inference_mode()
    def refine(self, coarse: Coarse) -> Matte:
        """Full-resolution foreground and alpha from `step_coarse`'s output (stateless)."""
        fgr, pha = self.model.refine(coarse)
        return Matte(fgr[0], pha[0])

    def step(self, frames: Frames, state: RecurrentState = EMPTY_STATE) -> tuple[Matte, RecurrentState]:
        """Matte T consecutive frames of one clip, starting from `state`; returns the new state."""
        coarse, state = self.step_coarse(frames, state)
        return self.refine(coarse), state

    def warm_up(self, frame: Frames | Features, passes: int, state: RecurrentState = EMPTY_STATE) -> RecurrentState:
        """The state after running one frame `passes` times: primes the memory before a shot.

        A shot's first frames are the network's weakest, because its memory starts empty; the
        first frame seen repeatedly lets it settle on what is person and what is not before
        any output is made (benchmarks/video_quality.md). Only the low-resolution half runs,
        and the stateless encoder once: `frame` may be `encode`'s output for it.
        """
        if passes <= 0:
            return state
        features = (frame if isinstance(frame, Features) else self.encode(frame)).frames(0, 1)
        for _ in range(passes):
            _, state = self.step_coarse(features, state)
        return state

    def prime(self, frame: Frames | Features, passes: int) -> None:
        """`warm_up` on the current clip's state (call after `reset()`, before its first frame)."""
        self.state = self.warm_up(frame, passes, self.state)

    def coarse(self, frames: Frames | Features) -> Coarse:
        """`step_coarse` on the current clip, carrying `self.state`."""
        coarse, self.state = self.step_coarse(frames, self.state)
        return coarse

    def __call__(self, frames: Frames) -> Matte:
        """Matte the next frames of the current clip, carrying `self.state`."""
        return self.refine(self.coarse(frames))
