"""Choose and open the writer for an output path."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from vidmatte.io.encoded_writer import EncodedVideoWriter
from vidmatte.io.formats import ALPHA_FORMS, encoder_settings, muxer_name, output_form
from vidmatte.io.png_sequence import PngSequenceWriter
from vidmatte.io.writer_base import VideoWriter

__all__ = ["VideoWriter", "open_writer", "output_form"]


def open_writer(
    path: str | Path,
    *,
    width: int,
    height: int,
    frame_rate: Fraction | None,
    time_base: Fraction | None,
    alpha: bool,
    audio_from: str | Path | None = None,
    quality: int | None = None,
    overwrite: bool = False,
) -> VideoWriter:
    """Open the writer the path asks for (see `output_form`); use it as a context manager.

    `alpha=True` asks for transparency where the form can carry it (`writer.carries_alpha`
    tells); `time_base` is the unit of the pts passed to `write` (the source stream's);
    `audio_from` names a file whose audio track is copied or transcoded into the output
    (ignored for PNG folders); `quality` is a CRF (lower is better: WebM 0-63, default 30;
    H.264 0-51, default 18) and is ignored by ProRes and PNG. Raises OutputError (or
    InputError for a bad `audio_from`) before anything is written.
    """
    if width < 1 or height < 1:
        raise ValueError(f"invalid frame size {width}x{height}")
    rate = _as_fraction(frame_rate) if frame_rate else None
    if time_base:
        tick = _as_fraction(time_base)
    else:
        tick = 1 / rate if rate else Fraction(1, 1000)
    form = output_form(path)
    carries_alpha = bool(alpha) and form in ALPHA_FORMS
    target = Path(path)
    if form == "png":
        return PngSequenceWriter(
            target,
            width=width,
            height=height,
            carries_alpha=carries_alpha,
            frame_rate=rate,
            time_base=tick,
            overwrite=overwrite,
        )
    muxer = muxer_name(path)
    assert muxer is not None
    settings = encoder_settings(form, width=width, height=height, alpha=carries_alpha, quality=quality)
    return EncodedVideoWriter(
        target,
        form=form,
        muxer=muxer,
        settings=settings,
        width=width,
        height=height,
        carries_alpha=carries_alpha,
        frame_rate=rate,
        time_base=tick,
        audio_from=Path(audio_from) if audio_from is not None else None,
        overwrite=overwrite,
    )


def _as_fraction(value: Fraction | float) -> Fraction:
    # Floats such as 29.97 are approximations; snap them to the nearest sane ratio.
    if isinstance(value, float):
        return Fraction(value).limit_denominator(1_000_000)
    return Fraction(value)
