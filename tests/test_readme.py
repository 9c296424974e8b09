"""Every code block of README.md runs as written, so the README cannot drift from the code.

Shell blocks run command by command (`vidmatte ...` as the installed command, in a folder holding
the files the examples name); Python blocks run in order in one interpreter, from a copy of the
repository's samples. The two setup commands of the first screen are CI's own steps: `.ci/run`
installs the package exactly so and runs the test command, so here the install prefix is taken as
done and the test command is not run again from inside the tests.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import REPO, moving_clip
from tests.io.conftest import make_clip

pytestmark = pytest.mark.slow

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
SETUP = ("pip install ", "python -m pytest")


def shell_commands() -> list[str]:
    """Every command of the shell blocks, comments and CI's setup steps left out."""
    commands = []
    for language, body in BLOCKS:
        if language not in ("bash", "sh", "shell"):
            continue
        for line in body.splitlines():
            line = line.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            commands.extend(part.strip() for part in line.split("&&") if not part.strip().startswith(SETUP))
    return commands


def test_the_readme_has_runnable_blocks():
    assert any(language == "python" for language, _ in BLOCKS)
    commands = shell_commands()
    assert "vidmatte samples/astronaut_pan.mp4" in commands  # the first screen's main job
    assert all(c.startswith("vidmatte ") for c in commands), commands


@pytest.fixture(scope="module")
def examples(tmp_path_factory, sample_rgb) -> Path:
    """A folder with every file the usage examples name (small, so they run quickly)."""
    root = tmp_path_factory.mktemp("readme")
    shutil.copytree(REPO / "samples", root / "samples")
    frames = moving_clip(sample_rgb, 96, 128, 6)
    make_clip(root / "clip.mp4", images=frames, audio="aac")
    make_clip(root / "talk.mp4", images=frames)
    make_clip(root / "city.mp4", width=64, height=48, frames=3)
    photo = cv2.cvtColor(cv2.resize(sample_rgb, (128, 128), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(root / "photo.jpg"), photo)
    cv2.imwrite(str(root / "beach.jpg"), np.full((60, 80, 3), (200, 160, 40), np.uint8))
    (root / "shoot").mkdir()
    cv2.imwrite(str(root / "shoot" / "a.jpg"), photo)
    make_clip(root / "shoot" / "b.mp4", images=frames[:3])
    (root / "numbered").mkdir()
    for i, rgb in enumerate(frames[:3]):
        cv2.imwrite(str(root / "numbered" / f"f{i * 5}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return root


@pytest.mark.parametrize("command", shell_commands())
def test_shell_example(examples, command):
    args = shlex.split(command)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "vidmatte", *args[1:]],
        cwd=examples,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{command}: {result.stderr}"
    assert "Traceback" not in result.stderr


def test_python_blocks_in_order(examples):
    code = "\n".join(body for language, body in BLOCKS if language == "python")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=examples, env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr
