"""A read-only file system is reported as such, not as "permission denied" (issue #18, item 9)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.io.conftest import make_clip
from vidmatte.errors import OutputError
from vidmatte.io import atomic

REPO = Path(__file__).resolve().parents[2]


def _refuse_writes(monkeypatch, *, read_only: bool) -> None:
    monkeypatch.setattr(atomic.os, "access", lambda path, mode: False)
    real_statvfs = os.statvfs
    flag = os.ST_RDONLY if read_only else 0
    monkeypatch.setattr(atomic.os, "statvfs", lambda path: SimpleNamespace(f_flag=real_statvfs(path).f_flag | flag))


@pytest.mark.parametrize("folder", [False, True])
def test_read_only_mount_is_named(tmp_path, monkeypatch, folder):
    _refuse_writes(monkeypatch, read_only=True)
    with pytest.raises(OutputError) as excinfo:
        atomic.check_target(tmp_path / "out", folder=folder, overwrite=False)
    assert "read-only" in str(excinfo.value) and "permission" not in str(excinfo.value)


def test_permissions_are_still_permissions(tmp_path, monkeypatch):
    _refuse_writes(monkeypatch, read_only=False)
    with pytest.raises(OutputError, match="permission denied"):
        atomic.check_target(tmp_path / "out.webm", folder=False, overwrite=False)


def _unshare_works() -> bool:
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _unshare_works(), reason="needs unshare with user namespaces (Linux) to mount a read-only folder"
)
def test_a_real_read_only_mount_from_the_command_line(tmp_path):
    make_clip(tmp_path / "clip.mp4", frames=2)
    mount = tmp_path / "ro"
    mount.mkdir()
    # a private mount namespace: the read-only tmpfs exists for this one process only
    script = (
        f"mount -t tmpfs -o ro,size=1m tmpfs {mount} && exec {sys.executable} -m vidmatte clip.mp4 -o {mount}/out.webm"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "read-only" in lines[0] and "Traceback" not in result.stderr, result.stderr
