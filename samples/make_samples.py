"""Rebuild the bundled samples from the public-domain NASA portrait of Eileen Collins.

The portrait ships with scikit-image as `skimage/data/astronaut.png` ("No known copyright
restrictions, released into the public domain"; NASA Great Images). The clip is a slow
pan and zoom over it, 640x480 at 24000/1001 frames/s, with a generated stereo AAC tone so
audio passthrough can be seen, encoded H.264.

Usage: python samples/make_samples.py PATH/TO/astronaut.png
"""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
RATE = Fraction(24000, 1001)
FRAMES = 72
SIZE = (640, 480)


def main(source: str) -> None:
    image = cv2.cvtColor(cv2.imread(source, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    cv2.imwrite(str(HERE / "astronaut.jpg"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
    big = cv2.resize(image, (960, 960), interpolation=cv2.INTER_CUBIC)
    with av.open(str(HERE / "astronaut_pan.mp4"), "w") as out:
        video = out.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        video.options = {"crf": "20", "preset": "slow"}
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(FRAMES):
            t = i / (FRAMES - 1)
            zoom = 1.0 - 0.15 * t  # crop window shrinks: a slow push in
            w, h = int(960 * zoom), int(720 * zoom)
            x0, y0 = int((960 - w) * (0.2 + 0.5 * t)), int((960 - h) * 0.3 * (1 - t))
            crop = cv2.resize(big[y0 : y0 + h, x0 : x0 + w], SIZE, interpolation=cv2.INTER_AREA)
            for packet in video.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")):
                out.mux(packet)
        seconds = FRAMES / RATE
        n = int(48000 * seconds)
        tt = np.arange(n) / 48000
        tone = 0.2 * np.sin(2 * np.pi * 220 * tt) * np.minimum(1, np.minimum(tt, seconds - tt) * 4)
        samples = np.stack([tone, tone * 0.8]).astype(np.float32)
        for start in range(0, n, 1024):
            chunk = np.ascontiguousarray(samples[:, start : start + 1024])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, start
            for packet in audio.encode(frame):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)


if __name__ == "__main__":
    main(sys.argv[1])
