"""The FastAPI application: routes, JSON errors, the page.

    POST   /api/remove              a still, synchronous: the picture's bytes (200)
    POST   /api/jobs                a clip, asynchronous: 202 + Location
    GET    /api/jobs                the jobs, newest first
    GET    /api/jobs/{id}           status, frames, frames/s, ETA, error
    GET    /api/jobs/{id}/result    the result (Range requests: 206)
    DELETE /api/jobs/{id}           cancel (200, the job as now) or delete a finished one (204)
    GET    /healthz                 liveness (no key needed), GET / the page, /docs the API

Every error is `{"error": "one line"}` with its status; a traceback never leaves the server.
`create_app` takes ready parts (store, runner, stills), so tests and other front ends can
assemble it as they like; `main.py` makes them for `vidmatte serve`.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..errors import InputError, VidmatteError
from ..options import SMOOTH_STRENGTH
from .jobs import JobRunner, job_json, scrub
from .params import FORMS, NotAcceptable, ParamError, job_request, still_request
from .security import Guard, key_matches, presented_key
from .stills import Busy, Stills
from .store import ID_PATTERN, DataDir, JobStore, new_job_id
from .uploads import Received, UploadError, display_name, receive

log = logging.getLogger("vidmatte.server")
STATIC = Path(__file__).with_name("static")


@dataclass(frozen=True)
class Settings:
    """What the routes need to know about the server's configuration."""

    api_key: str | None = None
    max_upload: int = 2 << 30
    queue_limit: int = 100
    keep: float = 86400.0
    webhooks: bool = False
    cors: tuple[str, ...] = ()
    loopback_only: bool = True
    device: str = ""


# the two ways of sending the key, declared so the docs page offers an Authorize button; module
# level, because the route signatures naming them are resolved against the module's globals
_BEARER = HTTPBearer(auto_error=False, description="the server's API key")
_HEADER_KEY = APIKeyHeader(name="X-API-Key", auto_error=False, description="the server's API key")


