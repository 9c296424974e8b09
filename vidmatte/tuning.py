"""Torch's thread count chosen by timing while a run lasts, for runs whose every torch stage is
on one thread (live on a CPU; `plan.RunPlan.thread_ceiling` says when).

A team of all the cores is the fastest on an idle machine: its OpenMP threads spin between the
network's many small parallel regions. Beside another busy process the same team collapses (a
spinning team waits for whichever member lost its core), where one thread carries on at nearly
its idle speed: benchmarks/live.md has both. Which one wins depends on what else the machine is
doing, and that changes during a live session, so it is measured, not guessed.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

#: Frames timed at a count before its time is trusted; the first after a change is dropped
#: (a new thread team starts up).
SAMPLE = 5
SETTLE = 1
#: Seconds of frames between probes of another count: the first probe follows the first timed
#: sample (a loaded machine is slow from the start), then FIRST_GAP, doubled after each probe
#: that found nothing better, up to LONGEST_GAP. Counted in the frames' own time, not in
#: frames: a lost probe costs a frame or two whatever the rate, while a gap of a fixed number of
#: frames on a slow machine (4 frames/s) kept a probe that lost to a passing spike from being
#: retried for the rest of a short session (benchmarks/live.md).
FIRST_GAP = 2.0
LONGEST_GAP = 32.0
#: A probe must be this much faster to win; the current count is probed again at once when its
#: recent frames drift this far from what it measured (the machine's load changed).
WIN = 0.9
DRIFT = 1.4
#: A probe ends at once, as a loss, at its second frame `ABORT` times slower than the reference,
#: or at its first one (the settling frame included) `COLLAPSE` times slower: a team that
#: collapses beside a busy process takes several times as long, and its frames are visible; one
#: slow frame of an idle machine's probe (a page fault, the camera's decoder) must not decide it.
ABORT = 1.3
COLLAPSE = 2 * ABORT


def thread_counts(most: int) -> list[int]:
    """The counts worth trying, most first: `most`, halved down to 1 (8 -> [8, 4, 2, 1])."""
    counts = [max(1, most)]
    while counts[-1] > 1:
        counts.append(counts[-1] // 2)
    return counts


class ThreadTuner:
    """Keeps whichever neighbouring thread count runs frames fastest.

    Call `record(seconds)` after each frame with what it took on the calling thread; the count
    for the next frame is applied (`apply`, torch.set_num_threads by default) and returned; the
    start is applied at once.
    It starts at `start` (one thread unless told: cheap to leave on an idle machine, and right
    on a loaded one). Times at the current count set its reference; after the first `SAMPLE`
    frames, right after each win, every `FIRST_GAP` seconds of frames after that (doubling to
    `LONGEST_GAP` while nothing better turns up; every `LONGEST_GAP` from the most threads, whose
    team shows arriving load as drift) and at once when the current count's recent
    times drift from its reference, a neighbouring count is timed for `SAMPLE` frames (fewer
    when two are `ABORT` times slower or one `COLLAPSE` times) and kept when it is at least
    `1 - WIN` faster. A win leads on in the same direction, a loss turns the next probe the
    other way.
    """

    def __init__(self, most: int, start: int = 1, apply: Callable[[int], None] = torch.set_num_threads) -> None:
        self.counts = thread_counts(most)
        self._apply = apply
        self._at = min(range(len(self.counts)), key=lambda i: abs(self.counts[i] - start))
        self._reference: float | None = None
        self._recent: list[float] = []
        self._probe: int | None = None  # index in counts being probed
        self._probe_times: list[float] = []
        self._skip = 0
        self._gap = FIRST_GAP
        self._until_probe = 0.0  # seconds of frames at the current count before the next probe
        self._direction = -1 if self._at else 1  # index -1: more threads
        self.switches = 0
        if len(self.counts) > 1:
            apply(self.counts[self._at])

    @property
    def current(self) -> int:
        """The count frames run with now (a probe's, while one is timed)."""
        return self.counts[self._at if self._probe is None else self._probe]

    @property
    def kept(self) -> int:
        """The count it keeps between probes (what a run that ends mid-probe was using)."""
        return self.counts[self._at]

    def record(self, seconds: float) -> int:
        """One frame took `seconds` at `current`; returns (and applies) the count for the next."""
        if self._skip:
            self._skip -= 1
            if self._probe is not None and self._reference is not None and seconds > COLLAPSE * self._reference:
                self._end_probe(seconds)  # far beyond a new team's start-up: the probe has lost
            return self.current
        if self._probe is not None:
            assert self._reference is not None
            self._probe_times.append(seconds)
            slow = [t for t in self._probe_times if t > ABORT * self._reference]
            if len(slow) >= 2 or seconds > COLLAPSE * self._reference:
                self._end_probe(seconds)
            elif len(self._probe_times) >= SAMPLE:
                self._end_probe(statistics.median(self._probe_times))
            return self.current
        self._recent = (self._recent + [seconds])[-SAMPLE:]
        self._until_probe -= seconds
        if len(self._recent) < SAMPLE:
            return self.current
        recent = statistics.median(self._recent)
        if self._reference is None:
            self._reference = recent
        drifted = not (1 / DRIFT <= recent / self._reference <= DRIFT)
        if len(self.counts) > 1 and (self._until_probe <= 0 or drifted):
            self._reference = recent
            self._start_probe()
        return self.current

    def _start_probe(self) -> None:
        if not 0 <= self._at + self._direction < len(self.counts):
            self._direction = -self._direction
        self._probe = self._at + self._direction
        self._probe_times, self._skip = [], SETTLE
        self._apply(self.counts[self._probe])

    def _end_probe(self, probed: float) -> None:
        assert self._probe is not None and self._reference is not None
        if probed < WIN * self._reference:
            self._at, self._reference, self._gap = self._probe, probed, FIRST_GAP
            self.switches += 1
            if 0 <= self._at + self._direction < len(self.counts):
                self._until_probe = 0.0  # on the same way while it wins (after a fresh sample)
            else:  # at the end of the counts: the way back was just measured slower
                self._direction, self._until_probe = -self._direction, self._gap
        else:
            self._direction = -self._direction
            self._gap = min(2 * self._gap, LONGEST_GAP)
            self._until_probe = self._gap
        if self._at == 0:
            # every core: load that arrives makes this team collapse or slow down, which the drift
            # test sees at once, so timed probes of fewer threads only cost frames (on an idle
            # machine, each one lost ~5% of an 8-s run's frames: benchmarks/live.md)
            self._until_probe = LONGEST_GAP
        self._probe, self._recent, self._skip = None, [], SETTLE
        self._apply(self.counts[self._at])
