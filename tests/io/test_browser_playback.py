"""A real player: headless Chromium must show the page through the transparent half of our WebM.

The page draws the <video> onto a canvas (transparent, then magenta-filled) and posts the
pixels back to a local server run by the test. A control clip without alpha proves the
check can fail. Skipped when Chromium is missing, unless VIDMATTE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidmatte.io import open_writer

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
TIMEOUT_S = 60
MAGENTA = (255, 0, 255)
GREEN = (30, 200, 60)

PAGE = """<!doctype html>
<html><body style="margin:0;background:#ff00ff">
<script>
function report(result) {
  fetch("/result", {method: "POST", body: JSON.stringify(result)});
}
function sample(name) {
  return new Promise((resolve) => {
    const video = document.createElement("video");
    video.muted = true;
    video.preload = "auto";
    video.addEventListener("error", () =>
      resolve({name, error: "media error " + (video.error && video.error.code)}));
    video.addEventListener("loadeddata", () => { video.currentTime = 0.2; });
    video.addEventListener("seeked", () => {
      const canvas = document.createElement("canvas");
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      const g = canvas.getContext("2d", {willReadFrequently: true});
      const at = (fx) => Array.from(
        g.getImageData(Math.floor(canvas.width * fx), canvas.height >> 1, 1, 1).data);
      grab(0);
      // On a loaded machine "seeked" can come before the frame can be drawn (nothing at all
      // lands on the canvas); the right half is opaque in both clips, so wait until it shows.
      function grab(attempt) {
        g.clearRect(0, 0, canvas.width, canvas.height);
        g.drawImage(video, 0, 0);
        if (at(0.75)[3] === 0 && attempt < 40) { setTimeout(() => grab(attempt + 1), 50); return; }
        const bare = {left: at(0.25), right: at(0.75)};
        g.fillStyle = "#ff00ff";
        g.fillRect(0, 0, canvas.width, canvas.height);
        g.drawImage(video, 0, 0);
        resolve({name, width: video.videoWidth, height: video.videoHeight,
                 bare, onMagenta: {left: at(0.25), right: at(0.75)}});
      }
    }, {once: true});
    video.src = name;
    document.body.appendChild(video);
  });
}
Promise.all([sample("alpha.webm"), sample("opaque.webm")])
  .then((results) => report({results}))
  .catch((e) => report({error: String(e)}));
</script></body></html>
"""


def _find_browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def browser() -> str:
    found = _find_browser()
    if found is None:
        if os.environ.get("VIDMATTE_REQUIRE_BROWSER") == "1":
            pytest.fail("VIDMATTE_REQUIRE_BROWSER=1 but no Chromium found (apt-get install -y chromium)")
        pytest.skip(
            "Chromium is not installed (apt-get install -y chromium); set VIDMATTE_REQUIRE_BROWSER=1 to require it"
        )
    return found


def _write_clip(path: Path, alpha: bool) -> None:
    width, height = 128, 64
    image = np.zeros((height, width, 4), np.uint8)
    image[..., :3] = GREEN
    image[:, width // 2 :, 3] = 255  # left half transparent, right half opaque
    with open_writer(
        path, width=width, height=height, frame_rate=Fraction(25), time_base=Fraction(1, 25), alpha=alpha
    ) as writer:
        for index in range(25):
            writer.write(image if writer.carries_alpha else np.ascontiguousarray(image[..., :3]), index)


def _serve(folder: Path, results: queue.Queue) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(folder), **kwargs)

        def do_POST(self) -> None:  # the page's report
            length = int(self.headers.get("Content-Length", 0))
            results.put(self.rfile.read(length).decode())
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _play(browser: str, folder: Path, page: str = PAGE) -> dict:
    (folder / "index.html").write_text(page)
    results: queue.Queue = queue.Queue()
    server = _serve(folder, results)
    url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
    command = [
        browser,
        "--headless=new",
        "--no-sandbox",  # required as root; the page is our own
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--mute-audio",
        f"--user-data-dir={folder / 'profile'}",
        url,
    ]
    with open(folder / "chromium.log", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            try:
                return json.loads(results.get(timeout=1))
            except queue.Empty:
                if process.poll() is not None:
                    pytest.fail(f"Chromium exited with {process.returncode}: {_tail(folder / 'chromium.log')}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no answer from the page within {TIMEOUT_S} s: {_tail(folder / 'chromium.log')}")
    finally:
        server.shutdown()
        server.server_close()
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    """End Chromium and its helpers: they share the session (process group) we started it in."""
    group = process.pid
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()
            try:
                os.killpg(group, 0)  # anyone left in the group?
            except ProcessLookupError:
                process.wait(timeout=5)
                return
            time.sleep(0.05)
    process.wait(timeout=5)


def _tail(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines()
    return " | ".join(lines[-3:])


def _close(pixel, colour, tolerance=24) -> bool:
    return all(abs(int(a) - b) <= tolerance for a, b in zip(pixel[:3], colour))


def test_chromium_shows_the_page_through_transparent_pixels(tmp_path, browser):
    _write_clip(tmp_path / "alpha.webm", alpha=True)
    _write_clip(tmp_path / "opaque.webm", alpha=False)
    answer = _play(browser, tmp_path)
    assert "error" not in answer, answer
    alpha, opaque = answer["results"]
    assert "error" not in alpha and "error" not in opaque, answer
    assert (alpha["width"], alpha["height"]) == (128, 64)

    # Alpha clip: transparent left half lets magenta through, opaque right half is green.
    assert alpha["bare"]["left"][3] < 20, alpha
    assert alpha["bare"]["right"][3] > 235, alpha
    assert _close(alpha["onMagenta"]["left"], MAGENTA), alpha
    assert _close(alpha["onMagenta"]["right"], GREEN), alpha

    # Control: the same picture without alpha hides the page everywhere, so the check above
    # really measures transparency and not some quirk of the canvas.
    assert _close(opaque["onMagenta"]["left"], GREEN), opaque
    assert _close(opaque["onMagenta"]["right"], GREEN), opaque
