"""The subject stage of the chain: which people keep their alpha (`--subject`, issue #16).

It runs in the recurrent stage, in frame order, on the network's low-resolution output: a
`vidmatte.subject.SubjectTracker` follows the chosen people and gives each frame a gate (1 on
them, 0 on everyone else) that travels with the chunk and is multiplied into the alpha at the
end of the full-resolution stage (into the guided filter's alpha model where that stage is the
fused renderer: the same result, benchmarks/subject.md).

A choice made on frame N > 0 of a file needs the frames before N too: `prefix_gates` runs the
chain's own recurrent stage over frames 0..N once (low resolution only), makes the choice on N
and tracks back to 0; the real run then uses those gates for 0..N and tracks on from N+1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..io.sources import FrameSource
from ..model.network import Coarse
from ..options import MatteOptions
from ..subject import Selection, SubjectTracker, track_backward
from .chain import StageChain


def selection_of(options: MatteOptions) -> Selection | None:
    """The options' subject choice (None: everyone is kept); InputError for a malformed one."""
    if not (options.subjects or options.subject_boxes or options.subject_mask):
        return None
    return Selection.parse(options.subjects, options.subject_boxes, options.subject_mask, options.subject_frame)


@dataclass
class SubjectGates:
    """Per frame, in order: the gate `(h,w)` float32 of the chosen people (None: no choice yet).

    selection: the choice (None: none until `choose` is called, e.g. by a click in live mode).
    frame_size: (width, height) of the clip; fps: its rate. prefix: gates already known for
    frames 0..len(prefix)-1 (from `prefix_gates`), with `tracker` carrying on after them.
    """

    selection: Selection | None
    frame_size: tuple[int, int]
    fps: float = 30.0
    prefix: list[np.ndarray] = field(default_factory=list)
    tracker: SubjectTracker | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: Selection | None = None
        self._changed = False  # a new choice is pending
        self._interactive = False  # choices come from clicks: a miss is reported, not raised
        self._problem: str | None = None
        self._index = 0
        self._reports: list[str] = []
        if self.tracker is None and self.selection is not None:
            self.tracker = self._new(self.selection)

    def _new(self, selection: Selection) -> SubjectTracker:
        return SubjectTracker(selection, self.frame_size, fps=self.fps)

    def reset(self) -> None:
        """A new clip: frame numbers start at 0 and the choice is made again."""
        self._index = 0
        if self.tracker is not None and not self.prefix:
            self.tracker.reset()

    def choose(self, selection: Selection | None) -> None:
        """Choose again from the next frame on (from another thread: a click in the live view);
        None keeps everyone again. A choice that finds nobody is reported by `problem`."""
        with self._lock:
            self._pending = selection
            self._changed = True

    def problem(self) -> str | None:
        """The last choice's one-line error (no person there), taken once."""
        with self._lock:
            problem, self._problem = self._problem, None
        return problem

    def gates(self, coarse: Coarse, new_shot: bool) -> list[np.ndarray] | None:
        """The gates of a chunk's frames (None: everyone kept); `new_shot`: its first frame starts a shot."""
        self._take_pending()
        count = coarse.y.shape[0]
        start, self._index = self._index, self._index + count
        if self.tracker is None:
            return None
        gates = []
        for i in range(count):
            index = start + i
            if index < len(self.prefix):
                gates.append(self.prefix[index])
                continue
            if index < self.tracker.selection.frame:
                gates.append(np.ones(coarse.y.shape[-2:], np.float32))  # not chosen yet: everyone
                continue
            alpha = coarse.y[i, 3].clamp(0, 1)
            try:
                gates.append(self.tracker.update(alpha, coarse.small[i], new_shot=new_shot and i == 0, index=index))
            except InputError as error:
                if not self._interactive:
                    raise
                with self._lock:
                    self._problem = str(error)  # a click on the background: say so, keep going
                self.tracker = None
                return None
        return gates

    def _take_pending(self) -> None:
        with self._lock:
            if not self._changed:
                return
            self._changed = False
            selection, self._pending = self._pending, None
        self._interactive = True
        self.prefix = []
        if selection is None:
            self.tracker = None
            return
        if self.tracker is not None:
            self._reports.extend(self.tracker.report())
        self.tracker = self._new(
            Selection(
                selection.points, selection.boxes, selection.mask, selection.mask_name, selection.largest, self._index
            )
        )

    def report(self) -> list[str]:
        """What was chosen and why, and what happened to the choice: lines for the closing summary."""
        return self._reports + (self.tracker.report() if self.tracker is not None else [])


def prefix_gates(
    open_source: Callable[[], FrameSource],
    chain: StageChain,
    selection: Selection,
    frame_size: tuple[int, int],
    fps: float,
) -> SubjectGates:
    """Gates for a choice on frame N > 0: a low-resolution pass over frames 0..N of a fresh source
    through `chain`'s recurrent stage (the real run's, so the same alphas; the chain is reset
    before and after), the choice on N, then frames N-1..0 tracked backward. Keeps about 0.6 MB
    a frame (720p) until it returns."""
    from .runner import chunks

    chain.reset()
    alphas: list[np.ndarray] = []
    pictures: list[np.ndarray] = []
    cuts: set[int] = set()
    last = selection.frame
    with open_source() as source:
        for part in chunks(source, chain.plan.front_chunk):
            for chunk in chain.recurrent(chain.front(part)):
                if chunk.new_shot and alphas:
                    cuts.add(len(alphas))
                for i in range(len(chunk)):
                    alphas.append((chunk.coarse.y[i, 3].float().clamp(0, 1) * 255).round().byte().cpu().numpy())
                    pictures.append(
                        (chunk.coarse.small[i].float().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).cpu().numpy()
                    )
            if len(alphas) > last:
                break
    chain.reset()
    if len(alphas) <= last:
        selection.check_frame_count(len(alphas))  # raises: the clip ends before the chosen frame
    tracker = SubjectTracker(selection, frame_size, fps=fps)
    chosen = tracker.update(alphas[last].astype(np.float32) / 255, pictures[last], new_shot=last in cuts, index=last)
    before = track_backward(tracker, [a.astype(np.float32) / 255 for a in alphas[:last]], pictures[:last], cuts)
    return SubjectGates(selection, frame_size, fps, prefix=[*before, chosen], tracker=tracker)
