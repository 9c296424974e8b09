"""The Ray driver: actors each holding one engine, and the loop that feeds them clips, segments
and files, joins what they write, and reports one progress for the whole job.

    files -> [actor: scan a long clip (timestamps, hard cuts)] -> split_clip -> segments
          -> [actors: matte a segment, or a whole short clip, or a picture]
          -> driver: join a clip's segments by packet copy, audio from the source

Ray does the scheduling, placement, restarts and retries (an actor killed mid-segment is
restarted and its call retried, `max_restarts` / `max_task_retries`); an actor that is gone for
good has its work handed to another. Ray is imported only here, and only when a run asks for
workers: the plain install never imports it.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ClusterError, InputError, OutputError, VidmatteError
from ..folders import FolderSummary
from ..io.formats import default_output, is_image_path, output_form
from ..options import MatteOptions, Progress, ProgressCallback, log
from .split import DEFAULT_PREROLL, Segment, default_segment_frames, split_clip
from .work import (
    Manifest,
    Scan,
    SegmentDone,
    SegmentJob,
    join_segments,
    remove_work,
    run_segment,
    scan_clip,
    segment_path,
    source_key,
    work_dir,
)

#: Restarts of a killed actor, and retries of the call it was running, before its work moves on.
MAX_RESTARTS = 3
#: Times a piece of work is handed to another actor after its actor is gone for good.
MAX_ATTEMPTS = 3
#: Seconds between progress reports while waiting for the actors.
POLL_S = 0.25


def import_ray() -> Any:
    """The `ray` module, or a one-line ClusterError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterError("--workers needs Ray, which is not installed: pip install 'vidmatte[ray]'") from None
    return ray


def has_subject(options: MatteOptions) -> bool:
    """A subject choice keeps a causal tracker over the whole clip: such clips are not split."""
    return bool(options.subjects or options.subject_boxes or options.subject_mask)


# ---- the actors ---------------------------------------------------------------------------------


class Worker:
    """One Ray actor: one engine (the model loaded once), sized to its share of the machine."""

    def __init__(self, device: str, precision: str, ratio: float | str, cpus: int, counter: str) -> None:
        from ..cpus import CPUS_VARIABLE

        os.environ[CPUS_VARIABLE] = str(cpus)
        import cv2
        import torch

        torch.set_num_threads(max(1, cpus))
        cv2.setNumThreads(1)
        logging.getLogger("vidmatte").setLevel(logging.ERROR)  # notes are the driver's to say, once
        from ..engine import MattingEngine

        self.engine = MattingEngine(device, precision, ratio)
        import ray

        self.counter = ray.get_actor(counter)  # by name: a restarted actor finds it again

    def describe(self) -> str:
        return self.engine.describe()

    def pid(self) -> int:
        return os.getpid()

    def scan(self, source: Path, scene_reset: bool) -> Scan:
        return scan_clip(source, scene_reset)

    def segment(self, job: SegmentJob, key: str) -> SegmentDone:
        done = 0

        def progress(count: int) -> None:
            nonlocal done
            done += count
            self.counter.set.remote(key, done)

        self.counter.set.remote(key, 0)  # a retried call starts its count again
        return run_segment(job, self.engine.with_ratio(job.options.downsample_ratio), progress)

    def whole(self, source: Path, target: str, options: MatteOptions, key: str) -> str:
        from ..api import matte_path

        self.counter.set.remote(key, 0)

        def progress(report: Progress) -> None:
            if report.task == "frames":
                self.counter.set.remote(key, report.done)

        here = options.with_(workers=None, cluster=None)  # in this process: no Ray inside Ray
        matte_path(source, target, here, engine=self.engine.with_ratio(options.downsample_ratio), progress=progress)
        return target


