"""`vidmatte photo.jpg`: one still in, one picture out (RGBA, alpha mask or composite)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..compose import OUTPUT_TYPES, check_background, make_background
from ..errors import OutputError
from ..io.atomic import check_target
from ..edges.still import refine_still
from ..matter import Matter
from .converge import DEFAULT_MAX_PASSES, DEFAULT_TOL, Progress, StillResult, matte_still
from .imagefile import Picture, output_format, read_image, write_image


def default_image_output(source: str | Path) -> Path:
    """`photo.jpg` -> `photo_matte.png`, next to the input."""
    source = Path(source)
    return source.with_name(f"{source.stem}_matte.png")


def resolve_image_output_type(path: str | Path, output_type: str | None) -> str:
    """rgba where the format carries alpha, else composite; refuses rgba into JPEG/BMP."""
    form = output_format(path)
    if output_type is None:
        return "rgba" if form.alpha else "composite"
    if output_type not in OUTPUT_TYPES:
        raise OutputError(f"unknown output type {output_type!r}; use one of {', '.join(OUTPUT_TYPES)}")
    if output_type == "rgba" and not form.alpha:
        raise OutputError(f"{form.suffix} cannot carry alpha; write .png or .webp, or use --output-type composite")
    return output_type


def matte_image(source: str | Path, output: str | Path | None = None, *, matter: Matter | None = None,
                output_type: str | None = None, background: str | None = "green",
                passes: int = DEFAULT_MAX_PASSES, tol: float = DEFAULT_TOL, flip: bool = False,
                refine: bool = True, overwrite: bool = False, on_progress: Progress | None = None) -> Path:
    """Matte one image file into `output` (default `<stem>_matte.png`); returns the output path.

    The output's form follows its name: .png / .webp (lossless) carry RGBA (predicted foreground
    colour + alpha); .jpg and .tif get a composite over `background`. `output_type` alpha
    writes a greyscale mask. 16-bit inputs give 16-bit PNG/TIFF. A file's own transparency is kept
    (the network sees it flattened over white; the output alpha is multiplied by it). The alpha is the converged
    still-mode alpha (`passes` bounds the network passes; 1 = a single video-style pass).
    Nothing is left at `output` unless the whole picture was written.
    on_progress: `(stage, done, total)` as the network passes, the full-resolution pass and the
    edge refinement advance (see `vidmatte.stills.converge.Progress`).
    """
    source = Path(source)
    background = background or "green"
    target = Path(output) if output is not None else default_image_output(source)
    output_type = resolve_image_output_type(target, output_type)
    if output_type == "composite":
        check_background(background)
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise OutputError(f"output {target} is the input itself; choose another -o")
    check_target(target, folder=False, overwrite=overwrite)  # fail before the work, not after
    picture = read_image(source)
    matter = matter or Matter()
    result = matte_still(matter, picture.rgb, max_passes=passes, tol=tol, flip=flip, on_progress=on_progress)
    if refine:
        # in place on the result's arrays: no full-size copies of a large picture
        refine_still(picture.rgb, result.alpha, result.foreground, network_scale=result.scale, detail=result.detail,
                     on_progress=on_progress)
    alpha = result.alpha
    if picture.alpha is not None:
        alpha *= picture.alpha.astype(np.float32) / picture.peak  # transparent in the file stays so
    image = render_still(picture, result, alpha, output_type, background, deep=output_format(target).deep)
    return write_image(target, image, overwrite=overwrite)


def render_still(picture: Picture, result: StillResult, alpha: np.ndarray, output_type: str,
                 background: str = "green", *, deep: bool = True) -> np.ndarray:
    """The output picture: `(H,W,4)` rgba, `(H,W)` alpha, `(H,W,3)` foreground or composite;
    uint16 when the input was 16-bit and `deep`, else uint8."""
    peak, dtype = (65535, np.uint16) if picture.depth == 16 and deep else (255, np.uint8)

    def quantise(x: np.ndarray) -> np.ndarray:
        return np.round(np.clip(x, 0, 1) * peak).astype(dtype)

    if output_type == "alpha":
        return quantise(alpha)
    a = alpha[..., None]
    if output_type == "rgba":
        return np.concatenate([quantise(result.foreground), quantise(a)], axis=2)
    if output_type == "foreground":
        return quantise(result.foreground * a)
    if output_type == "composite":
        behind = _background(background, picture)
        return quantise(behind + a * (result.foreground - behind))
    raise ValueError(f"unknown output type {output_type!r}")


def _background(spec: str, picture: Picture) -> np.ndarray:
    """The background as float32 `(H,W,3)` (or `(1,1,3)` for a colour) in 0..1."""
    frames = picture.rgb8()[None]
    bg = make_background(spec, picture.width, picture.height, torch.device("cpu"), torch.float32)
    return bg.for_frames(frames)[0].permute(1, 2, 0).numpy()
