"""Jobs in SQLite, their files beside the database.

    DATA/jobs.sqlite3   the job table (WAL journal, synchronous=FULL: a committed state change
                        survives `kill -9` and a power cut)
    DATA/lock           held (flock) by the one server using DATA; the kernel drops it when
                        that process dies, however it dies
    DATA/uploads/ID     the uploaded source, kept until its job finishes
    DATA/results/ID.EXT the finished result (written under a temporary name and renamed)
    DATA/work/ID/       a job's scratch space (PNG frames before they are zipped)
    DATA/tmp/           uploads in flight and stills' outputs; emptied at start-up

Every state change is one conditional UPDATE (`... WHERE status = 'running'`), so a cancel and
a runner finishing at the same moment cannot both win. Client file names are display text
only: every path is made from the job id, which is random (128 bits) and checked against
`ID_PATTERN` before it reaches a path.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one server per data directory is then the user's job
    fcntl = None  # type: ignore[assignment]

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = frozenset({"done", "failed", "cancelled"})
#: What job ids look like: `secrets.token_urlsafe(16)`, 22 characters of [A-Za-z0-9_-].
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{22}$")

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,  -- queue order
    id          TEXT NOT NULL UNIQUE,               -- random, unguessable; every path is made from it
    status      TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    name        TEXT NOT NULL,                      -- the client's file name, for display only
    form        TEXT NOT NULL,                      -- webm | mov | mp4 | png-zip
    options     TEXT NOT NULL,                      -- JSON: the MatteOptions fields the request set
    webhook_url TEXT,
    frames_done INTEGER NOT NULL DEFAULT 0,
    frames_total INTEGER,                           -- the container's estimate, then the true count
    fps         REAL,
    error       TEXT,                               -- one line, for the client
    note        TEXT,                               -- what happened to it besides (re-queued, ...)
    attempts    INTEGER NOT NULL DEFAULT 0,         -- runs started; a run cut short by a crash counts
    created     REAL NOT NULL,
    started     REAL,
    finished    REAL,
    expires     REAL,
    result      TEXT                                -- file name under results/, once done
);
CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, seq);
"""


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: str
    status: str
    name: str
    form: str
    options: dict[str, Any]
    webhook_url: str | None
    frames_done: int
    frames_total: int | None
    fps: float | None
    error: str | None
    note: str | None
    attempts: int
    created: float
    started: float | None
    finished: float | None
    expires: float | None
    result: str | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        values = {key: row[key] for key in row.keys() if key != "seq"}
        values["options"] = json.loads(values["options"])
        return cls(**values)


def new_job_id() -> str:
    """A fresh job id: 128 random bits, URL-safe."""
    return secrets.token_urlsafe(16)


class JobStore:
    """The job table. Thread-safe: one connection, each call under a lock (calls are short)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # isolation_level=None: autocommit; multi-statement changes take BEGIN IMMEDIATE themselves
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{path} was made by a newer vidmatte (schema {version}); upgrade vidmatte")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: tuple[Any, ...] = ()) -> Job | None:
        with self._lock:
            row = self._db.execute(sql, args).fetchone()
        return None if row is None else Job.from_row(row)

    def _update(self, sql: str, args: tuple[Any, ...]) -> bool:
        with self._lock:
            return self._db.execute(sql, args).rowcount > 0

    # ---- reading ---------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        return self._one("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def jobs(self, status: str | None = None, limit: int = 100) -> list[Job]:
        """Newest first."""
        with self._lock:
            if status is None:
                rows = self._db.execute("SELECT * FROM jobs ORDER BY seq DESC LIMIT ?", (limit,)).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT * FROM jobs WHERE status = ? ORDER BY seq DESC LIMIT ?", (status, limit)
                ).fetchall()
        return [Job.from_row(row) for row in rows]

    def counts(self) -> dict[str, int]:
        """Jobs per status (every status present, 0 where none)."""
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        found = {status: count for status, count in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def ids(self) -> set[str]:
        with self._lock:
            return {row[0] for row in self._db.execute("SELECT id FROM jobs")}

    # ---- the life of a job -----------------------------------------------------------------

    def add(
        self,
        job_id: str,
        *,
        name: str,
        form: str,
        options: dict[str, Any],
        webhook_url: str | None,
        frames_total: int | None,
        queue_limit: int | None = None,
    ) -> Job | None:
        """Queue a new job; None (nothing added) when `queue_limit` jobs are queued already."""
        with self._transaction() as db:
            if queue_limit is not None:
                queued = db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
                if queued >= queue_limit:
                    return None
            db.execute(
                "INSERT INTO jobs (id, status, name, form, options, webhook_url, frames_total, created) "
                "VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, name, form, json.dumps(options, sort_keys=True), webhook_url, frames_total, time.time()),
            )
        return self.get(job_id)

    def claim_next(self) -> Job | None:
        """The oldest queued job, now running (its attempt counted); None when none is queued."""
        with self._transaction() as db:
            row = db.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, started = ?, frames_done = 0, "
                "fps = NULL WHERE id = ?",
                (time.time(), row[0]),
            )
        return self.get(row[0])

    def progress(self, job_id: str, done: int, total: int | None, fps: float | None) -> None:
        self._update(
            "UPDATE jobs SET frames_done = ?, frames_total = COALESCE(?, frames_total), fps = ? "
            "WHERE id = ? AND status = 'running'",
            (done, total, fps, job_id),
        )

    def finish(
        self,
        job_id: str,
        status: str,
        *,
        keep: float,
        error: str | None = None,
        result: str | None = None,
        frames_done: int | None = None,
        frames_total: int | None = None,
        fps: float | None = None,
    ) -> bool:
        """A running job done or failed; False when it is no longer running (cancelled meanwhile)."""
        assert status in ("done", "failed")
        now = time.time()
        return self._update(
            "UPDATE jobs SET status = ?, error = ?, result = ?, finished = ?, expires = ?, "
            "frames_done = COALESCE(?, frames_done), frames_total = COALESCE(?, frames_total), "
            "fps = COALESCE(?, fps) WHERE id = ? AND status = 'running'",
            (status, error, result, now, now + keep, frames_done, frames_total, fps, job_id),
        )

    def requeue(self, job_id: str, note: str, *, count_attempt: bool) -> bool:
        """A running job back in the queue (at its old place); `count_attempt` False takes back the
        attempt `claim_next` counted (the server stopped it cleanly; the job did nothing wrong)."""
        return self._update(
            "UPDATE jobs SET status = 'queued', note = ?, started = NULL, frames_done = 0, fps = NULL, "
            "attempts = attempts - ? WHERE id = ? AND status = 'running'",
            (note, 0 if count_attempt else 1, job_id),
        )

    def cancel(self, job_id: str, keep: float) -> Job | None:
        """A queued or running job cancelled (kept, without files, until it expires); None when it
        was not queued or running."""
        now = time.time()
        if not self._update(
            "UPDATE jobs SET status = 'cancelled', finished = ?, expires = ? "
            "WHERE id = ? AND status IN ('queued', 'running')",
            (now, now + keep, job_id),
        ):
            return None
        return self.get(job_id)

    def fail(self, job_id: str, error: str, keep: float, *, from_status: str) -> bool:
        """Mark a job failed from a given state (start-up checks)."""
        now = time.time()
        return self._update(
            "UPDATE jobs SET status = 'failed', error = ?, finished = ?, expires = ? WHERE id = ? AND status = ?",
            (error, now, now + keep, job_id, from_status),
        )

    def delete(self, job_id: str) -> bool:
        return self._update("DELETE FROM jobs WHERE id = ?", (job_id,))

    def expired(self, now: float | None = None) -> list[Job]:
        """Finished jobs whose time is up."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM jobs WHERE status IN ('done', 'failed', 'cancelled') "
                "AND expires IS NOT NULL AND expires <= ?",
                (now,),
            ).fetchall()
        return [Job.from_row(row) for row in rows]