class ApiError(Exception):
    """An answer other than success: HTTP status, one-line message, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def create_app(
    settings: Settings, *, store: JobStore, data: DataDir, runner: JobRunner, stills: Stills, on_started: Any = None
) -> FastAPI:
    """The application over ready parts; the runner is started and stopped with the app."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        runner.start()
        if on_started is not None:
            on_started()
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(runner.stop)
            await anyio.to_thread.run_sync(stills.close)

    app = FastAPI(
        title="vidmatte",
        version=__version__,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        description="Background removal for video (with alpha) and stills. Send the API key as "
        "`Authorization: Bearer KEY` or `X-API-Key: KEY` where the server has one.",
    )
    _errors(app)
    # added last = outermost: CORS answers preflights before the guard looks at the Origin
    app.add_middleware(Guard, loopback_only=settings.loopback_only, cors=settings.cors)
    if settings.cors:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", "Range", "Accept"],
            expose_headers=[
                "Location",
                "Content-Range",
                "Accept-Ranges",
                "Content-Disposition",
                "Retry-After",
                "Content-Length",
                "Server-Timing",
            ],
        )

    def authorised(
        request: Request,
        _b: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        _h: Annotated[str | None, Depends(_HEADER_KEY)],
    ) -> None:
        """401 unless the request presents the key (when the server has one)."""
        if settings.api_key is not None and not key_matches(presented_key(request.headers), settings.api_key):
            raise ApiError(
                401,
                "missing or wrong API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                {"WWW-Authenticate": 'Bearer realm="vidmatte"'},
            )

    api = APIRouter(prefix="/api", dependencies=[Depends(authorised)])

    @api.post(
        "/remove",
        summary="Remove the background of a still (synchronous)",
        response_class=Response,
        openapi_extra=_body_doc(_STILL_FIELDS),
        responses={
            200: {"content": {"image/png": {}, "image/webp": {}, "image/jpeg": {}}, "description": "the picture"},
            **_ERRORS,
        },
    )
    async def remove(request: Request) -> Response:
        """The picture with its background removed (rembg-compatible: multipart field `file`, or
        the raw body). Parameters as form fields or in the query string; the output format is
        `format`, else the `Accept` header, else PNG."""
        if stills.full:
            raise ApiError(
                429,
                "too many pictures are waiting to be matted; try again shortly",
                {"Retry-After": str(stills.retry_after())},
            )
        upload = await _receive(request, data, settings.max_upload)
        target = data.temp()
        try:
            still = _parse(lambda params: still_request(params, request.headers.get("accept")), request, upload)
            target = data.temp(still.suffix)
            try:
                started = time.perf_counter()
                picture = await stills.decode(upload.path)
                decoded = time.perf_counter() - started
            except InputError as error:  # not a picture, damaged, too large: the decoder's reason
                raise ApiError(415, _public(error, upload, data)) from None
            try:
                waited, matted = await stills.matte(upload.path, picture, target, still.options)
            except Busy as busy:
                raise ApiError(429, str(busy), {"Retry-After": str(busy.retry_after)}) from None
            except VidmatteError as error:  # e.g. a subject point where there is no person
                raise ApiError(422, _public(error, upload, data)) from None
            body = await anyio.to_thread.run_sync(target.read_bytes)
        finally:
            upload.path.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        name = f"{Path(upload.name).stem or 'still'}_matte{still.suffix}"
        # Server-Timing (W3C): where the time went, so a client can tell the matting from the transport
        timing = f"decode;dur={1000 * decoded:.1f}, wait;dur={1000 * waited:.1f}, matte;dur={1000 * matted:.1f}"
        headers = {"Content-Disposition": _disposition("inline", name), "Server-Timing": timing}
        return Response(body, media_type=still.media_type, headers=headers)

    @api.post(
        "/jobs",
        status_code=202,
        summary="Submit a clip (asynchronous)",
        openapi_extra=_body_doc(_JOB_FIELDS),
        responses={202: {"description": "queued; poll the Location"}, **_ERRORS},
    )
    async def submit(request: Request) -> JSONResponse:
        """Queue a clip for matting (multipart field `file`, or the raw body; parameters as form
        fields or in the query string); answers 202 with the job and its `Location`."""
        if store.counts()["queued"] >= settings.queue_limit:
            raise _queue_full(runner)
        upload = await _receive(request, data, settings.max_upload)
        try:
            wanted = _parse(lambda params: job_request(params, webhooks=settings.webhooks), request, upload)
            try:
                frames = await anyio.to_thread.run_sync(_probe_video, upload.path)
            except InputError as error:
                raise ApiError(415, _public(error, upload, data)) from None
            job_id = new_job_id()
            await anyio.to_thread.run_sync(_keep, upload.path, data.upload(job_id))
            job = store.add(
                job_id,
                name=upload.name,
                form=wanted.form.name,
                options=wanted.options,
                webhook_url=wanted.webhook_url,
                frames_total=frames,
                queue_limit=settings.queue_limit,
            )
            if job is None:
                data.upload(job_id).unlink(missing_ok=True)
                raise _queue_full(runner)
        finally:
            upload.path.unlink(missing_ok=True)
        runner.wake()
        log.info("job %s: queued (%s, %s, %d bytes)", job.id, job.name, job.form, upload.size)
        return JSONResponse(job_json(job), status_code=202, headers={"Location": f"/api/jobs/{job.id}"})

    @api.get("/jobs", summary="List jobs, newest first", responses=_ERRORS)
    async def list_jobs(status: str | None = None, limit: int = 100) -> dict[str, Any]:
        if status is not None and status not in ("queued", "running", "done", "failed", "cancelled"):
            raise ApiError(400, f"status {status[:40]!r} is not one of queued, running, done, failed, cancelled")
        if not 1 <= limit <= 1000:
            raise ApiError(400, "limit must be between 1 and 1000")
        jobs = store.jobs(status, limit)
        return {"jobs": [job_json(job, runner.live(job.id)) for job in jobs], "counts": store.counts()}

    @api.get("/jobs/{job_id}", summary="A job's status and progress", responses=_ERRORS)
    async def get_job(job_id: str) -> dict[str, Any]:
        job = _job(store, job_id)
        return job_json(job, runner.live(job.id))

    @api.api_route(
        "/jobs/{job_id}/result",
        methods=["GET", "HEAD"],
        summary="Download a job's result",
        response_class=FileResponse,
        responses={206: {"description": "part of it (Range)"}, **_ERRORS},
    )
    async def result(job_id: str, request: Request) -> FileResponse:
        job = _job(store, job_id)
        if job.status != "done" or job.result is None:
            why = f": {job.error}" if job.error else ""
            raise ApiError(409, f"job {job.id} is {job.status}{why}; its result is there once it is done")
        path = data.results / job.result
        try:
            size = (await anyio.to_thread.run_sync(os.stat, path)).st_size
        except FileNotFoundError:
            raise ApiError(404, f"the result of job {job.id} is gone (expired)") from None
        refusal = range_refusal(request.headers.get("range"), size)
        if refusal is not None:
            status, message = refusal
            raise ApiError(status, message, {"Content-Range": f"bytes */{size}"} if status == 416 else None)
        form = FORMS[job.form]
        name = f"{Path(job.name).stem or 'clip'}_matte{form.suffix}"
        return FileResponse(
            path, media_type=form.media_type, headers={"Content-Disposition": _disposition("attachment", name)}
        )

    @api.delete(
        "/jobs/{job_id}",
        summary="Cancel a job, or delete a finished one",
        responses={204: {"description": "deleted"}, **_ERRORS},
    )
    async def delete_job(job_id: str) -> Response:
        """A queued or running job is cancelled: its files are removed at once (a running one
        stops at its next frame) and it stays listed as cancelled until it expires. A finished
        job is deleted with its result (204)."""
        job = _job(store, job_id)
        cancelled = store.cancel(job.id, settings.keep)
        if cancelled is not None:
            runner.cancel(job.id)
            if job.status == "queued":
                data.remove_job(job.id)
            log.info("job %s: cancelled by the client", job.id)
            return JSONResponse(job_json(cancelled))
        store.delete(job.id)
        data.remove_job(job.id)
        return Response(status_code=204)

    app.include_router(api)

    @app.get("/healthz", summary="Liveness and what the server runs on")
    async def healthz(request: Request) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": "ok", "version": __version__, "auth": settings.api_key is not None}
        if settings.api_key is None or key_matches(presented_key(request.headers), settings.api_key):
            answer.update(
                device=settings.device,
                jobs=store.counts(),
                stills_pending=stills.pending,
                max_upload=settings.max_upload,
                webhooks=settings.webhooks,
            )
        return answer

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


