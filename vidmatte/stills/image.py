"""`vidmatte photo.jpg`: one still in, one picture out (RGBA, alpha mask or composite)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..compose import check_background, make_background
from ..edges import refine_edges_in_strips
from ..engine import MattingEngine
from ..errors import OutputError
from ..io.atomic import check_target
from ..io.formats import default_output, image_format, resolve_output_type
from ..io.images import Picture, read_image, write_image
from ..options import MatteOptions, Progress, ProgressCallback, log
from ..plan import describe_run
from .converge import StillResult, matte_still, network_input_size, still_scale


def check_image_job(target: str | Path, options: MatteOptions) -> str:
    """Refuse what cannot work before the picture is decoded; returns the output type."""
    output_type = resolve_output_type(target, options.output_type, still=True)
    if options.background is not None or output_type == "composite":
        check_background(options.video_background)  # a given one is checked even where unused: a typo
    return output_type


def matte_image(source: str | Path, output: str | Path | None = None, *, engine: MattingEngine | None = None,
                options: MatteOptions | None = None, progress: ProgressCallback | None = None,
                flip: bool = False, picture: Picture | None = None) -> Path:
    """Matte one image file into `output` (default `<stem>_matte.png`); returns the output path.

    The output's form follows its name: .png / .webp (lossless) carry RGBA (predicted foreground
    colour + alpha); .jpg and .tif get a composite over the options' background. Output type
    alpha writes a greyscale mask. 16-bit inputs give 16-bit PNG/TIFF. A file's own transparency
    is kept (the network sees it flattened over white; the output alpha is multiplied by it). The
    alpha is the converged still-mode alpha (`options.passes` bounds the network passes; 1 = a
    single video-style pass), refined in the edge band unless `options.refine` is False.
    `progress` gets "passes" and "refine" reports. Nothing is left at `output` unless the whole
    picture was written. `picture`: `read_image(source)` already done by the caller (a server
    decodes an upload to check it before it waits for the engine), so it is not decoded twice.
    """
    options = options or MatteOptions()
    source = Path(source)
    target = Path(output) if output is not None else default_output(source, "image")
    output_type = check_image_job(target, options)
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise OutputError(f"output {target} is the input itself; choose another -o")
    check_target(target, folder=False, overwrite=options.overwrite)  # fail before the work, not after
    if picture is None:
        picture = read_image(source)
    engine = engine or MattingEngine(options.device, options.precision, options.downsample_ratio)
    scale = still_scale(picture.height, picture.width) if engine.downsample_ratio == "auto" \
        else float(engine.downsample_ratio)
    size = (picture.height, picture.width)
    log.info(describe_run(engine, network_input_size(*size, scale), size, "(still mode)"))
    result = matte_still(engine, picture.rgb, max_passes=options.passes, tol=options.tol, scale=scale, flip=flip,
                         progress=progress)
    if options.still_refine:
        if progress is not None:
            progress(Progress("refine", 0, 1, source.name))
        # in place on the result's arrays: no full-size copies of a large picture
        refine_edges_in_strips(torch.from_numpy(picture.rgb).permute(2, 0, 1), torch.from_numpy(result.alpha)[None],
                               torch.from_numpy(result.foreground).permute(2, 0, 1))
        if progress is not None:
            progress(Progress("refine", 1, 1, source.name))
    alpha = result.alpha
    if picture.alpha is not None:
        alpha *= picture.alpha.astype(np.float32) / picture.peak  # transparent in the file stays so
    image = render_still(picture, result, alpha, output_type, options.video_background,
                         deep=image_format(target).deep)
    return write_image(target, image, overwrite=options.overwrite)


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
