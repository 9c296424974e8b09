"""What C libraries print while they work, caught so it can be judged instead of leaking to the user.

Image decoders inside OpenCV report damage only on the process's stderr: libjpeg prints
"Corrupt JPEG data: ..." and returns a picture whose missing part is grey, libpng prints
"libpng error: ..." before OpenCV returns nothing. Reading those lines is the only way to
tell a damaged file from a good one, and keeping them off the terminal keeps a failure to
the one line the command line prints.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# File descriptor 2 is one per process: captures take turns (re-entrant, so a capture inside
# a capture nests instead of deadlocking).
_LOCK = threading.RLock()


def call_capturing_stderr(func: Callable[[], T]) -> tuple[T, list[str]]:
    """Run `func` with file descriptor 2 sent to a temporary file; returns (its result, the lines written).

    Everything written to descriptor 2 meanwhile is caught, by any thread: callers hand back
    what they do not consume with `replay`. Where descriptor 2 cannot be redirected (it is
    closed), `func` simply runs and no lines come back. An exception from `func` propagates
    after stderr is restored (its lines are then dropped; catch inside `func` to keep them).
    """
    with _LOCK:
        try:
            sys.stderr.flush()  # Python's own buffered text belongs before, not inside
        except (AttributeError, OSError, ValueError):
            pass
        try:
            saved = os.dup(2)
        except OSError:
            return func(), []
        try:
            with tempfile.TemporaryFile() as sink:
                try:
                    os.dup2(sink.fileno(), 2)
                    result = func()
                finally:
                    os.dup2(saved, 2)  # first thing: nothing may stay redirected
                sink.seek(0)
                text = sink.read().decode("utf-8", errors="replace")
        finally:
            os.close(saved)
    return result, text.splitlines()


def replay(lines: list[str]) -> None:
    """Write caught lines to stderr after all (text that was not the caller's to judge)."""
    if not lines:
        return
    try:
        sys.stderr.flush()
        os.write(2, ("\n".join(lines) + "\n").encode("utf-8", errors="replace"))
    except OSError:
        pass