# ---- helpers ---------------------------------------------------------------------------------


def _errors(app: FastAPI) -> None:
    """Every error as {"error": "..."}; nothing else (no traceback, no HTML) reaches a client."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = error.detail if isinstance(error.detail, str) else "request refused"
        if error.status_code == 404:
            message = f"no such page or endpoint: {request.url.path[:100]}"
        return JSONResponse({"error": message}, status_code=error.status_code, headers=error.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
        return JSONResponse({"error": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, status_code=400)

    @app.exception_handler(Exception)
    async def internal(request: Request, error: Exception) -> JSONResponse:
        log.error("internal error on %s %s", request.method, request.url.path, exc_info=error)
        return JSONResponse({"error": "internal server error (the details are in the server's log)"}, status_code=500)


async def _receive(request: Request, data: DataDir, limit: int) -> Received:
    try:
        return await receive(request, data.temp(".upload"), limit)
    except UploadError as error:
        raise ApiError(error.status, str(error), {"Connection": "close"} if error.status == 413 else None) from None
    except OSError as error:
        log.error("could not store an upload: %s", error)
        if error.errno == 28:  # ENOSPC
            raise ApiError(507, "the server's disk is full; try again later") from None
        raise ApiError(500, "the server could not store the upload") from None


def _parse(parse: Any, request: Request, upload: Received) -> Any:
    """Query parameters and form fields (fields win) through `parse`; ParamError -> 400."""
    params = dict(request.query_params)
    params.update(upload.fields)
    try:
        return parse(params)
    except ParamError as error:
        raise ApiError(400, str(error)) from None
    except NotAcceptable as error:
        raise ApiError(406, str(error)) from None


def _public(error: VidmatteError, upload: Received, data: DataDir) -> str:
    return scrub(str(error), {upload.path: upload.name}, data.root)


def _probe_video(path: Path) -> int | None:
    """Open the upload as a video (decodes its first frame); InputError if it is none. Returns
    the container's frame count estimate."""
    from ..io.video_reader import VideoReader

    with VideoReader(path) as reader:
        return reader.info.frame_count


