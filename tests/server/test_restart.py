"""Jobs survive restarts: `kill -9` mid-job, and a clean SIGTERM; nothing half-written is served."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import queue
import threading

from tests.server.conftest import API_KEY, ServerProcess, submit, wait_for
from vidmatte.io import read_webm_alpha_frames


def partials(data) -> list[str]:
    return sorted(p.name for p in (data / "results").iterdir() if ".partial-" in p.name)


def test_kill_9_mid_job_keeps_every_job(tmp_path, clip, long_clip):
    server = ServerProcess(tmp_path / "data").start()
    try:
        with server.client() as client:
            finished = wait_for(client, submit(client, clip).json()["id"])
            assert finished["status"] == "done"
            digest = hashlib.sha256(client.get(finished["links"]["result"]).content).hexdigest()
            running = submit(client, long_clip).json()
            queued = [submit(client, clip, f"queued-{n}.mp4").json() for n in range(2)]
            wait_for(client, running["id"], ("running",), frames=2)
            killed = server.process.pid
            server.kill()  # kill -9: no shutdown of any kind
        assert [name for name in partials(server.data) if f"partial-{killed}-" in name], "no temporary output?"

        server.start()
        with server.client() as client:
            jobs = {job["id"]: job for job in client.get("/api/jobs", params={"limit": 100}).json()["jobs"]}
            assert set(jobs) == {finished["id"], running["id"], *(job["id"] for job in queued)}  # none lost
            assert jobs[finished["id"]]["status"] == "done"
            assert hashlib.sha256(client.get(finished["links"]["result"]).content).hexdigest() == digest
            again = jobs[running["id"]]
            assert again["status"] in ("queued", "running"), again  # re-queued, not served half-written
            assert "re-queued" in again["note"] and again["attempts"] >= 1
            assert client.get(f"/api/jobs/{running['id']}/result").status_code == 409
            assert not [name for name in partials(server.data) if f"partial-{killed}-" in name]  # swept
            for job in [running, *queued]:
                assert wait_for(client, job["id"])["status"] == "done"
            result = tmp_path / "long.webm"
            result.write_bytes(client.get(f"/api/jobs/{running['id']}/result").content)
            assert sum(1 for _ in read_webm_alpha_frames(result)) == 90
            assert client.get(f"/api/jobs/{running['id']}").json()["attempts"] == 2
        assert partials(server.data) == []
    finally:
        server.stop()


class Hooks:
    """A webhook receiver on 127.0.0.1: the bodies and signatures it was sent."""

    def __init__(self) -> None:
        received = self.received = queue.Queue()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put((body, self.headers.get("X-Vidmatte-Signature")))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def test_sigterm_stops_cleanly_and_requeues_without_counting(tmp_path, long_clip):
    """Also: the webhook (servers started with --webhooks) is called once, when the job is done,
    signed with the API key."""
    server = ServerProcess(tmp_path / "data", "--webhooks", env={"VIDMATTE_API_KEY": API_KEY})
    hooks = Hooks()
    try:
        server.start()
        with server.client(headers={"X-API-Key": API_KEY}) as client:
            job = submit(client, long_clip, webhook_url=hooks.url).json()
            wait_for(client, job["id"], ("running",), frames=2)
        assert server.stop() is not None  # ends within the timeout, without SIGKILL
        assert partials(server.data) == [] and list((server.data / "tmp").iterdir()) == []
        assert "re-queued" in server.log_text()
        assert hooks.received.empty()  # stopped, not finished: no call yet
        server.start()
        with server.client(headers={"X-API-Key": API_KEY}) as client:
            again = client.get(f"/api/jobs/{job['id']}").json()
            assert again["status"] in ("queued", "running") and again["note"].startswith("re-queued")
            done = wait_for(client, job["id"])
            assert done["status"] == "done" and done["attempts"] == 1  # the stopped run did not count
        body, signature = hooks.received.get(timeout=30)
        assert json.loads(body)["id"] == job["id"] and json.loads(body)["status"] == "done"
        assert signature == "sha256=" + hmac.new(API_KEY.encode(), body, hashlib.sha256).hexdigest()
    finally:
        server.stop()
        hooks.close()
