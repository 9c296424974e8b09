"""Load on `vidmatte serve`, against the library called directly in this same script.

Starts a real server (127.0.0.1, a port of its own, a temporary data folder, the CPU) and measures,
in turns, so the server and the script never compete for the processor:

1. A 1-megapixel still, one request at a time, round by round against `matte_path` on an engine
   loaded here. The server's overhead is measured two ways: per request, the client's latency
   minus the time the server reports (`Server-Timing`) for decoding and matting, which no
   change in the machine's load between two runs can blur; and as a plain ratio of medians
   against the library. Fast still options (1 pass, no edge refinement): the less matting, the
   more the upload, HTTP and the answer weigh, so this is the strict case.
2. Stills under load: `--requests` requests at `--concurrency`: p50/p95 latency, requests/s,
   errors, and the overhead as above (the time a request waits for a free worker is load, not
   overhead, and is reported apart); beside it the library's rate on the same picture, one call
   after another.
3. Video jobs: `--videos` clips submitted at once (they queue), polled to the end; every result is
   downloaded and its frames counted (a job that is missing, failed or short counts as lost);
   beside it the same clips through `matte_path`, one after another.

The library runs on a worker thread, as the server runs its stills and jobs, and also (row "main
thread") as a script calls it: on a shared, oversubscribed machine libgomp's spin-waiting makes
the main thread's OpenMP team much slower (see the notes in benchmarks/serve_load.md).

Bounded: small pictures and clips, loopback only, the server stopped at the end. Writes a markdown
table (`--out`, default benchmarks/serve_load.md; a "## Notes" section there is kept).

    python benchmarks/serve_load.py                      # ~5 minutes on 2 busy cores
    python benchmarks/serve_load.py --requests 24 --rounds 3 --videos 2 --out /tmp/x.md   # a quick look
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.conftest import moving_clip  # noqa: E402
from tests.io.conftest import make_clip  # noqa: E402

FAST = {"passes": "1", "refine": "false"}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def pct(value: float, reference: float) -> str:
    return f"{100 * (value / reference - 1):+.1f} %"


class Server:
    def __init__(self, data: Path, still_workers: int) -> None:
        self.log = data.parent / "server.log"
        command = [sys.executable, "-m", "vidmatte", "serve", "--port", "0", "--data", str(data), "--device", "cpu",
                   "-q", "--still-workers", str(still_workers), "--queue-limit", "1000"]  # fmt: skip
        with open(self.log, "w") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                            env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            found = re.search(r"listening on (http://\S+)/", self.log.read_text())
            if found:
                self.url = found.group(1)
                return
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.stop()
        raise SystemExit("the server did not start")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Sample:
    """One still request: the client's latency and what the server says it spent (seconds)."""

    latency: float
    status: int
    size: int
    decode: float = 0.0
    wait: float = 0.0
    matte: float = 0.0

    @property
    def work(self) -> float:
        """What the library does too: decode and matte (and write) the picture."""
        return self.decode + self.matte

    @property
    def overhead(self) -> float:
        """Upload, HTTP, parsing, the answer: the latency less the work and the wait for a worker."""
        return self.latency - self.work - self.wait


def post_still(client: httpx.Client, path: Path, data: bytes) -> Sample:
    start = time.perf_counter()
    try:
        answer = client.post("/api/remove", files={"file": (path.name, data, "image/jpeg")}, data=FAST)
    except httpx.HTTPError:
        return Sample(time.perf_counter() - start, 0, 0)
    sample = Sample(time.perf_counter() - start, answer.status_code, len(answer.content))
    for part in answer.headers.get("server-timing", "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if name in ("decode", "wait", "matte") and duration:
            setattr(sample, name, float(duration) / 1000)
    return sample


def in_thread(fn: Callable[[], object]) -> float:
    """Seconds `fn` takes on a fresh worker thread, as the server runs its stills."""
    seconds: list[float] = []

    def timed() -> None:
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)

    worker = threading.Thread(target=timed)
    worker.start()
    worker.join()
    return seconds[0]


def make_inputs(folder: Path, load_side: int, videos: int) -> tuple[Path, Path, list[Path]]:
    bgr = cv2.imread(str(REPO / "samples" / "astronaut.jpg"))
    big = folder / "still_1mp.jpg"
    cv2.imwrite(str(big), cv2.resize(bgr, (1000, 1000), interpolation=cv2.INTER_CUBIC), [cv2.IMWRITE_JPEG_QUALITY, 92])
    small = folder / "still_load.jpg"
    cv2.imwrite(str(small), cv2.resize(bgr, (load_side, load_side), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 92])  # fmt: skip
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    clips = [make_clip(folder / f"clip{n}.mp4", images=moving_clip(rgb, 96, 128, 24, seed=n), audio="aac")
             for n in range(videos)]  # fmt: skip
    return big, small, clips


