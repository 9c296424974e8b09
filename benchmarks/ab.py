"""A/B: the same command-line job from two checkouts of vidmatte, interleaved, on one generated clip.

For changes that must not cost speed: each round runs A then B (then B then A on the next round,
so neither side always runs on a warmer machine), whole-process wall time, start-up included.
Results go to stdout as a markdown table (median of the rounds and the B/A ratio per job).

Usage: python benchmarks/ab.py --baseline ../old-checkout [--frames 150] [--rounds 3]
           [--jobs mp4@auto,mp4@0.25,webm@auto]
A job is FORM@RATIO: an output form (mp4 webm mov png) and a downsample ratio (auto or a number).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from speed import make_clip  # noqa: E402
from temporal import cpu_name  # noqa: E402

OUTPUTS = {"mp4": "out.mp4", "webm": "out.webm", "mov": "out.mov", "png": "frames/"}


def run_cli(checkout: Path, clip: Path, form: str, ratio: str, work: Path) -> float:
    """Seconds for `python -m vidmatte clip -o OUT` with `checkout` on the path."""
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    cmd = [
        sys.executable,
        "-m",
        "vidmatte",
        str(clip),
        "-o",
        f"{work}/{OUTPUTS[form]}",
        "-y",
        "-q",
        "--downsample-ratio",
        ratio,
    ]  # a string: a folder's trailing '/' survives
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, cwd=work, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{checkout}: {' '.join(cmd)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout (A); this one is B")
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--jobs", default="mp4@auto,mp4@0.25,webm@auto")
    args = parser.parse_args()
    jobs = [tuple(job.split("@")) for job in args.jobs.split(",")]
    sides = {"A": args.baseline.resolve(), "B": REPO}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        make_clip(clip, args.frames)
        times: dict[tuple[str, str, str], list[float]] = {}
        for round_ in range(args.rounds):
            order = "AB" if round_ % 2 == 0 else "BA"
            for form, ratio in jobs:
                for side in order:
                    seconds = run_cli(sides[side], clip, form, ratio, work)
                    times.setdefault((side, form, ratio), []).append(seconds)
                    print(f"round {round_ + 1} {side} {form}@{ratio}: {seconds:.2f} s", flush=True)
    print()
    print(
        f"Machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} cores. A = {sides['A']}, B = {sides['B']}. "
        f"{args.frames}-frame 1280x720 clip with AAC audio; whole-process wall time, medians of {args.rounds} "
        f"interleaved rounds. Command: `python benchmarks/ab.py --baseline A --frames {args.frames} "
        f"--rounds {args.rounds} --jobs {args.jobs}`."
    )
    print()
    print("| job | A (s) | B (s) | B / A |")
    print("| --- | ---: | ---: | ---: |")
    for form, ratio in jobs:
        a = statistics.median(times[("A", form, ratio)])
        b = statistics.median(times[("B", form, ratio)])
        print(f"| {form}, ratio {ratio} | {a:.2f} | {b:.2f} | {b / a:.3f} |")


if __name__ == "__main__":
    main()
