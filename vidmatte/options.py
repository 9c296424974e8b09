"""What a run is asked to do: one options object for every input kind, and progress reports.

Light on purpose (no torch, no codecs): the command line builds these before anything heavy
is imported.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from fractions import Fraction

from .distributed.split import DEFAULT_PREROLL

#: `precision` values (mapped to dtypes by `vidmatte.engine.PRECISIONS`): auto = fp16 on CUDA; on
#: CPU mixed (fp32, the largest convolutions multiplying bf16) where the processor multiplies
#: bf16 natively, else fp32 (`vidmatte.model.mixed`).
PRECISION_CHOICES = ("auto", "fp32", "fp16", "bf16", "mixed")
PRECISION_HELP = "auto = fp16 on CUDA; on CPU mixed where it has bf16 instructions (AVX512-BF16, AMX), else fp32."

#: Default passes of a shot's first frame that prime the recurrent state (benchmarks/video_quality.md).
WARMUP_PASSES = 4
#: Weight of the past at a steady pixel for `smooth` (`AlphaSmoother`; benchmarks/temporal.md).
SMOOTH_STRENGTH = 0.97
#: Still mode: bound on passes over the same picture; each pass is one low-resolution network run.
STILL_PASSES = 16
#: Still mode: stop when no low-resolution alpha value moved by more than this between two passes.
STILL_TOL = 0.05


@dataclass
class MatteOptions:
    """Everything the command line can ask for; the library entry `vidmatte.api.matte_path`
    takes the same object. Fields that do not apply to an input kind are ignored by it.

    Output: `output_type` None means rgba where the form carries alpha, else composite;
    `background` None means green (files) or a checkerboard (live view); `quality` is a CRF.
    Engine: `device`, `precision`, `downsample_ratio` ("auto" or a number in (0, 1]).
    Video: `chunk_size` None picks by device; `smooth` is the AlphaSmoother strength (None off);
    `scene_reset` resets the recurrent state at hard cuts; `warmup` primes each shot's first frame;
    `refine` None means on for stills and off for video (closed-form matting in the edge band).
    Stills: `passes` and `tol` bound still mode. Sequences: `fps`. Live: `window`, `max_frames`,
    `realtime` (a file standing in for a camera is played in real time, dropping frames, unless
    False: then every frame is matted).
    Who is cut out (`vidmatte.subject`; all empty: everyone): `subjects` points "X,Y" on a person
    or "largest", `subject_boxes` "X0,Y0,X1,Y1", `subject_mask` a mask image's path, all on frame
    `subject_frame`, in full-resolution pixels.
    Scale-out on Ray (`vidmatte.distributed`; None workers and no cluster: one process, no Ray):
    `workers` actors each holding one engine, on a Ray `cluster` address ("auto": RAY_ADDRESS or
    the local one; None: Ray started inside the run), `gpus_per_worker` GPU shares, long clips
    split into segments of at most `segment_frames` frames (None: the longer of 10 s and 20x `preroll`) that each start
    `preroll` frames early to settle the recurrent state.
    """

    output_type: str | None = None
    background: str | None = None
    quality: int | None = None
    overwrite: bool = False
    device: str = "auto"
    precision: str = "auto"
    downsample_ratio: float | str = "auto"
    chunk_size: int | None = None
    smooth: float | None = None
    scene_reset: bool = True
    warmup: int = WARMUP_PASSES
    refine: bool | None = None
    passes: int = STILL_PASSES
    tol: float = STILL_TOL
    fps: Fraction = field(default_factory=lambda: Fraction(25))
    window: bool = True
    max_frames: int | None = None
    realtime: bool = True
    subjects: tuple[str, ...] = ()
    subject_boxes: tuple[str, ...] = ()
    subject_mask: str | None = None
    subject_frame: int = 0
    workers: int | None = None
    cluster: str | None = None
    gpus_per_worker: float | None = None
    segment_frames: int | None = None
    preroll: int = DEFAULT_PREROLL

    def with_(self, **changes: object) -> MatteOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def video_background(self) -> str:
        """The composite background for files: the user's, else green."""
        return self.background or "green"

    @property
    def video_refine(self) -> bool:
        """Edge refinement for video: off unless asked for."""
        return bool(self.refine)

    @property
    def still_refine(self) -> bool:
        """Edge refinement for stills: on unless turned off."""
        return self.refine is None or self.refine


#: The name earlier versions used for the options of a video run.
VideoOptions = MatteOptions


@dataclass(frozen=True)
class Progress:
    """One progress report: `done` of `total` (None: unknown) units of `task` ("frames", "files",
    "passes", "refine"), for `name` (the file being worked on)."""

    task: str
    done: int
    total: int | None
    name: str = ""


#: Receives progress reports; called from whichever thread did the work.
ProgressCallback = Callable[[Progress], None]
#: Notices for the user: how a run uses the machine (info), skipped and failed files (warning).
#: The command line shows them on stderr; library callers configure logging as they like.
log = logging.getLogger("vidmatte")
