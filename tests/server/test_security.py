"""The server lets no one in: keys, binds, limits, origins, Host names; errors never leak."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.server.conftest import API_KEY, REPO, ServerProcess, assert_json_error, submit, wait_for


def serve(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vidmatte", "serve", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={
            **{k: v for k, v in os.environ.items() if k != "VIDMATTE_API_KEY"},
            "PYTHONPATH": str(REPO),
            **(env or {}),
        },
    )


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com"])
def test_a_non_loopback_bind_without_a_key_is_refused(host, tmp_path):
    start = time.monotonic()
    result = serve("--host", host, "--port", "0", "--data", str(tmp_path / "data"))
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "API key" in lines[0] and host in lines[0], result.stderr
    assert "listening" not in result.stderr and not (tmp_path / "data").exists()
    assert time.monotonic() - start < 30  # refused before the model (or anything) is loaded


def test_weak_keys_and_wildcard_cors_are_refused(tmp_path):
    short = serve("--host", "0.0.0.0", "--data", str(tmp_path), env={"VIDMATTE_API_KEY": "secret"})
    assert short.returncode == 2 and "shorter than 16" in short.stderr
    wildcard = serve("--cors", "*", "--data", str(tmp_path))
    assert wildcard.returncode == 2 and "--cors" in wildcard.stderr


def test_api_key_required_and_compared(keyed_server, photo):
    with keyed_server.client() as client:
        missing = client.get("/api/jobs")
        assert_json_error(missing, 401, "api key")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for wrong in ("x", API_KEY[:-1], API_KEY + "x", API_KEY.upper(), "Bearer " + API_KEY):
            assert_json_error(client.get("/api/jobs", headers={"X-API-Key": wrong}), 401)
            assert_json_error(client.get("/api/jobs", headers={"Authorization": f"Bearer {wrong}"}), 401)
        assert_json_error(client.get("/api/jobs", headers={"Authorization": f"Basic {API_KEY}"}), 401)
        # refused before the body is read: an unauthenticated upload costs the server nothing
        with open(photo, "rb") as file:
            assert_json_error(client.post("/api/remove", files={"file": file}), 401)
        assert_json_error(client.get("/api/jobs/AAAAAAAAAAAAAAAAAAAAAA/result"), 401)
        assert client.get("/api/jobs", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
        assert client.get("/api/jobs", headers={"X-API-Key": API_KEY}).status_code == 200
        # the page and the liveness check need no key, and tell nothing but that a key is needed
        assert client.get("/").status_code == 200
        health = client.get("/healthz").json()
        assert health == {"status": "ok", "version": health["version"], "auth": True}
        assert "jobs" in client.get("/healthz", headers={"X-API-Key": API_KEY}).json()


def test_oversized_uploads_get_413_and_leave_nothing(keyed_server, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(os.urandom(1 << 20))  # 1 MiB against a 256 KiB limit
    headers = {"X-API-Key": API_KEY}
    with keyed_server.client(headers=headers) as client:
        declared = submit(client, big)  # Content-Length says it all: refused before reading
        assert_json_error(declared, 413, "256 KiB")

        def chunks():  # chunked transfer: no length up front, refused at the limit
            with open(big, "rb") as file:
                while block := file.read(65536):
                    yield block

        streamed = client.post("/api/remove", content=chunks(), headers={"Content-Type": "application/octet-stream"})
        assert_json_error(streamed, 413, "limit")
    for folder in ("tmp", "uploads"):
        assert list((keyed_server.data / folder).iterdir()) == []


def test_queue_limit_answers_429_with_retry_after(keyed_server, clip):
    headers = {"X-API-Key": API_KEY}
    with keyed_server.client(headers=headers) as client:
        first = submit(client, clip).json()
        wait_for(client, first["id"], ("running", "done"))
        second = submit(client, clip)  # waits: the queue (limit 1) is full now
        assert second.status_code == 202
        answers = [submit(client, clip) for _ in range(3)]
        refused = [a for a in answers if a.status_code == 429]
        if refused:  # the first job may have finished and the second started meanwhile
            assert_json_error(refused[0], 429, "queue is full")
            assert int(refused[0].headers["retry-after"]) >= 1
        else:
            pytest.fail(f"no 429 with a queue limit of 1: {[a.status_code for a in answers]}")
        for answer in [second, *answers]:
            if answer.status_code == 202:
                wait_for(client, answer.json()["id"])


def test_cross_origin_requests_refused_unless_allowed(server, keyed_server, photo):
    with server.client() as client:
        # CORS is off: no preflight approval, and a simple cross-site form post is refused outright
        preflight = client.options(
            "/api/jobs", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in preflight.headers
        with open(photo, "rb") as file:
            assert_json_error(
                client.post("/api/remove", files={"file": file}, headers={"Origin": "http://evil.example"}),
                403,
                "cross-origin",
            )
        assert_json_error(client.get("/api/jobs", headers={"Origin": "null"}), 403)
        # the server's own page is same-origin
        assert client.get("/api/jobs", headers={"Origin": server.url}).status_code == 200
        # DNS rebinding: a name that is not loopback is refused on a loopback server
        assert_json_error(client.get("/api/jobs", headers={"Host": "evil.example"}), 400, "127.0.0.1")
        assert_json_error(client.get("/", headers={"Host": "rebind.evil.example:7000"}), 400)
        assert client.get("/healthz", headers={"Host": "localhost:7000"}).status_code == 200
    with keyed_server.client() as client:  # started with --cors http://tool.example
        allowed = client.options(
            "/api/jobs",
            headers={
                "Origin": "http://tool.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "x-api-key",
            },
        )
        assert allowed.headers["access-control-allow-origin"] == "http://tool.example"
        answer = client.get("/api/jobs", headers={"Origin": "http://tool.example", "X-API-Key": API_KEY})
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "http://tool.example"
        assert_json_error(
            client.get("/api/jobs", headers={"Origin": "http://other.example", "X-API-Key": API_KEY}), 403
        )


def test_a_second_server_on_the_same_data_is_refused(server):
    other = ServerProcess(server.data)
    result = subprocess.run(
        other.command(), capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert result.returncode == 2 and "another vidmatte serve" in result.stderr, result.stderr
    with server.client() as client:
        assert client.get("/healthz").status_code == 200  # the first one is untouched
