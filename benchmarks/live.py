"""Live preview speed: achieved fps and capture-to-display latency of `run_live` on this machine.

The camera is a generated clip (a pan over the bundled sample portrait) played in real time at
30 fps by `CameraSource`, exactly as a webcam delivers frames: the loop always takes the newest
frame and drops the ones it had no time for. Headless (no window), but the view is rendered
every frame (composite over the checkerboard), so the render cost is included; the "+ webm"
rows also record the matted stream (VP9 with alpha) on the encoder thread.

With `--busy 0,1` (the default) every row is also run beside one other busy process (a Python
loop spinning on a core), as a streamer's game or a video call would be: the thread tuner
(`vidmatte.tuning`) has to notice it.

Results go to benchmarks/live.md.

Usage: python benchmarks/live.py [--seconds 8] [--sizes 640x480,1280x720] [--no-record] [--busy 0,1]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from temporal import command_line, cpu_name  # noqa: E402  (one helper for all benchmark headers)


def make_camera_clip(path: Path, width: int, height: int, seconds: float, rate: int = 30) -> Path:
    """A `seconds`-long pan over the sample portrait at `rate` fps (H.264, near-lossless)."""
    import av
    import cv2
    import numpy as np

    image = cv2.cvtColor(cv2.imread(str(REPO / "samples" / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    frames = int(seconds * rate)
    side = max(width, height) + frames
    big = cv2.resize(image, (side, side), interpolation=cv2.INTER_CUBIC)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(rate), options={"crf": "18", "preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            x, y = i * (side - width) // frames, (i // 2) * (side - height) // frames
            crop = np.ascontiguousarray(big[y : y + height, x : x + width])
            out.mux(stream.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
        out.mux(stream.encode(None))
    return path


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy(processes: int) -> Iterator[None]:
    """`processes` other processes, each keeping a core busy, while the block runs."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(processes)]
    for p in spinners:
        p.start()
    try:
        yield
    finally:
        for p in spinners:
            p.terminate()
            p.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each run (the camera clip)")
    parser.add_argument("--sizes", default="640x480,1280x720")
    parser.add_argument("--no-record", action="store_true", help="skip the rows that also record to .webm")
    parser.add_argument("--busy", default="0,1", help="busy processes beside each row, e.g. 0,1")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "live.md")
    args = parser.parse_args()

    import torch

    from vidmatte import Matter
    from vidmatte.io.camera import CameraSource
    from vidmatte.live import run_live

    sizes = [tuple(int(n) for n in s.split("x")) for s in args.sizes.split(",")]
    loads = [int(n) for n in args.busy.split(",")]
    matter = Matter(device="cpu")  # ratio "auto": run_live picks the live ratio
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in sizes:
            clip = make_camera_clip(Path(tmp) / f"camera_{width}x{height}.mp4", width, height, args.seconds)
            for record, others in itertools.product([False] if args.no_record else [False, True], loads):
                # warm up at this size (first calls allocate), then measure a fresh live run
                run_live(CameraSource(clip, realtime=False), engine=matter, window=False, max_frames=3)
                output = Path(tmp) / "rec.webm" if record else None
                with busy(others):
                    stats = run_live(
                        CameraSource(clip),
                        engine=matter,
                        window=False,
                        background="checker",
                        output=output,
                        overwrite=True,
                    )
                name = f"{width}x{height}" + (" + webm" if record else "")
                if others:
                    name += f", {others} busy process" + ("es" if others > 1 else "")
                row = (name, stats)
                rows.append(row)
                print(f"{row[0]}: ratio {stats.ratio:.3g}, {stats.summary()}", flush=True)

    command = command_line("live.py")
    lines = [
        "# Live preview: achieved fps and capture-to-display latency, CPU",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs while measured), "
        f"{platform.machine()}, Python {platform.python_version()}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads). **No GPU here**: these are CPU figures only (on a GPU, "
        "`live_downsample_ratio` gives the network 512 px instead of 320; not measured).",
        "",
        f"Command: `{command}` ({time.strftime('%Y-%m-%d')}).",
        "",
        f"Camera: a generated {args.seconds:g} s clip (pan over samples/astronaut.jpg) played by `CameraSource` "
        "in real time at 30 fps, so frames arrive like a webcam's and the loop drops the ones it has no "
        "time for. Headless (`window=False`), but every frame's view is rendered (composite over the "
        'checkerboard), so the render cost is included; "+ webm" rows also record VP9+alpha on the '
        "encoder thread. Network ratio: `live_downsample_ratio` (network input 320 px on the long side on "
        "a CPU). Latency = capture time (when the frame became available) to the rendered view being "
        "handed to the display/recorder; a real camera adds its own exposure and USB delay before that.",
        "",
        "Threads: torch's thread count at the end of the row, as the tuner left it (and how often it changed).",
        "",
        "| resolution | processing ratio (network input) | achieved fps | latency mean (ms) | latency p95 (ms) "
        "| dropped | threads (changes) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, stats in rows:
        w, h = stats.width, stats.height
        net = f"{round(w * stats.ratio)}x{round(h * stats.ratio)}"
        lines.append(
            f"| {name} | {stats.ratio:.3g} ({net}) | {stats.fps:.1f} | {stats.latency_mean_ms:.0f} "
            f"| {stats.latency_p95_ms:.0f} | {stats.dropped_percent:.0f}% | {stats.threads} ({stats.thread_switches}) |"
        )
    lines.append("")
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
