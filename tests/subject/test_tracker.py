"""The subject tracker on generated clips matted by the real network: the chosen person keeps
its alpha, everyone else goes to 0, through a crossing and out of the picture."""

from __future__ import annotations

import numpy as np
import pytest

from tests.subject.conftest import HEIGHT, WIDTH, kept, point_on
from vidmatte.subject import Selection, SubjectTracker, track_backward

SIZE = (WIDTH, HEIGHT)


def run(clip, selection: Selection, frames=None) -> tuple[list[np.ndarray], SubjectTracker]:
    tracker = SubjectTracker(selection, SIZE, fps=30)
    frames = range(len(clip.alpha)) if frames is None else frames
    return [tracker.update(clip.alpha[t], clip.small[t]) for t in frames], tracker


def leak(pred: np.ndarray, visible: np.ndarray, k: int) -> float:
    """Alpha kept on the others' visible alpha beyond k's truth, as a share of their visible area."""
    others = np.clip(visible.sum(0) - visible[k], 0, 1)
    return float(np.minimum(others, np.maximum(pred - visible[k], 0)).sum() / max(others.sum(), 1e-6))


@pytest.mark.parametrize("k", [0, 1], ids=["front", "behind"])
def test_the_chosen_one_is_kept_and_the_other_is_gone(crossing, k):
    gates, tracker = run(crossing, Selection.at(*point_on(crossing, k)))
    first, last = 0, len(gates) - 1
    for t in (first, last):  # before and after the crossing, both people in full view
        pred = crossing.alpha[t] * gates[t]
        assert kept(pred, crossing.visible[t, k]) > 0.9
        assert leak(pred, crossing.visible[t], k) < 0.02
        assert gates[t].dtype == np.float32 and gates[t].shape == crossing.alpha[t].shape
    assert any("subject:" in line for line in tracker.report())


@pytest.mark.parametrize("k", [0, 1], ids=["front", "behind"])
def test_crossing_does_not_swap_them(crossing, k):
    gates, _ = run(crossing, Selection.at(*point_on(crossing, k)))
    other = 1 - k
    for t, gate in enumerate(gates):
        pred = crossing.alpha[t] * gate
        mine, theirs = kept(pred, crossing.visible[t, k]), kept(pred, crossing.visible[t, other])
        if crossing.visible[t, other].sum() > 200:
            assert theirs < 0.2, f"frame {t}: {theirs:.0%} of the other person kept"
        if crossing.visible[t, k].sum() > 0.3 * crossing.visible[0, k].sum():
            assert mine > 0.75, f"frame {t}: only {mine:.0%} of the chosen person kept"


def test_without_the_gate_both_are_there(crossing):
    """The clip really has two people matted by the network (so the tests above can fail)."""
    for k in (0, 1):
        assert kept(crossing.alpha[0], crossing.visible[0, k]) > 0.9


def test_a_chosen_person_who_leaves_gives_an_empty_matte(leaving):
    gates, tracker = run(leaving, Selection.at(*point_on(leaving, 0)))
    assert kept(leaving.alpha[0] * gates[0], leaving.visible[0, 0]) > 0.9
    gone = [t for t in range(len(gates)) if leaving.visible[t, 0].sum() == 0]
    assert gone, "the clip should end with the chosen person out of the picture"
    for t in gone:
        assert float((leaving.alpha[t] * gates[t]).sum()) < 5.0  # nothing of the one who stayed
    assert kept(leaving.alpha[-1], leaving.visible[-1, 1]) > 0.9  # who is still matted by the network
    assert any("left the picture" in line for line in tracker.report())


def test_largest_picks_the_bigger_person(crossing):
    gates, tracker = run(crossing, Selection(largest=True), frames=range(3))
    pred = crossing.alpha[2] * gates[2]
    assert kept(pred, crossing.visible[2, 0]) > 0.9 and kept(pred, crossing.visible[2, 1]) < 0.05
    assert "largest" in tracker.report()[0]


