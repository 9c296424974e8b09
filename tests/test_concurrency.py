"""Bounded worker threads: order, bounded read-ahead, errors raised to the caller, prompt stops."""

from __future__ import annotations

import threading
import time

import pytest

from vidmatte.concurrency import BackgroundConsumer, background_iter


def test_background_iter_keeps_order_and_reads_only_a_bounded_distance_ahead():
    made: list[int] = []

    def source():
        for i in range(1000):
            made.append(i)
            yield i

    it = background_iter(source(), maxsize=2)
    taken = [next(it) for _ in range(5)]
    time.sleep(0.2)
    assert taken == list(range(5)) and len(made) <= 5 + 2 + 1  # queue of 2, one in hand
    it.close()


def test_background_iter_raises_the_producers_error_and_stops_on_close():
    def failing():
        yield 1
        raise OSError("read failed")

    it = background_iter(failing())
    assert next(it) == 1
    with pytest.raises(OSError, match="read failed"):
        next(it)
    before = threading.active_count()
    endless = background_iter(iter(int, 1))  # never ends by itself
    next(endless)
    endless.close()
    time.sleep(0.3)
    assert threading.active_count() <= before


def test_consumer_takes_everything_in_order_and_reraises_its_error():
    got: list[int] = []
    with BackgroundConsumer(got.append, maxsize=2) as consumer:
        for i in range(50):
            consumer.put(i)
    assert got == list(range(50))

    def picky(item: int) -> None:
        if item == 3:
            raise ValueError("bad item")

    with pytest.raises(ValueError, match="bad item"):
        with BackgroundConsumer(picky, maxsize=1) as consumer:
            for i in range(100):
                consumer.put(i)


def test_consumer_cancelled_by_an_error_drops_the_rest():
    got: list[int] = []

    def slow(item: int) -> None:
        time.sleep(0.05)
        got.append(item)

    with pytest.raises(KeyboardInterrupt):
        with BackgroundConsumer(slow, maxsize=8) as consumer:
            for i in range(8):
                consumer.put(i)
            raise KeyboardInterrupt
    assert len(got) < 8