class Counter:
    """Frames done per piece of work, set by the actors (absolute, so a retried call does not
    count twice), read by the driver for the progress bar."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def set(self, key: str, count: int) -> None:
        self.counts[key] = count

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


# ---- the work of one run ------------------------------------------------------------------------


@dataclass
class Task:
    """A call for some actor: `method` with `args`, for file number `file`."""

    file: int
    method: str
    args: tuple[Any, ...]
    key: str = ""
    segment: Segment | None = None
    attempts: int = 0


@dataclass
class FileWork:
    """One input and its output, and where its work stands."""

    source: Path
    target: str  # as given: a trailing '/' names a PNG folder
    estimate: int = 1
    key: str = ""
    manifest: Manifest | None = None
    segments: list[Segment] = field(default_factory=list)
    parts: dict[int, Path] = field(default_factory=dict)
    pending: int = 0
    error: str | None = None
    exception: BaseException | None = None
    finished: bool = False
    reused: int = 0  # frames already done when the run started


@dataclass(frozen=True)
class Settings:
    """How a run is scaled out (see `MatteOptions`)."""

    workers: int = 2
    cluster: str | None = None
    gpus_per_worker: float | None = None
    segment_frames: int | None = None
    preroll: int = DEFAULT_PREROLL

    @classmethod
    def of(cls, options: MatteOptions) -> Settings:
        return cls(
            workers=options.workers or 1,
            cluster=options.cluster,
            gpus_per_worker=options.gpus_per_worker,
            segment_frames=options.segment_frames,
            preroll=options.preroll,
        )

    def check(self) -> None:
        from ..api import check_scale_out

        check_scale_out(self.workers, self.segment_frames, self.preroll, self.gpus_per_worker)


class RayPool:
    """A Ray session (started here, or joined) and `workers` actors, each with one engine.

    Use as a context manager: the actors are made on entry and killed on exit, and a Ray
    instance this object started is shut down (Ctrl-C included). Ray already running in this
    process (`ray.init` called before) is used as it is and left running.
    """

    def __init__(self, settings: Settings, options: MatteOptions) -> None:
        settings.check()
        self.settings = settings
        self.options = options
        self.ray = import_ray()
        self._started = False
        self.actors: list[Any] = []
        self.described = ""
        #: the exception each failed file of the last `run` raised (None where none was kept)
        self.last_errors: dict[Path, BaseException] = {}

    def __enter__(self) -> RayPool:
        ray = self.ray
        from ..cpus import available_cpus

        if not ray.is_initialized():
            quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            try:
                if self.settings.cluster:
                    ray.init(address=self.settings.cluster, **quiet)
                else:
                    ray.init(num_cpus=available_cpus(), **quiet)
            except (ConnectionError, RuntimeError, ValueError) as error:
                where = self.settings.cluster or "this machine"
                raise ClusterError(f"cannot start or join Ray on {where}: {str(error).splitlines()[0]}") from None
            self._started = True
        try:
            self._make_actors()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _make_actors(self) -> None:
        ray, settings, options = self.ray, self.settings, self.options
        resources = ray.cluster_resources()
        gpus = settings.gpus_per_worker
        if gpus is not None and resources.get("GPU", 0) < gpus:
            raise ClusterError(f"--gpus-per-worker {gpus:g}: the Ray cluster has {resources.get('GPU', 0):g} GPUs")
        if gpus is None:
            share = resources.get("CPU", 1) / settings.workers
            largest = max((n["Resources"].get("CPU", 0) for n in ray.nodes() if n.get("Alive")), default=1)
            share = max(0.01, min(share, largest))
            cpus = max(1, math.floor(share))
        else:
            share, cpus = 1.0, max(1, math.floor(resources.get("CPU", 1) / settings.workers))
        counter_cls = ray.remote(num_cpus=0)(Counter)
        counter_name = f"vidmatte-progress-{os.getpid()}-{secrets.token_hex(4)}"
        self.counter = counter_cls.options(name=counter_name).remote()
        self._counter_name = counter_name
        worker_cls = ray.remote(max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS)(Worker)
        device = options.device if gpus is None or options.device != "auto" else "cuda"
        self.actors = [
            worker_cls.options(num_cpus=share, num_gpus=gpus or 0).remote(
                device, options.precision, options.downsample_ratio, cpus, counter_name
            )
            for _ in range(settings.workers)
        ]
        try:
            descriptions = self.ray.get([actor.describe.remote() for actor in self.actors])
        except self.ray.exceptions.RayTaskError as error:
            cause = error.cause
            if isinstance(cause, VidmatteError):
                raise cause from None
            raise ClusterError(f"the workers could not load the model: {cause}") from None
        self.described = f"{settings.workers} Ray workers ({descriptions[0]}, {cpus} thread(s) each)"

    def __exit__(self, *exc: object) -> None:
        for actor in [*self.actors, getattr(self, "counter", None)]:
            if actor is None:
                continue
            try:
                self.ray.kill(actor)
            except Exception:
                pass
        self.actors = []
        if self._started:
            self.ray.shutdown()
            self._started = False

    # ---- running jobs ----

    def run(
        self,
        jobs: Sequence[tuple[Path, str | Path]],
        options: MatteOptions,
        progress: ProgressCallback | None = None,
        *,
        summary: FolderSummary,
        name: str = "",
    ) -> FolderSummary:
        """Matte every (source, target) job; per-file failures go into `summary` (the rest go
        on), every file's output is written atomically. Returns `summary`."""
        run = _Run(self, jobs, options, progress, summary, name)
        try:
            return run.go()
        finally:
            self.last_errors = {w.source: w.exception for w in run.files if w.exception is not None}


