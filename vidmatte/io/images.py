"""Still image files: read any common picture upright as RGB, write outputs atomically.

Which suffixes are images and what each output format can hold is decided in `formats`.

Reading goes through OpenCV with `IMREAD_UNCHANGED`, which keeps 16-bit samples and the alpha
channel but ignores the EXIF orientation tag; the tag is read separately and applied here.
OpenCV already expands palette PNGs, converts grey+alpha to BGRA and Adobe CMYK JPEGs to BGR.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from vidmatte.errors import InputError, OutputError
from vidmatte.io.atomic import Staging, check_target, write_error
from vidmatte.io.formats import image_format
from vidmatte.io.image_header import image_size, read_image_size
from vidmatte.io.native_stderr import call_capturing_stderr, replay

#: Largest picture matted in one piece; the working set is ~40 bytes a pixel (3.6 GB here).
MAX_PIXELS = 90_000_000


@dataclass
class Picture:
    """A decoded still, upright (EXIF orientation applied).

    rgb: `(H,W,3)` uint8 or uint16; where the file had transparency it is flattened over white,
    so the network sees what a viewer shows. alpha: the file's own alpha `(H,W)` (same dtype)
    or None. depth: 8 or 16 bits per sample.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None
    depth: int

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def peak(self) -> int:
        """The sample value meaning 1.0: 255 or 65535."""
        return 255 if self.depth == 8 else 65535

    def rgb8(self) -> np.ndarray:
        """The picture as uint8 RGB (what composites and backgrounds use)."""
        if self.depth == 8:
            return self.rgb
        return (self.rgb.astype(np.uint32) * 255 + 32767) // 65535  # rounded 16 -> 8 bits


def read_image(path: str | Path) -> Picture:
    """Decode an image file; raises InputError (one line) when it is missing, damaged or too large."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if path.is_dir():
        raise InputError(f"{path} is a folder, not an image")
    declared = read_image_size(path)  # the first bytes tell most formats' size: refuse before reading it all
    if declared is not None:
        _check_pixels(path, *declared)
    try:
        data = np.fromfile(path, np.uint8)
    except OSError as error:
        raise InputError(f"cannot read {path}: {error.strerror or error}") from None
    if data.size == 0:
        raise InputError(f"{path} is empty")
    if declared is None:
        declared = image_size(data.data)  # a TIFF's directory may follow its pixels
        if declared is not None:  # refuse a picture too large before decoding it, not after
            _check_pixels(path, *declared)
    (image, exif), messages = call_capturing_stderr(lambda: _decode_or_none(data))
    damage = [_clean(line) for line in messages if _DAMAGE.search(line)]
    if image is None or image.size == 0:
        if damage:
            raise InputError(f"{path} is damaged or truncated ({damage[0]}); re-export or re-download it")
        if declared is not None:  # a readable header, then nothing decodable: cut short, most often
            raise InputError(
                f"{path} is damaged or truncated: its header is that of a {declared[0]}x{declared[1]} "
                "picture but the picture data cannot be decoded; re-export or re-download it"
            )
        raise InputError(f"{path} is not an image vidmatte can read, or it is damaged")
    if damage:
        # the decoder filled in what it could not read (libjpeg: grey): a picture, but not the one in the file
        raise InputError(f"{path} is damaged ({damage[0]}); re-export or re-download it")
    replay(messages)
    height, width = image.shape[:2]
    _check_pixels(path, width, height)
    image = _orient(image, exif_orientation(exif) if exif else 1)
    return _to_picture(image, path)


def _check_pixels(path: Path, width: int, height: int) -> None:
    if height * width > MAX_PIXELS:
        raise InputError(
            f"{path} is {width}x{height} ({height * width / 1e6:.0f} MP); stills up to "
            f"{MAX_PIXELS / 1e6:.0f} MP fit in memory; downscale it first"
        )


# Lines decoders print for damaged data (everything else they print is passed on untouched):
# libjpeg's corrupt-data warnings (not its complaint about an ICC profile, which is only
# metadata), libpng's errors, and libtiff's errors as OpenCV relays them.
_DAMAGE = re.compile(
    r"Corrupt JPEG data(?!: bad ICC)|Premature end of JPEG file|Inconsistent progression sequence"
    r"|libpng error|TIFF_Error"
)
# OpenCV's log prefix: "[ERROR:0@0.151] global grfmt_tiff.cpp:117 TIFF_Error "
_LOG_PREFIX = re.compile(r"^\[\s*\w+:[^\]]*\]\s+\S+\s+\S+:\d+\s+\S+\s+")


def _clean(line: str) -> str:
    """A decoder's line as a reason inside our one-line message."""
    return _LOG_PREFIX.sub("", line).strip().rstrip(".")


def _decode_or_none(data: np.ndarray) -> tuple[np.ndarray | None, bytes | None]:
    try:
        return _decode(data)
    except cv2.error:
        return None, None


def _decode(data: np.ndarray) -> tuple[np.ndarray | None, bytes | None]:
    """(image as stored, EXIF block or None)."""
    if hasattr(cv2, "imdecodeWithMetadata"):  # OpenCV >= 4.12
        image, kinds, blocks = cv2.imdecodeWithMetadata(data, cv2.IMREAD_UNCHANGED)
        exif = next((np.asarray(b).tobytes() for k, b in zip(kinds, blocks) if k == cv2.IMAGE_METADATA_EXIF), None)
        return image, exif
    return cv2.imdecode(data, cv2.IMREAD_UNCHANGED), _jpeg_exif(data.tobytes())


