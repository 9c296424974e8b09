"""Video quality against synthetic ground truth: recurrent warm-up and edge-band refinement.

Reads ../shared/eval/ (licensed material: read for measuring only; only the figures leave this
script, into benchmarks/video_quality.md) and skips with a message when it is absent.

Clips are made as in benchmarks/temporal.py: the portrait people/0002 (its image as foreground
colour, its alpha as truth) over a still background with sensor noise, and walking over the
people-free background video; at 512x288 and 1280x720. Each variant runs the whole clip
through the same loop the pipeline runs (chunks of 1 frame on CPU, state carried, warm-up
before the first frame) and is scored on alpha: MAD and MSE x1e3 over all frames, MAD over the
first 5 frames (where warm-up acts), dtSSD x1e2 (temporal coherence), and the time per frame.

Usage: python benchmarks/video_quality.py [--frames 60] [--variants a,b,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import temporal  # noqa: E402  (the synthetic clips and the metrics)

from vidmatte import Matter  # noqa: E402

EVAL = temporal.EVAL
SIZES = [(512, 288), (1280, 720)]
FIRST = 5

Variant = Callable[[Matter, np.ndarray], np.ndarray]


def network(warmup: int, refine: dict | None = None, force: bool = False) -> Variant:
    """The pipeline's loop over one clip: prime with `warmup` passes, then frame by frame;
    with `refine`, the edge-band refinement on every frame's full-resolution alpha, where the
    network runs below full resolution as the pipeline does (or everywhere with `force`)."""

    def run(matter: Matter, frames: np.ndarray) -> np.ndarray:
        matter.reset()
        matter.prime(frames[0], warmup)
        out = []
        refiner = None
        if refine is not None and (force or matter.ratio_for(*frames.shape[1:3]) < 1):
            from vidmatte.edges import VideoEdgeRefiner

            refiner = VideoEdgeRefiner(**refine)
        for i in range(len(frames)):
            matte = matter(frames[i : i + 1])
            if refiner is not None:
                matte = refiner(matte, frames[i : i + 1])
            out.append(matte.alpha[:, 0].float().numpy())
        return np.concatenate(out)

    return run


def variants() -> dict[str, tuple[str, Variant]]:
    rows = {
        f"warmup{n}": (f"warm-up {n} passes" if n else "no warm-up (the reference behaviour)", network(n))
        for n in (0, 2, 4, 8, 16)
    }
    rows["refine-full"] = (
        "warm-up 4 + edge band where the network ratio < 1, full-resolution solve, strength 0.9",
        network(4, {"scale": 1.0}),
    )
    rows["refine-all"] = (
        "warm-up 4 + edge band at any ratio, full-resolution solve, strength 0.9",
        network(4, {"scale": 1.0}, force=True),
    )
    rows["refine-fresh"] = (
        "warm-up 4 + edge band at any ratio, full resolution, solved afresh every frame (strength 0)",
        network(4, {"scale": 1.0, "strength": 0}, force=True),
    )
    rows["refine"] = (
        "warm-up 4 + **`--refine`** (edge band where the network ratio < 1, half-resolution solve, "
        "correction steadied where still, strength 0.9)",
        network(4, {}),
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--variants", help="comma-separated subset of: " + ", ".join(variants()))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "video_quality.md")
    args = parser.parse_args()
    if not (EVAL / "people" / "0002.png").is_file():
        print(f"skipped: evaluation data not found at {EVAL}; nothing measured, {args.out} left as it is")
        return
    torch.set_num_threads(1)  # as each pipeline stage has on 2 cores
    chosen = variants()
    if args.variants:
        chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}
    matter = Matter(device="cpu")
    results: list[tuple[str, str, tuple[float, ...]]] = []
    started = time.perf_counter()
    for size in SIZES:
        temporal.SYNTH_SIZE = size
        for clip_name, (frames, truth) in temporal.synthetic_clips(args.frames).items():
            name = f"{clip_name}, {size[0]}x{size[1]}"
            for key, (label, run) in chosen.items():
                t0 = time.perf_counter()
                pred = run(matter, frames)
                ms = (time.perf_counter() - t0) / len(frames) * 1e3
                scores = (
                    temporal.mad(pred, truth),
                    temporal.mse(pred, truth),
                    temporal.mad(pred[:FIRST], truth[:FIRST]),
                    temporal.dtssd(pred, truth),
                    ms,
                )
                results.append((name, label, scores))
                print(f"{name} | {key} | " + " ".join(f"{v:.3f}" for v in scores), flush=True)
    write_report(args, results, time.perf_counter() - started)


def write_report(args: argparse.Namespace, results: list, elapsed: float) -> None:
    command = "python benchmarks/video_quality.py" + (f" --frames {args.frames}" if args.frames != 60 else "")
    if args.variants:
        command += f" --variants {args.variants}"
    lines = [
        "# Video quality against synthetic ground truth: warm-up and edge refinement, CPU",
        "",
        f"Command: `{command}` ({elapsed / 60:.1f} min).  ",
        f"Machine: {temporal.cpu_name()}, 1 torch thread, torch {torch.__version__}; no GPU.  ",
        f"Clips: {args.frames} frames each, made as in benchmarks/temporal.md (people/0002 over a still "
        "background with noise, and walking over the background video), at 512x288 and 1280x720.",
        "",
        "MAD, MSE x1e3 over all frames; MAD@5 over the first 5 frames; dtSSD x1e2; ms per frame "
        "(network + refinement, no decode/encode). Lower is better.",
        "",
        "| clip | variant | MAD | MSE | MAD@5 | dtSSD | ms/frame |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, label, (mad, mse, first, dt, ms) in results:
        lines.append(f"| {name} | {label} | {mad:.2f} | {mse:.2f} | {first:.2f} | {dt:.3f} | {ms:.0f} |")
    lines.append("")
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
