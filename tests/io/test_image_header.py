"""Oversized pictures and frames are refused from their headers, before decoding (issue #18, item 2)."""

from __future__ import annotations

import struct
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.conftest import SAMPLE_IMAGE
from vidmatte.errors import InputError
from vidmatte.io import VideoReader, image_header, video_reader
from vidmatte.io import images as imagefile
from vidmatte.io.image_header import image_size, read_image_size

WIDTH, HEIGHT = 37, 23  # odd and unequal: a swapped or rounded field shows


def _picture(channels: int = 3, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (HEIGHT, WIDTH, channels)).astype(dtype)
    return image[..., 0] if channels == 1 else image


def _cv(suffix: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, buffer = cv2.imencode(suffix, image, list(params))
    assert ok
    return buffer.tobytes()


def _jpeg2000(kind: str) -> bytes:
    codec = av.CodecContext.create("jpeg2000", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = WIDTH, HEIGHT, "rgb24", Fraction(1, 25)
    codec.options = {"format": kind}
    frame = av.VideoFrame.from_ndarray(_picture(), format="rgb24")
    return b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))


def _tiff_big_endian() -> bytes:
    """A greyscale TIFF in Motorola byte order (OpenCV only writes Intel order), one strip."""
    pixels = _picture(1).tobytes()
    entries = [
        (256, 3, WIDTH),
        (257, 4, HEIGHT),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 0),
        (277, 3, 1),
        (278, 4, HEIGHT),
        (279, 4, len(pixels)),
    ]
    strip = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack(">H", len(entries))
    for tag, kind, value in entries:
        value = strip if tag == 273 else value
        field = struct.pack(">HI", value, 0)[:4] if kind == 3 else struct.pack(">I", value)
        ifd += struct.pack(">HHI", tag, kind, 1) + field
    return b"MM\x00*" + struct.pack(">I", 8) + ifd + struct.pack(">I", 0) + pixels


def _bigtiff() -> bytes:
    """A greyscale BigTIFF (8-byte offsets), one strip."""
    pixels = _picture(1).tobytes()
    entries = [
        (256, 16, WIDTH),
        (257, 4, HEIGHT),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 16, 0),
        (277, 3, 1),
        (278, 4, HEIGHT),
        (279, 16, len(pixels)),
    ]
    strip = 16 + 8 + 20 * len(entries) + 8
    ifd = struct.pack("<Q", len(entries))
    for tag, kind, value in entries:
        value = strip if tag == 273 else value
        ifd += struct.pack("<HHQQ", tag, kind, 1, value)
    return b"II+\x00" + struct.pack("<HHQ", 8, 0, 16) + ifd + struct.pack("<Q", 0) + pixels


def _bmp_top_down() -> bytes:
    data = bytearray(_cv(".bmp", _picture()))
    data[22:26] = struct.pack("<i", -HEIGHT)  # rows stored top-down: a negative height
    return bytes(data)


def _jpeg_with_exif() -> bytes:
    """A JPEG with an APP1 EXIF segment (orientation 6, and a 40 kB filler) before its frame header."""
    tiff = b"II*\x00" + struct.pack("<IH", 8, 2) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0)
    tiff += struct.pack("<HHII", 0x010E, 2, 40000, 38) + struct.pack("<I", 0) + b"x" * 40000
    app1 = b"Exif\x00\x00" + tiff
    data = _cv(".jpg", _picture())
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


def _pnm_with_comment() -> bytes:
    return b"P5\n# made by hand\n" + f"{WIDTH}\n# really\n {HEIGHT}\n255\n".encode() + _picture(1).tobytes()


FILES = {
    "png": lambda: _cv(".png", _picture()),
    "png 16-bit grey+alpha": lambda: _cv(".png", _picture(4, np.uint16)),
    "jpeg baseline": lambda: _cv(".jpg", _picture()),
    "jpeg progressive": lambda: _cv(".jpg", _picture(), (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
    "jpeg with exif": _jpeg_with_exif,
    "webp lossless": lambda: _cv(".webp", _picture(), (cv2.IMWRITE_WEBP_QUALITY, 101)),
    "webp lossy": lambda: _cv(".webp", _picture(), (cv2.IMWRITE_WEBP_QUALITY, 80)),
    "webp lossy+alpha (VP8X)": lambda: _cv(".webp", _picture(4), (cv2.IMWRITE_WEBP_QUALITY, 80)),
    "bmp": lambda: _cv(".bmp", _picture()),
    "bmp top-down": _bmp_top_down,
    "tiff little-endian": lambda: _cv(".tif", _picture()),
    "tiff big-endian": _tiff_big_endian,
    "bigtiff": _bigtiff,
    "pbm": lambda: _cv(".pbm", _picture(1)),
    "pgm with comments": _pnm_with_comment,
    "ppm": lambda: _cv(".ppm", _picture()),
    "pam": lambda: _cv(".pam", _picture()),
    "pfm": lambda: _cv(".pfm", _picture().astype(np.float32) / 255),
    "jpeg 2000 (jp2)": lambda: _jpeg2000("jp2"),
    "jpeg 2000 codestream": lambda: _jpeg2000("j2k"),
    "gif": lambda: _cv(".gif", _picture()),
    "sun raster": lambda: _cv(".ras", _picture()),
    "radiance hdr": lambda: _cv(".hdr", _picture().astype(np.float32) / 255),
    "avif": lambda: _cv(".avif", _picture()),
}


@pytest.mark.parametrize("kind", FILES)
def test_header_size_is_the_decoded_size(kind):
    data = FILES[kind]()
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded is not None, "the test file itself must be a real, decodable picture"
    assert image_size(data) == (decoded.shape[1], decoded.shape[0])
    assert image_size(np.frombuffer(data, np.uint8)) == image_size(data)  # what read_image passes


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8\xff\xe0\x00",
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b"II*\x00\xff\xff\xff\x7f",
        b"P6\n# no size",
        b"hello world",
        bytes(range(256)),
    ],
)
def test_unreadable_headers_are_left_to_the_decoder(data):
    assert image_size(data) is None


