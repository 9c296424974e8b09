"""The web page in a real headless Chromium (Playwright driving Debian's Chromium; no browser is
downloaded): pick a clip, wait for the matting, and find the page's checkerboard showing through
the result where its alpha is 0, in a screenshot of the result element.

Skipped without Chromium or Playwright's Python package, unless VIDMATTE_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from tests.io.test_browser_playback import _find_browser
from tests.server.conftest import wait_for
from vidmatte.io import read_webm_alpha_frames

#: The page's checkerboard (style.css: --check-a, --check-b), as BGR like OpenCV's screenshots.
CHECKER = ((255, 255, 255), (204, 204, 204))
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 180_000

# the result paused on its first frame, so the screenshot shows a frame the test can decode too
FIRST_FRAME = """async () => {
  const video = document.getElementById("result-media");
  if (video.readyState < 2) await new Promise((r) => video.addEventListener("loadeddata", r, {once: true}));
  video.pause();
  const seeked = new Promise((r) => video.addEventListener("seeked", r, {once: true}));
  video.currentTime = 0;
  await seeked;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  return [video.videoWidth, video.videoHeight, video.clientWidth, video.clientHeight];
}"""


@pytest.fixture(scope="module")
def chromium():
    required = os.environ.get("VIDMATTE_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail(
                "VIDMATTE_REQUIRE_BROWSER=1 but Playwright's Python package is missing (pip install playwright)"
            )
        pytest.skip("Playwright's Python package is not installed")
    executable = _find_browser()
    if executable is None:
        if required:
            pytest.fail("VIDMATTE_REQUIRE_BROWSER=1 but no Chromium found (apt-get install -y chromium)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def near(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int) -> bool:
    return bool(np.all(np.abs(pixel[:3].astype(int) - np.array(colour)) <= tolerance))


def open_page(chromium, server, problems: list[str]):
    page = chromium.new_page(viewport={"width": 1000, "height": 1000})
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(server.url + "/")
    return page


def screenshot(page, path) -> bytes:
    """The result element as shown, cut from the page at whole pixels (its box may lie at a
    fractional position, where an element screenshot would take an extra row)."""
    box = page.locator("#result-media").bounding_box()
    clip = {"x": round(box["x"]), "y": round(box["y"]), "width": round(box["width"]), "height": round(box["height"])}
    return page.screenshot(path=str(path), clip=clip)


def test_page_mattes_a_clip_and_shows_its_transparency(chromium, server, clip, tmp_path):
    problems: list[str] = []
    page = open_page(chromium, server, problems)
    try:
        page.set_input_files("#pick", str(clip))
        page.wait_for_selector("body[data-state=done]", timeout=TIMEOUT_MS)
        width, height, shown_w, shown_h = page.evaluate(FIRST_FRAME)
        shot = screenshot(page, tmp_path / "result.png")
        page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        assert page.locator("#download").get_attribute("download") == "clip_matte.webm"
    finally:
        page.close()
    assert problems == [], problems
    assert (width, height) == (shown_w, shown_h) == (96, 72)  # shown at its own size: pixels line up
    screen = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)
    assert screen.shape[:2] == (72, 96)

    with server.client() as client:
        job = next(j for j in client.get("/api/jobs").json()["jobs"] if j["name"] == "clip.mp4" and j["form"] == "webm")
        job = wait_for(client, job["id"])
        (tmp_path / "result.webm").write_bytes(client.get(job["links"]["result"]).content)
    first = next(iter(read_webm_alpha_frames(tmp_path / "result.webm")))  # RGBA
    alpha = first[..., 3]
    clear = cv2.erode((alpha <= 2).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # well inside alpha 0
    solid = cv2.erode((alpha >= 253).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert clear.sum() > 50 and solid.sum() > 50, (clear.sum(), solid.sum())

    # where the result is transparent the page's checkerboard shows, not the clip's own picture
    ys, xs = np.nonzero(clear)
    through = [screen[y, x] for y, x in zip(ys, xs)]
    assert np.mean([near(p, CHECKER[0], 12) or near(p, CHECKER[1], 12) for p in through]) > 0.95
    source = cv2.cvtColor(first[..., :3], cv2.COLOR_RGB2BGR)  # the foreground colour VP9 carries there
    differs = [not (near(source[y, x], CHECKER[0], 40) or near(source[y, x], CHECKER[1], 40)) for y, x in zip(ys, xs)]
    assert np.mean(differs) > 0.5  # so the check above could fail: the clip there is not checker-coloured
    # and where it is opaque the result's own colours show
    ys, xs = np.nonzero(solid)
    assert np.mean([near(screen[y, x], tuple(int(v) for v in source[y, x]), 40) for y, x in zip(ys, xs)]) > 0.9


def test_page_mattes_a_photo(chromium, server, photo, tmp_path):
    problems: list[str] = []
    page = open_page(chromium, server, problems)
    try:
        page.set_input_files("#pick", str(photo))
        page.wait_for_selector("body[data-state=done]", timeout=TIMEOUT_MS)
        page.wait_for_function("document.getElementById('result-media').complete")
        shot = screenshot(page, tmp_path / "photo.png")
        assert page.locator("#progress").is_hidden() and page.locator("#split").is_hidden()
        page.click("button[data-view=compare]")
        assert page.locator("#split").is_visible()
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    finally:
        page.close()
    assert problems == [], problems
    screen = cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_COLOR)
    assert screen.shape[:2] == (160, 120)
    corner = screen[:6, :6].reshape(-1, 3)  # the portrait's corner is background: alpha 0 there
    assert all(near(p, CHECKER[0], 12) or near(p, CHECKER[1], 12) for p in corner), corner[:4]
