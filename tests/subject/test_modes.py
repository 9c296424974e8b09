"""`--subject` in every mode, end to end on generated two-person clips: files (fused and general
renderers), a choice on a later frame, stills, live clicks, the command line's one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO
from tests.io.conftest import make_clip
from tests.subject.conftest import kept, point_on
from vidmatte import MatteOptions, matte_path


def _alphas(folder: Path) -> np.ndarray:
    """(T,H,W) float alpha of an RGBA PNG folder."""
    names = sorted(folder.iterdir())
    return np.stack([cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[..., 3] for p in names]).astype(np.float32) / 255


@pytest.fixture(scope="module")
def crossing_file(tmp_path_factory, crossing) -> Path:
    return make_clip(tmp_path_factory.mktemp("subject") / "crossing.mkv", images=crossing.frames, codec="ffv1")


def _apart(crossing) -> list[int]:
    """Frames where the two people do not overlap (their visible alphas are apart)."""
    return [t for t in range(len(crossing.frames)) if (crossing.visible[t, 0] * crossing.visible[t, 1]).sum() < 1]


@pytest.mark.parametrize("smooth", [None, 0.9], ids=["fused", "general"])
def test_the_chosen_one_is_kept_the_other_goes_through_the_crossing(crossing, crossing_file, tmp_path, smooth, matter):
    x, y = point_on(crossing, 0)
    options = MatteOptions(subjects=(f"{x},{y}",), smooth=smooth, warmup=0)
    out = matte_path(crossing_file, f"{tmp_path}/out/", options, engine=matter).output
    alpha = _alphas(out)
    assert alpha.shape == crossing.frames.shape[:3]
    for t in _apart(crossing):  # before and after they cross: no swap
        assert kept(alpha[t], crossing.visible[t, 0]) > 0.9
        assert kept(alpha[t], crossing.visible[t, 1]) < 0.05
    everyone = _alphas(
        matte_path(crossing_file, f"{tmp_path}/all/", MatteOptions(smooth=smooth, warmup=0), engine=matter).output
    )
    assert kept(everyone[0], crossing.visible[0, 1]) > 0.9  # without the option, both are there


def test_a_choice_on_a_later_frame_holds_from_the_first(crossing, crossing_file, tmp_path, matter, caplog):
    last = len(crossing.frames) - 1
    x, y = point_on(crossing, 0, last)  # on the last frame the chosen one stands where the other began
    options = MatteOptions(subjects=(f"{x},{y}",), subject_frame=last, warmup=0)
    with caplog.at_level("INFO", logger="vidmatte"):
        alpha = _alphas(matte_path(crossing_file, f"{tmp_path}/out/", options, engine=matter).output)
    for t in _apart(crossing):
        assert kept(alpha[t], crossing.visible[t, 0]) > 0.9 and kept(alpha[t], crossing.visible[t, 1]) < 0.05
    assert any(f"frame {last}" in r.getMessage() for r in caplog.records)  # the summary says what was chosen


def test_still_with_two_people(crossing, tmp_path, matter):
    photo = tmp_path / "two.png"
    cv2.imwrite(str(photo), cv2.cvtColor(crossing.frames[0], cv2.COLOR_RGB2BGR))
    x, y = point_on(crossing, 1)
    out = matte_path(photo, tmp_path / "one.png", MatteOptions(subjects=(f"{x},{y}",), passes=4), engine=matter)
    alpha = cv2.imread(str(out.output), cv2.IMREAD_UNCHANGED)[..., 3].astype(np.float32) / 255
    assert kept(alpha, crossing.visible[0, 1]) > 0.9 and kept(alpha, crossing.visible[0, 0]) < 0.05


class ClickingDisplay:
    """Clicks once, on frame `at`, at `where`; keeps each frame's picture."""

    def __init__(self, at: int, where: tuple[int, int]) -> None:
        self.at, self.where, self.frames = at, where, 0
        self.closed = False

    def show(self, bgr: np.ndarray) -> None:
        self.frames += 1

    def poll_key(self) -> int:
        return -1

    def poll_click(self) -> tuple[int, int] | None:
        return self.where if self.frames == self.at + 1 else None

    def close(self) -> None:
        self.closed = True


def test_live_click_chooses_a_person(crossing, crossing_file, matter):
    from vidmatte.io.camera import CameraSource
    from vidmatte.live import run_live

    display = ClickingDisplay(at=2, where=point_on(crossing, 0, 2))
    got: list[np.ndarray] = []
    stats = run_live(
        CameraSource(crossing_file, realtime=False),
        engine=matter.with_ratio(1.0),
        window=display,
        max_frames=8,
        on_frame=lambda f: got.append(f.rgba[..., 3].astype(np.float32) / 255),
    )
    assert stats.frames == 8
    assert kept(got[0], crossing.visible[0, 1]) > 0.9  # before the click: everyone
    for t in range(4, 8):  # after it (the click applies from the next frame the chain takes)
        assert kept(got[t], crossing.visible[t, 0]) > 0.9 and kept(got[t], crossing.visible[t, 1]) < 0.05
    assert any("person at" in line for line in stats.subject)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "vidmatte", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_errors_are_one_line(crossing, crossing_file, tmp_path):
    mask = tmp_path / "mask.png"
    cv2.imwrite(str(mask), np.full((10, 20), 255, np.uint8))
    cases = [
        (("--subject", "900,10"), "outside"),
        (("--subject", "2,2"), "no person at 2,2"),
        (("--subject-mask", str(mask)), "size"),
        (("--subject", "3;4"), "--subject"),
    ]
    for args, words in cases:
        result = _run(str(crossing_file), "-o", str(tmp_path / "x.webm"), *args, cwd=tmp_path)
        assert result.returncode != 0 and "Traceback" not in result.stderr
        lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("vidmatte: cpu")]
        assert len(lines) == 1 and words in lines[0], result.stderr
    assert not (tmp_path / "x.webm").exists()
