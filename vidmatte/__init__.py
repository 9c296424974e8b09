"""vidmatte: video matting with a recurrent network — clips in, clean temporally stable alpha out.

    from vidmatte import matte_path, MatteOptions
    matte_path("clip.mp4", "clip.mov", MatteOptions(smooth=0.9))

Names are imported on first use, so `import vidmatte` (and `vidmatte --help`) does not load torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "matte_path": "vidmatte.api",
    "MatteResult": "vidmatte.api",
    "MatteOptions": "vidmatte.options",
    "VideoOptions": "vidmatte.options",
    "Progress": "vidmatte.options",
    "MattingEngine": "vidmatte.engine",
    "Matter": "vidmatte.engine",
    "auto_downsample_ratio": "vidmatte.engine",
    "Matte": "vidmatte.types",
    "RecurrentState": "vidmatte.types",
    "EMPTY_STATE": "vidmatte.types",
    "load_model": "vidmatte.weights",
    "VidmatteError": "vidmatte.errors",
    "InputError": "vidmatte.errors",
    "OutputError": "vidmatte.errors",
    "WeightsError": "vidmatte.errors",
    "DeviceError": "vidmatte.errors",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidmatte' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return __all__