@pytest.mark.parametrize("kind", FILES)
def test_every_format_is_refused_before_decoding(tmp_path, monkeypatch, kind):
    path = tmp_path / "picture.img"
    path.write_bytes(FILES[kind]())
    monkeypatch.setattr(imagefile, "MAX_PIXELS", WIDTH * HEIGHT - 1)
    monkeypatch.setattr(imagefile, "_decode", _must_not_decode)
    with pytest.raises(InputError) as excinfo:
        imagefile.read_image(path)
    assert f"{WIDTH}x{HEIGHT}" in str(excinfo.value) and "\n" not in str(excinfo.value)


def _must_not_decode(data):
    raise AssertionError("the picture was decoded before its size was checked")


def _png_bomb(path: Path, side: int = 30000) -> Path:
    """A real 30000x30000 1-bit PNG (all black): ~110 kB that decode to 900 MB of 8-bit grey."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\x00" * (1 + side // 8)  # filter byte, then 1 bit a pixel
    rows = row * 1000
    idat = b"".join(packer.compress(rows) for _ in range(side // 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


def _jpeg_claiming(width: int, height: int) -> bytes:
    """The bundled photo with its frame header (SOF) rewritten to claim another size."""
    data = bytearray(SAMPLE_IMAGE.read_bytes())
    i = 2
    while True:
        marker, (length,) = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])
        if marker in (0xC0, 0xC1, 0xC2):
            data[i + 5 : i + 9] = struct.pack(">HH", height, width)
            return bytes(data)
        i += 2 + length


def test_a_png_bomb_is_refused_at_once(tmp_path, monkeypatch):
    path = _png_bomb(tmp_path / "bomb.png")
    assert path.stat().st_size < 1_000_000 and read_image_size(path) == (30000, 30000)
    monkeypatch.setattr(imagefile, "_decode", _must_not_decode)
    start = time.monotonic()
    with pytest.raises(InputError) as excinfo:
        imagefile.read_image(path)
    assert time.monotonic() - start < 2  # decoding it takes tens of seconds
    assert "30000x30000" in str(excinfo.value) and "downscale" in str(excinfo.value)


def test_a_jpeg_claiming_30000_squared_is_refused_at_once(tmp_path, monkeypatch):
    path = tmp_path / "huge.jpg"
    path.write_bytes(_jpeg_claiming(30000, 30000))
    monkeypatch.setattr(imagefile, "_decode", _must_not_decode)
    with pytest.raises(InputError) as excinfo:
        imagefile.read_image(path)
    assert "30000x30000" in str(excinfo.value)


def _video_claiming(path: Path, width: int, height: int) -> Path:
    """Motion-JPEG in Matroska whose track header and JPEG frame headers both claim `width`x`height`."""
    frame = _jpeg_claiming(width, height)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuvj420p"
        for index in range(3):
            packet = av.Packet(frame)
            packet.pts = packet.dts = index
            packet.time_base = Fraction(1, 25)
            packet.stream = stream
            container.mux(packet)
    return path


def test_an_oversized_video_frame_is_refused_from_the_stream_header(tmp_path, monkeypatch):
    path = _video_claiming(tmp_path / "huge.mkv", 12000, 12000)
    with av.open(str(path)) as probe:  # the header really says so
        assert (probe.streams.video[0].codec_context.width, probe.streams.video[0].codec_context.height) == (
            12000,
            12000,
        )

    def must_not_decode(self):
        raise AssertionError("a frame was decoded before the size was checked")
        yield

    monkeypatch.setattr(VideoReader, "_decode", must_not_decode)
    with pytest.raises(InputError) as excinfo:
        VideoReader(path)
    message = str(excinfo.value)
    assert "12000x12000" in message and "downscale" in message and "\n" not in message


def test_frames_up_to_the_limit_still_open(tmp_path, media):
    # the limit is documented as holding 8K; a normal clip is of course read
    assert video_reader.MAX_FRAME_PIXELS >= 8192 * 4320
    with VideoReader(media.make_clip(tmp_path / "a.mp4", frames=2)) as reader:
        assert len(list(reader)) == 2


def test_header_parsing_reads_only_the_start_of_a_file(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(_cv(".png", _picture()) + b"\x00" * (3 * image_header.HEADER_BYTES))
    assert read_image_size(path) == (WIDTH, HEIGHT)
    assert read_image_size(tmp_path / "missing.png") is None
