"""Request parameters -> `MatteOptions`, checked the way the command line checks its flags.

Parameters come from the query string and from multipart form fields (fields win); names
follow the command line (`output_type`, `background`, `refine`, ...), with the aliases users of
rembg, remove.bg and Clipdrop send (`om`, `bg_color`, `channels`; `model` is accepted and
ignored: there is one model). Anything else is refused by name, so a typo is not silently
ignored. Backgrounds are colours or `blur` only: over HTTP a background is never a path on the
server, and no URL is ever fetched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..options import SMOOTH_STRENGTH, MatteOptions


class ParamError(Exception):
    """A parameter the server cannot use (HTTP 400); the message is one line naming it."""


class NotAcceptable(Exception):
    """The Accept header allows no image type the server writes (HTTP 406)."""


@dataclass(frozen=True)
class Form:
    """A video job's output form: the result file's suffix and media type, and the output name
    `matte_path` is given (its form follows the name)."""

    name: str
    suffix: str
    media_type: str
    target: str  # ".webm" etc.; "/" is a folder of PNG frames (zipped afterwards)


FORMS = {
    "webm": Form("webm", ".webm", "video/webm", ".webm"),
    "mov": Form("mov", ".mov", "video/quicktime", ".mov"),
    "mp4": Form("mp4", ".mp4", "video/mp4", ".mp4"),
    "png-zip": Form("png-zip", ".zip", "application/zip", "/"),
}
_FORM_ALIASES = {"zip": "png-zip", "png": "png-zip", "prores": "mov", "h264": "mp4"}

#: Still formats: name -> (media type, suffix); the order breaks ties in content negotiation.
STILL_FORMATS = {"png": ("image/png", ".png"), "webp": ("image/webp", ".webp"), "jpg": ("image/jpeg", ".jpg")}
_STILL_ALIASES = {"jpeg": "jpg"}

_STILL_PARAMS = {
    "output_type",
    "background",
    "refine",
    "format",
    "passes",
    "downsample_ratio",
    "om",
    "bg_color",
    "channels",
    "model",
    "subject",
    "subject_box",
}
_JOB_PARAMS = {
    "form",
    "output_type",
    "background",
    "smooth",
    "smooth_strength",
    "refine",
    "warmup",
    "scene_reset",
    "downsample_ratio",
    "quality",
    "webhook_url",
    "bg_color",
    "model",
    "subject",
    "subject_box",
    "subject_frame",
}
#: Bounds a client cannot exceed (the command line has none): each is CPU time on a shared server.
MAX_PASSES = 64
MAX_WARMUP = 64

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_OUTPUT_TYPES = ("rgba", "alpha", "foreground", "composite")


@dataclass(frozen=True)
class StillRequest:
    options: MatteOptions
    format: str  # png | webp | jpg

    @property
    def media_type(self) -> str:
        return STILL_FORMATS[self.format][0]

    @property
    def suffix(self) -> str:
        return STILL_FORMATS[self.format][1]


@dataclass(frozen=True)
class JobRequest:
    form: Form
    options: dict[str, Any]  # MatteOptions fields, JSON-able (stored with the job)
    webhook_url: str | None


def still_request(params: Mapping[str, str], accept: str | None) -> StillRequest:
    """Options and output format for `POST /api/remove`; ParamError / NotAcceptable."""
    _refuse_unknown(params, _STILL_PARAMS)
    fields: dict[str, Any] = {}
    output_type = _output_type(params)
    if _flag(params, "om"):  # rembg's "only mask"
        output_type = "alpha"
    if output_type is not None:
        fields["output_type"] = output_type
    background = _background(params)
    if background is not None:
        fields["background"] = background
    if "refine" in params:
        fields["refine"] = _flag(params, "refine")
    if "passes" in params:
        fields["passes"] = _int(params, "passes", 1, MAX_PASSES)
    if "downsample_ratio" in params:
        fields["downsample_ratio"] = _ratio(params["downsample_ratio"])
    fields.update(_subject(params))
    fmt = _still_format(params.get("format"), accept)
    options = MatteOptions(**fields)
    _check(options, target=f"still{STILL_FORMATS[fmt][1]}", still=True)
    return StillRequest(options, fmt)


def job_request(params: Mapping[str, str], *, webhooks: bool) -> JobRequest:
    """Form, options and webhook for `POST /api/jobs`; ParamError."""
    _refuse_unknown(params, _JOB_PARAMS)
    name = params.get("form", "webm").strip().lower()
    name = _FORM_ALIASES.get(name, name)
    if name not in FORMS:
        raise ParamError(f"form {params['form']!r} is not one of {', '.join(FORMS)}")
    form = FORMS[name]
    fields: dict[str, Any] = {}
    output_type = _output_type(params)
    if output_type is not None:
        fields["output_type"] = output_type
    background = _background(params)
    if background is not None:
        fields["background"] = background
    # smooth=true turns the temporal filter on (a strength alone does too); smooth=false wins
    if _flag(params, "smooth") if "smooth" in params else "smooth_strength" in params:
        fields["smooth"] = _float(params, "smooth_strength", 0, 1) if "smooth_strength" in params else SMOOTH_STRENGTH
    if "refine" in params:
        fields["refine"] = _flag(params, "refine")
    if "warmup" in params:
        fields["warmup"] = _int(params, "warmup", 0, MAX_WARMUP)
    if "scene_reset" in params:
        fields["scene_reset"] = _flag(params, "scene_reset")
    if "downsample_ratio" in params:
        fields["downsample_ratio"] = _ratio(params["downsample_ratio"])
    if "quality" in params:
        fields["quality"] = _int(params, "quality", 0, 63)
    fields.update(_subject(params))
    if "subject_frame" in params:
        fields["subject_frame"] = _int(params, "subject_frame", 0, 10_000_000)
    _check(MatteOptions(**fields), target=f"clip{form.target}", still=False)
    webhook = params.get("webhook_url") or None
    if webhook is not None:
        if not webhooks:
            raise ParamError("webhook_url: webhooks are off on this server (start it with --webhooks)")
        if not re.match(r"^https?://[^\s/]+", webhook) or len(webhook) > 2000:
            raise ParamError("webhook_url must be an http:// or https:// URL")
    return JobRequest(form, fields, webhook)


def options_from_stored(fields: Mapping[str, Any]) -> MatteOptions:
    """The options of a stored job."""
    return MatteOptions(**fields)


def _refuse_unknown(params: Mapping[str, str], known: set[str]) -> None:
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParamError(f"unknown parameter {unknown[0]!r}; this endpoint takes {', '.join(sorted(known))}")


def _output_type(params: Mapping[str, str]) -> str | None:
    value = params.get("output_type") or None
    if value is None and params.get("channels"):  # remove.bg: channels=rgba|alpha
        value = params["channels"]
    if value is None:
        return None
    value = value.strip().lower()
    if value not in _OUTPUT_TYPES:
        raise ParamError(f"output_type {value!r} is not one of {', '.join(_OUTPUT_TYPES)}")
    return value


def _background(params: Mapping[str, str]) -> str | None:
    value = params.get("background") or None
    if value is None and params.get("bg_color"):  # remove.bg: a hex code without '#', or a name
        value = params["bg_color"].strip()
        if re.fullmatch(r"[0-9a-fA-F]{6}", value):
            value = f"#{value}"
        elif re.fullmatch(r"[0-9a-fA-F]{3}", value):
            value = "#" + "".join(c * 2 for c in value)
    if value is None:
        return None
    value = value.strip()
    from ..compose import parse_color  # torch is loaded by now: the engine was loaded at start-up

    if value.lower() != "blur" and parse_color(value) is None:
        raise ParamError(
            f"background {value[:40]!r} is not a colour (a name, #rrggbb or r,g,b) or 'blur'; "
            "this server reads no background files or URLs"
        )
    return value


def _subject(params: Mapping[str, str]) -> dict[str, list[str]]:
    """Who is cut out, as the command line's --subject / --subject-box: `subject` is "X,Y" (several
    separated by ';') or "largest", `subject_box` "X0,Y0,X1,Y1" (several separated by ';'), in
    the upload's pixels. (A mask would be a second upload: not taken, a box says the same.)"""
    fields: dict[str, list[str]] = {}
    for name, field in (("subject", "subjects"), ("subject_box", "subject_boxes")):
        value = params.get(name, "").strip()
        if value:
            fields[field] = [part.strip() for part in value.split(";") if part.strip()][:16]
    return fields


