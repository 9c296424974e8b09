"""Video jobs: runner threads that take queued jobs from the store and run each as one call.

A job is `matte(upload, output, options, progress)`, a `MatteFunction`. Locally that is
`vidmatte.api.matte_path` on a copy of the server's engine (`local_matte`: the model is shared,
the recurrent state is the job's own); a scale-out driver with the same signature can take its
place (see `main.make_matte_function`). Progress reports update the job; raising from the
progress callback is how a job is stopped (cancel, server shutdown), and the writers then
remove their unfinished output.

Restart policy (`recover`, at start-up): a job found "running" was cut short by a crash or
`kill -9`. Matting is deterministic and the upload is still there, so it is re-queued at its
old place in the queue and run again from the start; its partial output is removed first.
A job that was cut short `max_attempts` times is marked failed instead, with the reason: a
clip that kills the server (memory, a decoder crash) must not take it down on every restart.
A clean shutdown (SIGTERM, Ctrl-C) stops the running job and re-queues it without counting
the attempt.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import VidmatteError
from ..options import MatteOptions, Progress, ProgressCallback
from .params import FORMS, options_from_stored
from .store import DataDir, Job, JobStore

if TYPE_CHECKING:
    from ..engine import MattingEngine

log = logging.getLogger("vidmatte.server")

#: One job: matte `source` into `output` (a name whose suffix picks the form; a trailing '/'
#: a folder of PNG frames) with `options`, reporting through `progress`; raises VidmatteError
#: for anything the input or options cause. The seam for other executors (a Ray driver).
MatteFunction = Callable[[Path, str, MatteOptions, ProgressCallback], object]

#: Progress is written to the database at most this often (the API reads live values anyway).
SAVE_EVERY_S = 0.5
#: Finished jobs are looked at for expiry this often.
EXPIRE_EVERY_S = 30.0
INTERNAL_ERROR = "internal error while matting this clip (the details are in the server's log)"


def local_matte(engine: MattingEngine) -> MatteFunction:
    """Jobs run by `matte_path` in this process, on copies of `engine` (model shared, state per job)."""
    from ..api import matte_path

    def matte(source: Path, output: str, options: MatteOptions, progress: ProgressCallback) -> object:
        return matte_path(
            source, output, options, engine=engine.with_ratio(options.downsample_ratio), progress=progress
        )

    return matte


class JobCancelled(Exception):
    """Raised from the progress callback: the client cancelled the job."""


class ServerStopping(Exception):
    """Raised from the progress callback: the server is shutting down."""


@dataclass
class Live:
    """A running job's progress, in memory (the database gets it every SAVE_EVERY_S)."""

    started: float = field(default_factory=time.monotonic)
    cancel: threading.Event = field(default_factory=threading.Event)
    done: int = 0
    total: int | None = None
    fps: float | None = None
    saved: float = 0.0


