"""Bounded producer/consumer threads, so decoding, inference and encoding overlap.

Codec work in PyAV and OpenCV releases the GIL, as does torch, so plain threads give real
overlap. Queues are bounded, so memory stays flat however long the clip; an exception in a
worker thread is re-raised on the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Generator, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
#: Seconds to wait for a producer thread to stop before leaving it (it is a daemon thread).
JOIN_TIMEOUT = 10.0


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _put_unless_stopped(q: queue.Queue, item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


def background_iter(iterable: Iterable[T], maxsize: int = 2, name: str = "producer") -> Generator[T, None, None]:
    """Iterate `iterable` on a worker thread, `maxsize` items ahead of the consumer."""
    q: queue.Queue = queue.Queue(maxsize)
    stop = threading.Event()

    def work() -> None:
        try:
            for item in iterable:
                if not _put_unless_stopped(q, item, stop):
                    return
            _put_unless_stopped(q, _DONE, stop)
        except BaseException as error:  # handed to the consumer, which re-raises it
            _put_unless_stopped(q, _Failure(error), stop)

    thread = threading.Thread(target=work, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        # the worker sees `stop` within 0.1 s of finishing its current item; a source stuck in a
        # read (a stalled network file) must not keep the caller from reporting and exiting
        thread.join(timeout=JOIN_TIMEOUT)


class BackgroundConsumer(Generic[T]):
    """Feed items to `consume` on a worker thread; `close()` waits for the last one.

    Use as a context manager: leaving through an exception stops the worker without
    draining the queue, so the caller can abort its output promptly.
    """

    def __init__(self, consume: Callable[[T], None], maxsize: int = 8, name: str = "consumer") -> None:
        self._consume = consume
        self._q: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            try:
                self._consume(item)
            except BaseException as error:
                self._error = error
                self._stop.set()
                return

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, item: T) -> None:
        self._raise_if_failed()
        if not _put_unless_stopped(self._q, item, self._stop):
            self._raise_if_failed()

    def close(self) -> None:
        """Wait until every item is consumed; re-raise a worker failure."""
        if _put_unless_stopped(self._q, _DONE, self._stop):
            self._thread.join()
        self._raise_if_failed()

    def cancel(self) -> None:
        """Stop the worker after its current item, dropping the rest."""
        self._stop.set()
        while True:
            try:
                self._q.get_nowait()
            except queue.Empty:
                break
        try:
            self._q.put(_DONE, timeout=JOIN_TIMEOUT)
        except queue.Full:  # a worker that never takes it is left behind (a daemon thread)
            return
        self._thread.join(timeout=JOIN_TIMEOUT)

    def __enter__(self) -> BackgroundConsumer[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.cancel()
