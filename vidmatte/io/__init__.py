"""Sources and sinks: read videos, frame sequences, cameras and images; write mattes as video files,
PNG folders and pictures; every format table in `formats`.

Names are imported on first use, so `vidmatte.io.formats` can be read without loading FFmpeg.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "VideoFrame": "vidmatte.types",
    "ClipInfo": "vidmatte.types",
    "VideoInfo": "vidmatte.io.video_reader",
    "VideoReader": "vidmatte.io.video_reader",
    "VideoWriter": "vidmatte.io.video_writer",
    "open_writer": "vidmatte.io.video_writer",
    "output_form": "vidmatte.io.formats",
    "read_webm_alpha_frames": "vidmatte.io.webm_alpha",
    "FrameSource": "vidmatte.io.sources",
    "ImageSequenceSource": "vidmatte.io.sources",
    "open_source": "vidmatte.io.sources",
    "CameraSource": "vidmatte.io.camera",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vidmatte.io' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
