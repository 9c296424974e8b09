"""Writers for image files OpenCV cannot produce, made byte by byte for tests: palette PNGs,
JPEGs with an EXIF orientation tag, and Adobe CMYK JPEGs."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def palette_png(indices: np.ndarray, palette: np.ndarray, transparency: np.ndarray | None = None) -> bytes:
    """An 8-bit palette PNG (colour type 3): `indices` (H,W) uint8 into `palette` (N,3) RGB;
    `transparency` (N,) uint8 alpha per entry (a tRNS chunk) or None."""
    height, width = indices.shape
    raw = b"".join(b"\x00" + indices[y].astype(np.uint8).tobytes() for y in range(height))  # filter 0 rows
    out = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0))
    out += _png_chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if transparency is not None:
        out += _png_chunk(b"tRNS", transparency.astype(np.uint8).tobytes())
    return out + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b"")


def exif_block(orientation: int, big_endian: bool = False) -> bytes:
    """A minimal EXIF (TIFF) block: IFD0 with one Orientation entry."""
    e = ">" if big_endian else "<"
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    return (
        head
        + struct.pack(e + "H", 1)
        + struct.pack(e + "HHIHH", 0x0112, 3, 1, orientation, 0)
        + struct.pack(e + "I", 0)
    )


def jpeg_with_orientation(rgb: np.ndarray, orientation: int, big_endian: bool = False) -> bytes:
    """A JPEG of `rgb` (stored as given) whose APP1 EXIF says to show it with `orientation`."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    data = encoded.tobytes()
    payload = b"Exif\x00\x00" + exif_block(orientation, big_endian)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def cmyk_jpeg(blocks: np.ndarray) -> bytes:
    """A baseline 4-component JPEG with the Adobe marker, as Photoshop writes CMYK.

    `blocks` (by, bx, 4) uint8 holds one stored CMYK value per 8x8 block (Adobe stores ink
    inverted: 255 = no ink). Each block is flat, so only DC coefficients are coded, with a
    quantiser of 1: decoding gives the stored values exactly.
    """
    by, bx, _ = blocks.shape

    def segment(marker: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload

    out = b"\xff\xd8"
    out += segment(0xEE, b"Adobe" + struct.pack(">HHHB", 100, 0, 0, 0))  # transform 0: plain CMYK
    out += segment(0xDB, b"\x00" + bytes([1] * 64))
    out += segment(
        0xC0, struct.pack(">BHHB", 8, by * 8, bx * 8, 4) + b"".join(bytes([i + 1, 0x11, 0]) for i in range(4))
    )
    # DC table: categories 0..11, all 4-bit codes (0000..1011); AC table: only EOB, code "0"
    out += segment(0xC4, b"\x00" + bytes([0, 0, 0, 12] + [0] * 12) + bytes(range(12)))
    out += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\x00")
    out += segment(0xDA, b"\x04" + b"".join(bytes([i + 1, 0x00]) for i in range(4)) + b"\x00\x3f\x00")
    bits: list[str] = []
    previous = [0, 0, 0, 0]
    for row in range(by):
        for col in range(bx):
            for c in range(4):
                dc = 8 * (int(blocks[row, col, c]) - 128)  # DCT DC of a flat block
                diff, previous[c] = dc - previous[c], dc
                size = abs(diff).bit_length()
                bits.append(format(size, "04b"))
                if size:
                    bits.append(format(diff if diff > 0 else diff + (1 << size) - 1, f"0{size}b"))
                bits.append("0")  # EOB
    stream = "".join(bits)
    stream += "1" * (-len(stream) % 8)
    data = bytes(int(stream[i : i + 8], 2) for i in range(0, len(stream), 8)).replace(b"\xff", b"\xff\x00")
    return out + data + b"\xff\xd9"
