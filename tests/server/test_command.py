"""`vidmatte serve` as a second command beside the matting one: fast help, nothing heavy imported,
and a file that is literally named `serve` can still be matted."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.conftest import moving_clip
from tests.io.conftest import make_clip
from tests.server.conftest import REPO

ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_serve_help_is_fast_and_loads_nothing_heavy():
    code = (
        "import sys\n"
        "from vidmatte.cli import main\n"
        "main(['serve', '--help'])\n"
        "heavy = [m for m in ('torch', 'av', 'cv2', 'numpy', 'fastapi', 'uvicorn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "--api-key" in result.stdout and "VIDMATTE_API_KEY" in result.stdout and "--keep" in result.stdout
    assert time.monotonic() - start < 20
    plain = subprocess.run([sys.executable, "-m", "vidmatte", "--help"], capture_output=True, text=True, env=ENV)
    assert plain.returncode == 0 and "--output-type" in plain.stdout and "vidmatte serve" in plain.stdout


def test_a_file_named_serve_is_matted_as_dot_slash_serve(tmp_path, sample_image):
    make_clip(tmp_path / "serve.mp4", images=moving_clip(sample_image, 48, 64, 3)).rename(tmp_path / "serve")
    result = subprocess.run(
        [sys.executable, "-m", "vidmatte", "./serve", "-o", "out.webm", "-q"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env=ENV,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out.webm").stat().st_size > 0


def test_serve_errors_are_one_line(tmp_path):
    busy = subprocess.run(
        [sys.executable, "-m", "vidmatte", "serve", "--port", "70000"], capture_output=True, text=True, env=ENV
    )
    assert busy.returncode == 2 and "--port" in busy.stderr and "Traceback" not in busy.stderr
    size = subprocess.run(
        [sys.executable, "-m", "vidmatte", "serve", "--max-upload", "lots", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        env=ENV,
    )
    assert size.returncode == 2 and "not a size" in size.stderr