class JobRunner:
    """Runner threads (`workers` of them), the start-up recovery and the expiry of old jobs."""

    def __init__(
        self,
        store: JobStore,
        data: DataDir,
        matte: MatteFunction,
        *,
        workers: int = 1,
        keep: float = 86400.0,
        max_attempts: int = 2,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.store, self.data, self.matte = store, data, matte
        self.workers, self.keep, self.max_attempts = workers, keep, max_attempts
        self.webhooks = webhooks
        self._live: dict[str, Live] = {}
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._threads_at_start: tuple[int, int] | None = None

    # ---- control ---------------------------------------------------------------------------

    def start(self) -> None:
        self._threads_at_start = _thread_settings()
        for index in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"job-runner-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        janitor = threading.Thread(target=self._janitor, name="job-expiry", daemon=True)
        janitor.start()
        self._threads.append(janitor)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the running jobs (re-queued, attempt not counted) and the threads."""
        self._stopping.set()
        self.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            stuck = list(self._live)
        for job_id in stuck:  # a runner that did not stop in time: its job goes back all the same
            self.store.requeue(job_id, "re-queued: the server stopped while matting it", count_attempt=False)
        if self.webhooks is not None:
            self.webhooks.close()

    def wake(self) -> None:
        """A job was queued: let an idle runner take it."""
        with self._wake:
            self._wake.notify_all()

    def cancel(self, job_id: str) -> None:
        """Stop a job that is running (call after the store marked it cancelled)."""
        with self._lock:
            live = self._live.get(job_id)
        if live is not None:
            live.cancel.set()

    def live(self, job_id: str) -> Live | None:
        with self._lock:
            return self._live.get(job_id)

    def running_eta(self) -> float | None:
        """Seconds until the soonest running job should finish (None when unknown)."""
        with self._lock:
            lives = list(self._live.values())
        etas = [(live.total - live.done) / live.fps for live in lives if live.total and live.fps]
        return min(etas) if etas else None

    # ---- start-up ----------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Apply the restart policy (module docstring) and sweep the data directory; returns one
        line per job it changed, for the log."""
        lines: list[str] = []
        for job in self.store.jobs("running", limit=1 << 30):
            self.data.clear_outputs(job.id)
            if not self.data.upload(job.id).is_file():
                self.store.fail(
                    job.id,
                    "the uploaded file is gone from the server; upload it again",
                    self.keep,
                    from_status="running",
                )
                lines.append(f"job {job.id}: was running, upload gone: failed")
            elif job.attempts >= self.max_attempts:
                self.store.fail(
                    job.id,
                    f"the server stopped {job.attempts} times while matting this clip (killed "
                    "or out of memory?); it is not tried again",
                    self.keep,
                    from_status="running",
                )
                self.data.remove_job(job.id)
                lines.append(f"job {job.id}: was running, cut short {job.attempts} times: failed")
            else:
                self.store.requeue(
                    job.id,
                    f"re-queued after the server stopped while matting it (attempt "
                    f"{job.attempts} of {self.max_attempts} cut short)",
                    count_attempt=True,
                )
                lines.append(f"job {job.id}: was running when the server stopped: re-queued")
        for job in self.store.jobs("queued", limit=1 << 30):
            if not self.data.upload(job.id).is_file():
                self.store.fail(
                    job.id,
                    "the uploaded file is gone from the server; upload it again",
                    self.keep,
                    from_status="queued",
                )
                lines.append(f"job {job.id}: queued, upload gone: failed")
        for job in self.store.jobs("done", limit=1 << 30):
            if job.result is None or not (self.data.results / job.result).is_file():
                self.store.delete(job.id)
                lines.append(f"job {job.id}: result file gone: removed")
        for path in self.data.sweep(self.store.ids()):
            log.debug("removed %s", path)
        self.expire()
        return lines

    def expire(self) -> int:
        """Remove finished jobs past their `--keep` time, files and all; returns how many."""
        gone = 0
        for job in self.store.expired():
            if self.store.delete(job.id):
                self.data.remove_job(job.id)
                gone += 1
        return gone

    # ---- the runners -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self.store.claim_next()
            except Exception:
                log.exception("could not read the job queue")
                job = None
            if job is None:
                with self._wake:
                    self._wake.wait(timeout=1.0)
                continue
            try:
                self._run(job)
            except Exception:  # the runner itself must survive anything a job does
                log.exception("job %s: unexpected error in the runner", job.id)

    def _janitor(self) -> None:
        while not self._stopping.wait(EXPIRE_EVERY_S):
            try:
                self.expire()
            except Exception:
                log.exception("could not expire old jobs")

    def _run(self, job: Job) -> None:
        form = FORMS[job.form]
        upload = self.data.upload(job.id)
        live = Live(total=job.frames_total)
        with self._lock:
            self._live[job.id] = live
        current = self.store.get(job.id)
        if current is None or current.status != "running":  # cancelled between the claim and now
            live.cancel.set()
        self.data.clear_outputs(job.id)
        if form.name == "png-zip":
            frames = self.data.workspace(job.id) / "frames"
            frames.parent.mkdir(mode=0o700)
            target = f"{frames}/"
        else:
            target = str(self.data.result(job.id, form.suffix))
        progress = self._progress_callback(job.id, live)
        log.info("job %s: started (%s, %s)", job.id, job.name, form.name)
        requeued = False
        try:
            self.matte(upload, target, options_from_stored(job.options), progress)
            if form.name == "png-zip":
                zip_frames(
                    frames,
                    self.data.result(job.id, form.suffix),
                    _zip_folder(job.name),
                    lambda: progress(Progress("zip", 0, None)),
                )
            fps = live.done / max(time.monotonic() - live.started, 1e-6)
            if not self.store.finish(
                job.id,
                "done",
                keep=self.keep,
                result=f"{job.id}{form.suffix}",
                frames_done=live.done,
                frames_total=live.done or None,
                fps=fps,
            ):
                self.data.clear_outputs(job.id)  # cancelled in the last moment
            log.info("job %s: done, %d frames at %.1f frames/s", job.id, live.done, fps)
        except JobCancelled:
            self.data.clear_outputs(job.id)
            log.info("job %s: cancelled", job.id)
        except ServerStopping:
            self.data.clear_outputs(job.id)
            requeued = self.store.requeue(job.id, "re-queued: the server stopped while matting it", count_attempt=False)
            log.info("job %s: stopped by the shutdown, re-queued", job.id)
        except VidmatteError as error:
            self.data.clear_outputs(job.id)
            message = scrub(str(error), {upload: job.name, Path(target.rstrip("/")): "the output"}, self.data.root)
            self.store.finish(job.id, "failed", keep=self.keep, error=message)
            log.info("job %s: failed: %s", job.id, message)
        except Exception:
            self.data.clear_outputs(job.id)
            log.exception("job %s: internal error", job.id)
            self.store.finish(job.id, "failed", keep=self.keep, error=INTERNAL_ERROR)
        finally:
            self.data.remove_workspace(job.id)  # the PNG frames, zipped by now (or not wanted)
            with self._lock:
                del self._live[job.id]
                idle = not self._live
            if not requeued:
                upload.unlink(missing_ok=True)  # a finished job needs its source no more
            if idle and self._threads_at_start is not None:
                _restore_thread_settings(self._threads_at_start)
        if not requeued and job.webhook_url and self.webhooks is not None:
            final = self.store.get(job.id)
            if final is not None:
                self.webhooks.send(job.webhook_url, job_json(final))

    def _progress_callback(self, job_id: str, live: Live) -> ProgressCallback:
        def progress(report: Progress) -> None:
            if live.cancel.is_set():
                raise JobCancelled()
            if self._stopping.is_set():
                raise ServerStopping()
            if report.task != "frames":
                return
            now = time.monotonic()
            live.done = report.done
            if report.total is not None:
                live.total = report.total
            live.fps = report.done / max(now - live.started, 1e-6)
            if now - live.saved >= SAVE_EVERY_S:
                live.saved = now
                self.store.progress(job_id, live.done, live.total, live.fps)

        return progress


def job_json(job: Job, live: Live | None = None) -> dict[str, Any]:
    """What the API says about a job (live progress where the job is running)."""
    done, total, fps = job.frames_done, job.frames_total, job.fps
    if live is not None and job.status == "running":
        done, total, fps = live.done, live.total or total, live.fps
    eta = None
    if job.status == "running" and fps and total:
        eta = max(0.0, (total - done) / fps)
    links = {"self": f"/api/jobs/{job.id}"}
    if job.status == "done":
        links["result"] = f"/api/jobs/{job.id}/result"
    return {
        "id": job.id,
        "status": job.status,
        "name": job.name,
        "form": job.form,
        "media_type": FORMS[job.form].media_type,
        "options": job.options,
        "frames_done": done,
        "frames_total": total,
        "progress": None if not total else min(1.0, done / total),
        "fps": None if fps is None else round(fps, 2),
        "eta_s": None if eta is None else round(eta, 1),
        "error": job.error,
        "note": job.note,
        "attempts": job.attempts,
        "created": _iso(job.created),
        "started": _iso(job.started),
        "finished": _iso(job.finished),
        "expires": _iso(job.expires),
        "links": links,
    }


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def scrub(message: str, names: dict[Path, str], root: Path) -> str:
    """A library message for a client: the server's paths replaced by the client's names (and any
    other path under the data directory by '...')."""
    for path, name in names.items():
        message = message.replace(str(path), name)
    return message.replace(str(root), "...")


def zip_frames(frames: Path, target: Path, folder: str, check: Callable[[], None]) -> None:
    """The PNG frames in `frames` as `target` (a zip of `folder/000000.png ...`), written under a
    temporary name and renamed when complete; `check` is called between frames (it raises to stop)."""
    import os

    from ..io.atomic import Staging

    staging = Staging(target, folder=False, overwrite=False)
    try:
        # stored, not deflated: PNGs are compressed already
        with zipfile.ZipFile(staging.temp, "w", compression=zipfile.ZIP_STORED) as archive:
            for png in sorted(frames.iterdir()):
                check()
                archive.write(png, f"{folder}/{png.name}")
        with open(staging.temp, "rb") as file:
            os.fsync(file.fileno())
    except BaseException:
        staging.discard()
        raise
    staging.commit()


def _zip_folder(name: str) -> str:
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return (re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "frames")[:80] + "_matte"


def _thread_settings() -> tuple[int, int]:
    import cv2
    import torch

    return torch.get_num_threads(), cv2.getNumThreads()


def _restore_thread_settings(settings: tuple[int, int]) -> None:
    """Runs set torch's and OpenCV's process-wide thread counts and restore what they found;
    with runs overlapping, the last one out may restore another run's setting. With no job
    running, the server's own settings come back."""
    import cv2
    import torch

    if torch.get_num_threads() != settings[0]:
        torch.set_num_threads(settings[0])
    if cv2.getNumThreads() != settings[1]:
        cv2.setNumThreads(settings[1])


class Webhooks:
    """POSTs a finished job's JSON to its `webhook_url` (only when the server runs with --webhooks).

    Sent from two background threads, 3 tries (1 s, 5 s apart), 10 s timeout each, redirects
    not followed. With an API key set, `X-Vidmatte-Signature: sha256=HMAC(key, body)` lets the
    receiver check the call came from this server.
    """

    def __init__(self, key: str | None, tries: int = 3, timeout: float = 10.0) -> None:
        self.key, self.tries, self.timeout = key, tries, timeout
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="webhook")

    def send(self, url: str, payload: dict[str, Any]) -> None:
        self._pool.submit(self._deliver, url, payload)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _deliver(self, url: str, payload: dict[str, Any]) -> None:
        import hashlib
        import hmac

        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "vidmatte-serve"}
        if self.key:
            digest = hmac.new(self.key.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Vidmatte-Signature"] = f"sha256={digest}"
        opener = urllib.request.build_opener(_NoRedirects)
        for attempt in range(self.tries):
            try:
                request = urllib.request.Request(url, data=body, headers=headers, method="POST")
                with opener.open(request, timeout=self.timeout) as answer:
                    if answer.status < 300:
                        return
            except (urllib.error.URLError, OSError, ValueError) as error:
                log.info("webhook for job %s: %s", payload.get("id"), error)
            if attempt + 1 < self.tries:
                time.sleep((1.0, 5.0)[min(attempt, 1)])
        log.warning("webhook for job %s: gave up after %d tries", payload.get("id"), self.tries)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook goes where it was told to, not where a redirect points (another host, a file)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
