"""Atomic outputs: write under a hidden temporary name beside the target, rename when complete.

A crash, Ctrl-C or a full disk then never leaves a half-written file under the name the user
asked for, and an existing output is only replaced by a complete new one.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import weakref
from pathlib import Path

from vidmatte.errors import OutputError

# What an existing output folder may contain for overwrite to delete it: only our own frames.
_FRAME_NAME = re.compile(r"^\d{6}\.png$")


class Staging:
    """A temporary file or folder that becomes `final` on `commit()` or vanishes on `discard()`."""

    def __init__(self, final: Path, *, folder: bool, overwrite: bool) -> None:
        self.final = final
        self.folder = folder
        self.overwrite = overwrite
        check_target(final, folder=folder, overwrite=overwrite)
        self.temp = _create_temp(final, folder=folder)
        # If the owner is dropped without commit or discard (a bug, or an interpreter exit
        # during a write), still remove the temporary so nothing half-written stays around.
        self._finalizer = weakref.finalize(self, _remove, self.temp)

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
    # from a killed process is recognisable; real extension last so muxers detect the format.
    for _ in range(100):
        temp = final.with_name(f".{final.name}.partial-{secrets.token_hex(4)}{final.suffix}")
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


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: never mask the error that made us clean up
