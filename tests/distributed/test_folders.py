"""Folders and lists on Ray workers: files in parallel, the folder mode's rules kept."""

from __future__ import annotations

from pathlib import Path

import cv2

from tests.io.conftest import make_clip
from vidmatte.distributed.driver import matte_folder, matte_many
from vidmatte.options import MatteOptions


def test_a_folder_runs_in_parallel_with_failures_reported_and_the_rest_done(tmp_path, cut_clip, sample_rgb, pool):
    shoot = tmp_path / "shoot"
    (shoot / "day2").mkdir(parents=True)
    make_clip(shoot / "a.mp4", width=64, height=48, frames=6)
    (shoot / "day2" / "long.mp4").write_bytes(cut_clip.read_bytes())
    cv2.imwrite(str(shoot / "b.jpg"), cv2.cvtColor(cv2.resize(sample_rgb, (64, 64)), cv2.COLOR_RGB2BGR))
    (shoot / "broken.mp4").write_bytes(b"not a video at all")
    (shoot / "notes.txt").write_text("skipped")
    reports = []
    summary = matte_folder(
        shoot,
        options=MatteOptions(device="cpu", workers=2, segment_frames=30),
        progress=reports.append,
        pool=pool,
    )
    out = tmp_path / "shoot_matte"
    assert sorted(str(t.relative_to(out)) for _, t in summary.done) == ["a.webm", "b.png", "day2/long.webm"]
    assert [p.name for p, _ in summary.failed] == ["broken.mp4"]
    assert [p.name for p in summary.skipped] == ["notes.txt"]
    assert not summary.ok
    assert (out / "day2" / "long.webm").stat().st_size > 0
    assert not list(out.rglob(".*"))  # no temporaries, no work folders
    # one aggregated bar over every file's frames
    assert {r.task for r in reports} == {"frames"}
    assert reports[-1].done == reports[-1].total == 6 + 70 + 1


def test_matte_many_writes_the_default_names(tmp_path, pool):
    clips = [make_clip(tmp_path / f"c{i}.mp4", width=64, height=48, frames=4) for i in range(3)]
    out = tmp_path / "out"
    out.mkdir()
    summary = matte_many(clips, out, workers=2, options=MatteOptions(device="cpu"), pool=pool)
    assert summary.ok
    assert sorted(p.name for p in out.iterdir()) == ["c0_matte.webm", "c1_matte.webm", "c2_matte.webm"]
    assert isinstance(summary.done[0][1], Path)
