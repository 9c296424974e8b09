"""Split and join on a real local Ray: a clip with a hard cut and a long shot, written by two
workers in segments, against the sequential run of the same clip, for every output form."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.distributed.conftest import CUT, FRAMES, PREROLL, SEGMENT_FRAMES
from vidmatte.api import matte_path
from vidmatte.distributed.driver import matte_clip
from vidmatte.distributed.split import split_clip
from vidmatte.distributed.work import work_dir
from vidmatte.io import read_webm_alpha_frames
from vidmatte.options import MatteOptions

OPTIONS = MatteOptions(device="cpu", precision="fp32", workers=2, segment_frames=SEGMENT_FRAMES, preroll=PREROLL)
#: Frames whose segment starts at the clip's start or at the cut (or whose preroll reaches back
#: to the shot's start): there the distributed output is the sequential one.
SEGMENTS = split_clip(FRAMES, [CUT], segment_frames=SEGMENT_FRAMES, preroll=PREROLL)
EXACT = [i for s in SEGMENTS if s.read_from == s.shot_start for i in range(s.start, s.end)]


def test_the_plan_has_a_cut_a_long_shot_and_preroll():
    assert [(s.start, s.end, s.read_from) for s in SEGMENTS] == [(0, 17, 0), (17, 34, 0), (34, 50, 2), (50, 70, 50)]


def stream_facts(path: Path) -> tuple[str, str, list[int], list[str]]:
    """(codec, decoded pixel format, every frame's pts, audio codecs)."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        frames = list(container.decode(video))
        audio = [s.codec_context.name for s in container.streams.audio]
        return video.codec_context.name, frames[0].format.name, [f.pts for f in frames], audio


def alphas(path: Path) -> np.ndarray:
    """(T,H,W) alpha in 0..1 of a webm, mov or PNG folder."""
    if path.is_dir():
        pictures = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED)[..., 3] for p in sorted(path.glob("*.png"))]
    elif path.suffix == ".webm":
        pictures = [rgba[..., 3] for rgba in read_webm_alpha_frames(path)]
    else:
        with av.open(str(path)) as container:
            pictures = [f.to_ndarray(format="rgba")[..., 3] for f in container.decode(video=0)]
    return np.stack(pictures).astype(np.float64) / 255


def pictures(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)]).astype(np.float64) / 255


@pytest.mark.parametrize("name", ["out.webm", "out.mov", "frames/", "out.mp4"])
def test_split_and_join_equals_the_sequential_run(tmp_path, cut_clip, engine, pool, name):
    sequential = tmp_path / "seq" / name
    distributed = tmp_path / "dist" / name
    sequential.parent.mkdir()
    distributed.parent.mkdir()
    matte_path(cut_clip, f"{sequential}/" if name.endswith("/") else sequential, MatteOptions(), engine=engine)
    spec = f"{distributed}/" if name.endswith("/") else str(distributed)
    assert matte_clip(cut_clip, spec, options=OPTIONS, pool=pool) == Path(spec)
    assert not work_dir(distributed).exists()  # the segments go once joined
    assert [p.name for p in distributed.parent.iterdir()] == [distributed.name]  # no temporaries left
    if name.endswith("/"):
        assert sorted(p.name for p in distributed.iterdir()) == [f"{i:06d}.png" for i in range(FRAMES)]
    else:
        seq, dist = stream_facts(sequential), stream_facts(distributed)
        assert dist[:2] == seq[:2]  # codec and pixel format
        assert dist[2] == seq[2] and len(dist[2]) == FRAMES  # every timestamp
        assert dist[3] == seq[3] and dist[3]  # audio, once
    if name.endswith(".mp4"):
        a, b = pictures(sequential), pictures(distributed)
    else:
        a, b = alphas(sequential), alphas(distributed)
    assert a.shape == b.shape and len(a) == FRAMES
    per_frame = np.abs(a - b).reshape(FRAMES, -1).mean(axis=1)
    # exact where no preroll was needed, but for the codecs' own noise where each segment has its
    # own encoder (a fresh keyframe): none for PNG, small for ProRes/VP9 alpha, more for H.264 colour
    noise = {"frames/": 0, "out.webm": 6e-3, "out.mov": 6e-3, "out.mp4": 0.02}[name]
    assert per_frame[EXACT].max() <= noise, per_frame
    # the mid-shot segment settles from 32 frames of preroll (this tiny synthetic clip is a hard
    # case for the network; real footage is measured in benchmarks/distributed.md)
    assert per_frame.mean() <= 0.03, per_frame


def frames_of(folder: Path) -> list[np.ndarray]:
    return [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.glob("*.png"))]


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory, cut_clip, pool) -> list[np.ndarray]:
    out = tmp_path_factory.mktemp("undisturbed") / "frames"
    matte_clip(cut_clip, f"{out}/", options=OPTIONS, pool=pool)
    return frames_of(out)


def test_an_interrupted_run_resumes_from_its_finished_segments(tmp_path, cut_clip, pool, undisturbed):
    out = tmp_path / "frames"
    spec = f"{out}/"
    seen: list[int] = []

    def stop_after_a_segment(report):
        seen.append(report.done)
        manifest = work_dir(out) / "manifest.json"
        if manifest.is_file() and json.loads(manifest.read_text())["done"]:
            raise KeyboardInterrupt  # as Ctrl-C would, once a segment is finished

    with pytest.raises(KeyboardInterrupt):
        matte_clip(cut_clip, spec, options=OPTIONS, progress=stop_after_a_segment, pool=pool)
    assert not out.exists()  # nothing under the final name
    work = work_dir(out)
    finished = sorted(p for p in work.iterdir() if p.name.startswith("seg-"))
    assert finished and (work / "manifest.json").is_file()
    stamps = {p.name: p.stat().st_mtime_ns for p in finished}
    # a damaged segment is not trusted: its content no longer matches the manifest
    damaged = finished[-1]
    first_frame = sorted(damaged.iterdir())[0]
    first_frame.write_bytes(first_frame.read_bytes()[:-10])

    notes: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: notes.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("vidmatte")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        matte_clip(cut_clip, spec, options=OPTIONS, pool=pool)
    finally:
        logger.removeHandler(handler)
    result = frames_of(out)
    assert len(result) == FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(result, undisturbed))
    assert not work.exists()
    intact = sum(int(name.split("-")[2]) - int(name.split("-")[1]) for name in stamps if name != damaged.name)
    if intact:
        assert f"cut.mp4: {intact} frames reused from the last run" in notes, notes


def worker_pids(method: str) -> list[int]:
    """Processes of Ray actors running `method` now (Ray titles them `ray::Worker.method`)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            title = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")[0].decode()
        except OSError:
            continue
        if title.startswith(f"ray::Worker.{method}"):
            found.append(int(entry))
    return found


def test_a_worker_killed_mid_segment_is_retried_and_the_output_is_complete(tmp_path, cut_clip, pool, undisturbed):
    out = tmp_path / "frames"
    errors: list[BaseException] = []

    def run():
        try:
            matte_clip(cut_clip, f"{out}/", options=OPTIONS, pool=pool)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and thread.is_alive():
        pids = worker_pids("segment")
        if pids:
            time.sleep(0.3)  # mid-segment
            os.kill(pids[0], signal.SIGKILL)
            killed = pids[0]
        time.sleep(0.05)
    thread.join(180)
    assert killed is not None, "no worker was seen running a segment"
    assert not errors, errors
    result = frames_of(out)
    assert len(result) == FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(result, undisturbed))
