"""H.264 outputs are 4:2:0 High profile at every size, so every player decodes them (issue #18, item 4).

H.264 cannot store an odd size in 4:2:0 (its cropping unit there is 2 pixels), so an odd frame
is stored one column/row larger, the last one repeated, and a notice says so.
"""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.io.test_browser_playback import _play, browser  # noqa: F401  (a fixture)
from vidmatte.io import open_writer
from vidmatte.options import log


def _picture(width: int, height: int) -> np.ndarray:
    """A grey gradient with a white last column and a black last row (4:2:0 keeps light exactly where
    it is, colour only per 2x2 pixels), so the repeated edge can be recognised."""
    y, x = np.mgrid[0:height, 0:width]
    grey = 40 + (x * 120 // max(width - 1, 1) + y * 40 // max(height - 1, 1))
    image = np.repeat(grey[..., None], 3, axis=2)
    image[:, -1] = 250
    image[-1, :] = 5
    return image.astype(np.uint8)


class _Notes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _write(path: Path, image: np.ndarray, frames: int = 3) -> list[str]:
    """Write `frames` copies of `image`; the warnings the `vidmatte` logger gave meanwhile."""
    height, width = image.shape[:2]
    notes = _Notes()
    log.addHandler(notes)
    try:
        with open_writer(
            path, width=width, height=height, frame_rate=Fraction(25), time_base=Fraction(1, 25), alpha=False
        ) as writer:
            for index in range(frames):
                writer.write(image, index)
    finally:
        log.removeHandler(notes)
    return notes.messages


def _stream(path: Path) -> tuple[str, str, int, int, np.ndarray]:
    """(profile, pixel format, width, height, first frame as RGB) as FFmpeg reads the file back."""
    with av.open(str(path)) as container:
        codec = container.streams.video[0].codec_context
        frame = next(container.decode(video=0))
        return codec.profile, codec.pix_fmt, frame.width, frame.height, frame.to_ndarray(format="rgb24")


@pytest.mark.parametrize("name", ["out.mp4", "out.mkv"])
@pytest.mark.parametrize("size", [(641, 481), (33, 16), (16, 17), (1, 1)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_odd_sizes_are_420_high_profile_one_pixel_larger(tmp_path, name, size):
    width, height = size
    image = _picture(width, height)
    notices = _write(tmp_path / name, image)
    profile, pix_fmt, stored_w, stored_h, decoded = _stream(tmp_path / name)
    assert pix_fmt == "yuv420p" and profile == "High"  # not "High 4:4:4 Predictive"
    assert (stored_w, stored_h) == (width + width % 2, height + height % 2)
    # the picture itself is where it was, the added column/row repeats the last one
    assert np.abs(decoded[:height, :width].astype(int) - image).mean() < 6
    if width % 2:
        assert np.abs(decoded[:height, -1].astype(int) - decoded[:height, -2]).mean() < 12
    if height % 2:
        assert np.abs(decoded[-1, :width].astype(int) - decoded[-2, :width]).mean() < 12
    (message,) = notices
    assert f"{width}x{height}" in message and f"{stored_w}x{stored_h}" in message and "\n" not in message


def test_even_sizes_are_exact_and_quiet(tmp_path):
    notices = _write(tmp_path / "even.mp4", _picture(64, 48))
    profile, pix_fmt, width, height, _ = _stream(tmp_path / "even.mp4")
    assert (profile, pix_fmt, width, height) == ("High", "yuv420p", 64, 48)
    assert notices == []


def test_alpha_forms_keep_odd_sizes_exactly(tmp_path):
    for name in ("out.webm", "out.mov"):
        assert _write(tmp_path / name, _picture(33, 17)) == []
        with av.open(str(tmp_path / name)) as container:
            frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (33, 17)


PAGE = """<!doctype html><html><body><script>
const v = document.createElement("video");
v.muted = true; v.preload = "auto";
const report = (r) => fetch("/result", {method: "POST", body: JSON.stringify(r)});
v.addEventListener("error", () => report({error: "media error " + (v.error && v.error.code)}));
v.addEventListener("loadeddata", () => { v.currentTime = 0.04; });
v.addEventListener("seeked", () => {
  const c = document.createElement("canvas"); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext("2d"); g.drawImage(v, 0, 0);
  const at = (x, y) => Array.from(g.getImageData(x, y, 1, 1).data);
  report({width: v.videoWidth, height: v.videoHeight, edge: at(c.width - 2, 5), inside: at(5, 5)});
}, {once: true});
v.src = "odd.mp4"; document.body.appendChild(v);
</script></body></html>"""


def test_chromium_plays_an_odd_sized_mp4(tmp_path, browser):  # noqa: F811
    image = _picture(161, 91)
    _write(tmp_path / "odd.mp4", image, frames=25)
    answer = _play(browser, tmp_path, PAGE)
    assert "error" not in answer, json.dumps(answer)
    assert (answer["width"], answer["height"]) == (162, 92)
    assert np.abs(np.array(answer["edge"][:3]) - image[5, -1]).max() < 40  # the last (white) column
    assert np.abs(np.array(answer["inside"][:3]) - image[5, 5]).max() < 40