class DataLocked(Exception):
    """Another server holds the data directory."""


class DataDir:
    """The data directory: paths for a job's files, the lock, and the start-up sweep."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.uploads = self.root / "uploads"
        self.results = self.root / "results"
        self.work = self.root / "work"
        self.tmp = self.root / "tmp"
        self.database = self.root / "jobs.sqlite3"
        self._lock_fd: int | None = None

    def create(self) -> None:
        """Make the folders, private to this user (uploads are other people's pictures)."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for folder in (self.uploads, self.results, self.work, self.tmp):
            folder.mkdir(exist_ok=True, mode=0o700)

    def lock(self) -> None:
        """Hold the directory's lock for the life of this process; DataLocked if another has it."""
        if fcntl is None:
            return
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            finally:
                os.close(fd)
            raise DataLocked(
                f"another vidmatte serve (pid {holder}) is using {self.root}; stop it or give another --data"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def upload(self, job_id: str) -> Path:
        return self.uploads / _checked(job_id)

    def result(self, job_id: str, suffix: str) -> Path:
        return self.results / f"{_checked(job_id)}{suffix}"

    def workspace(self, job_id: str) -> Path:
        return self.work / _checked(job_id)

    def temp(self, suffix: str = "") -> Path:
        """A fresh name in tmp/ (nothing is created)."""
        return self.tmp / f"{secrets.token_hex(12)}{suffix}"

    def clear_outputs(self, job_id: str) -> None:
        """Remove a job's result, its partial outputs and its scratch space."""
        _checked(job_id)
        for path in self.results.glob(f"{job_id}.*"):
            _remove(path)
        for path in self.results.glob(f".{job_id}.*"):  # the writers' temporaries: .ID.webm.partial-...
            _remove(path)
        _remove(self.workspace(job_id))

    def remove_workspace(self, job_id: str) -> None:
        _remove(self.workspace(job_id))

    def remove_job(self, job_id: str) -> None:
        """Remove every file of a job."""
        self.clear_outputs(job_id)
        _remove(self.upload(job_id))

    def sweep(self, known: set[str]) -> list[Path]:
        """At start-up (the lock held, so no other process writes here): empty tmp/ and work/,
        remove partial results and files of jobs the table does not know; returns what went."""
        removed: list[Path] = []
        for folder in (self.tmp, self.work):
            for path in folder.iterdir():
                _remove(path)
                removed.append(path)
        for path in self.results.iterdir():
            job_id = path.name.lstrip(".").split(".", 1)[0]
            if path.name.startswith(".") or job_id not in known:
                _remove(path)
                removed.append(path)
        for path in self.uploads.iterdir():
            if path.name not in known:
                _remove(path)
                removed.append(path)
        return removed


def _checked(job_id: str) -> str:
    if not ID_PATTERN.match(job_id):
        raise ValueError(f"not a job id: {job_id!r}")
    return job_id


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # best effort: the start-up sweep tries again