def _keep(temp: Path, final: Path) -> None:
    """The checked upload, on disk for good, under its job's name."""
    with open(temp, "rb") as file:
        os.fsync(file.fileno())  # before the job row that points at it is committed
    os.replace(temp, final)


def _queue_full(runner: JobRunner) -> ApiError:
    eta = runner.running_eta()
    retry = 30 if eta is None else max(1, min(3600, round(eta)))
    return ApiError(429, "the job queue is full; try again later", {"Retry-After": str(retry)})


def _job(store: JobStore, job_id: str) -> Any:
    job = store.get(job_id) if ID_PATTERN.match(job_id) else None
    if job is None:
        raise ApiError(404, "no such job (it may have expired)")
    return job


def _disposition(kind: str, name: str) -> str:
    """A Content-Disposition header for a display name: an ASCII fallback and the UTF-8 form."""
    from urllib.parse import quote

    name = display_name(name, "result")
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def range_refusal(header: str | None, size: int) -> tuple[int, str] | None:
    """(status, message) for a Range header the file response would refuse, else None.

    The same rules as Starlette's FileResponse (which would answer those in plain text), so
    the refusal goes out as JSON like every other error."""
    if header is None:
        return None
    units, sep, spec = header.partition("=")
    if not sep or units.strip().lower() != "bytes":
        return 400, "Range: only 'bytes=START-END' ranges are served"
    parts = spec.split(",")
    if len(parts) > 100:
        return None  # served whole
    ranges: list[tuple[int, int]] = []
    for part in parts:
        part = part.strip()
        if not part or part == "-" or "-" not in part:
            continue
        first, last = (side.strip() for side in part.split("-", 1))
        try:
            start = int(first) if first else max(size - int(last), 0)
            end = int(last) + 1 if first and last and int(last) < size else size
        except ValueError:
            continue
        ranges.append((start, end))
    if not ranges:
        return 400, "Range: no byte range given"
    if any(not 0 <= start < size for start, _ in ranges):
        return 416, f"Range: the result has {size} bytes"
    if any(start >= end for start, end in ranges):
        return 400, "Range: a range ends before it starts"
    return None


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "content": {"application/json": {"example": {"error": "one line"}}}}
    for status, text in (
        (400, "bad parameter"),
        (401, "missing or wrong API key"),
        (404, "no such job"),
        (409, "not done"),
        (413, "upload too large"),
        (415, "not a picture / video"),
        (429, "queue full (Retry-After)"),
    )
}

_STILL_FIELDS = {
    "output_type": {"type": "string", "enum": ["rgba", "alpha", "foreground", "composite"]},
    "background": {"type": "string", "description": "a colour (name, #rrggbb, r,g,b) or 'blur'"},
    "refine": {"type": "boolean", "description": "edge refinement (default on)"},
    "passes": {"type": "integer", "minimum": 1, "maximum": 64},
    "format": {"type": "string", "enum": ["png", "webp", "jpg"], "description": "else the Accept header"},
    "downsample_ratio": {"type": "string", "description": "'auto' or a number in (0, 1]"},
    "om": {"type": "boolean", "description": "rembg: only the mask (output_type=alpha)"},
}
_JOB_FIELDS = {
    "form": {"type": "string", "enum": list(FORMS), "default": "webm"},
    "output_type": {"type": "string", "enum": ["rgba", "alpha", "foreground", "composite"]},
    "background": {"type": "string", "description": "a colour (name, #rrggbb, r,g,b) or 'blur'"},
    "smooth": {"type": "boolean"},
    "smooth_strength": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": SMOOTH_STRENGTH},
    "refine": {"type": "boolean"},
    "warmup": {"type": "integer", "minimum": 0, "maximum": 64},
    "scene_reset": {"type": "boolean", "default": True},
    "downsample_ratio": {"type": "string", "description": "'auto' or a number in (0, 1]"},
    "quality": {"type": "integer", "description": "CRF: webm 0-63, mp4 0-51"},
    "webhook_url": {"type": "string", "description": "POSTed the job when it ends (servers started with --webhooks)"},
}


def _body_doc(fields: dict[str, Any]) -> dict[str, Any]:
    """The request body for the docs: the routes read it as a stream themselves."""
    multipart = {
        "type": "object",
        "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary"}, **fields},
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": multipart},
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
