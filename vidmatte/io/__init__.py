"""Codec layer: read videos as RGB frames, write mattes as video files or PNG folders."""

from vidmatte.io.formats import output_form
from vidmatte.io.video_reader import VideoFrame, VideoInfo, VideoReader
from vidmatte.io.video_writer import VideoWriter, open_writer
from vidmatte.io.webm_alpha import read_webm_alpha_frames

__all__ = [
    "VideoFrame",
    "VideoInfo",
    "VideoReader",
    "VideoWriter",
    "open_writer",
    "output_form",
    "read_webm_alpha_frames",
]
