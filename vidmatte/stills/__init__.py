"""Stills: image files in, converged still-mode mattes out (see `matte_image`)."""

from .converge import (DEFAULT_MAX_PASSES, DEFAULT_TOL, STILL_PIXELS, StillResult, converge, converge_coarse,
                       matte_still, still_scale)
from .image import default_image_output, matte_image, render_still, resolve_image_output_type
from .imagefile import IMAGE_SUFFIXES, MAX_PIXELS, Picture, is_image_path, output_format, read_image, write_image

__all__ = [
    "DEFAULT_MAX_PASSES", "DEFAULT_TOL", "IMAGE_SUFFIXES", "MAX_PIXELS", "STILL_PIXELS", "Picture", "StillResult",
    "converge", "converge_coarse", "default_image_output", "is_image_path", "matte_image", "matte_still",
    "output_format", "read_image", "render_still", "resolve_image_output_type", "still_scale", "write_image",
]
