"""Picture sizes read from file headers, so an oversized image is refused before it is decoded.

A few hundred bytes of compressed PNG can declare 30000x30000 pixels; decoding them first
would take tens of seconds and gigabytes. Each parser here reads only the fields its format's
specification puts at the start of the file (PNG IHDR, JPEG SOFn, WebP VP8/VP8L/VP8X, BMP
info header, TIFF and BigTIFF IFD0, PNM/PAM/PFM, JPEG 2000, GIF, Sun raster, Radiance HDR,
AVIF `ispe`). The format is told by content, as OpenCV's decoders do, not by the file name.
None means "not recognised or not readable here": the decoder then judges the file.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

#: Bytes `read_image_size` reads from a file: a JPEG's SOF follows its EXIF, ICC and XMP segments,
#: which together rarely pass a few hundred kB.
HEADER_BYTES = 1 << 20

Size = tuple[int, int]


def image_size(data: bytes | bytearray | memoryview) -> Size | None:
    """(width, height) that an image file's header declares, or None when it cannot be told.

    `data` is the file, or its first bytes (any buffer: bytes, a uint8 array's `.data`); a TIFF
    whose directory comes after the pixels needs the whole file.
    """
    view = memoryview(data).cast("B")
    head = bytes(view[:64])
    for magic, parse in _PARSERS:
        if magic(head):
            try:
                size = parse(view)
            except (struct.error, IndexError, ValueError):
                return None
            if size is None or size[0] <= 0 or size[1] <= 0:
                return None
            return size
    return None


def read_image_size(path: str | Path) -> Size | None:
    """`image_size` of a file, reading only its first `HEADER_BYTES`; None when unreadable."""
    try:
        with open(path, "rb") as file:
            return image_size(file.read(HEADER_BYTES))
    except OSError:
        return None


# --- one parser per format; each gets the file as a memoryview and may raise struct.error ------

# Text headers (PNM, PAM, Radiance) are short; this much of the file is searched for them.
_TEXT_HEADER = 4096


def _png(data: memoryview) -> Size | None:
    # signature, then the IHDR chunk, which must come first: length, type, width, height (big-endian)
    if bytes(data[12:16]) != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


# SOFn markers that carry a frame header: all of C0-CF except DHT (C4), JPG (C8) and DAC (CC)
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_NO_LENGTH = frozenset(range(0xD0, 0xD8)) | {0x01}  # RSTn and TEM stand alone


def _jpeg(data: memoryview) -> Size | None:
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            return None  # not at a marker: damaged, let the decoder say so
        while i < len(data) and data[i] == 0xFF:  # fill bytes may precede a marker
            i += 1
        marker = data[i]
        i += 1
        if marker in _JPEG_NO_LENGTH:
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack(">H", data[i : i + 2])
        if marker in _JPEG_SOF:
            height, width = struct.unpack(">HH", data[i + 3 : i + 7])
            # height 0: defined later by a DNL segment; the decoder will have to tell
            return (width, height) if height else None
        if length < 2:
            return None
        i += length
    return None


def _webp(data: memoryview) -> Size | None:
    kind, chunk = bytes(data[12:16]), data[20:]
    if kind == b"VP8X":  # extended: canvas size, 24-bit little-endian, minus one
        width = int.from_bytes(bytes(chunk[4:7]), "little") + 1
        height = int.from_bytes(bytes(chunk[7:10]), "little") + 1
        return width, height
    if kind == b"VP8L":  # lossless: signature 0x2f, then 14-bit width-1 and height-1
        if chunk[0] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", chunk[1:5])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8 ":  # lossy: 3-byte frame tag, start code, 14-bit sizes (2 bits of scaling)
        if bytes(chunk[3:6]) != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", chunk[6:10])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _bmp(data: memoryview) -> Size | None:
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack("<HH", data[18:22])
    if header < 16:
        return None
    width, height = struct.unpack("<ii", data[18:26])
    return width, abs(height)  # a negative height means rows stored top-down


def _tiff(data: memoryview) -> Size | None:
    order = "<" if bytes(data[:2]) == b"II" else ">"
    (version,) = struct.unpack(order + "H", data[2:4])
    if version == 42:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        count_format, entry_size, value_at = "H", 12, 8
    elif version == 43:  # BigTIFF: 8-byte offsets and counts
        (ifd,) = struct.unpack(order + "Q", data[8:16])
        count_format, entry_size, value_at = "Q", 20, 12
    else:
        return None
    count_size = struct.calcsize(count_format)
    (count,) = struct.unpack(order + count_format, data[ifd : ifd + count_size])
    found: dict[int, int] = {}
    for n in range(count):
        at = ifd + count_size + n * entry_size
        tag, kind = struct.unpack(order + "HH", data[at : at + 4])
        if tag not in (256, 257):  # ImageWidth, ImageLength
            continue
        value = data[at + value_at : at + entry_size]
        if kind == 3:  # SHORT, left-justified in the value field
            (found[tag],) = struct.unpack(order + "H", value[:2])
        elif kind == 4:  # LONG
            (found[tag],) = struct.unpack(order + "I", value[:4])
        elif kind == 16:  # LONG8 (BigTIFF)
            (found[tag],) = struct.unpack(order + "Q", value[:8])
        if len(found) == 2:
            return found[256], found[257]
    return None


_PNM_TOKEN = re.compile(rb"(?:\s|#[^\n\r]*[\n\r])*(\d+)")


def _pnm(data: memoryview) -> Size | None:
    # P1-P6 and PFM (Pf/PF): magic, then width and height as decimal tokens, with comments allowed
    text = bytes(data[:_TEXT_HEADER])
    width = _PNM_TOKEN.match(text, 2)
    if width is None:
        return None
    height = _PNM_TOKEN.match(text, width.end())
    if height is None:
        return None
    return int(width.group(1)), int(height.group(1))


def _pam(data: memoryview) -> Size | None:
    text = bytes(data[:_TEXT_HEADER])
    end = text.find(b"ENDHDR")
    header = text[: end if end >= 0 else None]
    width = re.search(rb"^WIDTH\s+(\d+)", header, re.MULTILINE)
    height = re.search(rb"^HEIGHT\s+(\d+)", header, re.MULTILINE)
    if width is None or height is None:
        return None
    return int(width.group(1)), int(height.group(1))


def _j2k_codestream(data: memoryview) -> Size | None:
    # SOC, then SIZ: length, capabilities, reference grid size, then the image offset in it
    if bytes(data[2:4]) != b"\xff\x51":
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", data[8:24])
    return xsiz - xosiz, ysiz - yosiz


def _jp2(data: memoryview) -> Size | None:
    header = _find_box(data, 0, len(data), b"jp2h")
    if header is None:
        return None
    ihdr = _find_box(data, header[0], header[1], b"ihdr")
    if ihdr is None:
        return None
    height, width = struct.unpack(">II", data[ihdr[0] : ihdr[0] + 8])
    return width, height


def _gif(data: memoryview) -> Size | None:
    return struct.unpack("<HH", data[6:10])  # logical screen size


def _sun_raster(data: memoryview) -> Size | None:
    return struct.unpack(">II", data[4:12])


_HDR_SIZE = re.compile(rb"\n[-+]Y (\d+) [-+]X (\d+)")
_HDR_SIZE_TURNED = re.compile(rb"\n[-+]X (\d+) [-+]Y (\d+)")


def _radiance(data: memoryview) -> Size | None:
    text = bytes(data[:_TEXT_HEADER])
    if (match := _HDR_SIZE.search(text)) is not None:
        return int(match.group(2)), int(match.group(1))
    if (match := _HDR_SIZE_TURNED.search(text)) is not None:  # scanlines run vertically
        return int(match.group(2)), int(match.group(1))
    return None


def _avif(data: memoryview) -> Size | None:
    # ISO BMFF: meta (a full box) > iprp > ipco > ispe (a full box: width, height). A grid image
    # has one ispe per tile and one for the whole; the largest is what gets decoded.
    meta = _find_box(data, 0, len(data), b"meta")
    if meta is None:
        return None
    iprp = _find_box(data, meta[0] + 4, meta[1], b"iprp")
    ipco = _find_box(data, iprp[0], iprp[1], b"ipco") if iprp else None
    if ipco is None:
        return None
    sizes = []
    start = ipco[0]
    while (ispe := _find_box(data, start, ipco[1], b"ispe")) is not None:
        sizes.append(struct.unpack(">II", data[ispe[0] + 4 : ispe[0] + 12]))
        start = ispe[1]
    return max(sizes, key=lambda size: size[0] * size[1]) if sizes else None


def _find_box(data: memoryview, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    """(start, end) of the payload of the first box of type `kind` in data[start:end]."""
    end = min(end, len(data))
    at = start
    while at + 8 <= end:
        size, box = struct.unpack(">I4s", data[at : at + 8])
        box = bytes(box)
        payload = at + 8
        if size == 1:  # 64-bit size follows the type
            (size,) = struct.unpack(">Q", data[at + 8 : at + 16])
            payload = at + 16
        elif size == 0:  # to the end of the file
            size = end - at
        if size < payload - at:
            return None
        if box == kind:
            return payload, min(at + size, end)
        at += size
    return None


# (does the file start like this format, its parser)
_PARSERS: tuple[tuple[Callable[[bytes], bool], Callable[[memoryview], Size | None]], ...] = (
    (lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"), _png),
    (lambda d: d.startswith(b"\xff\xd8"), _jpeg),
    (lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp),
    (lambda d: d.startswith(b"BM"), _bmp),
    (lambda d: d[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), _tiff),
    (lambda d: d[:1] == b"P" and d[1:2] in b"123456" and len(d) > 2, _pnm),
    (lambda d: d.startswith(b"P7"), _pam),
    (lambda d: d[:2] in (b"PF", b"Pf"), _pnm),
    (lambda d: d.startswith(b"\xff\x4f\xff\x51"), _j2k_codestream),
    (lambda d: d.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n"), _jp2),
    (lambda d: d[:6] in (b"GIF87a", b"GIF89a"), _gif),
    (lambda d: d.startswith(b"\x59\xa6\x6a\x95"), _sun_raster),
    (lambda d: d.startswith((b"#?RADIANCE", b"#?RGBE")), _radiance),
    (lambda d: d[4:8] == b"ftyp" and d[8:12] in (b"avif", b"avis"), _avif),
)
