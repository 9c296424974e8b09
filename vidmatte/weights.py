"""Locate, verify (sha256) and load the bundled network weights.

The weights are the reference RVM MobileNetV3 weights converted by `vidmatte.convert`;
see weights/README.md for provenance and licence.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
from pathlib import Path

import torch

from .errors import WeightsError
from .model.network import MattingNetwork

DEFAULT_WEIGHTS_NAME = "rvm_mobilenetv3.pt"
#: sha256 of weights/rvm_mobilenetv3.pt as written by `python -m vidmatte.convert`.
WEIGHTS_SHA256 = "5846992682a27b17f91d6681d16be10cbf52c5eb13c644efa5e3d910465d7d05"


def default_weights_path() -> Path:
    """Where the bundled weights are: $VIDMATTE_WEIGHTS, the source tree, or the installed data."""
    env = os.environ.get("VIDMATTE_WEIGHTS")
    if env:
        return Path(env)
    candidates = [
        Path(__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS_NAME,  # checkout / editable
        Path(sys.prefix) / "share" / "vidmatte" / "weights" / DEFAULT_WEIGHTS_NAME,  # wheel data files
    ]
    for path in candidates:
        if path.is_file():
            return path
    return candidates[0]


def load_state_dict(path: str | Path | None = None, sha256: str | None = WEIGHTS_SHA256) -> dict[str, torch.Tensor]:
    """Read and verify a weights file; raise `WeightsError` saying what is wrong."""
    path = Path(path) if path is not None else default_weights_path()
    if not path.is_file():
        raise WeightsError(f"model weights not found at {path}; reinstall vidmatte or set VIDMATTE_WEIGHTS")
    data = path.read_bytes()
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise WeightsError(
                f"model weights at {path} are damaged (sha256 {digest[:12]}…, expected "
                f"{sha256[:12]}…); reinstall vidmatte or regenerate with python -m vidmatte.convert"
            )
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any unpickling failure means a bad file
        raise WeightsError(f"model weights at {path} cannot be read ({exc.__class__.__name__})") from None
    if not isinstance(state, dict):
        raise WeightsError(f"model weights at {path} are not a state dict")
    return state


def load_model(
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    weights: str | Path | None = None,
    channels_last: bool | None = None,
) -> MattingNetwork:
    """The matting network with the bundled (or given) weights, in eval mode on `device`.

    Call it as `fgr, pha, r1, r2, r3, r4 = model(src, r1, r2, r3, r4, downsample_ratio)`;
    see `vidmatte.model.network` for shapes. `channels_last` picks the convolutions' memory
    layout (None: the device's default, `prefers_channels_last`); results are the same.
    """
    device = torch.device(device)
    model = MattingNetwork()
    sha = WEIGHTS_SHA256 if weights is None else None
    model.load_state_dict(load_state_dict(weights, sha256=sha))
    model.channels_last = channels_last
    # inference only: no autograd graph, so callers need no torch.no_grad() and in-place
    # activations are allowed on the weights' outputs
    model = model.eval().requires_grad_(False).to(device=device, dtype=dtype)
    if model.uses_channels_last(device) and device.type != "cpu":
        # NHWC weights too, or cuDNN reorders each filter on every call; on CPU oneDNN keeps its
        # own reordered copy and NHWC weights measured no faster (benchmarks/speed.md)
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return model