def test_several_points_choose_several_people(crossing):
    selection = Selection.parse([f"{x},{y}" for x, y in (point_on(crossing, 0), point_on(crossing, 1))])
    gates, _ = run(crossing, selection, frames=range(3))
    for k in (0, 1):
        assert kept(crossing.alpha[2] * gates[2], crossing.visible[2, k]) > 0.9


def test_box_and_mask_choose_the_person_inside(crossing):
    ys, xs = np.nonzero(crossing.visible[0, 1] > 0.5)
    box = f"{xs.min() - 2},{ys.min() - 2},{xs.max() + 2},{ys.max() + 2}"
    for selection in (Selection.parse(boxes=[box]), Selection(mask=crossing.visible[0, 1] > 0.5)):
        gates, _ = run(crossing, selection, frames=range(2))
        pred = crossing.alpha[1] * gates[1]
        assert kept(pred, crossing.visible[1, 1]) > 0.9 and leak(pred, crossing.visible[1], 1) < 0.02


def test_a_later_choice_frame_is_tracked_backward(crossing):
    """Chosen on the last frame; the frames before it are tracked backward from there."""
    n = len(crossing.alpha)
    k = 1
    x, y = point_on(crossing, k, n - 1)
    tracker = SubjectTracker(Selection.at(x, y, frame=n - 1), SIZE, fps=30)
    tracker.update(crossing.alpha[n - 1], crossing.small[n - 1])
    gates = track_backward(tracker, crossing.alpha[: n - 1], crossing.small[: n - 1])
    assert len(gates) == n - 1
    pred = crossing.alpha[0] * gates[0]
    assert kept(pred, crossing.visible[0, k]) > 0.9 and leak(pred, crossing.visible[0], k) < 0.02
    assert f"frame {n - 1}" in tracker.report()[0]


def test_a_hard_cut_refinds_the_subject_where_it_was(crossing, leaving):
    """Shot A then shot B (a cut): the subject is re-found by its place, or `largest` re-chosen."""
    k = 1  # crossing's person 1 ends on the left; leaving's person 1 stands on the left
    tracker = SubjectTracker(Selection.at(*point_on(crossing, k)), SIZE, fps=30)
    for t in range(len(crossing.alpha)):
        tracker.update(crossing.alpha[t], crossing.small[t])
    gate = tracker.update(leaving.alpha[0], leaving.small[0], new_shot=True)
    pred = leaving.alpha[0] * gate
    assert kept(pred, leaving.visible[0, 1]) > 0.9 and kept(pred, leaving.visible[0, 0]) < 0.05
    assert any("hard cut" in line for line in tracker.report())

    largest = SubjectTracker(Selection(largest=True), SIZE, fps=30)
    largest.update(crossing.alpha[0], crossing.small[0])
    gate = largest.update(leaving.alpha[0], leaving.small[0], new_shot=True)
    assert largest.chosen and float(gate.max()) == 1.0


def test_reset_starts_again_on_the_selection_frame(crossing):
    tracker = SubjectTracker(Selection.at(*point_on(crossing, 0)), SIZE, fps=30)
    first = tracker.update(crossing.alpha[0], crossing.small[0])
    tracker.update(crossing.alpha[1], crossing.small[1])
    tracker.reset()
    again = tracker.update(crossing.alpha[0], crossing.small[0])
    np.testing.assert_array_equal(first, again)


def test_track_coarse_follows_the_network_chunk_by_chunk(matter, crossing):
    """Fed `Matter.step_coarse` output directly (torch tensors, T frames a chunk)."""
    from vidmatte import EMPTY_STATE
    from vidmatte.subject import track_coarse

    coarse, _ = matter.step_coarse(crossing.frames[:3], EMPTY_STATE)
    selection = Selection.at(*point_on(crossing, 0))
    gates = track_coarse(SubjectTracker(selection, SIZE), coarse)
    manual = SubjectTracker(selection, SIZE)
    for i, gate in enumerate(gates):
        alpha = coarse.y[i, 3].clamp(0, 1).numpy()
        small = coarse.small[i].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(gate, manual.update(alpha, small))
    assert kept(coarse.y[2, 3].clamp(0, 1).numpy() * gates[2], crossing.visible[2, 0]) > 0.9
