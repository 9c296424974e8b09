"""SIGTERM/SIGHUP as an exception, and the sweep of temporaries left by killed processes (issue #18, item 1)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vidmatte.io import atomic, open_writer
from vidmatte.signals import TERMINATION_SIGNALS, Terminated, install_termination_handlers, raise_on_termination


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.fixture
def sleeper():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield child.pid
    child.kill()
    child.wait()


def _partial(folder: Path, target: str, pid: int, token: str = "0badc0de", suffix: str | None = None) -> Path:
    suffix = Path(target).suffix if suffix is None else suffix
    path = folder / f".{target}.partial-{pid}-{token}{suffix}"
    path.write_bytes(b"half a movie")
    return path


@pytest.mark.parametrize("signum", TERMINATION_SIGNALS)
def test_signal_raises_terminated_with_the_shell_exit_code(signum):
    # not ignored, whatever the test run inherited (`nohup` ignores SIGHUP; the next test covers that)
    inherited = signal.signal(signum, signal.SIG_DFL)
    try:
        with pytest.raises(Terminated) as excinfo, raise_on_termination():
            os.kill(os.getpid(), signum)
            for _ in range(1000):  # the handler runs between bytecodes of the main thread
                pass
        assert excinfo.value.signum == signum
        assert excinfo.value.exit_code == 128 + signum
        assert signal.Signals(signum).name in str(excinfo.value)
        assert signal.getsignal(signum) == signal.SIG_DFL  # restored
    finally:
        signal.signal(signum, inherited)


def test_an_ignored_signal_stays_ignored():
    before = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under `nohup`
    try:
        with raise_on_termination():
            assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            for _ in range(1000):
                pass
        assert signal.getsignal(signal.SIGHUP) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, before)


def test_a_second_signal_does_not_cut_the_cleanup_short():
    cleaned = False
    with pytest.raises(Terminated), raise_on_termination():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # ignored while the first is handled
            for _ in range(1000):
                pass
            cleaned = True
    assert cleaned


def test_terminated_passes_through_except_exception():
    assert not issubclass(Terminated, Exception)  # per-file `except Exception` in folders must not swallow it


def test_handlers_are_installed_from_the_main_thread_only():
    errors: list[BaseException] = []

    def work() -> None:
        try:
            install_termination_handlers()
        except RuntimeError as error:
            errors.append(error)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert len(errors) == 1


def test_terminated_in_a_write_leaves_nothing(tmp_path):
    with pytest.raises(Terminated), raise_on_termination():
        with open_writer(
            tmp_path / "out.mov", width=16, height=16, frame_rate=Fraction(25), time_base=Fraction(1, 25), alpha=True
        ) as writer:
            writer.write(np.zeros((16, 16, 4), np.uint8), 0)
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):
                pass
    assert os.listdir(tmp_path) == []


def test_partial_names_carry_the_process_id(tmp_path):
    staging = atomic.Staging(tmp_path / "out.mp4", folder=False, overwrite=False)
    try:
        assert staging.temp.name.startswith(f".out.mp4.partial-{os.getpid()}-")
        assert staging.temp.suffix == ".mp4"
    finally:
        staging.discard()
    assert os.listdir(tmp_path) == []


def test_a_new_write_removes_stale_partials_of_its_target(tmp_path):
    stale = _partial(tmp_path, "out.mov", _dead_pid())
    staging = atomic.Staging(tmp_path / "out.mov", folder=False, overwrite=False)
    staging.discard()
    assert not stale.exists()
    assert os.listdir(tmp_path) == []


def test_the_sweep_never_touches_anything_else(tmp_path, sleeper):
    dead = _dead_pid()
    keep = [
        _partial(tmp_path, "out.mov", sleeper),  # a live writer
        _partial(tmp_path, "other.mov", dead),  # another target
        _partial(tmp_path, "out.mov.bak", dead, suffix=".mov"),  # a name that only starts alike
        tmp_path / ".out.mov.partial-0badc0de.mov",  # the old naming: no process id to judge by
        tmp_path / "out.mov.partial-123-0badc0de.mov",  # not hidden: not ours
    ]
    for path in keep[3:]:
        path.write_bytes(b"x")
    foreign = _partial(tmp_path, "out.mov", dead, token="f0f0f0f0")
    os.chown(foreign, 54321, 54321)  # another user's (the tests may run as root)
    keep.append(foreign)
    if os.geteuid() != 0:
        keep.pop()
    link_target = tmp_path / "precious"
    link_target.write_bytes(b"precious")
    link = tmp_path / f".out.mov.partial-{dead}-11111111.mov"
    link.symlink_to(link_target)
    keep += [link, link_target]
    assert atomic.stale_partials(tmp_path / "out.mov") == []
    staging = atomic.Staging(tmp_path / "out.mov", folder=False, overwrite=False)
    staging.discard()
    assert all(path.is_symlink() or path.exists() for path in keep)


def test_a_locked_partial_is_kept_even_when_its_pid_looks_dead(tmp_path):
    # a writer in another PID namespace (a container sharing the folder) has an id that means
    # nothing here; the lock it holds still tells that it is alive
    path = _partial(tmp_path, "out.webm", _dead_pid())
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert atomic.stale_partials(tmp_path / "out.webm") == []
    finally:
        os.close(fd)
    assert atomic.stale_partials(tmp_path / "out.webm") == [path]


def test_own_pid_without_a_lock_is_a_previous_incarnation(tmp_path):
    # a container's process restarted under the same id: the partial is not this run's
    path = _partial(tmp_path, "out.webm", os.getpid())
    assert atomic.stale_partials(tmp_path / "out.webm") == [path]
    live = atomic.Staging(tmp_path / "out.webm", folder=False, overwrite=False)
    try:
        assert not path.exists()
        assert atomic.stale_partials(tmp_path / "out.webm") == []  # this run's own, locked
        assert live.temp.exists()
    finally:
        live.discard()


def test_stale_frame_folders_are_removed_but_not_folders_with_other_files(tmp_path):
    dead = _dead_pid()
    stale = tmp_path / f".frames.partial-{dead}-0badc0de"
    stale.mkdir()
    (stale / "000000.png").write_bytes(b"png")
    mixed = tmp_path / f".frames.partial-{dead}-1badc0de"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("mine")
    assert atomic.stale_partials(tmp_path / "frames", folder=True) == [stale]
    assert atomic.remove_stale_partials(tmp_path / "frames", folder=True) == [stale]
    assert not stale.exists() and (mixed / "notes.txt").exists()


def test_commit_releases_the_lock(tmp_path):
    staging = atomic.Staging(tmp_path / "a.png", folder=False, overwrite=False)
    staging.temp.write_bytes(b"png")
    staging.commit()
    fd = os.open(tmp_path / "a.png", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # would raise if the writer still held it
    finally:
        os.close(fd)
    assert os.listdir(tmp_path) == ["a.png"]
