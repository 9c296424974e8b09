"""Atomic outputs: write under a hidden temporary name beside the target, rename when complete.

A crash, Ctrl-C or a full disk then never leaves a half-written file under the name the user
asked for, and an existing output is only replaced by a complete new one.

Temporaries are named `.NAME.partial-<pid>-<token>.ext`. A process killed outright (`kill -9`,
a power cut) cannot remove its own; the next write to the same target removes those whose
process is gone, which the name and a lock held while writing tell (see `stale_partials`).
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import stat
import weakref
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, and no stale-partial sweep either
    fcntl = None  # type: ignore[assignment]

from vidmatte.errors import OutputError

# What an existing output folder may contain for overwrite to delete it: only our own frames.
_FRAME_NAME = re.compile(r"^\d{6}\.png$")

# Temporaries this process is writing now (a set's add and discard are atomic under the GIL).
_LIVE: set[Path] = set()


class Staging:
    """A temporary file or folder that becomes `final` on `commit()` or vanishes on `discard()`."""

    def __init__(self, final: Path, *, folder: bool, overwrite: bool) -> None:
        self.final = final
        self.folder = folder
        self.overwrite = overwrite
        remove_stale_partials(final, folder=folder)
        check_target(final, folder=folder, overwrite=overwrite)
        self.temp = _create_temp(final, folder=folder)
        _LIVE.add(self.temp)  # a sweep in this same process must not take it for a stale one
        # Held while writing: the kernel drops it when the process dies, however it dies, so a
        # later run can tell a killed writer's leftover from a live one's file.
        lock = _lock(self.temp)
        # If the owner is dropped without commit or discard (a bug, or an interpreter exit
        # during a write), still remove the temporary so nothing half-written stays around.
        self._finalizer = weakref.finalize(self, _remove, self.temp, lock)
        self._lock = lock

    def commit(self) -> None:
        """Move the finished temporary onto the final name."""
        try:
            check_target(self.final, folder=self.folder, overwrite=self.overwrite)  # it may have appeared since
            if self.folder:
                _replace_folder(self.temp, self.final)
            else:
                os.replace(self.temp, self.final)
        except OutputError:
            self.discard()
            raise
        except OSError as error:
            self.discard()
            raise write_error(self.final, error) from error
        self._finalizer.detach()
        _LIVE.discard(self.temp)
        _close(self._lock)

    def discard(self) -> None:
        """Remove the temporary; safe to call more than once."""
        self._finalizer()


def check_target(final: Path, *, folder: bool, overwrite: bool) -> None:
    """Raise OutputError when `final` cannot be (over)written; called before any work starts."""
    parent = final.parent
    if not parent.exists():
        raise OutputError(f"folder {parent} does not exist; create it first")
    if not parent.is_dir():
        raise OutputError(f"{parent} is not a folder; choose another output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        # access() says no on a read-only mount too, for root as well: tell which it is
        if _read_only_file_system(parent):
            raise OutputError(
                f"cannot write to folder {parent}: the file system is read-only; "
                "choose an output folder on a writable one"
            )
        raise OutputError(f"cannot write to folder {parent}: permission denied")
    if not (final.exists() or final.is_symlink()):
        return
    if folder:
        if not final.is_dir():
            raise OutputError(f"{final} exists and is not a folder; choose another output path")
        entries = os.listdir(final)
        if not entries:
            return  # an empty folder the user made for the frames
        if not overwrite:
            raise OutputError(f"folder {final} exists and is not empty; use -y to overwrite")
        if not all(_FRAME_NAME.match(name) for name in entries):
            raise OutputError(
                f"folder {final} holds files other than numbered PNG frames; refusing to delete them, "
                "choose another folder"
            )
        return
    if final.is_dir():
        raise OutputError(f"{final} is a folder; choose a file name for the output")
    if not overwrite:
        raise OutputError(f"{final} exists; use -y to overwrite")


def _read_only_file_system(folder: Path) -> bool:
    """True when `folder` lies on a file system mounted read-only (False where that cannot be told)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows), or the folder is unreachable
        return False