class _Run:
    def __init__(
        self,
        pool: RayPool,
        jobs: Sequence[tuple[Path, str | Path]],
        options: MatteOptions,
        progress: ProgressCallback | None,
        summary: FolderSummary,
        name: str,
    ) -> None:
        self.pool, self.ray, self.options, self.progress = pool, pool.ray, options, progress
        self.summary, self.name = summary, name
        self.settings = Settings.of(options)  # how this run splits its clips (the pool's workers do the work)
        self.files = [FileWork(source, str(target)) for source, target in jobs]
        self.queue: deque[Task] = deque()
        self.idle = list(pool.actors)
        self.busy: dict[Any, tuple[Any, Task]] = {}
        self.dead: set[int] = set()
        self.base = 0  # frames of finished files and reused segments
        self.counted: set[str] = set()  # keys whose frames are in base
        self.notes: set[str] = set()
        self.reported: tuple[int, int] | None = None

    # planning

    def go(self) -> FolderSummary:
        settings = self.settings
        for number, work in enumerate(self.files):
            try:
                self._plan(number, work, settings)
            except VidmatteError as error:
                self._fail(number, str(error), error)
            except Exception as error:
                self._fail(number, f"{type(error).__name__}: {error}", error)
        try:
            self._loop()
        except BaseException:
            self._cancel()
            raise
        self._report(final=True)
        return self.summary

    def _plan(self, number: int, work: FileWork, settings: Settings) -> None:
        options = self.options
        if is_image_path(work.source):
            self.queue.append(Task(number, "whole", (work.source, work.target, options), key=f"{number}"))
            return
        from ..io.video_reader import VideoReader
        from ..pipeline.clip import check_video_job

        check_video_job(work.target, options)
        with VideoReader(work.source) as reader:
            clip = reader.clip
        work.estimate = clip.frame_count or 1
        size = settings.segment_frames or default_segment_frames(clip.frame_rate, settings.preroll)
        if has_subject(options) or work.estimate <= size:
            if has_subject(options) and work.estimate > size:
                self._note(
                    "note: with a subject choice each clip runs whole on one worker (its tracker follows "
                    "the people across the whole clip); files still run in parallel"
                )
            self.queue.append(Task(number, "whole", (work.source, work.target, options), key=f"{number}"))
            return
        work.key = source_key(
            work.source,
            options,
            segment_frames=size,
            preroll=settings.preroll,
            form=output_form(work.target),
            output=Path(work.target).resolve(),
        )
        work.manifest = Manifest.open(work_dir(Path(work.target)), work.key)
        if work.manifest.scan is not None:
            self._split(number, work, work.manifest.scan)
        else:
            self.queue.appendleft(Task(number, "scan", (work.source, options.scene_reset), key=f"{number}"))

    def _split(self, number: int, work: FileWork, scan: Scan) -> None:
        settings = self.settings
        assert work.manifest is not None
        if work.manifest.scan is None:
            work.manifest.scan = scan
            work.manifest.save()
        work.estimate = scan.frames
        size = settings.segment_frames or default_segment_frames(scan.frame_rate, settings.preroll)
        work.segments = split_clip(scan.frames, scan.cuts, segment_frames=size, preroll=settings.preroll)
        if not work.segments:
            raise InputError(f"{work.source}: no video frame could be decoded")
        output_type = _output_type(work.target, self.options)
        folder = work_dir(Path(work.target))
        folder.mkdir(parents=True, exist_ok=True)
        for segment in work.segments:
            path = segment_path(folder, work.target, segment)
            work.parts[segment.index] = path
            if work.manifest.finished(path, segment.frames):
                work.reused += segment.frames
                continue
            job = SegmentJob(
                work.source,
                path,
                segment,
                scan.pts[segment.read_from],
                tuple(scan.cuts),
                self.options,
                output_type,
            )
            work.pending += 1
            self.queue.append(Task(number, "segment", (job,), key=f"{number}:{segment.index}", segment=segment))
        self.base += work.reused
        if work.reused:
            self._note(f"{work.source.name}: {work.reused} frames reused from the last run")
        if work.pending == 0:
            self._join(number, work)

    # the loop

    def _loop(self) -> None:
        last = 0.0
        while self.queue or self.busy:
            self._submit()
            if not self.busy:
                if self.queue:
                    raise ClusterError("every Ray worker died; the work done so far is kept for a rerun")
                break
            ready, _ = self.ray.wait(list(self.busy), num_returns=1, timeout=POLL_S)
            for ref in ready:
                actor, task = self.busy.pop(ref)
                self._collect(ref, actor, task)
            now = time.monotonic()
            if now - last >= POLL_S:
                self._report()
                last = now

    def _submit(self) -> None:
        while self.queue and self.idle:
            task = self.queue.popleft()
            if self.files[task.file].error is not None:
                continue  # its file failed already
            actor = self.idle.pop(0)
            args = task.args + ((task.key,) if task.method in ("segment", "whole") else ())
            ref = getattr(actor, task.method).remote(*args)
            self.busy[ref] = (actor, task)

    def _collect(self, ref: Any, actor: Any, task: Task) -> None:
        ray = self.ray
        work = self.files[task.file]
        try:
            value = ray.get(ref)
        except ray.exceptions.RayTaskError as error:
            self.idle.append(actor)
            cause = error.cause
            if isinstance(cause, VidmatteError):
                self._fail(task.file, str(cause), cause)
            else:
                self._fail(task.file, f"{type(cause).__name__}: {cause}", cause)
            return
        except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
            # the actor is gone for good (its restarts are used up, its node lost): another takes the work
            self.dead.add(id(actor))
            task.attempts += 1
            if task.attempts >= MAX_ATTEMPTS:
                self._fail(task.file, "the Ray worker running it died repeatedly", None)
            else:
                self.queue.appendleft(task)
            return
        self.idle.append(actor)
        if work.error is not None:
            return
        try:
            if task.method == "scan":
                self._split(task.file, work, value)
            elif task.method == "segment":
                assert work.manifest is not None
                work.manifest.record(value)
                work.pending -= 1
                if work.pending == 0:
                    self._join(task.file, work)
            else:
                self._finish(task.file, work)
        except VidmatteError as error:
            self._fail(task.file, str(error), error)
        except Exception as error:
            self._fail(task.file, f"{type(error).__name__}: {error}", error)

    def _join(self, number: int, work: FileWork) -> None:
        parts = [work.parts[s.index] for s in work.segments]
        audio = None if output_form(work.target) == "png" else work.source
        join_segments(parts, work.target, audio_from=audio, overwrite=self.options.overwrite)
        remove_work(work_dir(Path(work.target)))
        self._finish(number, work)

    def _finish(self, number: int, work: FileWork) -> None:
        work.finished = True
        self.summary.done.append((work.source, Path(work.target)))
        self._count_file(number, work)

    def _count_file(self, number: int, work: FileWork) -> None:
        """A finished file counts with its whole length; its partial counts are dropped."""
        self.base += work.estimate - work.reused
        self.counted.add(str(number))

    def _fail(self, number: int, reason: str, error: BaseException | None) -> None:
        work = self.files[number]
        if work.error is not None:
            return
        work.error, work.exception = reason, error
        self.queue = deque(t for t in self.queue if t.file != number)
        self.summary.failed.append((work.source, reason))
        log.warning("failed %s: %s", work.source, reason)

    def _cancel(self) -> None:
        for ref in list(self.busy):
            try:
                self.ray.cancel(ref, force=False)
            except Exception:
                pass
        self.busy.clear()

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.add(text)
            log.info("%s", text)

    def _report(self, final: bool = False) -> None:
        if self.progress is None:
            return
        total = sum(w.estimate for w in self.files if w.error is None)
        if final:
            done = sum(w.estimate for w in self.files if w.finished)
        else:
            try:
                counts: dict[str, int] = self.ray.get(self.pool.counter.snapshot.remote(), timeout=5)
            except Exception:
                counts = {}
            live = sum(n for key, n in counts.items() if key.split(":")[0] not in self.counted)
            done = min(total, self.base + live)
        if (done, total) != self.reported:
            self.reported = (done, total)
            self.progress(Progress("frames", done, total, self.name))


