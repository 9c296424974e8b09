"""Stills for `POST /api/remove`: decoded once to check them, matted on the shared engine.

Each still gets `engine.with_ratio(...)`: the model is shared, nothing else is (still mode keeps
its recurrent state in local variables, not on the engine). At most `workers` stills are matted
at once, since they share the processor or GPU, each on a thread of its own that lives as long
as the server, with its share of the cores (`plan.stage_threads`: threads that come and go
with their own OpenMP teams would slow every still down); `queue` more may wait, and beyond
that a client is told to come back (429). Decoding runs beside the matting (bounded too: a large picture
takes a few hundred megabytes while decoded), so a bad upload is refused at once, not after
the stills ahead of it.
"""

from __future__ import annotations

import asyncio
import math
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from ..options import MatteOptions

if TYPE_CHECKING:
    from ..engine import MattingEngine
    from ..io.images import Picture

#: Pictures decoded at once (each up to MAX_PIXELS, a few hundred MB while held).
DECODERS = 4


class Busy(Exception):
    """Too many stills waiting already (HTTP 429); `retry_after` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many pictures are waiting to be matted; try again shortly")
        self.retry_after = retry_after


class Stills:
    def __init__(self, engine: MattingEngine, *, workers: int = 1, queue: int = 64) -> None:
        self.engine = engine
        self.workers, self.queue = workers, queue
        self.pending = 0  # matting or waiting to; changed on the event loop's thread only
        self.seconds = 1.0  # running mean of the time one still takes (for Retry-After)
        self._decoders: anyio.CapacityLimiter | None = None
        self._workers: ThreadPoolExecutor | None = None

    def _pool(self) -> ThreadPoolExecutor:
        if self._workers is None:
            import torch

            from ..plan import stage_threads

            self._workers = ThreadPoolExecutor(
                self.workers, "still", initializer=torch.set_num_threads, initargs=(stage_threads(self.workers),)
            )
        return self._workers

    def close(self) -> None:
        """Wait for the stills being matted and end the worker threads."""
        if self._workers is not None:
            self._workers.shutdown(wait=True, cancel_futures=True)
            self._workers = None

    @property
    def full(self) -> bool:
        return self.pending >= self.workers + self.queue

    def retry_after(self) -> int:
        return max(1, math.ceil(self.seconds * (self.pending + 1) / self.workers))

    async def decode(self, path: Path) -> Picture:
        """The upload decoded (InputError with the decoder's one-line reason)."""
        from ..io.images import read_image

        if self._decoders is None:  # made on the event loop (anyio wants a running loop)
            self._decoders = anyio.CapacityLimiter(DECODERS)
        return await anyio.to_thread.run_sync(read_image, path, limiter=self._decoders)

    async def matte(self, source: Path, picture: Picture, target: Path, options: MatteOptions) -> tuple[float, float]:
        """Matte the decoded picture into `target`; returns (seconds waiting for a worker,
        seconds matting). Busy when the queue is full."""
        if self.full:
            raise Busy(self.retry_after())
        self.pending += 1
        queued = time.perf_counter()
        try:
            work = self._pool().submit(self._matte, source, picture, target, options)
            with anyio.CancelScope(shield=True):  # a client that leaves does not stop the still
                started, took = await asyncio.wrap_future(work)
        finally:
            self.pending -= 1
        return started - queued, took

    def _matte(self, source: Path, picture: Picture, target: Path, options: MatteOptions) -> tuple[float, float]:
        from ..stills import matte_image

        start = time.perf_counter()
        engine = self.engine.with_ratio(options.downsample_ratio)
        matte_image(source, target, engine=engine, options=options, picture=picture)
        took = time.perf_counter() - start
        self.seconds = 0.8 * self.seconds + 0.2 * took
        return start, took
