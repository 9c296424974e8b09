"""Folders of images and videos, and numbered frame sequences, through the library; decoded outputs."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.conftest import moving_clip
from tests.io.conftest import make_clip
from vidmatte import InputError, MatteOptions
from vidmatte.folders import matte_folder, matte_sequence, plan_folder
from vidmatte.io import read_webm_alpha_frames
from vidmatte.io.formats import default_output
from vidmatte.io.sources import sequence_frames

SIZE = 128


@pytest.fixture(scope="module")
def matter(engine):
    return engine


@pytest.fixture(scope="module")
def portrait(sample_rgb):
    return cv2.resize(sample_rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def save_rgb(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def rgba(path):
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None and image.shape[2] == 4, path
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_folder_of_images_and_videos(tmp_path, portrait, sample_rgb, matter, caplog):
    src = tmp_path / "shoot"
    save_rgb(src / "a.jpg", portrait)
    save_rgb(src / "day2" / "b.png", portrait[:, ::-1])
    (src / "day2" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    (src / "notes.txt").write_text("not media")
    (src / ".DS_Store").write_bytes(b"hidden")
    make_clip(src / "day2" / "clip.mp4", images=moving_clip(sample_rgb, 96, 128, frames=3))
    with caplog.at_level(logging.WARNING, logger="vidmatte"):
        summary = matte_folder(src, engine=matter, options=MatteOptions(passes=4))
    notices = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]

    out = default_output(src, "folder")
    assert out == tmp_path / "shoot_matte"
    assert files_under(out) == ["a.png", "day2/b.png", "day2/clip.webm"]
    assert [p.name for p, _ in summary.done] == ["a.jpg", "b.png", "clip.mp4"]
    assert [p.name for p, _ in summary.failed] == ["broken.png"] and not summary.ok
    assert "not an image vidmatte can read" in summary.failed[0][1]
    assert [p.name for p in summary.skipped] == ["notes.txt"]
    assert any("notes.txt" in n and "skipped" in n for n in notices)
    assert any("broken.png" in n and "failed" in n for n in notices)
    assert str(summary).startswith("3 done, 1 failed, 1 skipped")

    a, b = rgba(out / "a.png"), rgba(out / "day2" / "b.png")
    assert a.shape == (SIZE, SIZE, 4) and a[100:, 20:60, 3].mean() > 200 and a[:, 100:, 3].mean() < 30
    assert np.abs(b[..., 3].astype(int) - a[:, ::-1, 3]).mean() < 12  # the mirrored picture
    frames = list(read_webm_alpha_frames(out / "day2" / "clip.webm"))
    assert len(frames) == 3 and frames[0].shape == (96, 128, 4)


def test_rerun_without_overwrite_reports_existing_outputs(tmp_path, portrait, matter):
    src = tmp_path / "in"
    save_rgb(src / "a.png", portrait)
    save_rgb(src / "b.png", portrait)
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    summary = matte_folder(src, out, engine=matter, options=MatteOptions(passes=2))
    assert [p.name for p, _ in summary.done] == ["b.png"]
    assert "exists" in summary.failed[0][1] and (out / "a.png").read_bytes() == b"keep me"
    summary = matte_folder(src, out, engine=matter, options=MatteOptions(passes=2, overwrite=True))
    assert summary.ok and rgba(out / "a.png").shape == (SIZE, SIZE, 4)


def test_plan_keeps_colliding_names_apart_and_skips_the_output_inside(tmp_path):
    src = tmp_path / "in"
    for name in ("x.jpg", "x.png", "sub/y.mov", "out/old.png", ".hidden/z.png"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(b"")
    jobs, other = plan_folder(src, src / "out")
    assert [(str(s.relative_to(src)), str(t.relative_to(src))) for s, t in jobs] == [
        ("sub/y.mov", "out/sub/y.webm"),
        ("x.jpg", "out/x.jpg.png"),
        ("x.png", "out/x.png.png"),
    ]
    assert other == []


def test_default_names_of_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / "shots").mkdir()
    monkeypatch.chdir(tmp_path / "shots")
    assert default_output(".", "folder").resolve() == tmp_path / "shots_matte"
    assert default_output("./", "sequence").resolve() == tmp_path / "shots_matte.webm"
    assert default_output("shots/", "folder") == Path("shots_matte")


def test_folder_without_media_is_an_error(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("hi")
    with pytest.raises(InputError, match="no images or videos"):
        matte_folder(tmp_path / "docs")
    assert not (tmp_path / "docs_matte").exists()


@pytest.fixture
def numbered_frames(tmp_path, sample_rgb):
    """frames/1.png .. 11.png: a panning portrait, each frame brighter than the last."""
    clip = moving_clip(sample_rgb, 96, 128, frames=11)
    folder = tmp_path / "frames"
    for i, frame in enumerate(clip):
        brighter = (frame // 2 + 10 * i).astype(np.uint8)  # no clipping: 127 + 100 at most
        save_rgb(folder / f"{i + 1}.png", brighter)
    (folder / "notes.txt").write_text("ignored")
    return folder


def test_sequence_is_numeric_order_at_the_given_rate(numbered_frames, matter):
    names = [p.name for p in sequence_frames(numbered_frames)]
    assert names == [f"{i}.png" for i in range(1, 12)]  # 2 before 10
    out = matte_sequence(numbered_frames, engine=matter, options=MatteOptions(fps=Fraction(30000, 1001)))
    assert out == default_output(numbered_frames, "sequence") == numbered_frames.with_name("frames_matte.webm")
    frames = np.stack(list(read_webm_alpha_frames(out)))
    assert frames.shape == (11, 96, 128, 4)
    body = frames[:, 70:, 40:80]
    assert body[..., 3].mean() > 200
    levels = body[..., :3].reshape(11, -1).mean(1)
    assert np.all(np.diff(levels) > 0)  # frames came out in numeric order
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        times = [float(f.time) for f in container.decode(stream)]
    np.testing.assert_allclose(np.diff(times), 1001 / 30000, atol=2e-3)


def test_sequence_to_png_folder_with_composite(numbered_frames, tmp_path, matter):
    out = matte_sequence(
        numbered_frames,
        str(tmp_path / "comp") + "/",
        engine=matter,
        options=MatteOptions(output_type="composite", background="blue", fps=Fraction(25)),
    )
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 11
    first = cv2.cvtColor(cv2.imread(str(out / names[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(first[:, -12:].reshape(-1, 3).mean(0), [0, 0, 255], atol=25)


def test_sequence_with_a_frame_of_another_size_writes_nothing(numbered_frames, tmp_path, matter):
    save_rgb(numbered_frames / "12.png", np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(InputError, match=r"12\.png is 50x50 but the sequence is 128x96"):
        matte_sequence(numbered_frames, tmp_path / "x.webm", engine=matter)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".x.webm", "x.webm"))]