def _output_type(target: str | Path, options: MatteOptions) -> str:
    from ..io.formats import resolve_output_type

    return resolve_output_type(target, options.output_type)


# ---- the library's entries ----------------------------------------------------------------------


def matte_clip(
    source: str | Path,
    output: str | Path | None = None,
    *,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
    pool: RayPool | None = None,
) -> Path:
    """Matte one video on Ray workers (`options.workers`, `options.cluster`): a long clip split
    into segments and joined into exactly the output a sequential run writes. Raises the file's
    error as `matte_path` would."""
    options = options or MatteOptions()
    source = Path(source)
    spec = output if output is not None else default_output(source, "video")
    from ..pipeline.clip import check_video_job

    check_video_job(spec, options)
    if Path(spec).exists() and Path(spec).resolve() == source.resolve():
        raise OutputError(f"output {spec} is the input itself; choose another -o")
    if not source.exists():
        raise InputError(f"{source}: no such file; check the path")
    summary = FolderSummary(Path(spec).parent)
    target = str(spec)
    with _pool(pool, options) as running:
        running.run([(source, target)], options, progress, summary=summary, name=source.name)
        errors = dict(running.last_errors)
    if summary.failed:
        error = errors.get(source)
        if isinstance(error, VidmatteError):
            raise error
        raise _Failed(summary.failed[0][1])
    return Path(spec)


