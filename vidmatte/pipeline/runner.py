"""Runs a stage chain over a source with the threads its plan asks for, into a sink.

    source -> [reading thread: front] -> this thread: recurrent -> [render thread: finish]
           -> [encoder thread: sink]

(the bracketed threads exist where the plan asks for them; otherwise that stage runs inline.)

Queues between threads are bounded (memory stays flat however long the clip) and an error on
any thread stops the others and is raised here, so the caller's output is aborted promptly.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from typing import TypeVar

from ..concurrency import BackgroundConsumer, background_iter
from ..plan import applied
from ..types import Chunk, Rendered, VideoFrame
from .chain import Prepared, StageChain

T = TypeVar("T")

#: Receives each chunk's pictures, in order.
Sink = Callable[[Rendered], None]


def chunks(frames: Iterable[VideoFrame], size: int) -> Iterator[list[VideoFrame]]:
    """Consecutive frames in lists of `size` (the last may be shorter)."""
    chunk: list[VideoFrame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_chain(frames: Iterable[VideoFrame], chain: StageChain, sink: Sink) -> int:
    """Matte `frames` (one clip, in order) through `chain` into `sink`; returns the frames done.

    The chain is reset first. Threads follow `chain.plan`; the plan's process-wide settings hold
    while they run. `sink` runs on the render thread (the encoder's own, where the plan gives it
    one; the calling thread, where the plan renders inline); an exception there or in `frames`
    stops the run and is raised here.
    """
    plan = chain.plan
    chain.reset()
    done = 0

    def finish(chunk: Chunk) -> None:
        deliver(chain.finish(chunk))

    with (
        applied(plan),
        _maybe_in_background(sink, plan.separate_encoder, plan.queue, "encode") as deliver,
        _maybe_in_background(finish, plan.render_ahead, plan.queue, "render") as render,
    ):
        prepared: Generator[Prepared, None, None] = (chain.front(c) for c in chunks(frames, plan.front_chunk))
        if plan.read_ahead:
            prepared = background_iter(prepared, maxsize=plan.queue, name="decode")
        # closing(): on an error or Ctrl-C the reading thread is stopped here and now, not when
        # the interpreter shuts down (where joining a thread can hang)
        with closing(prepared):
            for item in prepared:
                for chunk in chain.recurrent(item):
                    render(chunk)
                    done += len(chunk)
    return done


@contextmanager
def _maybe_in_background(
    consume: Callable[[T], None], wanted: bool, queue: int, name: str
) -> Iterator[Callable[[T], None]]:
    """What to call with each item: `consume` itself, or when `wanted` the `put` of a
    BackgroundConsumer running it on a thread of its own."""
    if not wanted:
        yield consume
        return
    with BackgroundConsumer(consume, maxsize=queue, name=name) as consumer:
        yield consumer.put
