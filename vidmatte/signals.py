"""Termination signals as an exception, so `kill`, `timeout` and a closed terminal clean up like Ctrl-C.

Python turns SIGINT into KeyboardInterrupt, which unwinds every `with` block and so removes
unfinished outputs (see `vidmatte.io.atomic`). SIGTERM and SIGHUP kill the process outright by
default, leaving the hidden temporary files behind. `raise_on_termination` makes them raise
`Terminated` on the main thread instead, which takes the same path as Ctrl-C.

Library code never installs handlers by itself: signal dispositions belong to the program. The
command line enters `raise_on_termination()` around the whole run; a server or worker can do the
same around one job, or call `install_termination_handlers` and keep the returned restore function.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from types import FrameType

#: The signals that mean "stop now, cleanly": `kill`/`timeout` (SIGTERM) and a closed terminal or
#: ssh session (SIGHUP). SIGHUP does not exist on Windows.
TERMINATION_SIGNALS: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Terminated(BaseException):
    """The process was asked to stop by a signal; raised on the main thread by the handler.

    A BaseException, like KeyboardInterrupt, so `except Exception` blocks (per-file error
    reporting in folders, for example) let it through and every `with` block unwinds.
    """

    def __init__(self, signum: int) -> None:
        self.signum = int(signum)
        super().__init__(f"terminated by {self.signal_name}")

    @property
    def signal_name(self) -> str:
        """ "SIGTERM", "SIGHUP", ... (or "signal N" for a number the platform does not name)."""
        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"

    @property
    def exit_code(self) -> int:
        """128 + the signal number: what shells report for a process killed by that signal."""
        return 128 + self.signum


def install_termination_handlers(signals: Iterable[int] = TERMINATION_SIGNALS) -> Callable[[], None]:
    """Make each of `signals` raise `Terminated` on the main thread; returns a function restoring the old handlers.

    A signal that is ignored already (`nohup` ignores SIGHUP) stays ignored. Only the first
    signal raises: a second one while the first is being handled (the outputs
    are being removed) is ignored, so the cleanup is not cut short. Must be called from the
    main thread (Python delivers signals there only); raises RuntimeError otherwise.
    """
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("signal handlers can only be installed from the main thread")
    fired = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal fired
        if fired:
            return
        fired = True
        raise Terminated(signum)

    previous: list[tuple[int, object]] = []
    try:
        for number in signals:
            if signal.getsignal(number) == signal.SIG_IGN:
                continue  # `nohup` (or a parent) asked for this one to be ignored: keep it so
            old = signal.signal(number, handler)
            previous.append((number, old))
    except BaseException:
        _restore(previous)
        raise

    def restore() -> None:
        _restore(previous)
        previous.clear()

    return restore


@contextmanager
def raise_on_termination(signals: Iterable[int] = TERMINATION_SIGNALS) -> Iterator[None]:
    """Within the block, SIGTERM/SIGHUP raise `Terminated` (see `install_termination_handlers`)."""
    restore = install_termination_handlers(signals)
    try:
        yield
    finally:
        restore()


def _restore(previous: list[tuple[int, object]]) -> None:
    for number, old in reversed(previous):
        # None means the handler was not installed from Python; the default is the closest match
        signal.signal(number, old if old is not None else signal.SIG_DFL)  # type: ignore[arg-type]