def _jpeg_exif(data: bytes) -> bytes | None:
    """The EXIF (TIFF) block of a JPEG's APP1 segment, for OpenCV builds without metadata reading."""
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xE1 and data[i + 4 : i + 10] == b"Exif\x00\x00":
            return data[i + 10 : i + 2 + length]
        if marker == 0xDA:  # start of scan: no more metadata segments
            return None
        i += 2 + length
    return None


def exif_orientation(exif: bytes) -> int:
    """The Orientation tag (1-8) of an EXIF block (a TIFF header and IFD0); 1 when absent or unreadable."""
    try:
        order = {b"II": "<", b"MM": ">"}[exif[:2]]
        (ifd,) = struct.unpack(order + "I", exif[4:8])
        (count,) = struct.unpack(order + "H", exif[ifd : ifd + 2])
        for n in range(count):
            entry = exif[ifd + 2 + 12 * n : ifd + 14 + 12 * n]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag == 0x0112 and kind == 3:  # SHORT
                (value,) = struct.unpack(order + "H", entry[8:10])
                return value if 1 <= value <= 8 else 1
    except (KeyError, struct.error):
        pass
    return 1


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation so the picture is upright (as viewers show it)."""
    if orientation in (5, 6, 7, 8):
        image = image.swapaxes(0, 1)  # transpose; then a flip turns it into the rotation
    flip_rows = orientation in (3, 4, 7, 8)
    flip_cols = orientation in (2, 3, 6, 7)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def _to_picture(image: np.ndarray, path: Path) -> Picture:
    if image.dtype == np.uint8:
        depth = 8
    elif image.dtype == np.uint16:
        depth = 16
    elif image.dtype in (np.float32, np.float64):  # float TIFF: keep the precision as 16 bits
        image = np.round(np.clip(np.nan_to_num(image), 0, 1) * 65535).astype(np.uint16)
        depth = 16
    else:
        raise InputError(f"{path} has {image.dtype} samples; use 8- or 16-bit images")
    if image.ndim == 2:
        image = image[..., None]
    channels = image.shape[2]
    if channels == 1:
        return Picture(np.repeat(image, 3, axis=2), None, depth)
    if channels == 3:
        return Picture(np.ascontiguousarray(image[..., ::-1]), None, depth)
    if channels == 4:
        rgb, alpha = image[..., 2::-1], image[..., 3]
        if alpha.min() == alpha.max() == (255 if depth == 8 else 65535):
            return Picture(np.ascontiguousarray(rgb), None, depth)  # opaque: no alpha to carry
        peak = 255 if depth == 8 else 65535
        # flatten over white: the network sees the picture as a viewer shows it
        a = alpha[..., None].astype(np.float32) / peak
        flat = rgb.astype(np.float32) * a + peak * (1 - a)
        return Picture(np.round(flat).astype(image.dtype), np.ascontiguousarray(alpha), depth)
    raise InputError(f"{path} has {channels} channels; use grey, RGB or RGBA images")


def write_image(path: str | Path, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Write `image` (RGB/RGBA/grey, uint8 or uint16) to `path` atomically.

    The file is encoded in memory, written under a temporary name beside `path` and renamed:
    a crash never leaves a half-written picture, and an existing output is only replaced by a
    complete new one. PNG: lossless, 16-bit kept; TIFF: the same without alpha; WebP: lossless,
    8-bit; JPEG: quality 95.
    """
    path = Path(path)
    form = image_format(path)
    if image.dtype == np.uint16 and not form.deep:
        image = ((image.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    if max(image.shape[:2]) > form.max_side:
        raise OutputError(f"{form.suffix} pictures are at most {form.max_side} px a side; write .png instead")
    if image.ndim == 3 and image.shape[2] == 4 and not form.alpha:
        raise OutputError(f"{path.suffix} cannot carry alpha; write .png or .webp")
    check_target(path, folder=False, overwrite=overwrite)  # before the (slow) encoding
    ok, encoded = cv2.imencode(form.suffix, _to_bgr(image), _encode_params(form.suffix))
    if not ok:
        raise OutputError(f"could not encode {path}")
    staging = Staging(path, folder=False, overwrite=overwrite)
    try:
        _store(encoded.tobytes(), staging.temp)
    except OSError as error:
        staging.discard()
        raise write_error(path, error) from error
    except BaseException:
        staging.discard()
        raise
    staging.commit()
    return path


def _store(data: bytes, temp: Path) -> None:
    with open(temp, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())  # on disk before the rename makes it visible


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    return cv2.cvtColor(image, cv2.COLOR_RGB2BGR)


def _encode_params(suffix: str) -> list[int]:
    if suffix == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, 101]  # above 100: lossless
    if suffix in (".jpg", ".jpeg"):
        return [cv2.IMWRITE_JPEG_QUALITY, 95]
    if suffix == ".png":
        return [cv2.IMWRITE_PNG_COMPRESSION, 3]
    return []