def _flag(params: Mapping[str, str], name: str) -> bool:
    if name not in params:
        return False
    value = params[name].strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ParamError(f"{name} must be true or false, got {params[name][:40]!r}")


def _int(params: Mapping[str, str], name: str, low: int, high: int) -> int:
    try:
        value = int(params[name])
    except ValueError:
        raise ParamError(f"{name} must be a whole number, got {params[name][:40]!r}") from None
    if not low <= value <= high:
        raise ParamError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _float(params: Mapping[str, str], name: str, low: float, high: float) -> float:
    try:
        value = float(params[name])
    except ValueError:
        raise ParamError(f"{name} must be a number, got {params[name][:40]!r}") from None
    if not low <= value < high:
        raise ParamError(f"{name} must be in [{low:g}, {high:g}), got {value:g}")
    return value


def _ratio(text: str) -> float | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise ParamError(f"downsample_ratio must be 'auto' or a number in (0, 1], got {text[:40]!r}") from None
    if not 0 < value <= 1:
        raise ParamError(f"downsample_ratio must be in (0, 1], got {value:g}")
    return value


def _check(options: MatteOptions, *, target: str, still: bool) -> None:
    """The library's own checks of options and output form (so the messages are its own)."""
    from ..api import check_options
    from ..errors import VidmatteError
    from ..io.formats import encoder_settings, output_form, resolve_output_type, takes_quality

    try:
        check_options(options)
        output_type = resolve_output_type(target, options.output_type, still=still)
        if not still and takes_quality(output_form(target)):  # the CRF's range depends on the codec
            encoder_settings(
                output_form(target), width=2, height=2, alpha=output_type == "rgba", quality=options.quality
            )
    except VidmatteError as error:
        raise ParamError(_api_words(str(error))) from None


