"""A damaged picture is an error, not a half-grey success; good pictures still pass (issue #18, item 3)."""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from tests.conftest import SAMPLE_IMAGE
from tests.image_files import cmyk_jpeg, jpeg_with_orientation
from vidmatte.errors import InputError
from vidmatte.io.native_stderr import call_capturing_stderr
from vidmatte.stills import read_image


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photograph (the bundled portrait) at 640x400, BGR."""
    return cv2.resize(cv2.imread(str(SAMPLE_IMAGE)), (640, 400), interpolation=cv2.INTER_AREA)


def _encode(suffix: str, image: np.ndarray, *params: int) -> bytes:
    ok, buffer = cv2.imencode(suffix, image, list(params))
    assert ok
    return buffer.tobytes()


def _data_start(data: bytes) -> int:
    """Where the compressed picture begins: a JPEG's first scan, else past the first chunk headers."""
    return data.index(b"\xff\xda") + 20 if data.startswith(b"\xff\xd8") else 64


def garbled(data: bytes, at: float = 0.4, length: int = 200, seed: int = 1) -> bytes:
    """`length` random bytes written over the compressed picture data, `at` of the way through it."""
    start = _data_start(data)
    position = start + int((len(data) - start) * at)
    noise = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8).tobytes()
    return data[:position] + noise + data[position + length :]


def _judge(tmp_path, data: bytes, name: str = "photo.jpg") -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as excinfo:
        read_image(path)
    message = str(excinfo.value)
    assert "\n" not in message and name in message
    return message


def test_a_garbled_jpeg_is_an_error_not_a_grey_picture(tmp_path, capfd):
    data = garbled(SAMPLE_IMAGE.read_bytes())
    # what the user met: OpenCV returns a picture, grey from the damage down, and exits happy
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and (np.abs(image[-100:].astype(int) - 128) <= 1).mean() > 0.9
    capfd.readouterr()
    message = _judge(tmp_path, data)
    assert "damaged" in message and "Corrupt JPEG data" in message and "re-download" in message
    assert capfd.readouterr().err == ""  # libjpeg's own warning is the reason above, not a second line


@pytest.mark.parametrize("at, length", [(0.1, 16), (0.5, 200), (0.8, 2000), (0.3, 5000)])
def test_jpegs_garbled_anywhere_are_refused(tmp_path, photo, at, length):
    for data in (
        _encode(".jpg", photo, cv2.IMWRITE_JPEG_QUALITY, 90),
        _encode(".jpg", photo, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
    ):
        assert "damaged" in _judge(tmp_path, garbled(data, at, length))


@pytest.mark.parametrize("keep", [0.3, 0.7, 0.99])
def test_a_truncated_jpeg_is_refused(tmp_path, keep):
    data = SAMPLE_IMAGE.read_bytes()
    message = _judge(tmp_path, data[: int(len(data) * keep)])
    assert "truncated" in message and "512x512" in message


def test_damaged_png_webp_and_tiff_are_refused_in_one_line(tmp_path, photo, capfd):
    png = _encode(".png", photo)
    cases = {
        "cut.png": png[: len(png) // 2],
        "garbled.png": garbled(png, 0.5),  # the IDAT chunk's CRC no longer matches
        "cut.webp": _encode(".webp", photo, cv2.IMWRITE_WEBP_QUALITY, 80)[:5000],
        "cut.tif": _encode(".tif", photo)[:300_000],
        "garbled.tif": garbled(_encode(".tif", photo), 0.3),  # LZW: libtiff decodes on, but says so
    }
    for name, data in cases.items():
        capfd.readouterr()
        message = _judge(tmp_path, data, name)
        assert "damaged" in message or "not an image" in message, message
        assert capfd.readouterr().err == "", name  # libpng/libtiff said nothing on the terminal themselves
    assert "libpng" in _judge(tmp_path, cases["cut.png"], "cut.png")


def _ffmpeg_jpeg(image: np.ndarray, pix_fmt: str) -> bytes:
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = image.shape[1], image.shape[0], pix_fmt, Fraction(1, 25)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[..., ::-1]), format="rgb24").reformat(format=pix_fmt)
    return b"".join(bytes(p) for p in codec.encode(frame) + codec.encode(None))


def _good_jpegs(photo: np.ndarray) -> dict[str, bytes]:
    small = cv2.resize(photo, (80, 48), interpolation=cv2.INTER_AREA)
    return {
        "bundled": SAMPLE_IMAGE.read_bytes(),
        "baseline q30": _encode(".jpg", photo, cv2.IMWRITE_JPEG_QUALITY, 30),
        "progressive": _encode(".jpg", photo, cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
        "optimised": _encode(".jpg", photo, cv2.IMWRITE_JPEG_OPTIMIZE, 1),
        "restart markers": _encode(".jpg", photo, cv2.IMWRITE_JPEG_RST_INTERVAL, 4),
        "progressive + restarts": _encode(
            ".jpg", photo, cv2.IMWRITE_JPEG_PROGRESSIVE, 1, cv2.IMWRITE_JPEG_RST_INTERVAL, 8
        ),
        "4:4:4": _encode(".jpg", photo, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
        "4:1:1": _encode(".jpg", photo, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_411),
        "greyscale": _encode(".jpg", cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)),
        "odd size": _encode(".jpg", photo[:333, :517]),
        "exif orientation": jpeg_with_orientation(photo[..., ::-1], 6),
        "adobe cmyk": cmyk_jpeg(np.dstack([small, small[..., :1]])),
        "ffmpeg 4:2:0": _ffmpeg_jpeg(photo, "yuvj420p"),
        "ffmpeg 4:4:4": _ffmpeg_jpeg(photo, "yuvj444p"),
        "junk after the end": SAMPLE_IMAGE.read_bytes() + b"\x00" * 64 + b"trailing bytes some cameras add",
    }


def test_good_jpegs_still_pass(tmp_path, photo, capfd):
    for kind, data in _good_jpegs(photo).items():
        path = tmp_path / "good.jpg"
        path.write_bytes(data)
        picture = read_image(path)
        assert picture.width > 0, kind
    assert capfd.readouterr().err == ""


def _png_with_bad_text_crc(image: np.ndarray) -> bytes:
    """A good PNG plus a tEXt chunk with a wrong CRC: libpng warns and skips the chunk, the picture is intact."""
    data = _encode(".png", image)
    body = b"Comment\x00hello"
    text = struct.pack(">I", len(body)) + b"tEXt" + body + struct.pack(">I", zlib.crc32(b"tEXt" + body) ^ 1)
    end_of_ihdr = 8 + 25
    return data[:end_of_ihdr] + text + data[end_of_ihdr:]


def test_a_decoder_warning_about_metadata_is_passed_on_not_judged(tmp_path, photo, capfd):
    path = tmp_path / "note.png"
    path.write_bytes(_png_with_bad_text_crc(photo))
    capfd.readouterr()
    picture = read_image(path)
    assert picture.rgb.shape == (400, 640, 3)
    assert "tEXt" in capfd.readouterr().err  # libpng's warning, on the terminal as before


def test_capture_restores_stderr_and_passes_exceptions(capfd):
    import os

    def noisy() -> int:
        os.write(2, b"from C\n")
        return 7

    assert call_capturing_stderr(noisy) == (7, ["from C"])
    with pytest.raises(ZeroDivisionError):
        call_capturing_stderr(lambda: 1 / 0)
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"