def matte_many(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    workers: int | None = None,
    cluster: str | None = None,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
    pool: RayPool | None = None,
) -> FolderSummary:
    """Matte a list of videos and pictures into `out_dir` (`<stem>_matte.webm` / `.png`, the
    default names) on Ray workers, files in parallel and long clips split. Folder rules: a file
    that fails is reported (warning) and in the summary, the rest go on."""
    options = (options or MatteOptions()).with_(
        workers=workers or (options.workers if options else None) or 2,
        cluster=cluster if cluster is not None else (options.cluster if options else None),
    )
    out = Path(out_dir)
    if not out.is_dir():
        raise OutputError(f"folder {out} does not exist; create it first")
    jobs = []
    for path in paths:
        path = Path(path)
        kind = "image" if is_image_path(path) else "video"
        jobs.append((path, out / default_output(path, kind).name))
    return run_jobs(jobs, out, options, progress, pool=pool)


def run_jobs(
    jobs: Sequence[tuple[Path, str | Path]],
    output_dir: Path,
    options: MatteOptions,
    progress: ProgressCallback | None = None,
    *,
    pool: RayPool | None = None,
    skipped: Iterable[Path] = (),
) -> FolderSummary:
    """(source, target) jobs on Ray workers, with the folder mode's summary."""
    summary = FolderSummary(output_dir)
    summary.skipped.extend(skipped)
    with _pool(pool, options) as running:
        running.run(jobs, options, progress, summary=summary, name=output_dir.name)
    return summary


class _Borrowed:
    def __init__(self, pool: RayPool) -> None:
        self.pool = pool

    def __enter__(self) -> RayPool:
        return self.pool

    def __exit__(self, *exc: object) -> None:
        pass


def _pool(pool: RayPool | None, options: MatteOptions) -> Any:
    if pool is not None:
        return _Borrowed(pool)
    made = RayPool(Settings.of(options), options)
    return _Announced(made)


class _Announced:
    def __init__(self, pool: RayPool) -> None:
        self.pool = pool

    def __enter__(self) -> RayPool:
        self.pool.__enter__()
        log.info("%s", self.pool.described)
        return self.pool

    def __exit__(self, *exc: object) -> None:
        self.pool.__exit__(*exc)


class _Failed(VidmatteError):
    """A file's failure, told in the words its worker raised."""


def matte_folder(
    source_dir: str | Path,
    output_dir: str | Path | None = None,
    *,
    options: MatteOptions | None = None,
    progress: ProgressCallback | None = None,
    pool: RayPool | None = None,
) -> FolderSummary:
    """`vidmatte folder/ --workers N`: every image and video under `source_dir`, as `matte_folder`
    does it (same names, skipped and failed files, summary), on Ray workers."""
    from ..compose import check_background
    from ..folders import plan_folder

    source_dir = Path(source_dir)
    options = options or MatteOptions()
    if not source_dir.is_dir():
        raise InputError(f"{source_dir} is not a folder")
    out = Path(output_dir) if output_dir is not None else default_output(source_dir, "folder")
    if out.resolve() == source_dir.resolve():
        raise OutputError("the output folder is the input folder; choose another -o")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{out} exists and is not a folder; choose another -o")
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist; create it first")
    check_background(options.video_background)
    jobs, other = plan_folder(source_dir, out)
    if not jobs:
        raise InputError(f"no images or videos in {source_dir}")
    for path in other:
        log.warning("skipped %s: not an image or video", path)
    for _, target in jobs:
        target.parent.mkdir(parents=True, exist_ok=True)
    return run_jobs(jobs, out, options, progress, pool=pool, skipped=other)
