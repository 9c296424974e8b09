"""Every format decision in one place: which files are inputs of which kind, which output form a
path asks for, which output types a form can hold, default output names, and encoder settings.

Nothing here imports a codec library, so the command line can check its arguments cheaply.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vidmatte.cpus import available_cpus
from vidmatte.errors import InputError, OutputError

#: What a run writes: foreground colour + alpha, the alpha as grey, the foreground over black,
#: or a composite over a background.
OUTPUT_TYPES = ("rgba", "alpha", "foreground", "composite")

# ---- inputs ---------------------------------------------------------------------------------

#: Suffixes read as still images (OpenCV decoders present in the opencv-python wheels).
IMAGE_SUFFIXES = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".jpe",
        ".jfif",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".pbm",
        ".pgm",
        ".ppm",
        ".pnm",
        ".jp2",
    }
)
#: Suffixes treated as videos inside a folder (anything FFmpeg reads; GIFs are clips). A single
#: file given by name is read as a video whatever its suffix, unless it is an image.
VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".ts",
        ".mts",
        ".m2ts",
        ".3gp",
        ".ogv",
        ".gif",
    }
)


def is_image_path(path: str | Path) -> bool:
    """True for a file name that vidmatte reads as a still image (by its suffix)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_video_path(path: str | Path) -> bool:
    """True for a file name that vidmatte treats as a video inside a folder (by its suffix)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def input_kind(path: str | Path, *, sequence: bool = False) -> str:
    """ "video", "image", "folder" or "sequence" for an existing input path; InputError otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if sequence:
        if not path.is_dir():
            raise InputError(f"--sequence needs a folder of numbered frames; {path} is a file")
        return "sequence"
    if path.is_dir():
        return "folder"
    return "image" if is_image_path(path) else "video"


# ---- outputs --------------------------------------------------------------------------------

#: Video output: extension -> (form, FFmpeg muxer). A folder (`name/`) is a PNG sequence.
_VIDEO_OUTPUTS = {
    ".webm": ("webm", "webm"),
    ".mov": ("prores", "mov"),
    ".mp4": ("h264", "mp4"),
    ".mkv": ("h264", "matroska"),
}
#: Video output forms whose container carries an alpha channel.
ALPHA_FORMS = frozenset({"webm", "prores", "png"})


@dataclass(frozen=True)
class ImageFormat:
    """A still output format: whether it can carry alpha and 16-bit samples, and its size limit."""

    suffix: str
    alpha: bool
    deep: bool
    max_side: int


_IMAGE_OUTPUTS = {
    ".png": ImageFormat(".png", alpha=True, deep=True, max_side=1 << 31),
    ".webp": ImageFormat(".webp", alpha=True, deep=False, max_side=16383),
    # OpenCV writes a 4th TIFF channel without the ExtraSamples tag that marks it as alpha, so
    # editors may not see transparency: TIFF gets opaque outputs (composite, masks) only.
    ".tif": ImageFormat(".tif", alpha=False, deep=True, max_side=1 << 31),
    ".tiff": ImageFormat(".tiff", alpha=False, deep=True, max_side=1 << 31),
    ".jpg": ImageFormat(".jpg", alpha=False, deep=False, max_side=65535),
    ".jpeg": ImageFormat(".jpeg", alpha=False, deep=False, max_side=65535),
    ".bmp": ImageFormat(".bmp", alpha=False, deep=False, max_side=1 << 31),
}


def is_folder_path(path: str | Path) -> bool:
    """A path names a folder output when it ends in a separator or is an existing directory."""
    text = os.fspath(path)
    return text.endswith(("/", os.sep)) or Path(text).is_dir()


def output_form(path: str | Path) -> str:
    """The video output form for `path`: "webm", "prores", "png" (a folder) or "h264".

    Raises OutputError for an extension vidmatte cannot write.
    """
    if is_folder_path(path):
        return "png"
    return _video_lookup(path)[0]