def one_at_a_time(server: Server, engine, picture: Path, rounds: int, folder: Path) -> dict[str, list]:
    """Per round, in a rotating order: the server, the library on a worker thread, the library on
    this (main) thread."""
    from vidmatte.api import matte_path
    from vidmatte.options import MatteOptions

    options = MatteOptions(passes=1, refine=False)
    data = picture.read_bytes()
    sides = ("server", "thread", "main")
    found: dict[str, list] = {side: [] for side in sides}
    with httpx.Client(base_url=server.url, timeout=600) as client:
        post_still(client, picture, data)  # warm both up: first calls pay for allocations
        in_thread(lambda: matte_path(picture, folder / "warm.png", options, engine=engine))
        for index in range(rounds):
            for side in sides[index % 3 :] + sides[: index % 3]:
                target = folder / f"one{index}-{side}.png"
                if side == "server":
                    sample = post_still(client, picture, data)
                    assert sample.status == 200, sample
                    found[side].append(sample)
                elif side == "thread":
                    found[side].append(in_thread(lambda: matte_path(picture, target, options, engine=engine)))  # noqa: B023
                else:
                    start = time.perf_counter()
                    matte_path(picture, target, options, engine=engine)
                    found[side].append(time.perf_counter() - start)
    return found


def under_load(server: Server, picture: Path, requests: int, concurrency: int) -> tuple[list[Sample], float]:
    data = picture.read_bytes()
    local = threading.local()

    def one(_: int) -> Sample:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=server.url, timeout=600)
        return post_still(local.client, picture, data)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        samples = list(pool.map(one, range(requests)))
    return samples, time.perf_counter() - start


def library_rate(engine, picture: Path, calls: int, folder: Path) -> float:
    """Stills per second through `matte_path`, one call after another on a worker thread."""
    from vidmatte.api import matte_path
    from vidmatte.options import MatteOptions

    options = MatteOptions(passes=1, refine=False)

    def calls_in_a_row() -> None:
        for index in range(calls):
            matte_path(picture, folder / f"rate{index}.png", options, engine=engine)

    return calls / in_thread(calls_in_a_row)


def frame_count(data: bytes) -> int:
    with av.open(io.BytesIO(data)) as container:
        return sum(1 for _ in container.decode(video=0))


def video_jobs(server: Server, clips: list[Path]) -> dict[str, float]:
    submit_times: list[float] = []
    ids: list[str | None] = []
    errors = 0
    with httpx.Client(base_url=server.url, timeout=600) as client:
        start = time.perf_counter()
        for clip in clips:
            t0 = time.perf_counter()
            with open(clip, "rb") as file:
                answer = client.post("/api/jobs", files={"file": (clip.name, file)})
            submit_times.append(time.perf_counter() - t0)
            ids.append(answer.json()["id"] if answer.status_code == 202 else None)
            errors += answer.status_code != 202
        pending = {job_id for job_id in ids if job_id}
        finals: dict[str, dict] = {}
        deadline = time.monotonic() + 1800
        while pending and time.monotonic() < deadline:
            for job_id in list(pending):
                job = client.get(f"/api/jobs/{job_id}").json()
                if job.get("status") in ("done", "failed", "cancelled"):
                    finals[job_id] = job
                    pending.discard(job_id)
            time.sleep(0.2)
        wall = time.perf_counter() - start
        lost, frames = errors + len(pending), 0
        running = sum(stamp(job["finished"]) - stamp(job["started"]) for job in finals.values() if job["started"])
        for clip, job_id in zip(clips, ids):
            if job_id is None or job_id not in finals:
                continue
            result = client.get(f"/api/jobs/{job_id}/result") if finals[job_id]["status"] == "done" else None
            count = frame_count(result.content) if result is not None and result.status_code == 200 else -1
            lost += count != frame_count(clip.read_bytes())
            frames += max(count, 0)
    return {"wall": wall, "submit_p50": percentile(submit_times, 50), "submit_p95": percentile(submit_times, 95),
            "errors": errors, "lost": lost, "frames": frames, "running": running}  # fmt: skip


