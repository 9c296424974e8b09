"""Choose who is cut out: only the selected people keep their alpha (issue #16).

`Selection` parses and checks what the user chose (points, boxes, a mask, or `largest`, on
frame `frame`); `SubjectTracker` follows the chosen people frame by frame on the network's
low-resolution output and gives a gate, 1 on them and 0 on everyone else, that is multiplied
into the alpha (`gate_alpha`); `still_gate` does the same for one picture.
"""

from .apply import gate_alpha, gate_coefficients, track_coarse, upsample_gate
from .selection import Selection, load_mask, parse_box, parse_point
from .still import still_gate
from .tracker import SubjectTracker, track_backward

__all__ = ["Selection", "SubjectTracker", "gate_alpha", "gate_coefficients", "load_mask", "parse_box",
           "parse_point", "still_gate", "track_backward", "track_coarse", "upsample_gate"]