def write_error(path: Path, error: OSError) -> OutputError:
    """The OutputError to raise for an operating-system error while writing `path`."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"disk full while writing {path}; free some space and try again")
    if error.errno in (errno.EACCES, errno.EPERM):
        return OutputError(f"cannot write {path}: permission denied")
    if error.errno == errno.EROFS:
        return OutputError(f"cannot write {path}: the file system is read-only")
    reason = error.strerror or str(error)
    return OutputError(f"could not write {path}: {reason}")


def _create_temp(final: Path, *, folder: bool) -> Path:
    # Same directory, so the final rename is atomic; hidden and clearly named so a leftover
    # from a killed process is recognisable (and its process id tells whether it still runs);
    # real extension last so muxers detect the format.
    for _ in range(100):
        temp = final.with_name(f".{final.name}.partial-{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")
        try:
            if folder:
                os.mkdir(temp)
            else:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue
        except OSError as error:
            raise write_error(final, error) from error
    raise OutputError(f"could not create a temporary file beside {final}; clean up .partial files there")


def _lock(temp: Path) -> int | None:
    """A descriptor holding a lock on `temp` until it is closed, or None where locks are unavailable."""
    if fcntl is None:
        return None
    try:
        fd = os.open(temp, os.O_RDONLY)
    except OSError:
        return None
    try:
        # flock, not lockf: POSIX locks vanish when *any* descriptor of the file is closed in
        # this process, and the muxer opens and closes the file on its own
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # a file system without locks: the process id alone has to tell
        os.close(fd)
        return None
    return fd


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


def _partial_pattern(final: Path) -> re.Pattern[str]:
    return re.compile(rf"^\.{re.escape(final.name)}\.partial-(\d+)-[0-9a-f]{{8}}{re.escape(final.suffix)}$")


def stale_partials(final: str | Path, *, folder: bool = False) -> list[Path]:
    """Temporaries of `final` left by processes that are gone (`kill -9`, a crash, a power cut).

    Only names of this exact target count, only files (or, with `folder`, frame folders) owned
    by this user, and only when the process named in them no longer runs and nobody holds the
    lock a writer keeps on its temporary. Anything else, another user's or a live writer's
    file included, is never listed. Empty off POSIX systems, where this cannot be told safely.
    """
    final = Path(final)
    if os.name != "posix":
        return []
    pattern = _partial_pattern(final)
    try:
        names = os.listdir(final.parent)
    except OSError:
        return []
    found: list[Path] = []
    for name in sorted(names):
        match = pattern.match(name)
        if match and _is_stale(final.parent / name, int(match.group(1)), folder=folder):
            found.append(final.parent / name)
    return found


def remove_stale_partials(final: str | Path, *, folder: bool = False) -> list[Path]:
    """Remove what `stale_partials` lists; returns the paths removed. Never raises."""
    removed: list[Path] = []
    for path in stale_partials(final, folder=folder):
        _remove(path)
        if not os.path.lexists(path):
            removed.append(path)
    return removed


def _is_stale(path: Path, pid: int, *, folder: bool) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(info.st_mode) if folder else stat.S_ISREG(info.st_mode)
    if not kind_ok or info.st_uid != os.geteuid():
        return False
    if path in _LIVE:
        return False
    if pid != os.getpid() and _process_exists(pid):
        return False  # its writer may still be at work
    if folder:
        try:
            if not all(_FRAME_NAME.match(entry) for entry in os.listdir(path)):
                return False  # something put other files in there: not ours to delete
        except OSError:
            return False
    # A process id that looks dead (or is our own, after a container restart) is not proof:
    # the id may belong to another PID namespace, a container sharing the folder. The lock
    # settles it wherever the file system has locks.
    unlocked = _lock_state(path)
    return True if unlocked is None else unlocked


def _process_exists(pid: int) -> bool:
    if pid <= 0:
        return True  # not a process id we wrote; never treat it as gone
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def _lock_state(path: Path) -> bool | None:
    """True when nobody holds `path`'s lock, False when someone does, None when locks cannot tell."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    finally:
        os.close(fd)  # also releases the lock just taken
    return True


def _replace_folder(temp: Path, final: Path) -> None:
    """Rename `temp` onto `final`, moving an existing (checked) `final` out of the way first."""
    old: Path | None = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{secrets.token_hex(4)}")
        os.rename(final, old)
    try:
        os.rename(temp, final)
    except OSError:
        if old is not None:
            os.rename(old, final)  # put the previous output back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove(path: Path, lock: int | None = None) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: never mask the error that made us clean up
    finally:
        _LIVE.discard(path)
        _close(lock)  # after the removal, so no sweeper sees an unlocked temporary of a live run
