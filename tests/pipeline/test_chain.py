"""The stage chain and its runner: resets, shots, renderers and failures, on real network output."""

from __future__ import annotations

import dataclasses
import threading
from fractions import Fraction

import numpy as np
import pytest

from tests.conftest import moving_clip
from vidmatte.compose import make_background
from vidmatte.pipeline import StageChain, run_chain
from vidmatte.plan import plan_run
from vidmatte.temporal import AlphaSmoother
from vidmatte.types import Rendered, VideoFrame

H, W = 96, 128


@pytest.fixture(scope="module")
def frames(sample_rgb):
    shot_a = moving_clip(sample_rgb, H, W, frames=5)
    shot_b = moving_clip(np.ascontiguousarray(sample_rgb[::-1, :, ::-1]), H, W, frames=4, seed=2)  # a hard cut
    return [VideoFrame(rgb, i, Fraction(1, 25)) for i, rgb in enumerate(np.concatenate([shot_a, shot_b]))]


def _run(chain, frames):
    out: list[Rendered] = []
    run_chain(frames, chain, out.append)
    return out


def test_every_shot_starts_fresh_and_the_first_is_a_shot(engine, frames):
    chain = StageChain(engine, plan_run(engine, (H, W), chunk_size=3), "rgba", warmup=2)
    chain.reset()
    starts = []
    for start in range(0, len(frames), 3):
        for chunk in chain.recurrent(chain.front(frames[start : start + 3])):
            starts.append((chunk.frames[0].pts, len(chunk), chunk.new_shot))
    # chunks of 3 cut at the shot change (frame 5): [0-2] [3-4 | 5] [6-8]
    assert starts == [(0, 3, True), (3, 2, False), (5, 1, True), (6, 3, False)]
    shot_b = StageChain(engine, plan_run(engine, (H, W), chunk_size=3), "rgba", warmup=2)
    fresh = np.concatenate([r.pictures for r in _run(shot_b, frames[5:])])
    joined = np.concatenate([r.pictures for r in _run(chain, frames)])
    assert np.abs(joined[5:].astype(int) - fresh).max() <= 1  # after the cut: as if the clip began there


def test_a_batched_front_feeds_the_decoder_frame_by_frame(engine, frames):
    plan = plan_run(engine, (H, W))
    assert plan.front_chunk == 4 and plan.chunk_size == 1
    chain = StageChain(engine, plan, "rgba", warmup=1)
    chain.reset()
    seen = []
    for start in range(0, len(frames), plan.front_chunk):
        for chunk in chain.recurrent(chain.front(frames[start : start + plan.front_chunk])):
            seen.append((chunk.frames[0].pts, len(chunk), chunk.new_shot))
    # one chunk a frame; the cut (frame 5) inside the second batch starts a shot there only
    assert seen == [(i, 1, i in (0, 5)) for i in range(len(frames))]
    batched = np.concatenate([r.pictures for r in _run(chain, frames)])
    one_by_one = StageChain(engine, dataclasses.replace(plan, front_chunk=1), "rgba", warmup=1)
    single = np.concatenate([r.pictures for r in _run(one_by_one, frames)])
    assert batched.shape == single.shape == (len(frames), H, W, 4)
    assert np.abs(batched.astype(int) - single).max() <= 1


def test_smoother_ramps_only_where_the_network_is_not_primed(engine):
    """One rule (`smoother_for`): the chain's smoother has no warm-up ramp after priming."""
    primed = StageChain(engine, plan_run(engine, (H, W), smooth=True), "rgba", smooth=0.9, warmup=2)
    unprimed = StageChain(engine, plan_run(engine, (H, W), smooth=True), "rgba", smooth=0.9, warmup=0)
    assert primed.smoother is not None and primed.smoother.warmup == 0
    assert unprimed.smoother is not None and unprimed.smoother.warmup == AlphaSmoother().warmup > 0


def test_reset_makes_a_second_run_equal_the_first(engine, frames):
    chain = StageChain(engine, plan_run(engine, (H, W), smooth=True), "rgba", smooth=0.9, warmup=1)
    first = np.concatenate([r.pictures for r in _run(chain, frames)])
    second = np.concatenate([r.pictures for r in _run(chain, frames)])
    np.testing.assert_array_equal(first, second)  # state, detector and smoother all started over


def test_fused_and_general_renderers_agree(engine, frames):
    background = make_background("#2040c0", W, H)
    fused_plan = plan_run(engine, (H, W))
    assert fused_plan.fused
    general_plan = dataclasses.replace(fused_plan, fused=False)
    fused = np.concatenate([r.pictures for r in _run(StageChain(engine, fused_plan, "composite", background), frames)])
    general = np.concatenate(
        [r.pictures for r in _run(StageChain(engine, general_plan, "composite", background), frames)]
    )
    assert fused.shape == general.shape == (len(frames), H, W, 3)
    assert np.abs(fused.astype(int) - general).max() <= 1


def test_a_failing_sink_stops_every_thread_and_raises_here(engine, frames):
    chain = StageChain(engine, plan_run(engine, (H, W)), "alpha")
    before = threading.active_count()
    seen = []

    def sink(rendered: Rendered) -> None:
        seen.append(len(rendered))
        if len(seen) == 2:
            raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        run_chain(frames, chain, sink)
    assert threading.active_count() == before and len(seen) == 2


def test_a_failing_source_is_raised_here(engine, frames):
    def broken():
        yield from frames[:3]
        raise ValueError("decoder died")

    with pytest.raises(ValueError, match="decoder died"):
        run_chain(broken(), StageChain(engine, plan_run(engine, (H, W)), "rgba"), lambda rendered: None)


def test_refusals(engine):
    plan = plan_run(engine, (H, W))
    with pytest.raises(ValueError, match="background"):
        StageChain(engine, plan, "composite")
    with pytest.raises(ValueError, match="fused"):
        StageChain(engine, plan, "rgba", smooth=0.9)
