"""Choose who is cut out: only the selected people keep their alpha (issue #16).

`Selection` parses and checks what the user chose (points, boxes, a mask, or `largest`, on
frame `frame`); `SubjectTracker` follows the chosen people frame by frame on the network's
low-resolution output and gives a gate, 1 on them and 0 on everyone else, that is multiplied
into the alpha (`gate_alpha`); `still_gate` does the same for one picture.

Video, frame by frame or a `Coarse` chunk at a time::

    selection = Selection.parse(subjects, boxes, mask_path, subject_frame)  # None: no option given
    selection.check_frame(width, height)            # fail before the run (the tracker checks too)
    tracker = SubjectTracker(selection, (width, height), fps=fps)
    coarse = matter.coarse(frames)                  # or step_coarse
    gates = track_coarse(tracker, coarse, new_shots)  # new_shots: per frame, starts a new shot
    matte = matter.refine(coarse)
    alpha = gate_alpha(matte.alpha, gates)          # last, after any edge refinement or smoothing
    ...
    notes = tracker.report()                        # what was chosen and why, for the summary

At a detected cut pass `new_shot=True` for the cut's first frame; do not `reset()` the tracker
(that means "a new clip, choose again on the selection frame"). A point, box or mask with no
person on the selection frame raises a one-line `InputError` from `update`. For a selection
frame N > 0, see `track_backward`; for stills, `still_gate`.
"""

from .apply import gate_alpha, gate_coefficients, track_coarse, upsample_gate
from .selection import Selection, load_mask, parse_box, parse_point
from .still import still_gate
from .tracker import SubjectTracker, track_backward

__all__ = [
    "Selection",
    "SubjectTracker",
    "gate_alpha",
    "gate_coefficients",
    "load_mask",
    "parse_box",
    "parse_point",
    "still_gate",
    "track_backward",
    "track_coarse",
    "upsample_gate",
]
