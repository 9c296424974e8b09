"""The engine: the matting network plus its recurrent state.

`MattingEngine` turns frames into foreground colour and alpha. The recurrent state is an explicit
value: `step(frames, state) -> (matte, state)` is pure, and calling the object uses and
updates `engine.state` for the common one-clip case. `reset()` starts a new clip.

It also offers the network's halves separately (`encode`, `step_coarse`, `refine`, the guided
filter's coefficients), so the pipeline's stages and still mode never reach into the model.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor

from .errors import DeviceError
from .model.mixed import cpu_has_native_bf16
from .model.network import Coarse, Features, MattingNetwork
from .model.resample import scale_bilinear_bytes
from .transfer import to_device
from .types import EMPTY_STATE, Matte, RecurrentState
from .weights import load_model

#: Frames: uint8 RGB numpy `(H,W,3)` or `(T,H,W,3)`, or torch float RGB `[3,H,W]`/`[T,3,H,W]` in 0..1.
Frames = np.ndarray | Tensor

#: precision name -> the network's dtype; "mixed" is fp32 whose largest convolutions multiply bf16
#: operands (CPU only, `vidmatte.model.mixed`); the names users give are `options.PRECISION_CHOICES`
PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "mixed": torch.float32}


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


def resolve_precision(precision: str, device: torch.device) -> str:
    """The precision a run uses, by name (a key of PRECISIONS). `auto` is fp16 on CUDA; on CPU
    `mixed` where the processor multiplies bf16 natively, else fp32; fp32 elsewhere."""
    if precision == "auto":
        if device.type == "cuda":
            return "fp16"
        return "mixed" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r}; use auto, {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type == "cpu":
        raise DeviceError("fp16 is not supported on the CPU; use fp32, mixed or bf16")
    if precision == "mixed" and device.type != "cpu":
        raise DeviceError(f"mixed precision is for the CPU; use fp16, bf16 or fp32 on {device.type}")
    return precision


def check_ratio(ratio: float | str) -> float | str:
    """`"auto"` or a number in (0, 1]; ValueError naming the option otherwise."""
    if ratio == "auto":
        return ratio
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise ValueError(f"downsample ratio must be 'auto' or a number in (0, 1], got {ratio!r}") from None
    if not 0 < value <= 1:
        raise ValueError(f"downsample ratio must be in (0, 1], got {value:g}")
    return value


def auto_downsample_ratio(height: int, width: int) -> float:
    """The network works best with its input between 256 and 512 px: `min(1, 512 / max(H, W))`."""
    return min(1.0, 512 / max(height, width))


def _batch(frames: np.ndarray) -> np.ndarray:
    """uint8 `(H,W,3)` or `(T,H,W,3)` RGB -> `(T,H,W,3)`; anything else raises ValueError."""
    if frames.dtype != np.uint8 or frames.shape[-1] != 3 or frames.ndim not in (3, 4):
        raise ValueError(f"expected uint8 (H,W,3) or (T,H,W,3) RGB, got {frames.dtype} {frames.shape}")
    return frames if frames.ndim == 4 else frames[None]


def _with_operands(model: MattingNetwork, precision: str, own: bool) -> MattingNetwork:
    """`model` with the convolution operands `precision` multiplies: as it is where they match,
    else switched in place when `own` (the engine loaded it) or a switched copy (another engine
    may be running the model given)."""
    operands = torch.bfloat16 if precision == "mixed" else None
    if not isinstance(model, MattingNetwork) or model.conv_operands == operands:
        return model
    if not own:
        model = copy.deepcopy(model)
    model.use_conv_operands(operands)
    return model


class MattingEngine:
    """Stateful matting engine: model, device, precision, ratio and the recurrent state.

    >>> engine = MattingEngine()            # device auto, bundled weights
    >>> for chunk in chunks_of_frames:      # uint8 (T,H,W,3) arrays of one clip, in order
    ...     matte = engine(chunk)           # state carried to the next call
    >>> engine.reset()                      # before the next clip
    """

    def __init__(
        self,
        device: str | torch.device = "auto",
        precision: str = "auto",
        downsample_ratio: float | str = "auto",
        model: MattingNetwork | None = None,
    ) -> None:
        self.requested_device = str(device)
        self.requested_precision = precision
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.dtype = PRECISIONS[self.precision]
        self.downsample_ratio = check_ratio(downsample_ratio)
        loaded = model if model is not None else load_model(self.device, self.dtype)
        self.model = _with_operands(loaded, self.precision, own=model is None)
        self.state: RecurrentState = EMPTY_STATE

    def reset(self) -> None:
        """Forget the clip so far: the next frame starts from empty state."""
        self.state = EMPTY_STATE

    def with_ratio(self, downsample_ratio: float | str) -> MattingEngine:
        """Another engine on the same model (nothing loaded twice), device and precision, with its
        own downsample ratio and an empty state; this one is left as it is."""
        other = copy.copy(self)
        other.downsample_ratio = check_ratio(downsample_ratio)
        other.state = EMPTY_STATE
        return other

    def with_precision(self, precision: str) -> MattingEngine:
        """Another engine like `with_ratio`, at another precision of the same dtype (fp32 <->
        mixed); its model is this one's, or a copy where the convolutions' operands differ."""
        other = copy.copy(self)
        other.precision = resolve_precision(precision, self.device)
        if PRECISIONS[other.precision] != self.dtype:
            raise ValueError(f"{precision} runs {PRECISIONS[other.precision]}, this engine {self.dtype}")
        other.requested_precision = precision
        other.model = _with_operands(self.model, other.precision, own=False)
        other.state = EMPTY_STATE
        return other

    def ratio_for(self, height: int, width: int) -> float:
        """The downsample ratio used for frames of this size."""
        if self.downsample_ratio == "auto":
            return auto_downsample_ratio(height, width)
        return float(self.downsample_ratio)

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) of the network's input for frames of this size."""
        ratio = self.ratio_for(height, width)
        return max(1, int(height * ratio)), max(1, int(width * ratio))

    def describe(self) -> str:
        """Device and precision in words, e.g. `cpu, fp32` or `cuda:0 NVIDIA H200, fp16`."""
        name = str(self.device)
        if self.device.type == "cuda":
            index = self.device.index if self.device.index is not None else torch.cuda.current_device()
            name = f"cuda:{index} {torch.cuda.get_device_name(index)}"
        text = f"{name}, {'mixed (bf16 convolutions, fp32 state)' if self.precision == 'mixed' else self.precision}"
        if self.device.type == "cpu" and self.requested_device == "auto":
            # the most common surprise with tools like this one: a GPU that is silently not used
            why = "this torch build has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            text += f" ({why})"
        return text

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
                raise ValueError(
                    f"expected float [3,H,W] or [T,3,H,W] RGB in 0..1, got {t.dtype} {tuple(frames.shape)}"
                )
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
    def step_coarse(
        self, frames: Frames | Features, state: RecurrentState | None = EMPTY_STATE
    ) -> tuple[Coarse, RecurrentState]:
        """The recurrent low-resolution half of `step`; finish with `refine`.

        Split so a pipeline can refine frame t on one thread while this runs frame t+1.
        `frames` may be `encode`'s output for them; `state` None means an empty state.
        """
        state = EMPTY_STATE if state is None else state
        features = frames if isinstance(frames, Features) else self.encode(frames)
        h, w = features.src.shape[-2:]
        ratio = self.ratio_for(h, w)
        if state[0] is not None:
            # r1 lives at half the network's resolution; a mismatch means frames of another clip
            expected = tuple(-(-int(n * ratio) // 2) for n in (h, w))
            if tuple(state[0].shape[-2:]) != expected:
                raise ValueError("the recurrent state belongs to frames of another size; call reset() first")
        # On CPU the memoryless last block runs where the result is first read: in a pipeline,
        # on the full-resolution stage's thread, off the recurrent one (see `Coarse`).
        coarse, *new_state = self.model.decode(features, *state, defer_head=self.device.type == "cpu")
        return coarse, tuple(new_state)  # type: ignore[return-value]

    @torch.inference_mode()
    def step_small(self, small: Tensor, state: RecurrentState | None = EMPTY_STATE) -> tuple[Coarse, RecurrentState]:
        """The recurrent half on a picture already at the network's size, `[1,3,h,w]` in 0..1 on
        the engine's device and dtype (still mode resizes with its own filter and runs this
        repeatedly). The coarse output's `src` is `small` itself."""
        state = EMPTY_STATE if state is None else state
        coarse, *new_state = self.model.coarse(small, *state, downsample_ratio=1.0)
        return coarse, tuple(new_state)  # type: ignore[return-value]

    @torch.inference_mode()
    def refine(self, coarse: Coarse) -> Matte:
        """Full-resolution foreground and alpha from `step_coarse`'s output (stateless)."""
        fgr, pha = self.model.refine(coarse)
        return Matte(fgr[0], pha[0])

    @torch.inference_mode()
    def guided_coefficients(self, coarse: Coarse) -> Tensor:
        """The guided filter's low-resolution linear models `[N,8,h,w]` (A for RGB+grey, then b):
        full-resolution foreground residual and alpha are `A * [rgb, grey] + b` with A and b
        upsampled bilinearly (`apply_coefficients`). For renderers that upsample them their own way."""
        return self.model.refiner.coefficients(coarse.small, coarse.y, coarse.hid)

    @staticmethod
    def apply_coefficients(coefficients: Tensor, src: Tensor) -> Tensor:
        """`A * [rgb, grey] + b` for coefficients `[N,8,H,W]` already at the size of `src` `[N,3,H,W]`
        (0..1): foreground residual (add `src`) and alpha, `[N,4,H,W]`, not yet clamped."""
        from .model.refiner import DeepGuidedFilter

        return DeepGuidedFilter.apply_coefficients(coefficients, src)

    def step(self, frames: Frames, state: RecurrentState | None = EMPTY_STATE) -> tuple[Matte, RecurrentState]:
        """Matte T consecutive frames of one clip, starting from `state` (None: empty); returns the new state."""
        coarse, state = self.step_coarse(frames, state)
        return self.refine(coarse), state

    def warm_up(
        self, frame: Frames | Features, passes: int, state: RecurrentState | None = EMPTY_STATE
    ) -> RecurrentState:
        """The state after running one frame `passes` times: primes the memory before a shot.

        A shot's first frames are the network's weakest, because its memory starts empty; the
        first frame seen repeatedly lets it settle on what is person and what is not before
        any output is made (benchmarks/video_quality.md). Only the low-resolution half runs,
        and the stateless encoder once: `frame` may be `encode`'s output for it.
        """
        state = EMPTY_STATE if state is None else state
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


#: The engine's first name, kept for existing code.
Matter = MattingEngine
