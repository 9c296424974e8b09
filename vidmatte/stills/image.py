"""`vidmatte photo.jpg`: one still in, one picture out (RGBA, alpha mask or composite)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from ..compose import check_background, make_background
from ..edges.detail import detail_factor
from ..edges.still import refine_still
from ..engine import MattingEngine
from ..errors import OutputError
from ..io.atomic import check_target
from ..io.formats import default_output, image_format, resolve_output_type
from ..io.images import Picture, read_image, write_image
from ..options import MatteOptions, ProgressCallback, log
from ..pipeline.subject import selection_of
from ..plan import describe_run
from ..subject import still_gate
from .converge import StillResult, matte_still, network_input_size, still_engine, still_scale


def check_image_job(target: str | Path, options: MatteOptions) -> str:
    """Refuse what cannot work before the picture is decoded; returns the output type."""
    output_type = resolve_output_type(target, options.output_type, still=True)
    if options.background is not None or output_type == "composite":
        check_background(options.video_background)  # a given one is checked even where unused: a typo
    return output_type


def matte_image(
    source: str | Path,
    output: str | Path | None = None,
    *,
    engine: MattingEngine | None = None,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
    flip: bool = False,
    picture: Picture | None = None,
) -> Path:
    """Matte one image file into `output` (default `<stem>_matte.png`); returns the output path.

    The output's form follows its name: .png / .webp (lossless) carry RGBA (predicted foreground
    colour + alpha); .jpg and .tif get a composite over the options' background. Output type
    alpha writes a greyscale mask. 16-bit inputs give 16-bit PNG/TIFF. A file's own transparency
    is kept (the network sees it flattened over white; the output alpha is multiplied by it). The
    alpha is the converged still-mode alpha (`options.passes` bounds the network passes; 1 = a
    single video-style pass), refined in the edge band unless `options.refine` is False.
    `progress` gets "passes", "full resolution" and "refine" reports. Nothing is left at `output`
    unless the whole picture was written. `picture`: `read_image(source)` already done by the
    caller (a server decodes an upload to check it before it waits for the engine), so it is not
    decoded twice.
    """
    options = options or MatteOptions()
    source = Path(source)
    target = Path(output) if output is not None else default_output(source, "image")
    output_type = check_image_job(target, options)
    if target.exists() and source.exists() and target.resolve() == source.resolve():
        raise OutputError(f"output {target} is the input itself; choose another -o")
    check_target(target, folder=False, overwrite=options.overwrite)  # fail before the work, not after
    selection = selection_of(options)
    if picture is None:
        picture = read_image(source)
    if selection is not None:
        selection.check_frame(picture.width, picture.height)  # a point outside, a mask of another size
    engine = still_engine(engine or MattingEngine(options.device, options.precision, options.downsample_ratio))
    detail = detail_factor(picture.rgb)
    scale = (
        still_scale(picture.height, picture.width, detail=detail)
        if engine.downsample_ratio == "auto"
        else float(engine.downsample_ratio)
    )
    size = (picture.height, picture.width)
    log.info(describe_run(engine, network_input_size(*size, scale), size, "(still mode)"))
    result = matte_still(
        engine,
        picture.rgb,
        max_passes=options.passes,
        tol=options.tol,
        scale=scale,
        flip=flip,
        detail=detail,
        progress=progress,
    )
    if options.still_refine:
        # in place on the result's arrays: no full-size copies of a large picture
        refine_still(
            picture.rgb,
            result.alpha,
            result.foreground,
            network_scale=result.scale,
            detail=result.detail,
            progress=progress,
        )
    if selection is not None:  # last: the refinement saw everyone, nobody else is left
        assert result.small_alpha is not None and result.small_rgb is not None
        gate, report = still_gate(result.small_alpha, result.small_rgb, selection, (picture.width, picture.height))
        result.alpha *= cv2.resize(gate, (picture.width, picture.height), interpolation=cv2.INTER_LINEAR)
        for line in report:
            log.info("%s", line)
    alpha = result.alpha
    if picture.alpha is not None:
        alpha *= picture.alpha.astype(np.float32) / picture.peak  # transparent in the file stays so
    image = render_still(picture, result, alpha, output_type, options.video_background, deep=image_format(target).deep)
    return write_image(target, image, overwrite=options.overwrite)


def render_still(
    picture: Picture,
    result: StillResult,
    alpha: np.ndarray,
    output_type: str,
    background: str = "green",
    *,
    deep: bool = True,
) -> np.ndarray:
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
