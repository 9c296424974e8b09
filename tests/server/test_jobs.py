"""Video jobs against a real server: round trip (frames, timestamps, audio), Range, forms, cancel."""

from __future__ import annotations

import io
import time
import zipfile
from fractions import Fraction

import av
import cv2
import numpy as np

from tests.server.conftest import assert_json_error, submit, wait_for
from vidmatte.io import read_webm_alpha_frames
from vidmatte.options import SMOOTH_STRENGTH


def timestamps(path) -> list[Fraction]:
    with av.open(str(path)) as container:
        return [Fraction(frame.pts) * frame.time_base for frame in container.decode(video=0)]


def has_audio(path) -> bool:
    with av.open(str(path)) as container:
        return bool(container.streams.audio)


def test_video_round_trip_keeps_frames_timestamps_and_audio(server, clip, tmp_path):
    with server.client() as client:
        answer = submit(client, clip, smooth="true")
        assert answer.status_code == 202, answer.text
        job = answer.json()
        assert job["status"] == "queued" and answer.headers["location"] == f"/api/jobs/{job['id']}"
        assert job["frames_total"] == 12 and job["options"] == {"smooth": SMOOTH_STRENGTH}
        done = wait_for(client, job["id"])
        assert done["status"] == "done", done
        assert done["frames_done"] == done["frames_total"] == 12 and done["progress"] == 1.0
        assert done["fps"] > 0 and done["error"] is None and done["expires"] > done["finished"]
        result = client.get(done["links"]["result"])
    assert result.status_code == 200
    assert result.headers["content-type"] == "video/webm"
    assert 'filename="clip_matte.webm"' in result.headers["content-disposition"]
    out = tmp_path / "out.webm"
    out.write_bytes(result.content)
    frames = list(read_webm_alpha_frames(out))
    assert len(frames) == 12 and frames[0].shape == (72, 96, 4)
    assert 0 < np.mean([frame[..., 3].mean() for frame in frames]) < 255
    source, matted = timestamps(clip), timestamps(out)
    assert len(matted) == len(source) == 12
    assert all(abs(a - b) <= Fraction(1, 1000) for a, b in zip(source, matted)), (source, matted)  # WebM: ms
    assert has_audio(out)
    # the upload is gone once the job is done; only the result stays
    assert list((server.data / "uploads").iterdir()) == []


def test_range_requests(server, clip):
    with server.client() as client:
        job = wait_for(client, submit(client, clip).json()["id"])
        url = job["links"]["result"]
        whole = client.get(url).content
        size = len(whole)
        part = client.get(url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.headers["content-range"] == f"bytes 100-1099/{size}"
        assert part.content == whole[100:1100]
        tail = client.get(url, headers={"Range": "bytes=-500"})
        assert tail.status_code == 206 and tail.content == whole[-500:]
        head = client.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) == size
        assert head.headers["accept-ranges"] == "bytes"
        refused = client.get(url, headers={"Range": f"bytes={size}-"})
        assert_json_error(refused, 416, "bytes")
        assert refused.headers["content-range"] == f"bytes */{size}"
        assert_json_error(client.get(url, headers={"Range": "lines=1-2"}), 400, "range")


def test_other_forms(server, clip):
    with server.client() as client:
        zipped = submit(client, clip, form="png-zip").json()
        mp4 = submit(client, clip, form="mp4", background="#0000ff").json()
        zipped, mp4 = wait_for(client, zipped["id"]), wait_for(client, mp4["id"])
        assert zipped["status"] == mp4["status"] == "done", (zipped, mp4)
        archive = client.get(zipped["links"]["result"])
        assert archive.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(archive.content)).namelist()
        assert names == [f"clip_matte/{index:06d}.png" for index in range(12)]
        frame = cv2.imdecode(
            np.frombuffer(zipfile.ZipFile(io.BytesIO(archive.content)).read(names[0]), np.uint8), cv2.IMREAD_UNCHANGED
        )
        assert frame.shape == (72, 96, 4)
        video = client.get(mp4["links"]["result"])
        assert video.headers["content-type"] == "video/mp4"
        with av.open(io.BytesIO(video.content)) as container:
            assert sum(1 for _ in container.decode(video=0)) == 12
        assert_json_error(submit(client, clip, form="mp4", output_type="rgba"), 400, "cannot carry alpha")
        assert_json_error(submit(client, clip, form="gif"), 400, "form 'gif'")
        assert_json_error(submit(client, clip, quality="70"), 400, "quality")
    assert list((server.data / "work").iterdir()) == []


