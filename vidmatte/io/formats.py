"""Which output form a path asks for, and the encoder settings each form uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidmatte.errors import OutputError

# Extension -> (form, FFmpeg muxer name).
_BY_EXTENSION = {
    ".webm": ("webm", "webm"),
    ".mov": ("prores", "mov"),
    ".mp4": ("h264", "mp4"),
    ".mkv": ("h264", "matroska"),
}
ALPHA_FORMS = frozenset({"webm", "prores", "png"})

# Default and allowed `quality` (a CRF: lower is better, bigger file) per form.
_CRF = {"webm": (30, 0, 63), "h264": (18, 0, 51)}


def is_folder_path(path: str | Path) -> bool:
    """A path names a folder output when it ends in a separator or is an existing directory."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def output_form(path: str | Path) -> str:
    """The output form for `path`: "webm", "prores", "png" (a folder) or "h264".

    Raises OutputError for an extension vidmatte cannot write.
    """
    if is_folder_path(path):
        return "png"
    return _lookup(path)[0]


def muxer_name(path: str | Path) -> str | None:
    """FFmpeg's muxer for a file output, None for a PNG folder."""
    return None if is_folder_path(path) else _lookup(path)[1]


def _lookup(path: str | Path) -> tuple[str, str]:
    suffix = Path(path).suffix.lower()
    try:
        return _BY_EXTENSION[suffix]
    except KeyError:
        what = f"extension '{suffix}'" if suffix else "no extension"
        raise OutputError(
            f"{path} has {what}; use .webm or .mov (with alpha), .mp4 or .mkv, or a folder ending in / for PNG frames"
        ) from None


@dataclass(frozen=True)
class EncoderSettings:
    """How to encode one video stream: FFmpeg encoder, pixel format and private options."""

    codec: str
    pix_fmt: str
    options: dict[str, str]
    even_size: bool = False
    """The encoder takes even widths and heights only: odd frames are padded by one row/column."""


class OutputNotice(UserWarning):
    """The output differs from the input in a way the user should hear about (shown by the CLI as one line)."""


def encoder_settings(form: str, *, width: int, height: int, alpha: bool, quality: int | None) -> EncoderSettings:
    """Encoder, pixel format and options for a form; raises OutputError for a bad `quality`."""
    threads = str(min(os.cpu_count() or 1, 16))
    if form == "webm":
        crf = _check_quality(form, quality)
        return EncoderSettings(
            codec="libvpx-vp9",
            # libvpx encodes alpha as a second 4:2:0 plane and accepts odd sizes (chroma rounds up).
            pix_fmt="yuva420p" if alpha else "yuv420p",
            options={
                "crf": str(crf),
                "b:v": "0",  # constant quality, no bitrate cap
                # Real-time mode at speed 8 measured ~4x faster than "good" (speed 5) at 720p
                # on 2 cores, with alpha edges nearly as clean; files are larger. Matting is
                # offline, but the encoder should not dominate the run time.
                "deadline": "realtime",
                "cpu-used": "8",
                "row-mt": "1",
                "threads": threads,
                # Alt-ref frames are not supported together with an alpha plane.
                "auto-alt-ref": "0",
                "lag-in-frames": "0",
            },
        )
    if form == "prores":
        _check_quality(form, quality)
        return EncoderSettings(
            codec="prores_ks",
            pix_fmt="yuva444p10le" if alpha else "yuv444p10le",
            # profile 4 = ProRes 4444; "apl0" as vendor makes Apple software accept the stream.
            options={"profile": "4", "vendor": "apl0", "threads": threads},
        )
    if form == "h264":
        crf = _check_quality(form, quality)
        # 4:2:0 (High profile) is what every browser, phone and TV decodes; 4:4:4 (High 4:4:4
        # Predictive) is not. H.264 4:2:0 cannot code an odd size, not even through the SPS
        # cropping, whose unit is 2 pixels there: odd frames are padded (`even_size`).
        return EncoderSettings(
            codec="libx264",
            pix_fmt="yuv420p",
            options={"crf": str(crf), "preset": "veryfast", "threads": threads},
            even_size=True,
        )
    raise ValueError(f"no encoder for form {form!r}")


def _check_quality(form: str, quality: int | None) -> int:
    if form not in _CRF:
        return 0  # lossless-ish forms: quality has no meaning, accepted and ignored
    default, low, high = _CRF[form]
    if quality is None:
        return default
    if not low <= quality <= high:
        raise OutputError(f"quality {quality} is out of range for {form} output; use {low}-{high} (lower is better)")
    return int(quality)
