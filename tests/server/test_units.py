"""The server's parts in-process: store transitions, the restart policy, the runner with a stand-in
matting function, parameters, helpers. (The end-to-end cases run against a real server elsewhere.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from vidmatte.errors import InputError
from vidmatte.options import SMOOTH_STRENGTH, MatteOptions, Progress
from vidmatte.server.app import range_refusal
from vidmatte.server.jobs import INTERNAL_ERROR, JobRunner
from vidmatte.server.main import ServeError, ServerConfig, check_config, parse_duration, parse_size
from vidmatte.server.params import NotAcceptable, ParamError, job_request, negotiate, still_request
from vidmatte.server.security import is_loopback, key_matches, presented_key
from vidmatte.server.store import DataDir, DataLocked, JobStore, new_job_id
from vidmatte.server.uploads import display_name


@pytest.fixture
def parts(tmp_path):
    data = DataDir(tmp_path / "data")
    data.create()
    store = JobStore(data.database)
    yield store, data
    store.close()


def add(store: JobStore, data: DataDir, **kwargs) -> str:
    job_id = new_job_id()
    data.upload(job_id).write_bytes(b"clip")
    store.add(
        job_id,
        name="clip.mp4",
        form=kwargs.pop("form", "webm"),
        options=kwargs.pop("options", {}),
        webhook_url=None,
        frames_total=10,
        **kwargs,
    )
    return job_id


def test_store_lifecycle_and_races(parts):
    store, data = parts
    first, second = add(store, data), add(store, data)
    assert (
        store.add(new_job_id(), name="x", form="webm", options={}, webhook_url=None, frames_total=None, queue_limit=2)
        is None
    )  # two queued already
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == first and claimed.status == "running" and claimed.attempts == 1
    assert store.cancel(first, keep=60).status == "cancelled"
    assert not store.finish(first, "done", keep=60, result="x.webm")  # the cancel won: no 'done'
    assert store.get(first).status == "cancelled"
    assert store.claim_next().id == second
    assert store.requeue(second, "stopped", count_attempt=False)
    again = store.get(second)
    assert again.status == "queued" and again.attempts == 0 and again.note == "stopped"
    assert store.claim_next().id == second
    assert store.finish(second, "done", keep=0, result=f"{second}.webm", frames_done=10, frames_total=10, fps=5.0)
    assert store.counts() == {"queued": 0, "running": 0, "done": 1, "failed": 0, "cancelled": 1}
    assert [job.id for job in store.jobs()] == [second, first]  # newest first
    assert [job.id for job in store.expired(time.time() + 1)] == [second]


def test_restart_policy(parts):
    store, data = parts
    cut_once, cut_twice, no_upload, lost_result = (add(store, data) for _ in range(4))
    for job_id in (cut_once, cut_twice):
        store.claim_next()
        (data.results / f".{job_id}.webm.partial-999999-0123abcd.webm").write_bytes(b"half")
    # the second was cut short once before: this is its second interrupted attempt
    store.requeue(cut_twice, "earlier", count_attempt=True)
    store.claim_next()
    assert store.get(cut_twice).attempts == 2
    data.upload(no_upload).unlink()
    assert store.claim_next().id == no_upload  # running, its upload gone
    assert store.claim_next().id == lost_result  # done, but its result went missing
    store.finish(lost_result, "done", keep=60, result=f"{lost_result}.webm")
    (data.tmp / "leftover.upload").write_bytes(b"x")
    (data.results / "stranger.webm").write_bytes(b"x")
    (data.uploads / "AAAAAAAAAAAAAAAAAAAAAA").write_bytes(b"x")

    runner = JobRunner(store, data, matte=lambda *args: None, max_attempts=2)
    lines = runner.recover()
    assert len(lines) == 4, lines
    once = store.get(cut_once)
    assert once.status == "queued" and "re-queued" in once.note and once.attempts == 1
    twice = store.get(cut_twice)
    assert twice.status == "failed" and "stopped 2 times" in twice.error
    assert store.get(no_upload).status == "failed" and "upload" in store.get(no_upload).error
    assert store.get(lost_result) is None
    assert list(data.results.iterdir()) == [] and list(data.tmp.iterdir()) == []
    assert sorted(p.name for p in data.uploads.iterdir()) == [cut_once]


def test_one_server_per_data_directory(tmp_path):
    first, second = DataDir(tmp_path), DataDir(tmp_path)
    first.create()
    first.lock()
    with pytest.raises(DataLocked, match="another vidmatte serve"):
        second.lock()
    first.unlock()
    second.lock()
    second.unlock()


def run_jobs(store: JobStore, data: DataDir, matte, count: int = 1, **kwargs) -> JobRunner:
    runner = JobRunner(store, data, matte, keep=60, **kwargs)
    runner.start()
    runner.wake()
    deadline = time.monotonic() + 30
    while store.counts()["queued"] + store.counts()["running"] and time.monotonic() < deadline:
        time.sleep(0.02)
    return runner


def test_runner_outcomes(parts):
    store, data = parts
    fine, bad, broken = add(store, data), add(store, data, options={"smooth": 0.5}), add(store, data)
    seen: list[MatteOptions] = []

    def matte(source: Path, output: str, options: MatteOptions, progress) -> None:
        seen.append(options)
        job_id = source.name
        if job_id == bad:
            raise InputError(f"{source} is truncated at frame 3; re-export it")
        if job_id == broken:
            raise RuntimeError("a bug")
        for done in range(1, 11):
            progress(Progress("frames", done, 10, "clip"))
        Path(output).write_bytes(b"result")

    runner = run_jobs(store, data, matte)
    runner.stop()
    assert store.get(fine).status == "done" and store.get(fine).frames_done == 10
    assert (data.results / f"{fine}.webm").read_bytes() == b"result"
    failed = store.get(bad)
    assert failed.status == "failed" and failed.error == "clip.mp4 is truncated at frame 3; re-export it"
    assert seen[1].smooth == 0.5
    assert store.get(broken).error == INTERNAL_ERROR  # no exception text reaches a client
    assert list(data.uploads.iterdir()) == []  # finished jobs need their sources no more


def test_runner_cancel_and_shutdown(parts):
    store, data = parts
    cancelled, stopped = add(store, data), add(store, data)
    started = threading.Event()

    def matte(source: Path, output: str, options: MatteOptions, progress) -> None:
        Path(output).write_bytes(b"partial")
        started.set()
        for done in range(10_000):
            progress(Progress("frames", done, 10_000, "clip"))
            time.sleep(0.001)

    runner = JobRunner(store, data, matte, keep=60)
    runner.start()
    runner.wake()
    assert started.wait(10)
    store.cancel(cancelled, keep=60)
    runner.cancel(cancelled)
    deadline = time.monotonic() + 10
    while store.get(stopped).status != "running" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not (data.results / f"{cancelled}.webm").exists()
    runner.stop()
    job = store.get(stopped)
    assert job.status == "queued" and job.attempts == 0 and "re-queued" in job.note
    assert not (data.results / f"{stopped}.webm").exists() and data.upload(stopped).exists()


def test_parameters():
    assert still_request({}, None).format == "png"
    assert still_request({"om": "1"}, None).options.output_type == "alpha"
    assert still_request({"bg_color": "f0f", "format": "jpeg"}, None).options.background == "#ff00ff"
    assert still_request({"refine": "off", "passes": "3"}, None).options.passes == 3
    assert job_request({"smooth": "yes"}, webhooks=False).options == {"smooth": SMOOTH_STRENGTH}
    assert job_request({"smooth_strength": "0.5"}, webhooks=False).options == {"smooth": 0.5}
    assert job_request({"smooth": "false", "smooth_strength": "0.5"}, webhooks=False).options == {}
    assert job_request({"form": "zip"}, webhooks=False).form.name == "png-zip"
    assert job_request({"webhook_url": "https://hooks.example/x"}, webhooks=True).webhook_url
    for params, words in [
        ({"passes": "1000"}, "between 1 and 64"),
        ({"refine": "maybe"}, "true or false"),
        ({"background": "../bg.jpg"}, "no background files"),
        ({"downsample_ratio": "2"}, "(0, 1]"),
        ({"output_type": "mask"}, "output_type"),
        ({"url": "http://x"}, "unknown parameter"),
    ]:
        with pytest.raises(ParamError, match=words.replace("(", r"\(").replace("]", r"\]")):
            still_request(params, None)
    with pytest.raises(ParamError, match="webhooks are off"):
        job_request({"webhook_url": "https://hooks.example/x"}, webhooks=False)
    with pytest.raises(ParamError, match="http"):
        job_request({"webhook_url": "file:///etc/passwd"}, webhooks=True)
    assert negotiate("image/webp,image/*;q=0.8") == "webp"
    assert negotiate("*/*") == "png"
    assert negotiate("image/*;q=0.2, image/jpeg;q=0.9") == "jpg"
    with pytest.raises(NotAcceptable):
        negotiate("text/html, image/png;q=0")


def test_helpers():
    assert parse_size("2G") == 2 << 30 and parse_size("256K") == 256 << 10 and parse_size("1000") == 1000
    assert parse_duration("24h") == 86400 and parse_duration("90") == 90 and parse_duration("30m") == 1800
    assert display_name("../../etc/passwd") == "passwd" and display_name("C:\\x\\y.mp4") == "y.mp4"
    assert display_name("\x00\x1b[31m.mp4") == "[31m.mp4" and display_name("..") == "upload"
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.9.9.9", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.0.0.1", "example.com", ""))
    assert key_matches("k" * 20, "k" * 20) and not key_matches("k" * 19, "k" * 20) and not key_matches(None, "k")
    assert presented_key({"authorization": "Bearer abc"}) == "abc" and presented_key({"x-api-key": "def"}) == "def"
    assert range_refusal(None, 10) is None and range_refusal("bytes=0-4", 10) is None
    assert range_refusal("bytes=10-", 10)[0] == 416 and range_refusal("bytes=5-2", 10)[0] == 400
    assert range_refusal("pages=1-2", 10)[0] == 400
    with pytest.raises(ServeError, match="API key"):
        check_config(ServerConfig(host="0.0.0.0"))
    check_config(ServerConfig(host="0.0.0.0", api_key="k" * 16))


def test_internal_errors_become_json_without_a_traceback(parts):
    import asyncio

    import httpx

    from vidmatte.server.app import Settings, create_app

    store, data = parts

    class Exploding:
        full, pending = False, 0

        async def decode(self, path):
            raise RuntimeError("secret internal detail at /srv/data")

    runner = JobRunner(store, data, matte=lambda *args: None)
    app = create_app(Settings(), store=store, data=data, runner=runner, stills=Exploding())  # type: ignore[arg-type]

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post("/api/remove", content=b"x")

    answer = asyncio.run(call())
    assert answer.status_code == 500, answer.text
    assert answer.json() == {"error": "internal server error (the details are in the server's log)"}
    assert "secret" not in answer.text and "Traceback" not in answer.text


def test_finished_jobs_expire_with_their_files(parts):
    store, data = parts
    old, fresh = add(store, data), add(store, data)
    for job_id, keep in ((old, 0.0), (fresh, 3600.0)):
        store.claim_next()
        data.result(job_id, ".webm").write_bytes(b"result")
        store.finish(job_id, "done", keep=keep, result=f"{job_id}.webm")
    runner = JobRunner(store, data, matte=lambda *args: None)
    assert runner.expire() == 1
    assert store.get(old) is None and not data.result(old, ".webm").exists()
    assert store.get(fresh).status == "done" and data.result(fresh, ".webm").exists()


def test_subject_parameters_mirror_the_command_line():
    wanted = job_request({"subject": "10,20; 30,40", "subject_box": "0,0,50,50", "subject_frame": "12"}, webhooks=False)
    assert wanted.options == {"subjects": ["10,20", "30,40"], "subject_boxes": ["0,0,50,50"], "subject_frame": 12}
    assert still_request({"subject": "largest"}, None).options.subjects == ["largest"]
    with pytest.raises(ParamError, match="subject"):
        job_request({"subject": "10;20"}, webhooks=False)
    with pytest.raises(ParamError, match="subject_frame"):
        job_request({"subject_frame": "-1"}, webhooks=False)


def test_stills_run_on_long_lived_threads_with_the_cores(engine, tmp_path, monkeypatch):
    """Each still is matted on the same dedicated thread, whose torch team has the cores: threads
    that come and go with teams of their own would slow every still down (`plan.stage_threads`)."""
    import anyio
    import torch

    from vidmatte.io.images import read_image
    from vidmatte.plan import stage_threads
    from vidmatte.server.stills import Stills

    monkeypatch.setenv("VIDMATTE_CPUS", "2")
    stills = Stills(engine.with_ratio(1.0))
    seen: list[tuple[str, int]] = []
    real = stills._matte

    def matte(*args):
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return real(*args)

    stills._matte = matte  # type: ignore[method-assign]
    source = Path(__file__).resolve().parents[2] / "samples" / "astronaut.jpg"

    async def two() -> None:
        picture = await stills.decode(source)
        for name in ("a.png", "b.png"):
            await stills.matte(source, picture, tmp_path / name, MatteOptions(passes=1, refine=False))

    try:
        anyio.run(two)
    finally:
        stills.close()
    assert len(seen) == 2 and seen[0] == seen[1] and seen[0][0].startswith("still")
    assert seen[0][1] == stage_threads(1) == 2
    assert read_image(tmp_path / "a.png").rgb.shape[:2] == read_image(source).rgb.shape[:2]
