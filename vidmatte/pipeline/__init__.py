"""The pipeline: source -> plan -> chain of stages (encoder, recurrent decoder, full-resolution
half) -> sink, with the threads the plan asks for.

- `chain.StageChain`: the stages, `reset()` per clip; used by files, sequences and live mode.
- `runner.run_chain`: runs a chain over a source into a sink on the plan's threads.
- `clip.matte_source` / `matte_video`: one clip into an output file or folder.
- `fused.FusedRenderer`: the full-resolution half on CPU in one pass.
"""

from ..options import MatteOptions, VideoOptions
from .chain import StageChain
from .clip import build_chain, matte_frames, matte_source, matte_video
from .runner import run_chain

__all__ = [
    "MatteOptions",
    "StageChain",
    "VideoOptions",
    "build_chain",
    "matte_frames",
    "matte_source",
    "matte_video",
    "run_chain",
]
