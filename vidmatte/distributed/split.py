"""The clip splitter: a pure function from what is known of a clip to the segments workers run.

A recurrent network does not need every earlier frame: started mid-shot, its state converges
within ~32 frames on most footage (mean alpha difference to the sequential run 14e-3 with no
warm-up, 1.0e-3 after 32 primed frames, on real 720p footage), within 48-64 on footage whose
state holds on to a person for longer (benchmarks/distributed.md). Hard cuts reset the state anyway, so they are
exact split points. A clip is therefore cut

1. at every hard cut (each shot starts from empty state, exactly as in a sequential run), then
2. into parts of at most `segment_frames` frames, as equal in length as possible, and
3. each part that starts inside a shot reads `preroll` frames before its start (never before
   the shot's first frame) to settle the state; those frames are run and discarded.

Nothing here reads a file or imports Ray: it is plain arithmetic, tested on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

#: Frames each segment starts early to settle the recurrent state (see the module docstring):
#: 32 is enough on most footage, one real clip needed 48-64 (benchmarks/distributed.md)
DEFAULT_PREROLL = 64
#: Default segment length: about this many seconds of video ...
SEGMENT_SECONDS = 10
#: ... but at least this many times the preroll, so the frames run twice cost at most 1/20 (5%)
PREROLL_SHARE = 20
#: Segment length where the frame rate is unknown.
FALLBACK_SEGMENT_FRAMES = 250


@dataclass(frozen=True)
class Segment:
    """Frames `start`..`end` (end excluded) of a clip, written by one worker, which reads from
    `read_from` (`start - read_from` preroll frames, run and discarded). `shot_start` is the
    first frame of the shot the segment lies in."""

    index: int
    start: int
    end: int
    read_from: int
    shot_start: int

    @property
    def frames(self) -> int:
        """Frames the segment writes."""
        return self.end - self.start

    @property
    def preroll(self) -> int:
        """Frames read before `start` and discarded."""
        return self.start - self.read_from

    @property
    def exact(self) -> bool:
        """True when the segment starts a shot: its output is exactly the sequential run's."""
        return self.start == self.shot_start


def default_segment_frames(frame_rate: Fraction | float | None, preroll: int = DEFAULT_PREROLL) -> int:
    """About `SEGMENT_SECONDS` of video at `frame_rate` (FALLBACK_SEGMENT_FRAMES when unknown),
    and at least `PREROLL_SHARE` x `preroll` frames: preroll overhead stays under 5%."""
    if not frame_rate or frame_rate <= 0:
        frames = FALLBACK_SEGMENT_FRAMES
    else:
        frames = max(1, round(SEGMENT_SECONDS * float(frame_rate)))
    return max(frames, PREROLL_SHARE * preroll)


def shots(frame_count: int, cuts: Iterable[int] = ()) -> list[tuple[int, int]]:
    """`(start, end)` of each shot of a clip of `frame_count` frames whose shots begin at `cuts`
    (frame indices; 0, duplicates and indices outside the clip are ignored)."""
    if frame_count < 0:
        raise ValueError(f"frame_count must be 0 or more, got {frame_count}")
    starts = sorted({int(c) for c in cuts if 0 < int(c) < frame_count})
    bounds = [0, *starts, frame_count] if frame_count else []
    return list(zip(bounds[:-1], bounds[1:]))


def split_clip(
    frame_count: int,
    cuts: Iterable[int] = (),
    *,
    segment_frames: int,
    preroll: int = DEFAULT_PREROLL,
    whole: bool = False,
) -> list[Segment]:
    """The segments of a clip of `frame_count` frames with hard cuts at `cuts` (the first frame
    of each new shot), in order, covering every frame exactly once.

    Each shot of more than `segment_frames` frames is split into `ceil(len / segment_frames)`
    parts whose lengths differ by at most one; a part starting inside a shot reads up to
    `preroll` frames before its start, never before the shot's first frame. `whole` gives the
    clip as one segment (what a subject choice needs: its tracker follows people across the
    whole clip, cuts included).
    """
    if segment_frames < 1:
        raise ValueError(f"segment_frames must be at least 1, got {segment_frames}")
    if preroll < 0:
        raise ValueError(f"preroll must be 0 or more, got {preroll}")
    if whole:
        return [Segment(0, 0, frame_count, 0, 0)] if frame_count else []
    segments: list[Segment] = []
    for shot_start, shot_end in shots(frame_count, cuts):
        length = shot_end - shot_start
        parts = -(-length // segment_frames)
        base, extra = divmod(length, parts)
        start = shot_start
        for part in range(parts):
            end = start + base + (1 if part < extra else 0)
            read_from = max(shot_start, start - preroll)
            segments.append(Segment(len(segments), start, end, read_from, shot_start))
            start = end
    return segments
