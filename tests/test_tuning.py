"""The live thread tuner, on a simulated machine whose frame times depend on the thread count
and on whether something else is busy (the real figures are in benchmarks/live.md)."""

from __future__ import annotations

import random

from vidmatte.tuning import LONGEST_GAP, ThreadTuner, thread_counts

IDLE_2 = {2: 0.047, 1: 0.072}  # seconds a frame, 640x480 live on 2 cores
LOADED_2 = {2: 0.40, 1: 0.075}  # beside one busy process


class Machine:
    """Frame times by thread count, with +-10% noise, and the counts the tuner applied."""

    def __init__(self, times: dict[int, float], seed: int = 0) -> None:
        self.times, self.random = times, random.Random(seed)
        self.applied: list[int] = []

    def frame(self, threads: int) -> float:
        return self.times[threads] * self.random.uniform(0.9, 1.1)


def run(tuner: ThreadTuner, machine: Machine, frames: int) -> list[int]:
    """The thread count of each frame, as a live run would go."""
    used = []
    for _ in range(frames):
        threads = tuner.current
        used.append(threads)
        tuner.record(machine.frame(threads))
    return used


def tuner_for(machine: Machine, most: int, start: int = 1) -> ThreadTuner:
    return ThreadTuner(most, start, apply=machine.applied.append)


def test_counts_halve_down_to_one():
    assert thread_counts(8) == [8, 4, 2, 1] and thread_counts(6) == [6, 3, 1] and thread_counts(1) == [1]


def test_idle_machine_takes_every_core_at_once_and_probes_rarely():
    machine = Machine(IDLE_2)
    tuner = tuner_for(machine, 2)
    used = run(tuner, machine, 1000)
    assert used[:5] == [1] * 5 and used[6:40] == [2] * 34  # one sample at the start, then a win
    assert tuner.current == 2 and tuner.switches == 1
    assert used.count(1) / len(used) < 0.05  # the later probes of one thread cost little
    assert machine.applied[-1] == 2


def test_busy_machine_drops_to_one_thread_within_a_second():
    machine = Machine(LOADED_2)
    tuner = tuner_for(machine, 2)
    used = run(tuner, machine, 300)
    assert used[:5] == [1] * 5 and used[6:20] == [1] * 14  # the probe of two threads lost at once
    assert tuner.current == 1 and tuner.switches == 0
    # probes of two threads are cut short: a collapsed team is visible, so it shows for few frames
    assert used.count(2) <= 4


def test_load_that_comes_and_goes_is_followed():
    machine = Machine(IDLE_2)
    tuner = tuner_for(machine, 2)
    run(tuner, machine, 200)
    machine.times = LOADED_2
    assert run(tuner, machine, 400)[-100:] == [1] * 100  # the drift of the team's times triggers a probe
    machine.times = IDLE_2
    used = run(tuner, machine, int(LONGEST_GAP / IDLE_2[1]) + 100)  # the longest gap, at one thread's rate
    assert tuner.switches == 3 and used[-100:].count(2) >= 90  # back to both cores, but for probes


def test_many_idle_cores_are_climbed_quickly():
    machine = Machine({8: 0.020, 4: 0.032, 2: 0.050, 1: 0.090})
    tuner = tuner_for(machine, 8)
    used = run(tuner, machine, 200)
    assert used[40:60] == [8] * 20 and tuner.switches == 3


def test_many_cores_settle_on_the_best_neighbour():
    machine = Machine({8: 0.30, 4: 0.050, 2: 0.062, 1: 0.10})  # a team of 8 beside busy processes
    tuner = tuner_for(machine, 8)
    used = run(tuner, machine, 600)
    assert tuner.kept == 4 and used[-100:].count(4) >= 90


def test_one_core_has_nothing_to_tune():
    machine = Machine({1: 0.07})
    tuner = tuner_for(machine, 1)
    assert set(run(tuner, machine, 100)) == {1} and machine.applied == []


class SpikyMachine(Machine):
    """An idle machine where the first timed frame of each probe of two threads (the one after
    the settling frame) is 1.6x slower than one thread: noise (a page fault, the camera's decoder
    taking the core), not a collapse."""

    def __init__(self) -> None:
        super().__init__(IDLE_2)
        self.run_of_two = 0

    def frame(self, threads: int) -> float:
        self.run_of_two = self.run_of_two + 1 if threads == 2 else 0
        return 1.6 * self.times[1] if self.run_of_two == 2 else super().frame(threads)


def test_one_slow_frame_does_not_lose_a_probe():
    machine = SpikyMachine()
    tuner = tuner_for(machine, 2)
    used = run(tuner, machine, 200)
    assert tuner.current == 2 and used[20:40] == [2] * 20


class PassingSpike(Machine):
    """A slow machine (a laptop: 4 frames/s on one thread, 6 on two) where something else takes
    the cores for `spike` frames just as the first probe of two threads starts."""

    def __init__(self, spike: range) -> None:
        super().__init__({2: 0.17, 1: 0.25})
        self.spike, self.frames = spike, 0

    def frame(self, threads: int) -> float:
        self.frames += 1
        seconds = super().frame(threads)
        return 4 * seconds if self.frames in self.spike else seconds


def test_a_probe_lost_to_a_passing_spike_is_retried_within_seconds():
    machine = PassingSpike(range(6, 9))  # the first probe's frames and the one after it
    tuner = tuner_for(machine, 2)
    used = run(tuner, machine, 120)
    assert used[5:7] == [2, 1]  # the collapsed probe was cut short at its settling frame
    # then on two threads within a few seconds of the spike, not a quarter of a minute later
    retried = used.index(2, 6)
    assert sum(machine.times[n] for n in used[:retried]) < 6.0
    assert used[retried : retried + 15] == [2] * 15 and tuner.kept == 2 and tuner.switches == 1


def test_every_core_is_not_probed_again_on_an_idle_machine_but_load_is_seen_at_once():
    machine = Machine(IDLE_2)
    tuner = tuner_for(machine, 2)
    used = run(tuner, machine, int(8 / IDLE_2[2]))  # an 8-s session
    assert used.count(1) <= 5 + 3  # the first sample, and at most one probe of one thread
    machine.times = LOADED_2  # a game starts: the team of both cores collapses
    used = run(tuner, machine, 40)
    # the drift of the team's times shows within a few frames; a later probe of two is cut short
    assert tuner.kept == 1 and used[:3] == [2] * 3 and used[3:30] == [1] * 27 and used.count(2) <= 5