def test_cancel_running_and_queued_jobs(server, long_clip):
    with server.client() as client:
        running = submit(client, long_clip).json()
        queued = submit(client, long_clip).json()
        wait_for(client, running["id"], ("running",), frames=1)
        # a queued job: cancelled at once, its upload removed
        cancelled = client.delete(f"/api/jobs/{queued['id']}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        assert not (server.data / "uploads" / queued["id"]).exists()
        # a running one: stops at its next frame, partial output removed
        answer = client.delete(f"/api/jobs/{running['id']}")
        assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
        listed = {job["id"]: job["status"] for job in client.get("/api/jobs").json()["jobs"]}
        assert listed[running["id"]] == listed[queued["id"]] == "cancelled"
        assert_json_error(client.get(f"/api/jobs/{running['id']}/result"), 409, "cancelled")
        # the runner lets go within a frame or two; then nothing of either job is on disk
        for _ in range(100):
            leftovers = [p.name for p in (server.data / "results").iterdir() if running["id"] in p.name]
            if not leftovers and not (server.data / "uploads" / running["id"]).exists():
                break
            time.sleep(0.1)
        assert leftovers == []
        # deleting a finished (here: cancelled) job removes it altogether
        assert client.delete(f"/api/jobs/{queued['id']}").status_code == 204
        assert_json_error(client.get(f"/api/jobs/{queued['id']}"), 404, "no such job")
        assert client.get(f"/api/jobs/{running['id']}").json()["status"] == "cancelled"


def test_uploads_checked_by_decoding_not_by_name(server, clip, media_dir):
    text = media_dir / "text.mp4"
    text.write_text("this is not a video\n" * 100)
    truncated = media_dir / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[: clip.stat().st_size // 2])
    with server.client() as client:
        message = assert_json_error(submit(client, text, "holiday.mp4"), 415, "holiday.mp4", "not a video")
        assert str(server.data) not in message and "uploads" not in message
        assert_json_error(submit(client, truncated, "cut.mp4"), 415, "cut.mp4", "truncated")
        assert_json_error(submit(client, clip, webhook_url="http://127.0.0.1:9/hook"), 400, "webhooks are off")
        assert_json_error(client.post("/api/jobs", files={"file": ("a.mp4", b"")}), 400, "empty")
    assert list((server.data / "tmp").iterdir()) == []
    assert list((server.data / "uploads").iterdir()) == []


def test_client_file_names_are_never_paths(server, clip):
    outside = server.data.parent / "escaped.mp4"
    names = [
        "../../escaped.mp4",
        "..\\..\\escaped.mp4",
        "/tmp/escaped.mp4",
        "a/../../b\x00c.mp4",
        "\u202eevil\u202c.mp4",
        '"; rm -rf /.mp4',
    ]
    with server.client() as client:
        jobs = [submit(client, clip, name).json() for name in names]
        for job in jobs:
            assert job["status"] == "queued", job
            assert "/" not in job["name"] and "\\" not in job["name"] and "\x00" not in job["name"]
        for job in jobs:
            done = wait_for(client, job["id"])
            assert done["status"] == "done", done
            disposition = client.head(done["links"]["result"]).headers["content-disposition"]
            assert "/" not in disposition.split("filename=")[1].split(";")[0]
    assert not outside.exists()
    with server.client() as client:
        known = {job["id"] for job in client.get("/api/jobs", params={"limit": 1000}).json()["jobs"]}
    for folder in ("uploads", "results", "work", "tmp"):  # every file there is named after a job id
        for path in (server.data / folder).iterdir():
            assert path.name.split(".")[0] in known, path


def test_job_ids_are_random_and_checked(server):
    with server.client() as client:
        jobs = client.get("/api/jobs", params={"limit": 1000}).json()
        ids = [job["id"] for job in jobs["jobs"]]
        assert len(set(ids)) == len(ids) and all(len(i) == 22 for i in ids)
        assert set(jobs["counts"]) == {"queued", "running", "done", "failed", "cancelled"}
        for probe in ("0", "AAAAAAAAAAAAAAAAAAAAAA", "..%2F..%2Fjobs.sqlite3", "%2e%2e"):
            assert client.get(f"/api/jobs/{probe}").status_code == 404
            assert client.get(f"/api/jobs/{probe}/result").status_code == 404
        assert_json_error(client.get("/api/jobs", params={"status": "lost"}), 400, "status")
