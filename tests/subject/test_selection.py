"""Selection specs and their one-line errors; the gate helpers; the still-picture gate."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.subject.conftest import HEIGHT, WIDTH, kept, point_on
from vidmatte import InputError
from vidmatte.subject import (
    Selection,
    SubjectTracker,
    gate_alpha,
    gate_coefficients,
    load_mask,
    parse_box,
    parse_point,
    still_gate,
    upsample_gate,
)

SIZE = (WIDTH, HEIGHT)


def one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_specs_parse():
    assert parse_point("10,20") == (10.0, 20.0)
    assert parse_point(" 10.5 , 20 ") == (10.5, 20.0)
    assert parse_box("1,2,30,40") == (1.0, 2.0, 30.0, 40.0)
    s = Selection.parse(["10,20", "30,40"], ["0,0,5,5"], frame=3)
    assert s.points == ((10.0, 20.0), (30.0, 40.0)) and s.boxes == ((0.0, 0.0, 5.0, 5.0),) and s.frame == 3
    assert Selection.parse(["largest"]).largest
    assert Selection.parse([]) is None  # no selection: everyone, as without the options


@pytest.mark.parametrize(
    "call, words",
    [
        (lambda: parse_point("abc"), "X,Y"),
        (lambda: parse_point("1,2,3"), "X,Y"),
        (lambda: parse_box("1,2,3"), "X0,Y0,X1,Y1"),
        (lambda: parse_box("30,2,10,40"), "X0 < X1"),
        (lambda: Selection.parse(["largest", "1,2"]), "cannot be combined"),
        (lambda: Selection.parse([], frame=5), "--subject-frame needs"),
        (lambda: Selection.parse(["1,2"], frame=-1), "0 or more"),
    ],
)
def test_bad_specs_are_one_line_errors(call, words):
    with pytest.raises(InputError) as error:
        call()
    assert words in one_line(error)


def test_geometry_is_checked_against_the_frame():
    with pytest.raises(InputError) as error:
        Selection.parse(["400,10"]).check_frame(320, 180)
    assert "outside the 320x180 picture" in one_line(error)
    with pytest.raises(InputError) as error:
        Selection.parse(boxes=["330,0,400,50"]).check_frame(320, 180)
    assert "outside" in one_line(error)
    with pytest.raises(InputError) as error:
        Selection(mask=np.ones((100, 100), bool)).check_frame(320, 180)
    assert "100x100 but the frame is 320x180" in one_line(error)
    Selection(mask=np.ones((320, 180), bool)).check_frame(180, 320)  # portrait frame, portrait mask
    with pytest.raises(InputError) as error:
        Selection(mask=np.ones((180, 320), bool)).check_frame(180, 320)
    assert "rotated?" in one_line(error)
    with pytest.raises(InputError) as error:
        Selection(mask=np.zeros((180, 320), bool)).check_frame(320, 180)
    assert "empty" in one_line(error)
    with pytest.raises(InputError) as error:
        Selection.parse(["1,1"], frame=10).check_frame_count(5)
    assert "--subject-frame 10 but the clip has 5 frames" in one_line(error)
    SubjectTracker(Selection.parse(["319,179"]), (320, 180))  # the last pixel is inside


def test_mask_files(tmp_path):
    mask = np.zeros((40, 60), np.uint8)
    mask[10:30, 20:40] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    assert load_mask(tmp_path / "m.png").sum() == 400
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., :3] = 255  # white everywhere: the alpha channel is what says who
    rgba[5:15, 5:15, 3] = 255
    cv2.imwrite(str(tmp_path / "cut.png"), rgba)
    assert load_mask(tmp_path / "cut.png").sum() == 100
    for bad, words in ((tmp_path / "nope.png", "does not exist"), (tmp_path, "not a file")):
        with pytest.raises(InputError) as error:
            load_mask(bad)
        assert words in one_line(error)
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(InputError) as error:
        Selection.parse(mask=tmp_path / "junk.png")
    assert "not an image" in one_line(error)


def test_nobody_there_is_a_one_line_error_on_the_selection_frame(crossing):
    background = (WIDTH // 2, 5)  # top middle: backdrop at frame 0
    assert crossing.alpha[0][background[1], background[0]] < 0.01
    tracker = SubjectTracker(Selection.at(*background, frame=7), SIZE)
    with pytest.raises(InputError) as error:
        tracker.update(crossing.alpha[0], crossing.small[0])
    message = one_line(error)
    assert message.startswith(f"no person at {background[0]},{background[1]} on frame 7")
    assert "nearest person is around" in message
    with pytest.raises(InputError) as error:
        SubjectTracker(Selection.parse(boxes=["110,0,150,10"]), SIZE).update(crossing.alpha[0], crossing.small[0])
    assert "no person in --subject-box 110,0,150,10 on frame 0" in one_line(error)
    empty = np.zeros((HEIGHT, WIDTH), bool)
    empty[:10, 110:150] = True
    with pytest.raises(InputError) as error:
        SubjectTracker(Selection(mask=empty, mask_name="m.png"), SIZE).update(crossing.alpha[0], crossing.small[0])
    assert "no person inside subject m.png on frame 0" in one_line(error)


def test_still_gate(crossing):
    """One picture (the clip's first frame as a still): a click keeps that person only."""
    for k in (0, 1):
        gate, lines = still_gate(crossing.alpha[0], crossing.small[0], Selection.at(*point_on(crossing, k)), SIZE)
        pred = crossing.alpha[0] * gate
        assert kept(pred, crossing.visible[0, k]) > 0.9 and kept(pred, crossing.visible[0, 1 - k]) < 0.05
        assert "in the picture" in lines[0]
    with pytest.raises(InputError) as error:
        still_gate(crossing.alpha[0], crossing.small[0], Selection.at(WIDTH // 2, 5), SIZE)
    assert one_line(error).startswith(f"no person at {WIDTH // 2},5 in the picture")


def test_a_click_on_the_edge_snaps_to_the_person(crossing):
    ys, xs = np.nonzero(crossing.alpha[0] >= 0.5)
    top = int(ys.min())
    x = int(xs[ys == top][0])
    tracker = SubjectTracker(Selection.at(x, max(top - 1, 0)), SIZE)  # one pixel above the head
    gate = tracker.update(crossing.alpha[0], crossing.small[0])
    assert gate.max() == 1.0


def test_gate_helpers():
    gate = np.zeros((4, 6), np.float32)
    gate[:, :3] = 1
    up = upsample_gate(gate, (8, 12))
    assert up.shape == (1, 1, 8, 12)
    assert float(up[0, 0, :, :5].min()) == 1.0 and float(up[0, 0, :, 7:].max()) == 0.0
    alpha = torch.full((2, 1, 8, 12), 0.5)
    gated = gate_alpha(alpha, [gate, 1 - gate])
    assert torch.allclose(gated[0], 0.5 * up[0]) and torch.allclose(gated[1], 0.5 * (1 - up[0]))
    ab = torch.rand(1, 8, 4, 6)
    coef = gate_coefficients(ab, gate)
    assert torch.equal(coef[:, [0, 1, 2, 4, 5, 6]], ab[:, [0, 1, 2, 4, 5, 6]])  # colour untouched
    assert torch.equal(coef[0, 3], ab[0, 3] * torch.from_numpy(gate)) and torch.equal(
        coef[0, 7, :, 3:], torch.zeros(4, 3)
    )
