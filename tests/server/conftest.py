"""A real `vidmatte serve` process on 127.0.0.1 for the tests, real HTTP (httpx), generated media.

`ServerProcess` starts the command line as users do (`python -m vidmatte serve --port 0`),
waits for its "listening on URL" line and stops it at the end (SIGTERM, then SIGKILL).
Skipped where the serve extra (fastapi, uvicorn, python-multipart, httpx) is missing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.conftest import moving_clip
from tests.io.conftest import make_clip

for _module in ("fastapi", "uvicorn", "python_multipart", "httpx"):
    pytest.importorskip(_module, reason="the serve extra is not installed (pip install -e '.[dev,serve]')")

import httpx  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
API_KEY = "test-key-0123456789abcdef"
LISTENING = re.compile(r"listening on (http://\S+/)")
START_TIMEOUT_S = 180  # the model loads first; a loaded shared machine is slow


class ServerProcess:
    """One server: `start()`, `client()`, `stop()`, `kill()` (SIGKILL, as `kill -9`)."""

    def __init__(self, data: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.data = data
        self.args = args
        self.env = env or {}
        self.process: subprocess.Popen | None = None
        self.url = ""
        self.starts = 0
        self.log_path = data.parent / f"{data.name}-server.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "vidmatte",
            "serve",
            "--port",
            "0",
            "--data",
            str(self.data),
            "--device",
            "cpu",
            *self.args,
        ]

    def start(self) -> ServerProcess:
        self.starts += 1
        log = open(self.log_path, "a")
        log.write(f"---- start {self.starts}\n")
        log.flush()
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = self.log_path.read_text(errors="replace").split(f"---- start {self.starts}\n")[-1]
            found = LISTENING.search(text)
            if found:
                self.url = found.group(1).rstrip("/")
                return self
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}: {text[-2000:]}")
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"the server did not start within {START_TIMEOUT_S} s: {self.log_text()[-2000:]}")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120, **kwargs)  # type: ignore[arg-type]

    def stop(self, timeout: float = 60) -> int | None:
        """SIGTERM (a clean shutdown), SIGKILL if it does not end in time; returns the exit status."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None

    def kill(self) -> None:
        """`kill -9`: no cleanup of any kind."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The shared server: defaults (loopback, no key), webhooks off."""
    process = ServerProcess(tmp_path_factory.mktemp("serve") / "data").start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def keyed_server(tmp_path_factory: pytest.TempPathFactory):
    """A server with an API key (from the environment), a 256 KiB upload limit, a queue of one
    waiting job and CORS allowed for one origin."""
    process = ServerProcess(
        tmp_path_factory.mktemp("serve-keyed") / "data",
        "--max-upload",
        "256K",
        "--queue-limit",
        "1",
        "--cors",
        "http://tool.example",
        env={"VIDMATTE_API_KEY": API_KEY},
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def sample_image() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(REPO / "samples" / "astronaut.jpg")), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def photo(media_dir: Path, sample_image: np.ndarray) -> Path:
    """A small portrait PNG (160x120)."""
    path = media_dir / "portrait.png"
    cv2.imwrite(
        str(path), cv2.cvtColor(cv2.resize(sample_image, (120, 160), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    )
    return path


@pytest.fixture(scope="session")
def clip(media_dir: Path, sample_image: np.ndarray) -> Path:
    """12 frames, 96x72, 23.976 frames/s, AAC audio."""
    return make_clip(media_dir / "clip.mp4", images=moving_clip(sample_image, 72, 96, 12), audio="aac")


@pytest.fixture(scope="session")
def long_clip(media_dir: Path, sample_image: np.ndarray) -> Path:
    """A clip that takes several seconds to matte (to catch a job while it runs)."""
    return make_clip(media_dir / "long.mp4", images=moving_clip(sample_image, 180, 240, 90), audio="aac")


def submit(client: httpx.Client, path: Path, name: str | None = None, **fields: str) -> httpx.Response:
    with open(path, "rb") as file:
        return client.post("/api/jobs", files={"file": (name or path.name, file)}, data=fields)


def wait_for(
    client: httpx.Client,
    job_id: str,
    statuses: tuple[str, ...] = ("done", "failed", "cancelled"),
    timeout: float = 300,
    frames: int = 0,
) -> dict:
    """Poll a job until its status is one of `statuses` (and, if asked, `frames` frames are done)."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job.get("status") in statuses and job.get("frames_done", 0) >= frames:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {job} after {timeout} s")
        time.sleep(0.1)


def assert_json_error(response: httpx.Response, status: int, *words: str) -> str:
    """The answer is `{"error": "one line"}` with `status`, containing `words`, and no traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    message = response.json()["error"]
    assert isinstance(message, str) and "\n" not in message and "Traceback" not in response.text
    for word in words:
        assert word.lower() in message.lower(), message
    return message
