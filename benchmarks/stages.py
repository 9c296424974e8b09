"""Where a frame's CPU time goes: each pipeline stage timed alone, one thread, as the pipeline runs it.

One process, one 720p clip (made from the bundled sample image), stages run in interleaved
rounds (A B C ... A B C ...) so machine noise hits them alike; the median round is reported.
The full-resolution half is timed both ways: the fused pass the pipeline uses on CPU, and
`Matter.refine` + `compose.render`, which it replaces. Results go to benchmarks/stages.md.

Usage: python benchmarks/stages.py [--frames 24] [--ratio 0.25] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import cv2
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from speed import make_clip  # noqa: E402
from temporal import cpu_name  # noqa: E402

from vidmatte import Matter  # noqa: E402
from vidmatte.compose import make_background, render  # noqa: E402
from vidmatte.io import VideoReader, open_writer  # noqa: E402
from vidmatte.pipeline.fused import FusedRenderer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--ratio", type=float, default=0.25)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)  # the pipeline gives each stage one core of two
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, args.frames)
        matter = Matter(device="cpu", downsample_ratio=args.ratio)
        background = make_background("green", 1280, 720)
        fused = FusedRenderer(matter, "composite", background)
        with VideoReader(clip) as reader:
            frames = [f.rgb for f in reader]
        features = [matter.encode(f) for f in frames]
        coarse = []
        state = (None,) * 4
        for f in features:
            c, state = matter.step_coarse(f, state)
            coarse.append(c)
        pictures = [fused(c, f[None])[0] for c, f in zip(coarse, frames)]

        def decode() -> None:
            with VideoReader(clip) as reader:
                for _ in reader:
                    pass

        def encode() -> None:
            for f in frames:
                matter.encode(f)

        def recurrent() -> None:
            s: tuple = (None,) * 4
            for f in features:
                _, *s = matter.model.decode(f, *s)  # all of it, on one thread

        def recurrent_thread() -> None:
            s = (None,) * 4
            for f in features:
                _, s = matter.step_coarse(f, s)  # its memoryless last block is left to the reader

        def full_fused() -> None:
            for c, f in zip(coarse, frames):
                fused(c, f[None])

        def full_two_step() -> None:
            for c, f in zip(coarse, frames):
                render(matter.refine(c), "composite", f[None], background)

        def write_h264() -> None:
            with open_writer(
                Path(tmp) / "out.mp4",
                width=1280,
                height=720,
                frame_rate=Fraction(30),
                time_base=Fraction(1, 30),
                alpha=False,
                overwrite=True,
            ) as writer:
                for i, picture in enumerate(pictures):
                    writer.write(picture, i)

        stages = {
            "decode + RGB conversion (PyAV)": decode,
            "stateless front: resize, encoder, LR-ASPP": encode,
            "recurrent decoder + projection": recurrent,
            "of which on the recurrent thread (the blocks with memory)": recurrent_thread,
            "full-resolution half, fused (pipeline on CPU)": full_fused,
            "full-resolution half, refine + render": full_two_step,
            "H.264 write (libx264 veryfast)": write_h264,
        }
        times: dict[str, list[float]] = {name: [] for name in stages}
        with torch.inference_mode():
            for fn in stages.values():
                fn()  # warm-up
            for _ in range(args.rounds):
                for name, fn in stages.items():
                    start = time.perf_counter()
                    fn()
                    times[name].append((time.perf_counter() - start) / len(frames) * 1000)

    ms = {name: statistics.median(t) for name, t in times.items()}
    lines = [
        f"# Per-stage CPU time, 1280x720, downsample ratio {args.ratio}, one thread per stage",
        "",
        f"Machine: {cpu_name()}, {platform.machine()}, torch {torch.__version__}. "
        f"Command: `python benchmarks/stages.py --frames {args.frames} --ratio {args.ratio} --rounds {args.rounds}`. "
        f"{args.frames} frames, {args.rounds} interleaved rounds, median ms per frame.",
        "",
        "| stage | ms/frame |",
        "| --- | ---: |",
        *[f"| {name} | {value:.1f} |" for name, value in ms.items()],
        "",
        f"Fused full-resolution pass vs refine + render: "
        f"{ms['full-resolution half, refine + render'] / ms['full-resolution half, fused (pipeline on CPU)']:.2f}x "
        "faster (the two-step row swings between ~27 and ~55 ms from one process to the next, as glibc "
        "serves its fresh full-size float temporaries from recycled or from newly mapped, page-faulting "
        "memory; the fused pass reuses its buffers). Times are wall time on the calling thread: the "
        "codecs' own threads add CPU time not shown here. The pipeline runs decode + front, the "
        "recurrent decoder's blocks with memory, and the rest of the decoder (its last block and the "
        "projection) with the full-resolution half + writer on three threads sharing the cores "
        "(benchmarks/speed.md).",
        "",
    ]
    (REPO / "benchmarks" / "stages.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
