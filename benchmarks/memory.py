"""Peak memory of `vidmatte` on CPU: flat in clip length, and its level at 1080p.

Runs the CLI under GNU time (max RSS) on generated clips with audio: the same content at
1 minute and 4 minutes (at 320x180, so the long run finishes in minutes), and a 1080p clip.
Writes benchmarks/memory.md.

Usage: python benchmarks/memory.py [--short 60] [--long 240] [--hd-frames 90]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

from speed import make_clip  # noqa: E402
from temporal import cpu_name  # noqa: E402


def peak(clip: Path, out: Path, *extra: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "vidmatte", str(clip), "-o", str(out), "-y", "-q", *extra],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return int(proc.stderr.strip().splitlines()[-1]) / 1024, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--short", type=int, default=60, help="seconds")
    p.add_argument("--long", type=int, default=240, help="seconds")
    p.add_argument("--hd-frames", type=int, default=90)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vidmatte-mem-"))
    rows = []
    for seconds in (args.short, args.long):
        clip = work / f"clip{seconds}.mp4"
        make_clip(clip, seconds * 30, 320, 180)
        mb, wall = peak(clip, work / "out.webm")
        rows.append((f"320x180, {seconds} s ({seconds * 30} frames) -> webm", mb, wall))
        print(rows[-1], flush=True)
    hd = work / "hd.mp4"
    make_clip(hd, args.hd_frames, 1920, 1080)
    for form in ("out.webm", "out.mp4"):
        mb, wall = peak(hd, work / form)
        rows.append((f"1920x1080, {args.hd_frames} frames -> {form.split('.')[1]}", mb, wall))
        print(rows[-1], flush=True)
    growth = rows[1][1] / rows[0][1] - 1
    text = "\n".join(
        [
            "# Peak memory (CPU)",
            "",
            f"Machine: {cpu_name()} ({platform.machine()}), Python {platform.python_version()}. Command: "
            f"`python benchmarks/memory.py --short {args.short} --long {args.long} --hd-frames {args.hd_frames}`. "
            "Peak = max RSS of the whole `vidmatte` process (GNU time), auto downsample ratio.",
            "",
            "| run | peak RSS (MB) | wall (s) |",
            "| --- | ---: | ---: |",
            *[f"| {label} | {mb:.0f} | {wall:.0f} |" for label, mb, wall in rows],
            "",
            f"Growth from the {args.short} s clip to the {args.long} s clip: {growth * 100:+.1f}% (target within 10%). "
            f"1080p target: at most 1.5 GB.",
            "",
        ]
    )
    (REPO / "benchmarks" / "memory.md").write_text(text)
    print(text)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
