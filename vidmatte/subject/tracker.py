"""`SubjectTracker`: keeps the matte on the chosen people, frame after frame.

The network mattes everyone; this decides, per low-resolution pixel, who it belongs to, and
gives a gate that is 1 on the chosen people and 0 on everyone else. It works on what the
network already computed (its low-resolution alpha and input picture), causally, one frame
at a time:

1. People are regions of the alpha: its confident pixels (alpha >= 0.5, "cores") seed them and
   every soft pixel (alpha >= 0.05: hair, edges, motion blur) is shared out among them by a
   watershed on the picture's colours, so where two people touch or overlap the border follows
   the silhouette between them.
2. Each person is a track. From frame to frame a track's region is predicted by moving its
   last shape by its own velocity: where its picture and alpha shape of the last frame match
   this frame best (a masked template match at half resolution). A rigid prediction per
   person, not a per-pixel optical-flow warp of the labels: at a crossing per-pixel flow is at
   its worst (occlusion edges, uncovered background, flow smoothed across both people), while
   two people walking across each other have clearly different velocities, so a region wrongly
   taken by one is handed back as soon as they move apart. Pixels no prediction covers (a
   swinging arm) are flooded from the nearest person in step 1.
3. Where two predictions overlap, a pixel goes to the person whose motion explains the picture
   there (the previous frame moved by each one's velocity, compared with this frame), and where
   the picture cannot tell (flat clothes, same speed) to the one in front. Who is in front is
   the majority of those per-pixel verdicts, accumulated and remembered for the pair, since
   people cannot pass through each other. A band of BORDER px where two people meet is left to
   the colour-edge partition, and a person may not grow more than CONFINE px past its predicted
   shape where another person's shape reaches (someone coming out from behind borders the one
   in front, whose own shape is known).
4. A person hidden behind another keeps an "amodal" shape that moves on with its velocity
   under the occluder, and gets its pixels back when it comes out from behind (up to
   `memory` seconds). A person who leaves the picture is gone: a chosen person who leaves gives
   an empty matte, never someone else's. Cores no track predicts are new people (not chosen).
5. At a hard cut (`new_shot=True`) the tracks are dropped and the subject is found again: the
   largest person for `largest`, otherwise the person where the subject was last seen.

Cost at 512x288 (720p at the default ratio): see benchmarks/subject.md.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import cv2
import numpy as np

from ..errors import InputError
from .regions import (
    CORE,
    SOFT,
    bbox,
    boundary_free,
    components,
    fill_nearest,
    gate_from_labels,
    grown_box,
    partition,
    shift,
)
from .selection import Selection, _fmt

if TYPE_CHECKING:
    from torch import Tensor

#: smallest person for `largest`, re-finding and counting people: this share of the picture
MIN_PERSON = 0.002
#: an unpredicted core blob smaller than this share of the picture, joined by soft alpha to one
#: person only, is that person's (a hand, a strand); bigger ones, or ones between people, are new people
MIN_NEW = 0.001
#: a person vanishing in the open (not behind anyone) is kept this long in case the network
#: only lost them for a moment
GRACE_S = 0.3
#: after a hard cut without `largest`, how long the subject may take to appear where it was
REFIND_S = 1.0
#: the border band between two people that is re-decided from colour edges each frame (px)
BORDER = 2
#: how far (px) a person's region may grow past its predicted shape where another person's shape reaches
CONFINE = 3
#: ...and past that, pixels of an unhidden person this close to another person go to the other
STRAY_NEAR = 6
#: motion search: +- this many half-resolution px around the last velocity, which is capped at MAX_STEP
SEARCH = 6
MAX_STEP = 12
#: grey levels (5x5 mean) by which one person's motion must explain a pixel better than another's
PHOTO_MARGIN = 4.0
#: a person with at least this share of its shape hidden behind others counts as occluded
HIDDEN_MIN = 0.05


@dataclass
class _Track:
    """One person: a region of the label map."""

    id: int
    selected: bool
    template: np.ndarray  # bool (h,w): the whole shape (visible + hidden behind others), at offset 0
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))  # float px since the template was taken
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px per frame (x, y)
    lost: int = 0  # frames in a row with no visible pixels
    seen: int = 0  # frames with visible pixels
    peak: int = 0  # largest visible area (px)
    first: int = 0  # frame index of first sight
    last: int = 0  # frame index of last sight
    occluded: bool = False

    def predicted(self) -> np.ndarray:
        """Where its whole shape should be this frame: the template moved on by one more step."""
        off = self.offset + self.velocity
        return shift(self.template, int(round(off[0])), int(round(off[1])))


class SubjectTracker:
    """Causal tracker of the chosen people; `update` once per frame, in order (either direction).

    >>> tracker = SubjectTracker(Selection.parse(["640,360"]), frame_size=(1280, 720))
    >>> for alpha, small in frames:            # the network's low-res alpha (h,w) and input (h,w,3)
    ...     gate = tracker.update(alpha, small, new_shot=cut)   # (h,w) float32 in 0..1
    >>> print("\\n".join(tracker.report()))

    selection: who (its coordinates are full-resolution pixels of `frame_size` = (width, height)).
    fps: the clip's rate (time limits are in seconds). memory: how long a person hidden behind
    another is remembered.
    The first `update` is frame `selection.frame`: the choice is made there, and a point, box or
    mask with no person raises a one-line `InputError`. `largest` waits for the first person.
    """

    def __init__(
        self,
        selection: Selection,
        frame_size: tuple[int, int],
        *,
        fps: float = 30.0,
        memory: float = 3.0,
        place: str | None = None,
    ) -> None:
        width, height = int(frame_size[0]), int(frame_size[1])
        selection.check_frame(width, height)
        self.selection = selection
        self.frame_size = (width, height)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.memory = float(memory)
        self._place = place
        self._events: list[str] = []
        self._first_index = selection.frame
        self.reset()

    # ---- public ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the clip: the next `update` is the selection frame again."""
        self._tracks: dict[int, _Track] = {}
        self._order: dict[tuple[int, int], float] = {}
        self._labels: np.ndarray | None = None
        self._grey: np.ndarray | None = None  # float32 0..255, the last frame
        self._half: np.ndarray | None = None  # (h/2,w/2,2) float32: grey/255 and alpha, the last frame
        self._next_id = 1
        self._state = "choose"  # choose | wait-largest | wait-refind | track | lost
        self._index = self._first_index - 1
        self._step = 1
        self._last_subject: np.ndarray | None = None  # where the subject was last seen (bool, low-res)
        self._wait_until = 0
        self._events.clear()
        self._kept_out: set[int] = set()

    def update(
        self,
        alpha: np.ndarray | Tensor,
        small_rgb: np.ndarray | Tensor,
        new_shot: bool = False,
        index: int | None = None,
    ) -> np.ndarray:
        """The gate `(h,w)` float32 for the next frame.

        alpha: the network's low-resolution alpha `(h,w)` (or `(1,h,w)`) in 0..1; small_rgb: the
        picture it saw, `(h,w,3)` or `(3,h,w)`, uint8 or float in 0..1 (numpy, or torch on any
        device); new_shot: this frame starts a new shot.
        index: the frame's number for the report (default: one on from the last).
        """
        a = _host(alpha).astype(np.float32, copy=False)
        a = a.reshape(a.shape[-2:])
        rgb = _uint8_rgb(_host(small_rgb))
        if rgb.shape[:2] != a.shape:
            raise ValueError(f"alpha {a.shape} and picture {rgb.shape[:2]} differ in size")
        self._index = self._index + self._step if index is None else int(index)
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
        core, soft = a >= CORE, a >= SOFT
        size_changed = self._grey is not None and self._grey.shape != grey.shape
        if self._state == "choose":
            labels = self._choose(a, rgb, core, soft)
        elif new_shot or size_changed:
            labels = self._cut(a, rgb, core, soft)
        elif self._state == "wait-largest":
            labels = self._pick_largest(rgb, core, soft)
        elif self._state == "wait-refind":
            labels = self._refind(rgb, core, soft)
        else:
            labels = self._propagate(grey, rgb, a, core, soft)
        self._labels, self._grey, self._half = labels, grey, _half_planes(grey, a)
        return self._gate(labels, soft)

    def fork(self, reverse: bool = False) -> SubjectTracker:
        """An independent copy of the tracker as it is now, e.g. at the selection frame, to run
        over the frames before it in reverse (`reverse` flips velocities and frame numbering)."""
        other = SubjectTracker.__new__(SubjectTracker)
        other.__dict__.update(self.__dict__)
        sign = -1.0 if reverse else 1.0
        other._tracks = {
            k: _Track(
                t.id,
                t.selected,
                t.template.copy(),
                t.offset.copy(),
                sign * t.velocity,
                t.lost,
                t.seen,
                t.peak,
                t.first,
                t.last,
                t.occluded,
            )
            for k, t in self._tracks.items()
        }
        other._order = dict(self._order)
        other._events = []
        other._kept_out = set(self._kept_out)
        other._step = -self._step if reverse else self._step
        for name in ("_labels", "_grey", "_half", "_last_subject"):
            value = getattr(self, name)
            setattr(other, name, None if value is None else value.copy())
        return other

    @property
    def chosen(self) -> bool:
        """Whether a subject has been chosen (False while `largest` waits for a first person)."""
        return self._state not in ("choose", "wait-largest")

    def report(self) -> list[str]:
        """What was chosen and why, and what happened to it: lines for the closing summary."""
        lines = list(self._events)
        others = len(self._kept_out)
        if others:
            lines.append(
                f"{others} other {'person was' if others == 1 else 'people were'} kept out while the "
                "subject was followed"
            )
        return lines

    # ---- choosing ----------------------------------------------------------------------------

    def _scale(self, shape: tuple[int, int]) -> tuple[float, float]:
        h, w = shape
        return w / self.frame_size[0], h / self.frame_size[1]

    def _choose(self, a: np.ndarray, rgb: np.ndarray, core: np.ndarray, soft: np.ndarray) -> np.ndarray:
        """The selection frame: which people the selection names; InputError when it names nobody."""
        sel = self.selection
        if sel.largest:
            return self._pick_largest(rgb, core, soft)
        n, comp, areas = components(core)
        chosen: set[int] = set()
        splits: list[tuple[int, np.ndarray]] = []  # (component, chosen part) for people who touch others
        frame = self._place or f"on frame {self._index}"
        sx, sy = self._scale(a.shape)
        for x, y in sel.points:
            c = self._component_at(a, core, comp, x, y)
            if c == 0:
                raise InputError(f"no person at {_fmt(x)},{_fmt(y)} {frame}{self._nearest_hint(core, x, y)}")
            chosen.add(c)
        for box in sel.boxes:
            region = np.zeros(a.shape, bool)
            x0, y0, x1, y1 = box
            region[
                max(int(np.floor(y0 * sy)), 0) : int(np.ceil(y1 * sy)),
                max(int(np.floor(x0 * sx)), 0) : int(np.ceil(x1 * sx)),
            ] = True
            found = self._components_in(region, comp, areas, whole_share=0.6, splits=splits)
            if not found:
                raise InputError(f"no person in --subject-box {','.join(_fmt(v) for v in box)} {frame}")
            chosen |= found
        if sel.mask is not None:
            region = (
                cv2.resize(sel.mask.astype(np.float32), (a.shape[1], a.shape[0]), interpolation=cv2.INTER_AREA) >= 0.5
            )
            found = self._components_in(region, comp, areas, whole_share=0.8, splits=splits)
            if not found:
                raise InputError(f"no person inside subject {sel.mask_name} {frame}")
            chosen |= found
        return self._start(rgb, core, soft, n, comp, chosen, splits, why=f"{sel.describe()} {frame}")

    def _component_at(self, a: np.ndarray, core: np.ndarray, comp: np.ndarray, x: float, y: float) -> int:
        """The core component under full-resolution point (x, y), snapping a little to the nearest
        core: a click just outside an edge, or on hair, is meant for that person."""
        sx, sy = self._scale(a.shape)
        h, w = a.shape
        px = min(max(int((x + 0.5) * sx), 0), w - 1)
        py = min(max(int((y + 0.5) * sy), 0), h - 1)
        if core[py, px]:
            return int(comp[py, px])
        diag = float(np.hypot(h, w))
        radius = 0.04 * diag if a[py, px] >= SOFT else max(2.0, 0.005 * diag)
        r = int(np.ceil(radius))
        ys, xs = np.nonzero(core[max(py - r, 0) : py + r + 1, max(px - r, 0) : px + r + 1])
        if ys.size == 0:
            return 0
        d = np.hypot(ys + max(py - r, 0) - py, xs + max(px - r, 0) - px)
        i = int(np.argmin(d))
        return int(comp[ys[i] + max(py - r, 0), xs[i] + max(px - r, 0)]) if d[i] <= radius else 0

    def _nearest_hint(self, core: np.ndarray, x: float, y: float) -> str:
        if not core.any():
            return " (no person was found there at all)"
        sx, sy = self._scale(core.shape)
        ys, xs = np.nonzero(core)
        i = int(np.argmin(np.hypot(xs / sx - x, ys / sy - y)))
        return f" (the nearest person is around {int(xs[i] / sx)},{int(ys[i] / sy)})"

    @staticmethod
    def _components_in(
        region: np.ndarray,
        comp: np.ndarray,
        areas: np.ndarray,
        whole_share: float,
        splits: list[tuple[int, np.ndarray]],
    ) -> set[int]:
        """Components mostly inside `region` (a box or mask); a component that `region` covers
        only in part but that fills much of it is a person touching others: split at `region`."""
        inside = np.bincount(comp[region], minlength=len(areas))
        found = set()
        capacity = max(int(region.sum()), 1)
        for c in np.flatnonzero(inside[1:]) + 1:
            share = inside[c] / areas[c]
            if share >= whole_share:
                found.add(int(c))
            elif inside[c] >= 0.3 * capacity:
                splits.append((int(c), region & (comp == c)))
                found.add(int(c))
        return found

    def _pick_largest(self, rgb: np.ndarray, core: np.ndarray, soft: np.ndarray) -> np.ndarray:
        n, comp, areas = components(core)
        areas = areas[1:]
        if n <= 1 or areas.max() < MIN_PERSON * core.size:
            self._state = "wait-largest"
            return np.zeros(core.shape, np.int32)
        c = int(np.argmax(areas)) + 1
        share = areas[c - 1] / core.size
        why = f"the largest person {self._place or f'on frame {self._index}'} ({share:.0%} of the picture)"
        return self._start(rgb, core, soft, n, comp, {c}, [], why=why)

    def _start(
        self,
        rgb: np.ndarray,
        core: np.ndarray,
        soft: np.ndarray,
        n: int,
        comp: np.ndarray,
        chosen: set[int],
        splits: list[tuple[int, np.ndarray]],
        why: str,
    ) -> np.ndarray:
        """Tracks for every core component of this frame, `chosen` ones selected."""
        markers = np.zeros(core.shape, np.int32)
        selected_ids: set[int] = set()
        split_parts = {c: part for c, part in splits}
        owner_of = _group_pieces(comp, n, soft, keep=set(split_parts))
        chosen = {int(owner_of[c]) for c in chosen}
        tid_of: dict[int, int] = {}
        for c in range(1, n):
            piece = comp == c
            if owner_of[c] != c:
                continue  # a piece of a bigger blob: marked with it below
            if c in split_parts:
                # a chosen person touching others: the box/mask says where; the border band is left
                # to the colour edges
                kernel = np.ones((2 * BORDER + 1, 2 * BORDER + 1), np.uint8)
                inner = cv2.erode(split_parts[c].astype(np.uint8), kernel).astype(bool)
                outer = piece & ~cv2.dilate(split_parts[c].astype(np.uint8), kernel).astype(bool)
                tid = self._new_id()
                markers[inner] = tid
                selected_ids.add(tid)
                if outer.any():
                    markers[outer] = self._new_id()
                continue
            tid = tid_of[c] = self._new_id()
            markers[piece] = tid
            if c in chosen:
                selected_ids.add(tid)
        for c in range(1, n):
            if owner_of[c] != c and int(owner_of[c]) in tid_of:  # (next to a split person: flooded)
                markers[comp == c] = tid_of[int(owner_of[c])]
        labels = fill_nearest(partition(markers, rgb, soft), soft)
        self._tracks = {}
        for tid in np.unique(markers[markers > 0]):
            mask = labels == tid
            self._tracks[int(tid)] = _Track(
                int(tid), int(tid) in selected_ids, mask, first=self._index, last=self._index
            )
        self._state = "track"
        note = ""
        if splits:
            note = "; it touches others there, split along the selection's outline"
        self._events.append(f"subject: {why}{note}")
        self._after_frame(labels)
        return labels

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # ---- hard cuts ---------------------------------------------------------------------------

    def _cut(self, a: np.ndarray, rgb: np.ndarray, core: np.ndarray, soft: np.ndarray) -> np.ndarray:
        """A new shot: the old tracks mean nothing here; find the subject again."""
        self._tracks, self._order = {}, {}
        self._grey = self._half = None
        if self._last_subject is not None and self._last_subject.shape != core.shape:
            self._last_subject = cv2.resize(
                self._last_subject.astype(np.uint8), (core.shape[1], core.shape[0]), interpolation=cv2.INTER_NEAREST
            ).astype(bool)
        if self.selection.largest:
            self._events.append(f"frame {self._index}: hard cut, choosing the largest person again")
            return self._pick_largest(rgb, core, soft)
        self._wait_until = self._index + self._step * int(round(REFIND_S * self.fps))
        return self._refind(rgb, core, soft)

    def _refind(self, rgb: np.ndarray, core: np.ndarray, soft: np.ndarray) -> np.ndarray:
        """After a cut: the person (people) where the subject was last seen, if any appears soon."""
        old = self._last_subject
        n, comp, areas = components(core)
        chosen: set[int] = set()
        best = 0.0
        if old is not None and old.any() and n > 1:
            overlap = np.bincount(comp[old], minlength=n)
            for c in range(1, n):
                area = areas[c]
                if area < MIN_PERSON * core.size:
                    continue
                score = overlap[c] / min(area, int(old.sum()))
                if score >= 0.3:
                    chosen.add(c)
                    best = max(best, score)
        if chosen:
            return self._start(
                rgb,
                core,
                soft,
                n,
                comp,
                chosen,
                [],
                why=f"hard cut at frame {self._index}: the person where it was before ({best:.0%} overlap)",
            )
        passed = (self._index - self._wait_until) * self._step >= 0
        if passed:
            self._events.append(
                f"frame {self._index}: after the hard cut nobody appeared where the subject "
                "was; the matte stays empty in this shot"
            )
            self._state = "lost"
        else:
            self._state = "wait-refind"
        return np.zeros(core.shape, np.int32)

    # ---- tracking ----------------------------------------------------------------------------

    def _propagate(
        self, grey: np.ndarray, rgb: np.ndarray, a: np.ndarray, core: np.ndarray, soft: np.ndarray
    ) -> np.ndarray:
        if self._state == "lost" or not self._tracks:
            return np.zeros(core.shape, np.int32)  # nobody to follow: the gate is empty until a cut
        tracks = list(self._tracks.values())
        self._measure_motion(tracks, grey, a)
        predicted = {t.id: t.predicted() for t in tracks}
        claims = {tid: p & core for tid, p in predicted.items()}
        count = np.zeros(core.shape, np.uint8)
        for p in claims.values():
            count += p
        owner = np.zeros(core.shape, np.int32)
        for tid, p in claims.items():
            owner[p & (count == 1)] = tid
        self._contests(tracks, claims, count, owner, grey)
        # a person coming out from behind another appears next to where its hidden shape was
        # predicted; the prediction's uncertainty grows with the time it was hidden
        for t in tracks:
            if t.lost:
                r = int(min(2 + t.lost // 4, 8))
                near = cv2.dilate(predicted[t.id].astype(np.uint8), _disc(r)).astype(bool)
                owner[near & core & (count == 0) & (owner == 0)] = t.id
        markers = boundary_free(owner, BORDER)
        labels = self._new_people(markers, rgb, core, soft)
        labels = self._confine(labels, predicted)
        self._update_tracks(labels, predicted)
        self._after_frame(labels)
        return labels

    def _confine(self, labels: np.ndarray, predicted: dict[int, np.ndarray]) -> np.ndarray:
        """Pixels flooded to a person far outside its predicted shape go to another person whose
        predicted shape does reach them.

        Where someone comes out from behind another, the uncovered strip borders the one in front,
        and flooding alone would hand it to whichever marker is nearest. The one in front is not
        hidden, so its predicted shape is right to within a few pixels.
        """
        if len(predicted) < 2:
            return labels
        disc = _disc(CONFINE)
        reach = {tid: cv2.dilate(p.astype(np.uint8), disc).astype(bool) for tid, p in predicted.items() if p.any()}
        out = labels.copy()
        own = {tid: cv2.dilate(p.astype(np.uint8), _disc(1)).astype(bool) for tid, p in predicted.items()}
        for tid in reach:
            # outside its own shape and inside another's: the other's (someone coming out from behind)
            outside = (labels == tid) & ~own[tid]
            if outside.any():
                for other in reach:
                    if other != tid:
                        take = outside & predicted[other]
                        out[take] = other
                        outside &= ~take
        labels = out
        out = labels.copy()
        for tid, grow in reach.items():
            stray = (labels == tid) & ~grow
            if not stray.any():
                continue
            for other, other_grow in reach.items():
                if other != tid:
                    take = stray & other_grow
                    out[take] = other
                    stray &= ~take
            if stray.any():
                # nobody's shape reaches them: the nearest other person's, if one is close
                box = grown_box(stray, STRAY_NEAR + 1)
                lab = labels[box]
                others = (lab > 0) & (lab != tid)
                if others.any():
                    dist, nearest = cv2.distanceTransformWithLabels(
                        (~others).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
                    )
                    close = stray[box] & (dist <= STRAY_NEAR)
                    if close.any():
                        out[box][close] = lab[others][nearest[close] - 1]
        return out

    def _measure_motion(self, tracks: list[_Track], grey: np.ndarray, a: np.ndarray) -> None:
        """Each visible person's velocity: where its last picture and alpha shape match this frame.

        A masked template match (sum of squared differences) at half resolution of the person's
        grey picture (inside it) and alpha (its silhouette), leaving out a band next to other
        people: near an occlusion edge the picture belongs to whoever is in front. A person being
        covered shows ever fewer pixels of its own, so its velocity is trusted less as its visible
        share falls (and kept as it was when little of it shows): a hidden person moves on at it.
        """
        prev_labels = self._labels
        assert prev_labels is not None and self._half is not None
        cur = _half_planes(grey, a)
        pad = SEARCH + MAX_STEP
        cur = cv2.copyMakeBorder(cur, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        lab = prev_labels[::2, ::2][: self._half.shape[0], : self._half.shape[1]]
        people = lab > 0
        for t in tracks:
            if t.lost:
                if not t.occluded:
                    t.velocity = t.velocity * 0.9  # vanished in the open: slow down, stay near
                continue
            region = lab == t.id
            band = cv2.dilate((people & ~region).astype(np.uint8), _disc(2)).astype(bool)
            inner = cv2.erode(region.astype(np.uint8), _disc(1)).astype(bool) & ~band
            outer = cv2.dilate(region.astype(np.uint8), _disc(2)).astype(bool) & ~band
            n = int(inner.sum())
            shown = 4 * n / max(int(t.template.sum()), 1)  # visible share of the whole shape
            weight = float(np.clip((shown - 0.2) / 0.4, 0.0, 1.0)) * 0.8
            box = bbox(outer)
            if n < 12 or weight == 0 or box is None:
                continue
            x0, y0, x1, y1 = box
            tmpl = np.ascontiguousarray(self._half[y0:y1, x0:x1])
            mask = np.ascontiguousarray(np.dstack([inner[y0:y1, x0:x1], outer[y0:y1, x0:x1]]).astype(np.float32))
            gx, gy = (int(np.clip(round(v / 2), -MAX_STEP, MAX_STEP)) for v in t.velocity)
            wy0, wx0 = y0 + gy - SEARCH + pad, x0 + gx - SEARCH + pad
            window = cur[wy0 : wy0 + (y1 - y0) + 2 * SEARCH, wx0 : wx0 + (x1 - x0) + 2 * SEARCH]
            cost = cv2.matchTemplate(window, tmpl, cv2.TM_SQDIFF, mask=mask)
            my, mx = np.unravel_index(int(np.argmin(cost)), cost.shape)
            dx, dy = _subpixel(cost, int(mx), int(my))
            measured = 2.0 * np.array([gx + mx + dx - SEARCH, gy + my + dy - SEARCH])
            t.velocity = t.velocity + weight * (measured - t.velocity)

    def _contests(
        self,
        tracks: list[_Track],
        claims: dict[int, np.ndarray],
        count: np.ndarray,
        owner: np.ndarray,
        grey: np.ndarray,
    ) -> None:
        """Pixels two predictions claim: to the one whose motion explains the picture there
        (this frame against the last one moved by each one's velocity), else to the one in front."""
        if not (count >= 2).any():
            return
        for i, ti in enumerate(tracks):
            for tj in tracks[i + 1 :]:
                both = claims[ti.id] & claims[tj.id]
                if not both.any():
                    continue
                box = bbox(both)
                assert box is not None
                x0, y0, x1, y1 = box
                region = both[y0:y1, x0:x1]
                better = self._explains(ti, tj, grey, box)  # +1 ti, -1 tj, 0 can't tell
                front = self._front(ti, tj, better, region)
                mine = owner[y0:y1, x0:x1]
                open_ = region & ((mine == 0) | (mine == ti.id) | (mine == tj.id))
                if front is None:
                    assert self._labels is not None  # contests need a previous frame
                    prev = self._labels[y0:y1, x0:x1]
                    fallback = np.where((prev == ti.id) | (prev == tj.id), prev, 0)
                else:
                    fallback = np.full(region.shape, front, np.int32)
                choice = np.where(better > 0, ti.id, np.where(better < 0, tj.id, fallback))
                mine[open_] = choice[open_]

    def _explains(self, ti: _Track, tj: _Track, grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Per pixel of `box`: +1 where moving the last frame by ti's velocity reproduces this
        frame clearly better than by tj's, -1 the other way round, 0 where neither is clearly better."""
        x0, y0, x1, y1 = box
        shape = (y1 - y0, x1 - x0)
        if np.abs(ti.velocity - tj.velocity).max() < 0.75:
            return np.zeros(shape, np.int8)  # the same motion: the picture cannot tell them apart
        cur = grey[y0:y1, x0:x1]
        assert self._grey is not None  # motion is judged against the previous frame
        err = []
        for t in (ti, tj):
            m = np.array([[1, 0, x0 - t.velocity[0]], [0, 1, y0 - t.velocity[1]]], np.float32)
            prev = cv2.warpAffine(
                self._grey,
                m,
                (x1 - x0, y1 - y0),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            err.append(cv2.blur(np.abs(cur - prev), (5, 5)))
        d = err[1] - err[0]
        return np.where(d > PHOTO_MARGIN, 1, np.where(d < -PHOTO_MARGIN, -1, 0)).astype(np.int8)

    def _front(self, ti: _Track, tj: _Track, better: np.ndarray, region: np.ndarray) -> int | None:
        """Which of two overlapping people is in front, or None when not known.

        The overlap shows the front person's surface, so most of it follows the front person's
        motion. Evidence is accumulated per pair: people do not pass through each other.
        """
        key = (min(ti.id, tj.id), max(ti.id, tj.id))
        votes = better[region]
        ni, nj = int((votes > 0).sum()), int((votes < 0).sum())
        score = self._order.get(key, 0.0)
        if ni + nj:
            sign = 1.0 if ti.id == key[0] else -1.0
            score = float(np.clip(score + sign * (ni - nj) / (ni + nj + 10), -4.0, 4.0))
            self._order[key] = score
        if score > 0.5:
            return key[0]
        if score < -0.5:
            return key[1]
        return None

    def _new_people(self, markers: np.ndarray, rgb: np.ndarray, core: np.ndarray, soft: np.ndarray) -> np.ndarray:
        """Cores no track reached become new (unchosen) people; then the foreground is partitioned.

        Except pieces of someone already there: the network's alpha often splits one person into
        several confident blobs joined by softer alpha (hair over clothes, a hand), and a blob
        can fade and return. A fresh blob joined by soft alpha to one person only and smaller
        than half of it, or a tiny one between people, is flooded from its neighbours instead.
        """
        n, comp, areas = components(core)
        if n > 1:
            claimed = np.bincount(comp[markers > 0], minlength=n) > 0
            fresh = [c for c in range(1, n) if not claimed[c]]
            if fresh:
                _, blobs, _ = components(soft)
                for c in fresh:
                    piece = comp == c
                    area = int(areas[c])
                    blob = blobs == blobs[piece][0]
                    near, sizes = np.unique(markers[blob & (markers > 0)], return_counts=True)
                    if len(near) == 1 and area < 0.5 * sizes[0]:
                        continue
                    if len(near) > 1 and area < MIN_NEW * core.size:
                        continue
                    tid = self._new_id()
                    markers[piece] = tid
                    self._tracks[tid] = _Track(tid, False, piece.copy(), first=self._index, last=self._index)
        return fill_nearest(partition(markers, rgb, soft), soft)

    def _update_tracks(self, labels: np.ndarray, predicted: dict[int, np.ndarray]) -> None:
        """Each track's new shape: what it shows now, plus what it still hides behind others."""
        grace = max(1, int(round(GRACE_S * self.fps)))
        memory = max(grace, int(round(self.memory * self.fps)))
        for t in list(self._tracks.values()):
            visible = labels == t.id
            if t.id not in predicted:  # created this frame
                t.template = visible
                continue
            ahead = t.offset + t.velocity
            shape = predicted[t.id]
            # the part of its shape now covered by people who may be in front of it (not by
            # those known to be behind it) is hidden, not gone: it is remembered and moves on
            behind = [j for j in self._tracks if j != t.id and self._in_front(t.id, j)]
            cover = (labels > 0) & ~visible
            if behind:
                cover &= ~np.isin(labels, behind)
            hidden = shape & cover
            area = int(visible.sum())
            n_hidden = int(hidden.sum())
            if area:
                t.lost, t.seen, t.last = 0, t.seen + 1, self._index
                t.peak = max(t.peak, area)
                if n_hidden == 0:
                    t.template, t.offset, t.occluded = visible, np.zeros(2), False
                else:
                    r = np.round(ahead).astype(int)
                    t.template = shift(visible | hidden, -r[0], -r[1])
                    t.offset, t.occluded = ahead, n_hidden >= HIDDEN_MIN * (area + n_hidden)
                continue
            t.lost += 1
            t.offset = ahead
            inside = int(shape.sum())
            t.occluded = inside > 0 and hidden.sum() >= 0.3 * inside
            if inside == 0 or t.lost > (memory if t.occluded else grace):
                self._drop(t, "left the picture" if inside == 0 else "was lost")

    def _in_front(self, i: int, j: int) -> bool:
        """Whether person i is known to be in front of person j."""
        score = self._order.get((min(i, j), max(i, j)), 0.0)
        return score > 0.5 if i < j else score < -0.5

    def _drop(self, t: _Track, how: str) -> None:
        del self._tracks[t.id]
        self._order = {k: v for k, v in self._order.items() if t.id not in k}
        if t.selected and not any(s.selected for s in self._tracks.values()):
            if self._step > 0:
                self._events.append(
                    f"frame {t.last}: the subject was last seen ({how}); the matte is empty after it until a hard cut"
                )
            elif how == "left the picture":
                self._events.append(f"frames before {t.last}: the subject was not in the picture yet")
            else:
                self._events.append(f"frames before {t.last}: the subject could not be followed further back")
            self._state = "lost"

    def _after_frame(self, labels: np.ndarray) -> None:
        subject = np.zeros(labels.shape, bool)
        for t in self._tracks.values():
            if t.selected:
                subject |= labels == t.id
            elif t.seen >= 0.5 * self.fps and t.peak >= MIN_PERSON * labels.size:
                self._kept_out.add(t.id)  # a person, not a passing speck
        if subject.any():
            self._last_subject = subject

    def _gate(self, labels: np.ndarray, soft: np.ndarray) -> np.ndarray:
        selected = [t.id for t in self._tracks.values() if t.selected]
        return gate_from_labels(labels, np.array(selected, np.int32), soft)


def _group_pieces(comp: np.ndarray, n: int, soft: np.ndarray, keep: set[int]) -> np.ndarray:
    """For each core component, the component it is a piece of (itself for a person).

    A component smaller than 0.3 of the largest one its soft blob holds belongs to the nearest
    large one there: one person's alpha often falls apart into a big confident blob and small
    ones (a hand, clothes seen through hair). Components in `keep` stand for themselves.
    """
    owner = np.arange(n)
    if n <= 2:
        return owner
    areas = np.bincount(comp.ravel(), minlength=n)
    _, blobs, _ = components(soft)
    blob_of = np.zeros(n, np.int64)
    flat_c, flat_b = comp.ravel(), blobs.ravel()
    blob_of[flat_c] = flat_b  # every pixel of a component lies in one soft blob
    biggest = np.zeros(int(blobs.max()) + 1, np.int64)
    np.maximum.at(biggest, blob_of[1:], areas[1:])
    large = [c for c in range(1, n) if c in keep or areas[c] >= 0.3 * biggest[blob_of[c]]]
    small = [c for c in range(1, n) if c not in large]
    if not small:
        return owner
    seeds = np.isin(comp, large)
    _, nearest = cv2.distanceTransformWithLabels(
        (~seeds).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    seed_comp = comp[seeds]
    for c in small:
        ys, xs = np.nonzero(comp == c)
        candidate = int(seed_comp[nearest[ys[0], xs[0]] - 1])
        if blob_of[candidate] == blob_of[c]:
            owner[c] = candidate
    return owner


def _disc(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _half_planes(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """(h/2, w/2, 2) float32: grey in 0..1 and alpha, area-averaged (what motion is matched on)."""
    h, w = grey.shape[0] // 2, grey.shape[1] // 2
    planes = np.dstack([grey[: 2 * h, : 2 * w] / 255.0, alpha[: 2 * h, : 2 * w]]).astype(np.float32)
    return cv2.resize(planes, (w, h), interpolation=cv2.INTER_AREA)


def _subpixel(cost: np.ndarray, x: int, y: int) -> tuple[float, float]:
    """Offset of a cost minimum from (x, y) by a parabola through it and its neighbours."""

    def vertex(a: float, b: float, c: float) -> float:
        den = a - 2 * b + c
        return float(np.clip(0.5 * (a - c) / den, -0.5, 0.5)) if den > 0 else 0.0

    h, w = cost.shape
    dx = vertex(cost[y, x - 1], cost[y, x], cost[y, x + 1]) if 0 < x < w - 1 else 0.0
    dy = vertex(cost[y - 1, x], cost[y, x], cost[y + 1, x]) if 0 < y < h - 1 else 0.0
    return dx, dy


def _host(x) -> np.ndarray:
    """A numpy array of `x` (a torch tensor on any device, in any layout, or an array)."""
    if hasattr(x, "detach"):
        return x.detach().float().cpu().numpy()
    return np.asarray(x)


def _uint8_rgb(rgb: np.ndarray) -> np.ndarray:
    x = np.asarray(rgb)
    if x.ndim == 3 and x.shape[0] == 3 and x.shape[2] != 3:  # [3,h,w]
        x = x.transpose(1, 2, 0)
    if x.dtype == np.uint8:
        return np.ascontiguousarray(x)
    return np.ascontiguousarray(np.clip(x.astype(np.float32) * 255 + 0.5, 0, 255).astype(np.uint8))


def track_backward(
    tracker: SubjectTracker,
    alphas: Sequence[np.ndarray],
    pictures: Sequence[np.ndarray],
    cuts: Collection[int] = frozenset(),
) -> list[np.ndarray]:
    """Gates for the frames before the selection frame, from their stored low-res outputs.

    `tracker` has just made its choice on frame N (its first `update`); `alphas` and `pictures`
    are frames 0..N-1 in their natural order. They are tracked from N-1 back to 0 by a reversed
    fork, so the chosen person is followed backward exactly as it is forward (the tracker itself
    is left as it was, to carry on from N+1). `cuts`: forward frame numbers that start a new
    shot (a cut at k separates k-1 from k). Returns the gates of frames 0..N-1 in order; what
    happened on the way back is added to `tracker.report()`.

    In a pipeline: a first pass runs only the network's low-resolution half over frames 0..N
    and keeps each frame's alpha and picture (uint8, about 0.6 MB a frame at 512x288); the
    choice is made on N (keep that gate too) and this gives the gates of 0..N-1; then the clip
    is run from frame 0 as usual (the recurrent network gives the same alphas again) with the
    stored gates for 0..N and `tracker.update` from N+1 on.
    """
    n = len(alphas)
    back = tracker.fork(reverse=True)
    gates: list[np.ndarray] = [np.empty(0)] * n
    for k in range(n - 1, -1, -1):
        gates[k] = back.update(alphas[k], pictures[k], new_shot=(k + 1) in cuts, index=k)
    tracker._events.extend(back._events)
    tracker._kept_out |= back._kept_out
    return gates
