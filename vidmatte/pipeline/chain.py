"""The stage chain every clip goes through, whatever its source: files, frame sequences, cameras.

    front      stateless: stack the frames, run the network's encoder (CPU) or upload them (GPU)
    recurrent  in order: split at hard cuts, reset and warm up the state at each shot, decode,
               follow the chosen people (`--subject`)
    finish     stateless per chunk: guided filter, edge refinement, smoothing, the subject's gate,
               compose -> pictures

`front` may run on a reading thread, `recurrent` must see chunks in order on one thread,
`finish` may run on a render thread; which runs where is the plan's decision (`vidmatte.plan`),
the threads are the runner's (`vidmatte.pipeline.runner`). `reset()` starts a new clip.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..compose import Background, render
from ..edges import VideoEdgeRefiner
from ..engine import MattingEngine
from ..model.network import Features
from ..plan import RunPlan
from ..subject import gate_alpha
from ..temporal import SceneCutDetector, smoother_for, split_at_cuts
from ..types import Chunk, Matte, Rendered, VideoFrame
from .fused import FusedRenderer

if TYPE_CHECKING:
    from .subject import SubjectGates


@dataclass
class Prepared:
    """`front`'s output: the frames, stacked, and the network's input ready for the decoder."""

    frames: list[VideoFrame]
    rgb: np.ndarray
    ready: Features | torch.Tensor

    def part(self, start: int, end: int) -> Features | torch.Tensor:
        ready = self.ready
        return ready.frames(start, end) if isinstance(ready, Features) else ready[start:end]


class StageChain:
    """front -> recurrent -> finish for one clip at a time (see the module docstring).

    engine: the network and its recurrent state (reset with the chain).
    output_type: what `finish` renders ("rgba", "alpha", "foreground", "composite").
    background: for composites.
    smooth: AlphaSmoother strength, None for no smoothing.
    scene_reset: reset the recurrent state and the temporal filters at detected hard cuts.
    warmup: passes of each shot's first frame that prime the state before it is matted.
    """

    def __init__(
        self,
        engine: MattingEngine,
        plan: RunPlan,
        output_type: str,
        background: Background | None = None,
        *,
        smooth: float | None = None,
        scene_reset: bool = True,
        warmup: int = 0,
    ) -> None:
        if output_type == "composite" and background is None:
            raise ValueError("a composite needs a background")
        self.engine, self.plan, self.output_type, self.background = engine, plan, output_type, background
        self.warmup = warmup
        self.detector = SceneCutDetector() if scene_reset else None
        self.smoother = smoother_for(smooth, primed=warmup > 0) if smooth else None
        self.edges = VideoEdgeRefiner() if plan.refine_edges else None
        self.fused = FusedRenderer(engine, output_type, background) if plan.fused else None
        #: who keeps their alpha (`pipeline.subject.SubjectGates`); None: everyone
        self.subject: SubjectGates | None = None
        if self.fused is not None and (self.smoother is not None or self.edges is not None):
            raise ValueError("the fused renderer has no room for smoothing or edge refinement")
        self.reset()

    def reset(self) -> None:
        """Start a new clip: empty recurrent state, fresh cut detector and temporal filters.
        Call while no stage is running."""
        self.engine.reset()
        if self.detector is not None:
            self.detector.reset()
        if self.smoother is not None:
            self.smoother.reset()
        if self.edges is not None:
            self.edges.reset()
        if self.subject is not None:
            self.subject.reset()
        self._started = False

    def front(self, frames: list[VideoFrame]) -> Prepared:
        """Stateless: stack the frames and make the network's input (the encoder's features on
        CPU; the frames uploaded on a GPU, so the copy overlaps the decoder's work)."""
        # one frame (CPU, live): a view, not a copy of the full-resolution picture
        if len(frames) == 1:
            rgb = frames[0].rgb[None]
        else:
            rgb = np.stack([f.rgb for f in frames])
            # the frames from now on hold views of the stack, so each picture is held once
            frames = [replace(f, rgb=rgb[i]) for i, f in enumerate(frames)]
        ready = self.engine.encode(rgb) if self.plan.encode_ahead else self.engine.to_tensor(rgb)
        return Prepared(frames, rgb, ready)

    def recurrent(self, prepared: Prepared) -> Iterator[Chunk]:
        """In order, on one thread: the front's chunk split at hard cuts, the state reset and primed
        at each shot (the clip's first included), the recurrent decoder run on `plan.chunk_size`
        frames at a time (one chunk out for each)."""
        count = len(prepared.frames)
        parts = split_at_cuts(prepared.rgb, self.detector) if self.detector is not None else [(0, count, False)]
        for start, end, new_shot in parts:
            new_shot = new_shot or not self._started
            if new_shot:
                if self._started:
                    self.engine.reset()
                self.engine.prime(prepared.part(start, start + 1), self.warmup)
                self._started = True
            step = self.plan.chunk_size
            for first in range(start, end, step):
                last = min(end, first + step)
                coarse = self.engine.coarse(prepared.part(first, last))
                gate = self.subject.gates(coarse, new_shot) if self.subject is not None else None
                yield Chunk(prepared.frames[first:last], prepared.rgb[first:last], coarse, new_shot, gate)
                new_shot = False

    def finish(self, chunk: Chunk) -> Rendered:
        """Stateless but for the temporal filters (reset at each shot): full-resolution pictures."""
        if self.fused is not None:
            return Rendered(chunk.frames, self.fused(chunk.coarse, chunk.rgb, chunk.gate), chunk.rgb)
        matte = self.engine.refine(chunk.coarse)
        if self.edges is not None:
            if chunk.new_shot:
                self.edges.reset()
            matte = self.edges(matte, chunk.rgb)
        if self.smoother is not None:
            if chunk.new_shot:
                self.smoother.reset()
            matte = self.smoother(matte, chunk.rgb)
        if chunk.gate is not None:  # last: the filters above saw everyone, nobody else is left
            matte = Matte(matte.foreground, gate_alpha(matte.alpha, chunk.gate))
        return Rendered(chunk.frames, render(matte, self.output_type, chunk.rgb, self.background), chunk.rgb)
