"""The package as users get it: build the wheel, install it into a fresh virtual environment outside
the checkout, and matte the bundled sample with the installed command (weights from the wheel's
data files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import av
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _run(*args: str | Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIDMATTE_WEIGHTS")}
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_wheel_installs_and_mattes_the_sample(tmp_path):
    dist = tmp_path / "dist"
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, REPO, cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("vidmatte-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr
    # the dependencies (torch, av, ...) come from this environment's site-packages, appended after the
    # new environment's own: vidmatte itself can only come from the wheel
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip()
    )
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(REPO / "samples" / "astronaut_pan.mp4", work)
    where = _run(
        python,
        "-c",
        "import vidmatte, vidmatte.weights as w; print(vidmatte.__file__); print(w.default_weights_path())",
        cwd=work,
    )
    assert where.returncode == 0, where.stderr
    module, weights = (Path(line) for line in where.stdout.split())
    assert env_dir in module.parents and env_dir in weights.parents  # not the checkout's copies
    assert weights.is_file() and weights.parent == env_dir / "share" / "vidmatte" / "weights"
    assert (module.parent / "server" / "static" / "index.html").is_file()  # the page of `vidmatte serve`

    result = _run(env_dir / "bin" / "vidmatte", "astronaut_pan.mp4", "--downsample-ratio", "0.25", "-q", cwd=work)
    assert result.returncode == 0, result.stderr
    with av.open(str(work / "astronaut_pan.mp4")) as source, av.open(str(work / "astronaut_pan_matte.webm")) as out:
        assert out.streams.video[0].codec_context.name == "vp9"
        assert sum(1 for _ in out.decode(video=0)) == sum(1 for _ in source.decode(video=0))
