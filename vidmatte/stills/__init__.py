"""Stills: image files in, converged still-mode mattes out (see `matte_image`)."""

from ..io.formats import IMAGE_SUFFIXES, is_image_path
from ..io.images import MAX_PIXELS, Picture, read_image, write_image
from .converge import (
    DEFAULT_MAX_PASSES,
    DEFAULT_TOL,
    STILL_PIXELS,
    StillResult,
    converge,
    converge_coarse,
    matte_still,
    network_input_size,
    still_engine,
    still_scale,
)
from .image import check_image_job, matte_image, render_still

__all__ = [
    "DEFAULT_MAX_PASSES",
    "DEFAULT_TOL",
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "STILL_PIXELS",
    "Picture",
    "StillResult",
    "check_image_job",
    "converge",
    "converge_coarse",
    "is_image_path",
    "matte_image",
    "matte_still",
    "network_input_size",
    "read_image",
    "render_still",
    "still_engine",
    "still_scale",
    "write_image",
]
