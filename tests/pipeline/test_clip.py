"""The video job end to end, through the library: real decoded outputs of every form."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch

from tests.conftest import moving_clip
from tests.io.conftest import audio_span, make_clip, stream_info
from vidmatte import MattingEngine, OutputError
from vidmatte.io import VideoReader, read_webm_alpha_frames
from vidmatte.io.formats import default_output
from vidmatte.pipeline import StageChain, VideoOptions, matte_frames, matte_video
from vidmatte.plan import applied, plan_run

RATE = Fraction(24000, 1001)
FRAMES = 6


@pytest.fixture(scope="module")
def person(sample_rgb):
    """(T,H,W,3) frames of the bundled portrait, panning; the subject fills the middle."""
    return moving_clip(sample_rgb, 144, 192, frames=FRAMES)


@pytest.fixture
def clip(tmp_path, person):
    return make_clip(tmp_path / "clip.mp4", images=person, rate=RATE, audio="aac")


def _times(path):
    with av.open(str(path)) as c:
        return [float(f.time) for f in c.decode(video=0)]


def _png_frames(folder):
    names = sorted(p.name for p in folder.iterdir())
    return names, [cv2.cvtColor(cv2.imread(str(folder / n), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGRA2RGBA) for n in names]


def test_default_is_webm_with_alpha_audio_and_timing(clip, engine):
    out = matte_video(clip, engine=engine)
    assert out == default_output(clip, "video") == clip.with_name("clip_matte.webm")
    frames = list(read_webm_alpha_frames(out))
    assert len(frames) == FRAMES and frames[0].shape == (144, 192, 4)
    alpha = np.stack(frames)[..., 3]
    assert alpha[:, 100:, 40:90].mean() > 200  # the subject's body
    assert alpha[:, :10, -10:].mean() < 30  # background corner
    info = stream_info(out)
    assert info["audio_codec"] == "opus"  # AAC cannot go into WebM: transcoded
    assert _times(out) == pytest.approx(_times(clip), abs=1e-3)  # 23.976 kept, not rounded
    _start, end = audio_span(out)
    assert end == pytest.approx(FRAMES / RATE, abs=0.05)


def test_prores_4444_keeps_alpha_and_copies_audio(clip, engine, tmp_path):
    out = matte_video(clip, tmp_path / "clip.mov", engine=engine)
    info = stream_info(out)
    # FFmpeg's decoder reports 4444 as 12-bit; the tag ap4h is what editors read as ProRes 4444
    assert info["video_codec"] == "prores" and info["pix_fmt"].startswith("yuva444p")
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.codec_tag == "ap4h"
    assert info["audio_codec"] == "aac"
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgba") for f in c.decode(video=0)]
    assert len(frames) == FRAMES
    assert np.stack(frames)[:, :10, -10:, 3].mean() < 30
    assert _times(out) == pytest.approx(_times(clip), abs=1e-6)


def test_png_folder_holds_the_predicted_foreground_colour(clip, engine, person, tmp_path):
    out = matte_video(clip, str(tmp_path / "frames") + "/", engine=engine)
    names, pngs = _png_frames(out)
    assert names == [f"{i:06d}.png" for i in range(FRAMES)]
    with VideoReader(clip) as reader:
        decoded = np.stack([f.rgb for f in reader])
    engine.reset()
    engine.prime(decoded[0], VideoOptions().warmup)  # what the pipeline does before a clip
    expected = engine(decoded).rgba()
    got = np.stack(pngs)
    assert np.abs(got.astype(int) - expected).max() <= 1
    # at soft edges the colour is the network's foreground, not the source pixel with its old background
    soft = (expected[..., 3] > 25) & (expected[..., 3] < 230)
    assert soft.sum() > 20
    assert np.abs(got[..., :3][soft].astype(int) - decoded[soft]).mean() > 2


def test_mp4_composite_over_green_keeps_audio(clip, engine, tmp_path):
    out = matte_video(clip, tmp_path / "green.mp4", engine=engine)
    info = stream_info(out)
    assert info["video_codec"] == "h264" and info["audio_codec"] == "aac"
    with av.open(str(out)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert len(frames) == FRAMES
    corner = frames[:, :10, -10:].reshape(-1, 3).mean(0)
    assert corner[1] > 200 and corner[0] < 50 and corner[2] < 50


@pytest.mark.parametrize(
    "background,check",
    [
        ("#ff00ff", lambda c: c[0] > 200 and c[1] < 50 and c[2] > 200),
        ("blur", lambda c: c.std() < 60),  # the original, blurred: not a flat key colour
    ],
)
def test_composite_backgrounds(clip, engine, tmp_path, background, check):
    out = matte_video(clip, tmp_path / "c.mkv", engine=engine, options=VideoOptions(background=background))
    with av.open(str(out)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24")
    assert check(first[:6, -6:].reshape(-1, 3).mean(0))


def test_image_and_video_backgrounds(clip, engine, tmp_path):
    image = np.zeros((50, 50, 3), np.uint8)
    image[:] = (0, 0, 255)  # BGR red
    cv2.imwrite(str(tmp_path / "bg.png"), image)
    out = matte_video(
        clip, tmp_path / "i.mp4", engine=engine, options=VideoOptions(background=str(tmp_path / "bg.png"))
    )
    with av.open(str(out)) as c:
        corner = next(c.decode(video=0)).to_ndarray(format="rgb24")[:6, -6:].reshape(-1, 3).mean(0)
    assert corner[0] > 200 and corner[1] < 50
    bgclip = make_clip(tmp_path / "bg.mp4", width=40, height=30, frames=2)  # shorter than the clip: looped
    out = matte_video(clip, tmp_path / "v.mp4", engine=engine, options=VideoOptions(background=str(bgclip)))
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == FRAMES


@pytest.mark.parametrize("output_type", ["alpha", "foreground"])
def test_alpha_and_foreground_views(clip, engine, tmp_path, output_type):
    out = matte_video(
        clip, str(tmp_path / output_type) + "/", engine=engine, options=VideoOptions(output_type=output_type)
    )
    _, pngs = _png_frames(out)
    first = pngs[0]
    assert (first[..., 3] == 255).all()  # opaque pictures
    if output_type == "alpha":
        assert (first[..., 0] == first[..., 1]).all() and first[100:, 40:90, 0].mean() > 200
    else:
        assert first[:10, -10:, :3].mean() < 30  # black where there is no subject


@pytest.mark.parametrize("width,height", [(33, 17), (7, 5)])
def test_odd_and_tiny_sizes_come_out_exact_or_even(tmp_path, engine, width, height):
    src = make_clip(tmp_path / "odd.mkv", width=width, height=height, frames=3, codec="ffv1")
    out = matte_video(src, tmp_path / "odd.webm", engine=engine)
    frames = list(read_webm_alpha_frames(out))
    assert len(frames) == 3 and frames[0].shape == (height, width, 4)
    out = matte_video(src, tmp_path / "odd.mp4", engine=engine)
    with av.open(str(out)) as c:
        f = next(c.decode(video=0))
    assert (f.width, f.height) == (width + width % 2, height + height % 2)  # H.264 4:2:0: even only


def test_rgba_into_mp4_is_refused_before_anything_is_written(clip, engine, tmp_path):
    with pytest.raises(OutputError, match="alpha"):
        matte_video(clip, tmp_path / "x.mp4", engine=engine, options=VideoOptions(output_type="rgba"))
    assert not (tmp_path / "x.mp4").exists()


def test_existing_output_is_never_touched_without_overwrite(clip, engine, tmp_path):
    target = tmp_path / "out.webm"
    target.write_bytes(b"precious")
    with pytest.raises(OutputError, match="exists"):
        matte_video(clip, target, engine=engine)
    assert target.read_bytes() == b"precious"
    matte_video(clip, target, engine=engine, options=VideoOptions(overwrite=True))
    assert len(list(read_webm_alpha_frames(target))) == FRAMES


def test_frames_are_streamed_not_collected(engine, person):
    """Decoding runs only a bounded distance ahead of the consumer: memory is flat in clip length."""
    from vidmatte.io import VideoFrame

    produced = itertools.count()
    made = []

    def endless():
        for i in produced:
            made.append(i)
            yield VideoFrame(person[i % FRAMES], i, Fraction(1, 24))

    chain = StageChain(engine, plan_run(engine, (144, 192), chunk_size=2), "rgba")
    stream = matte_frames(endless(), chain)
    taken = list(itertools.islice(stream, 10))
    assert [f.pts for _, f in taken] == list(range(10))
    # at most a few of the front's chunks of read-ahead (queue of 4, one in hand each side)
    assert len(made) <= 10 + chain.plan.front_chunk * 6


def test_variable_frame_rate_and_rotation_survive_the_pipeline(tmp_path, engine, person):
    pts = [0, 1000, 1500, 4000, 4100, 7000]  # irregular gaps, time base 1/12000
    vfr = make_clip(tmp_path / "vfr.mp4", images=person, pts=pts, time_base=Fraction(1, 12000), rate=Fraction(12))
    out = matte_video(vfr, tmp_path / "vfr.mov", engine=engine)
    assert _times(out) == pytest.approx([p / 12000 for p in pts], abs=1e-6)
    rotated = make_clip(tmp_path / "phone.mp4", images=person, rotation=90)
    out = matte_video(rotated, str(tmp_path / "phone") + "/", engine=engine)
    _, pngs = _png_frames(out)
    assert pngs[0].shape == (192, 144, 4)  # upright: width and height swapped like the display matrix says


def test_hard_cut_resets_the_state(tmp_path, engine, person, sample_rgb):
    """After a detected cut the output equals a fresh run on the second shot alone."""
    shot_b = moving_clip(np.ascontiguousarray(sample_rgb[:, ::-1, ::-1]), 144, 192, frames=4, seed=1)
    joined = make_clip(tmp_path / "cut.mkv", images=np.concatenate([person, shot_b]), codec="ffv1")
    alone = make_clip(tmp_path / "b.mkv", images=shot_b, codec="ffv1")
    _, with_reset = _png_frames(matte_video(joined, str(tmp_path / "j") + "/", engine=engine))
    _, fresh = _png_frames(matte_video(alone, str(tmp_path / "b") + "/", engine=engine))
    after = np.stack(with_reset[FRAMES:]).astype(int)
    assert np.abs(after - np.stack(fresh)).max() <= 1
    _, no_reset = _png_frames(
        matte_video(joined, str(tmp_path / "n") + "/", engine=engine, options=VideoOptions(scene_reset=False))
    )
    assert np.abs(np.stack(no_reset[FRAMES:]).astype(int) - np.stack(fresh))[..., 3].max() > 5


def test_warm_up_primes_every_shot(tmp_path, engine, person, sample_rgb):
    """With warm-up, the first frame of each shot is matted with a primed state: the same as a
    manual `prime` on that shot alone, and different from the cold start."""
    shot_b = moving_clip(np.ascontiguousarray(sample_rgb[:, ::-1, ::-1]), 144, 192, frames=4, seed=1)
    joined = make_clip(tmp_path / "cut.mkv", images=np.concatenate([person, shot_b]), codec="ffv1")
    warm = VideoOptions(warmup=4)
    _, primed = _png_frames(matte_video(joined, str(tmp_path / "w") + "/", engine=engine, options=warm))
    _, cold = _png_frames(matte_video(joined, str(tmp_path / "c") + "/", engine=engine, options=VideoOptions(warmup=0)))
    with VideoReader(joined) as reader:
        decoded = np.stack([frame.rgb for frame in reader])
    for start in (0, FRAMES):
        engine.reset()
        engine.prime(decoded[start], 4)
        expected = engine(decoded[start : start + 1]).rgba()[0].astype(int)
        assert np.abs(primed[start].astype(int) - expected).max() <= 1
        assert np.abs(cold[start].astype(int) - expected)[..., 3].max() > 5


def test_refine_changes_only_edges(clip, engine, tmp_path):
    half = engine.with_ratio(0.5)  # refinement acts below full res
    _, plain = _png_frames(matte_video(clip, str(tmp_path / "p") + "/", engine=half))
    _, refined = _png_frames(
        matte_video(clip, str(tmp_path / "r") + "/", engine=half, options=VideoOptions(refine=True))
    )
    _, full = _png_frames(
        matte_video(clip, str(tmp_path / "f") + "/", engine=engine, options=VideoOptions(refine=True))
    )
    _, full_plain = _png_frames(matte_video(clip, str(tmp_path / "g") + "/", engine=engine))
    assert np.array_equal(np.stack(full), np.stack(full_plain))  # ratio 1: nothing to recover, left alone
    plain_a, refined_a = np.stack(plain)[..., 3].astype(int), np.stack(refined)[..., 3].astype(int)
    changed = np.abs(plain_a - refined_a) > 2
    assert changed.any()
    for t in range(len(plain)):
        solid = (plain_a[t] == 255) | (plain_a[t] == 0)
        edge = ~cv2.erode(solid.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
        assert not (changed[t] & ~edge).any()


@pytest.fixture
def staged_encoder(monkeypatch):
    """The GPU arrangement on CPU: the encoder on a thread of its own, after the render thread."""
    import dataclasses

    import vidmatte.pipeline.clip as clip_module

    real = clip_module.plan_run
    monkeypatch.setattr(
        clip_module,
        "plan_run",
        lambda *args, **kwargs: dataclasses.replace(real(*args, **kwargs), separate_encoder=True),
    )


@pytest.mark.parametrize("name", ["out.mp4", "out.webm"])
def test_separate_encoder_stage_writes_the_same_clip(clip, engine, tmp_path, request, name):
    inline = matte_video(clip, tmp_path / f"inline_{name}", engine=engine)
    request.getfixturevalue("staged_encoder")
    staged = matte_video(clip, tmp_path / f"staged_{name}", engine=engine)
    if name.endswith(".webm"):
        a, b = np.stack(list(read_webm_alpha_frames(inline))), np.stack(list(read_webm_alpha_frames(staged)))
    else:
        with av.open(str(inline)) as c1, av.open(str(staged)) as c2:
            a = np.stack([f.to_ndarray(format="rgb24") for f in c1.decode(video=0)])
            b = np.stack([f.to_ndarray(format="rgb24") for f in c2.decode(video=0)])
    assert len(a) == FRAMES
    np.testing.assert_array_equal(a, b)
    assert _times(staged) == _times(inline)


def test_separate_encoder_stage_failure_leaves_nothing(clip, engine, tmp_path, monkeypatch, staged_encoder):
    import errno

    from vidmatte.io.encoded_writer import EncodedVideoWriter

    real = EncodedVideoWriter._write_frame
    calls = itertools.count()

    def fills_the_disk(self, image, seconds):
        if next(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, image, seconds)

    monkeypatch.setattr(EncodedVideoWriter, "_write_frame", fills_the_disk)
    with pytest.raises(OutputError, match="space"):
        matte_video(clip, tmp_path / "out.webm", engine=engine)
    assert list(tmp_path.iterdir()) == [clip]


@pytest.mark.gpu
def test_cuda_pipeline_writes_the_clip(clip, tmp_path):
    out = matte_video(clip, tmp_path / "gpu.webm", engine=MattingEngine(device="cuda"))
    frames = np.stack(list(read_webm_alpha_frames(out)))
    assert frames.shape == (FRAMES, 144, 192, 4)
    assert frames[:, 100:, 40:90, 3].mean() > 200 and frames[:, :10, -10:, 3].mean() < 30
    assert _times(out) == pytest.approx(_times(clip), abs=1e-3)


def test_upload_ahead_gives_the_same_coarse_mattes_as_encode_ahead(engine, person):
    """The GPU arrangement of the reading thread (frames uploaded ahead, encoded later) against
    the CPU one (encoded ahead), on the CPU: the same network outputs, chunk for chunk."""
    import dataclasses

    from vidmatte.io import VideoFrame
    from vidmatte.pipeline.runner import chunks

    frames = [VideoFrame(rgb, i, Fraction(1, 24)) for i, rgb in enumerate(person)]
    runs = []
    for ahead in (True, False):
        plan = dataclasses.replace(plan_run(engine, (144, 192), chunk_size=2), encode_ahead=ahead)
        chain = StageChain(engine, plan, "rgba", warmup=2)
        runs.append([c.coarse.y.clone() for part in chunks(frames, 2) for c in chain.recurrent(chain.front(part))])
    assert len(runs[0]) == len(runs[1]) == FRAMES // 2
    for a, b in zip(*runs):
        assert (a - b).abs().max() < 1e-5


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_plan_settings_are_restored_even_after_an_error(engine, device):
    """CPU: thread counts per stage; CUDA: cuDNN's algorithm search (a flag, settable without a GPU)."""
    import dataclasses

    plan = plan_run(engine, (144, 192))
    if device == "cuda":
        plan = dataclasses.replace(plan, torch_threads=None, opencv_threads=None, cudnn_benchmark=True)
    before = torch.get_num_threads(), cv2.getNumThreads(), torch.backends.cudnn.benchmark
    with pytest.raises(KeyboardInterrupt):
        with applied(plan):
            if device == "cpu":
                assert torch.get_num_threads() == max(1, (os.cpu_count() or 2) // 2)
                assert cv2.getNumThreads() == 1
            else:
                assert torch.backends.cudnn.benchmark
            raise KeyboardInterrupt
    assert (torch.get_num_threads(), cv2.getNumThreads(), torch.backends.cudnn.benchmark) == before