def muxer_name(path: str | Path) -> str | None:
    """FFmpeg's muxer for a file output, None for a PNG folder."""
    return None if is_folder_path(path) else _video_lookup(path)[1]


def _video_lookup(path: str | Path) -> tuple[str, str]:
    suffix = Path(path).suffix.lower()
    try:
        return _VIDEO_OUTPUTS[suffix]
    except KeyError:
        what = f"extension '{suffix}'" if suffix else "no extension"
        raise OutputError(
            f"{path} has {what}; use .webm or .mov (with alpha), .mp4 or .mkv, or a folder ending in / for PNG frames"
        ) from None


def image_format(path: str | Path) -> ImageFormat:
    """The still format a path asks for; OutputError for a suffix vidmatte does not write."""
    suffix = Path(path).suffix.lower()
    try:
        return _IMAGE_OUTPUTS[suffix]
    except KeyError:
        what = f"extension '{suffix}'" if suffix else "no extension"
        raise OutputError(
            f"{path} has {what}; for images write .png or .webp (with alpha), or .jpg / .tif (composite or mask)"
        ) from None


def resolve_output_type(target: str | Path, output_type: str | None, *, still: bool = False) -> str:
    """The output type for a target: rgba where its form carries alpha, else composite; refuses
    rgba into a form that cannot hold it. `still` picks the image table (photo outputs) over the
    video one."""
    if still:
        fmt = image_format(target)
        carries_alpha, what = fmt.alpha, f"{fmt.suffix} cannot carry alpha; write .png or .webp"
    else:
        form = output_form(target)
        carries_alpha = form in ALPHA_FORMS
        what = f"{form} video cannot carry alpha; write .webm, .mov or a folder/"
    if output_type is None:
        return "rgba" if carries_alpha else "composite"
    if output_type not in OUTPUT_TYPES:
        raise OutputError(f"unknown output type {output_type!r}; use one of {', '.join(OUTPUT_TYPES)}")
    if output_type == "rgba" and not carries_alpha:
        raise OutputError(f"{what}, or use --output-type composite")
    return output_type


def _named(path: Path) -> Path:
    return path if path.name else path.resolve()  # `.` has no name of its own


def default_output(source: str | Path, kind: str) -> Path:
    """Where a run writes when no output is given, beside the input: `clip.mp4` ->
    `clip_matte.webm`, `photo.jpg` -> `photo_matte.png`, `shoot/` -> `shoot_matte/`, a frame
    sequence `frames/` -> `frames_matte.webm`."""
    source = _named(Path(source))
    if kind == "video":
        return source.with_name(f"{source.stem}_matte.webm")
    if kind == "image":
        return source.with_name(f"{source.stem}_matte.png")
    if kind == "folder":
        return source.with_name(f"{source.name}_matte")
    if kind == "sequence":
        return source.with_name(f"{source.name}_matte.webm")
    raise ValueError(f"no default output for {kind!r} inputs")


# ---- encoders -------------------------------------------------------------------------------

# Default and allowed `quality` (a CRF: lower is better, bigger file) per form.
_CRF = {"webm": (30, 0, 63), "h264": (18, 0, 51)}


@dataclass(frozen=True)
class EncoderSettings:
    """How to encode one video stream: FFmpeg encoder, pixel format and private options."""

    codec: str
    pix_fmt: str
    options: dict[str, str]
    even_size: bool = False
    """The encoder takes even widths and heights only: odd frames are padded by one row/column."""


def takes_quality(form: str) -> bool:
    """Whether `quality` (a CRF) means anything for a form."""
    return form in _CRF


def encoder_settings(form: str, *, width: int, height: int, alpha: bool, quality: int | None) -> EncoderSettings:
    """Encoder, pixel format and options for a form; raises OutputError for a bad `quality`."""
    threads = str(min(available_cpus(), 16))
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
