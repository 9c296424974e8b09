"""Audio from the source is copied when the container takes it, else transcoded, and stays in sync."""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from vidmatte.io import VideoReader, open_writer

RATE = Fraction(24000, 1001)


def _matte_from(source, out):
    """What the pipeline does: read the source, write every frame with its pts and audio."""
    with VideoReader(source) as reader:
        info = reader.info
        with open_writer(
            out,
            width=info.width,
            height=info.height,
            frame_rate=info.frame_rate,
            time_base=info.time_base,
            alpha=True,
            audio_from=source,
        ) as writer:
            for frame in reader:
                image = frame.rgb
                if writer.carries_alpha:
                    image = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
                writer.write(image, frame.pts)
    return writer


@pytest.mark.parametrize(
    ("source_name", "audio", "out_name", "expected_codec", "copied"),
    [
        ("src.mp4", "aac", "o.mp4", "aac", True),
        ("src.mp4", "aac", "o.mov", "aac", True),
        ("src.mp4", "aac", "o.mkv", "aac", True),
        ("src.mp4", "aac", "o.webm", "opus", False),  # WebM takes only Opus/Vorbis
        ("src.webm", "libopus", "o.webm", "opus", True),
        ("src.webm", "libopus", "o.mp4", "opus", True),
        ("src.mov", "pcm_s16le", "o.mov", "pcm_s16le", True),
        ("src.mov", "pcm_s16le", "o.mp4", "aac", False),
        ("src.mkv", "mp2", "o.mkv", "mp2", True),
        ("src.mkv", "mp2", "o.webm", "opus", False),
    ],
)
def test_audio_is_carried_over(tmp_path, media, source_name, audio, out_name, expected_codec, copied):
    codec = "libvpx-vp9" if source_name.endswith(".webm") else "libx264"
    source = media.make_clip(tmp_path / source_name, frames=24, rate=RATE, audio=audio, codec=codec)
    out = tmp_path / out_name
    writer = _matte_from(source, out)
    info = media.stream_info(out)
    assert info["audio_codec"] == expected_codec
    assert writer.audio_codec in (expected_codec, "lib" + expected_codec)
    # Same length of sound, starting at the same time relative to the video (sync).
    source_start, source_end = media.audio_span(source)
    out_start, out_end = media.audio_span(out)
    assert out_start == pytest.approx(source_start, abs=0.03)
    assert out_end - out_start == pytest.approx(source_end - source_start, abs=0.05)
    first_video = media.decoded_video(out)[0]
    assert first_video.pts * first_video.time_base == 0
    assert len(media.decoded_video(out)) == 24
    if copied:
        _assert_same_packets(source, out)


def _assert_same_packets(source, out):
    with av.open(str(source)) as a, av.open(str(out)) as b:
        payload_a = [bytes(p) for p in a.demux(audio=0) if p.size]
        payload_b = [bytes(p) for p in b.demux(audio=0) if p.size]
    assert payload_a == payload_b  # copied, not re-encoded


def test_audio_is_interleaved_not_appended(tmp_path, media):
    source = media.make_clip(tmp_path / "src.mp4", frames=72, rate=RATE, audio="aac")
    out = tmp_path / "o.webm"
    _matte_from(source, out)
    with av.open(str(out)) as container:
        kinds = [p.stream.type for p in container.demux() if p.size]
    # Audio packets appear from the start, between video packets, not all at the end.
    assert "audio" in kinds[:10]
    assert kinds.index("video") < len(kinds) // 2


def test_clip_without_audio(tmp_path, media):
    source = media.make_clip(tmp_path / "silent.mp4", frames=5)
    writer = _matte_from(source, tmp_path / "o.webm")
    assert writer.audio_codec is None
    assert media.stream_info(tmp_path / "o.webm")["audio_codec"] is None


def test_png_folder_ignores_audio(tmp_path, media):
    source = media.make_clip(tmp_path / "src.mp4", frames=3, audio="aac")
    _matte_from(source, f"{tmp_path}/frames/")
    assert media.listing(tmp_path / "frames") == ["000000.png", "000001.png", "000002.png"]


def test_longer_audio_is_kept_whole(tmp_path, media):
    source = media.make_clip(tmp_path / "src.mp4", frames=6, rate=Fraction(25), audio="aac", audio_seconds=1.0)
    _matte_from(source, tmp_path / "o.mkv")
    start, end = media.audio_span(tmp_path / "o.mkv")
    assert end - start == pytest.approx(1.0, abs=0.05)