def stamp(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def library_videos(engine, clips: list[Path], folder: Path) -> float:
    from vidmatte.api import matte_path
    from vidmatte.options import MatteOptions

    def in_a_row() -> None:
        for index, clip in enumerate(clips):
            matte_path(clip, folder / f"direct{index}.webm", MatteOptions(), engine=engine.with_ratio("auto"))

    return in_thread(in_a_row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--load-side", type=int, default=384, help="side of the square still used for the load")
    parser.add_argument("--rounds", type=int, default=12, help="rounds of the 1-MP still (server, library x2)")
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--still-workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "serve_load.md")
    args = parser.parse_args()
    command = " ".join(["python benchmarks/serve_load.py", *sys.argv[1:]])

    from vidmatte.api import open_engine
    from vidmatte.options import MatteOptions

    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        folder = Path(tmp)
        big, small, clips = make_inputs(folder, args.load_side, args.videos)
        engine = open_engine(MatteOptions(device="cpu"))
        server = Server(folder / "data", args.still_workers)
        try:
            print("a 1-MP still, one at a time ...", flush=True)
            single = one_at_a_time(server, engine, big, args.rounds, folder)
            print("stills under load ...", flush=True)
            samples, wall = under_load(server, small, args.requests, args.concurrency)
            rate = library_rate(engine, small, max(10, args.requests // 10), folder)
            print("video jobs ...", flush=True)
            videos = video_jobs(server, clips)
            direct_videos = library_videos(engine, clips, folder)
        finally:
            server.stop()

    one: list[Sample] = single["server"]
    latency = statistics.median(s.latency for s in one)
    work = statistics.median(s.work for s in one)
    thread, main_thread = statistics.median(single["thread"]), statistics.median(single["main"])
    share = statistics.median(s.overhead / s.work for s in one)
    ok = [s for s in samples if s.status == 200 and s.size > 0]
    errors = len(samples) - len(ok)
    served = len(ok) / wall
    load_share = statistics.median(s.overhead / s.work for s in ok) if ok else float("nan")
    rows = [
        ("**1-MP still** (1000x1000 JPEG -> PNG, 1 pass, no refine), one at a time: median latency",
         f"{latency:.3f} s", f"{thread:.3f} s", pct(latency, thread)),
        ("... the server's own decode + matte (Server-Timing), median", f"{work:.3f} s", "", ""),
        ("... **server overhead per request** (latency - decode - matte), median",
         f"{1000 * statistics.median(s.overhead for s in one):.0f} ms", "", f"{100 * share:+.1f} %"),
        ("... the library on the script's main thread instead (median; see notes)", "", f"{main_thread:.3f} s",
         pct(latency, main_thread)),
        (f"**{args.requests} stills** ({args.load_side}x{args.load_side} JPEG, same options) at concurrency "
         f"{args.concurrency}: p50 / p95 latency",
         f"{percentile([s.latency for s in ok], 50):.3f} / {percentile([s.latency for s in ok], 95):.3f} s", "", ""),
        ("... of which waiting for a free worker (load, not overhead): p50",
         f"{percentile([s.wait for s in ok], 50):.3f} s", "", ""),
        ("... server overhead per request: p50 / p95",
         f"{1000 * percentile([s.overhead for s in ok], 50):.0f} / {1000 * percentile([s.overhead for s in ok], 95):.0f} ms",
         "", f"{100 * load_share:+.1f} %"),
        ("... requests/s (library: one call after another)", f"{served:.2f}", f"{rate:.2f}", pct(served, rate)),
        ("... errors", str(errors), "", ""),
        (f"**{args.videos} video jobs** (128x96, 24 frames, AAC -> WebM) queued at once: all done in",
         f"{videos['wall']:.1f} s", f"{direct_videos:.1f} s", pct(videos["wall"], direct_videos)),
        ("... of which the jobs ran (sum of started -> finished)", f"{videos['running']:.1f} s", "",
         pct(videos["running"], direct_videos)),
        ("... frames/s", f"{videos['frames'] / videos['wall']:.1f}", f"{videos['frames'] / direct_videos:.1f}", ""),
        ("... submit latency p50 / p95 (upload, probe, queue)",
         f"{1000 * videos['submit_p50']:.0f} / {1000 * videos['submit_p95']:.0f} ms", "", ""),
        ("... errors / lost jobs", f"{videos['errors']:.0f} / {videos['lost']:.0f}", "", ""),
    ]  # fmt: skip
    lines = [
        "# Load on `vidmatte serve` (HTTP on 127.0.0.1) against the library called directly",
        "",
        f"Machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} cores (shared with other work), Python "
        f"{platform.python_version()}, CPU engine (fp32). Command: `{command}`. The server runs in its own process "
        f"(`--still-workers {args.still_workers}`), the library in the script on a worker thread, in turns, never at "
        "the same time. Latency is the client's (upload, matting, answer); overhead % is of the server's own "
        "decode + matte time. The script's docstring says what each row does.",
        "",
        "| measure | server | library directly | server vs library |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
        "",
    ]
    text = "\n".join(lines)
    if args.out.exists() and "\n## Notes" in args.out.read_text():  # kept under the new table
        text += "\n## Notes" + args.out.read_text().split("\n## Notes", 1)[1]
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
