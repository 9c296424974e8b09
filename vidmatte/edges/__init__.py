"""Edge refinement: closed-form matting in the thin band of uncertain pixels around the network's
edges, and foreground colours re-estimated there (see `refine_edges`)."""

from .detail import detail_factor
from .foreground import blur_fusion
from .laplacian import BandOperator, MattingLaplacian, solve_alpha
from .refine import refine_edges, refine_edges_in_strips, refine_edges_numpy
from .still import refine_still
from .trimap import unknown_band
from .video import VideoEdgeRefiner

__all__ = [
    "BandOperator",
    "MattingLaplacian",
    "VideoEdgeRefiner",
    "blur_fusion",
    "detail_factor",
    "refine_edges",
    "refine_edges_in_strips",
    "refine_edges_numpy",
    "refine_still",
    "solve_alpha",
    "unknown_band",
]