def _api_words(message: str) -> str:
    """The library's message in the API's words: parameters for flags, no file names."""
    message = re.sub(r"\b(still|clip)(\.\w+|/)", r"the \1 output", message)
    message = re.sub(
        r"^\.(jpg|jpeg|tif|tiff|bmp) cannot carry alpha; write \.png or \.webp",
        r"format \1 cannot carry alpha; ask for format png or webp",
        message,
    )
    message = re.sub(
        r"^h264 video cannot carry alpha; write \.webm, \.mov or a folder/",
        "form mp4 cannot carry alpha; ask for form webm, mov or png-zip",
        message,
    )
    for flag, param in (
        ("--output-type", "output_type"),
        ("--downsample-ratio", "downsample_ratio"),
        ("--smooth-strength", "smooth_strength"),
        ("--passes", "passes"),
        ("--warmup", "warmup"),
        ("-o", "format"),
    ):
        message = message.replace(flag, param)
    return message


def _still_format(value: str | None, accept: str | None) -> str:
    if value:
        name = value.strip().lower().lstrip(".")
        name = _STILL_ALIASES.get(name, name)
        if name not in STILL_FORMATS:
            raise ParamError(f"format {value[:40]!r} is not one of {', '.join(STILL_FORMATS)}")
        return name
    if not accept:
        return "png"
    return negotiate(accept)


def negotiate(accept: str) -> str:
    """The still format an Accept header prefers (q-values honoured; png first on ties)."""
    wanted: list[tuple[str, float]] = []
    for item in accept.split(","):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        q = 1.0
        for param in parts[1:]:
            if param.lower().startswith("q="):
                try:
                    q = float(param[2:])
                except ValueError:
                    q = 0.0
        if media:
            wanted.append((media, q))
    best, best_q = None, 0.0
    for name, (media_type, _) in STILL_FORMATS.items():
        # the most specific entry that matches decides this type's q
        exact = [q for m, q in wanted if m == media_type]
        family = [q for m, q in wanted if m == "image/*"]
        anything = [q for m, q in wanted if m == "*/*"]
        q = exact[0] if exact else family[0] if family else anything[0] if anything else 0.0
        if q > best_q:
            best, best_q = name, q
    if best is None:
        raise NotAcceptable(f"Accept: {accept[:80]!r} allows none of {', '.join(m for m, _ in STILL_FORMATS.values())}")
    return best
