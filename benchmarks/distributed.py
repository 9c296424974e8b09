"""Scale-out on Ray (issue 14): seams, exactness and scaling, sequential vs distributed, side by side.

    PYTHONPATH=. python benchmarks/distributed.py [--scale-seconds 10] [--short-frames 40] > benchmarks/distributed.md

Reads clips from ../shared/eval/ (never copied into the repo; skipped with a message when absent).
- Seams: each clip matted sequentially and in segments (2 workers, a short --segment-frames so the
  clip has several seams, preroll 32): mean alpha difference overall and on the frames next to
  each seam, dtSSD across seams against the clip's mean dtSSD, and on a synthetic clip with ground
  truth (a person with alpha composited over a background, moving), MAD of both runs.
- Exactness: frame count and every timestamp of the distributed output against the sequential one,
  audio present, for webm, mov, PNG folders and mp4.
- Scaling: a 720p clip (a real clip played forward and back to the asked length) and a folder of 8
  short clips, single process vs 1 and 2 Ray workers, wall time per case.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

REPO = Path(__file__).resolve().parent.parent
EVAL = REPO.parent / "shared" / "eval"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from temporal import cpu_name  # noqa: E402  (one helper for all benchmark headers)

from vidmatte.api import matte_path  # noqa: E402
from vidmatte.distributed.driver import RayPool, Settings, matte_clip, matte_many  # noqa: E402
from vidmatte.distributed.split import default_segment_frames, split_clip  # noqa: E402
from vidmatte.engine import MattingEngine  # noqa: E402
from vidmatte.options import MatteOptions  # noqa: E402


def write_clip(path: Path, frames: list[np.ndarray], rate: Fraction) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "crf": "16"})
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def decode(path: Path, limit: int | None = None) -> tuple[list[np.ndarray], Fraction]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = Fraction(stream.average_rate or 30)
        frames = []
        for frame in container.decode(stream):
            frames.append(frame.to_ndarray(format="rgb24"))
            if limit and len(frames) >= limit:
                break
    return frames, rate


def synthetic_gt(folder: Path, count: int = 200) -> tuple[Path, np.ndarray]:
    """A portrait with ground-truth alpha (people/0002) sliding over a background plate."""
    fg = cv2.cvtColor(cv2.imread(str(EVAL / "people" / "0002.png")), cv2.COLOR_BGR2RGB)
    alpha = cv2.imread(str(EVAL / "people" / "0002_alpha.png"), cv2.IMREAD_GRAYSCALE)
    bg = cv2.cvtColor(cv2.imread(str(EVAL / "backgrounds" / "bgm1_0001_back.png")), cv2.COLOR_BGR2RGB)
    h, w = 360, 640
    scale = h / fg.shape[0]
    fg = cv2.resize(fg, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, (fg.shape[1], fg.shape[0]), interpolation=cv2.INTER_AREA)
    bg = cv2.resize(bg, (w + 200, h), interpolation=cv2.INTER_AREA)
    frames, gts = [], []
    for t in range(count):
        x = int(60 + 1.5 * t)  # the person walks right, the camera pans left
        plate = bg[:, t : t + w].astype(np.float32)
        a = np.zeros((h, w), np.float32)
        f = np.zeros((h, w, 3), np.float32)
        fw = min(fg.shape[1], w - x)
        a[:, x : x + fw] = alpha[:, :fw] / 255.0
        f[:, x : x + fw] = fg[:, :fw]
        frames.append(np.clip(f * a[..., None] + plate * (1 - a[..., None]), 0, 255).astype(np.uint8))
        gts.append(a)
    return write_clip(folder / "synthetic_gt.mp4", frames, Fraction(25)), np.stack(gts)


def alphas(folder: Path) -> np.ndarray:
    return (
        np.stack([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("*.png"))]).astype(np.float64)
        / 255
    )


def dtssd(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per frame pair t-1 -> t: sqrt(mean(((a_t - a_t-1) - (ref_t - ref_t-1))^2)) x 1e2."""
    da, dr = np.diff(a, axis=0), np.diff(ref, axis=0)
    return np.sqrt(((da - dr) ** 2).reshape(len(da), -1).mean(axis=1)) * 1e2


def seams(pool: RayPool, engine: MattingEngine, work: Path) -> list[str]:
    rows = [
        "| clip | frames | segment frames (preroll) | seams | mean alpha diff (all) | max on seam frames | "
        "change across seams / clip mean: seq, dist | dtSSD vs GT across seams / clip mean: seq, dist | "
        "MAD vs GT seq | MAD vs GT dist |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cases: list[tuple[str, Path, np.ndarray | None, int]] = []
    gt_clip, gt = synthetic_gt(work)
    cases.append(("synthetic GT (people/0002 over bgm1 plate, 640x360)", gt_clip, gt, 70))
    for name, limit, seg, loop in (
        ("matanyone_test-sample1.mp4", None, 78, True),
        ("intel_asl_book.mkv", 150, 50, False),
        ("intel_one-by-one-person-detection.mp4", 400, 130, False),
    ):
        source = EVAL / "videos" / name
        label = name
        if limit or loop:
            frames, rate = decode(source, limit)
            if loop:  # forward, back, forward: seams with a full preroll on a short clip, no hard cut
                frames = frames + frames[-2:0:-1] + frames
                label = f"{name} played forward, back, forward"
            source = write_clip(work / f"{Path(name).stem}_{limit}_{loop}.mp4", frames, rate)
        cases.append((label, source, None, seg))
    for label, clip, truth, seg in cases:
        options = MatteOptions(device="cpu", output_type="alpha", overwrite=True)
        seq_dir, dist_dir = work / f"{clip.stem}_seq", work / f"{clip.stem}_dist"
        matte_path(clip, f"{seq_dir}/", options, engine=engine)
        matte_clip(clip, f"{dist_dir}/", options=options.with_(workers=2, segment_frames=seg), pool=pool)
        a, b = alphas(seq_dir), alphas(dist_dir)
        n = len(a)
        plan = split_clip(n, [], segment_frames=seg, preroll=options.preroll)  # no hard cut: every seam mid-shot
        cuts = [s.start for s in plan[1:]]
        prerolls = "/".join(str(s.preroll) for s in plan[1:])
        per_frame = np.abs(a - b).reshape(n, -1).mean(axis=1)
        near = sorted({i for c in cuts for i in (c - 1, c, c + 1) if 0 <= i < n})

        # a seam should not change the picture more than a frame usually does: the frame-to-frame
        # change (RMS of a_t - a_t-1) across the seams over its clip mean, for both runs; and
        # with ground truth the standard dtSSD the same way
        def across(d: np.ndarray, cuts: list[int] = cuts) -> str:
            return f"{np.mean([d[c - 1] for c in cuts]) / max(float(d.mean()), 1e-12):.2f}"

        change = [np.sqrt((np.diff(x, axis=0) ** 2).reshape(n - 1, -1).mean(axis=1)) for x in (a, b)]
        change_cell = f"{across(change[0])}, {across(change[1])}"
        mad_seq = mad_dist = dt_cell = "-"
        if truth is not None:
            mad_seq = f"{np.abs(a - truth[:n]).mean() * 1e3:.2f}"
            mad_dist = f"{np.abs(b - truth[:n]).mean() * 1e3:.2f}"
            dt_cell = f"{across(dtssd(a, truth[:n]))}, {across(dtssd(b, truth[:n]))}"
        rows.append(
            f"| {label} | {n} | {seg} ({prerolls}) | {len(cuts)} | {per_frame.mean() * 1e3:.2f}e-3 | "
            f"{per_frame[near].max() * 1e3:.2f}e-3 | {change_cell} | {dt_cell} | {mad_seq} | {mad_dist} |"
        )
        print(f"  seams {label}: done", file=sys.stderr)
    return rows


def preroll_table(engine: MattingEngine) -> list[str]:
    """How fast a state started mid-shot converges to the sequential run's: the network alone
    (warm-up as in a run), started `p` frames before a frame, against the run from frame 0."""
    rows = [
        "| clip | start frame | preroll | mean alpha diff, first frame | first 5 frames | next 26 frames |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    warmup = MatteOptions().warmup

    def run(frames: np.ndarray, start: int) -> np.ndarray:
        engine.reset()
        engine.prime(frames[start], warmup)
        return np.concatenate([engine(frames[i : i + 4]).alpha.numpy()[:, 0] for i in range(start, len(frames), 4)])

    for name, start in (
        ("matanyone_test-sample1.mp4", 52),
        ("intel_asl_again.mkv", 70),
        ("intel_one-by-one-person-detection.mp4", 300),
    ):
        frames = np.stack(decode(EVAL / "videos" / name, start + 27)[0])
        sequential = run(frames, 0)[start:]
        for p in (0, 16, 32, 48, 64):
            if p > start:
                continue
            d = np.abs(run(frames, start - p)[p:] - sequential).reshape(len(sequential), -1).mean(axis=1)
            rows.append(
                f"| {name} | {start} | {p} | {d[0] * 1e3:.2f}e-3 | {d[:5].mean() * 1e3:.2f}e-3 | {d.mean() * 1e3:.2f}e-3 |"
            )
        print(f"  preroll {name}: done", file=sys.stderr)
    return rows


def facts(path: Path) -> tuple[int, list[int], bool]:
    if path.is_dir():
        return len(list(path.glob("*.png"))), [], False
    with av.open(str(path)) as container:
        pts = [f.pts for f in container.decode(video=0)]
        return len(pts), pts, bool(container.streams.audio)


def exactness(pool: RayPool, engine: MattingEngine, work: Path) -> list[str]:
    rows = [
        "| form | frames seq / dist | timestamps equal | audio seq / dist | join time | dist total |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    clip = EVAL / "videos" / "matanyone_test-sample1.mp4"
    for name in ("x.webm", "x.mov", "frames/", "x.mp4"):
        folder = work / f"exact_{name.strip('/').replace('.', '_')}"
        folder.mkdir()
        seq, dist = folder / ("seq" + name[1:]), folder / ("dist" + name[1:])
        seq_spec = f"{folder}/seq/" if name.endswith("/") else str(seq)
        dist_spec = f"{folder}/dist/" if name.endswith("/") else str(dist)
        matte_path(clip, seq_spec, MatteOptions(device="cpu"), engine=engine)
        from vidmatte.distributed import work as work_module

        joined = []
        original = work_module.join_segments

        def timed(*args, _join=original, _times=joined, **kwargs):
            start = time.perf_counter()
            _join(*args, **kwargs)
            _times.append(time.perf_counter() - start)

        import vidmatte.distributed.driver as driver_module

        driver_module.join_segments = timed  # type: ignore[assignment]
        start = time.perf_counter()
        try:
            matte_clip(clip, dist_spec, options=MatteOptions(device="cpu", workers=2, segment_frames=26), pool=pool)
        finally:
            driver_module.join_segments = original
        total = time.perf_counter() - start
        a, b = facts(Path(seq_spec)), facts(Path(dist_spec))
        rows.append(
            f"| {name} | {a[0]} / {b[0]} | {a[1] == b[1]} | {a[2]} / {b[2]} | {sum(joined):.2f} s | {total:.1f} s |"
        )
        print(f"  exactness {name}: done", file=sys.stderr)
    return rows


def scaling(engine: MattingEngine, work: Path, seconds: float, short_frames: int) -> list[str]:
    frames, rate = decode(EVAL / "videos" / "matanyone_test-sample1.mp4")
    target = int(seconds * float(rate))
    loop = frames + frames[-2:0:-1]  # forward and back: no hard cut at the joins
    long_clip = write_clip(work / "long720.mp4", [loop[i % len(loop)] for i in range(target)], rate)
    shoot = work / "shoot"
    shoot.mkdir()
    short = [
        write_clip(shoot / f"s{i}.mp4", [loop[(i * 7 + k) % len(loop)] for k in range(short_frames)], rate)
        for i in range(8)
    ]
    rows = [
        "| case | frames | single process | 1 Ray worker | 2 Ray workers | 1 worker vs single | 2 workers vs single |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    results: dict[str, dict[str, float]] = {"clip": {}, "folder": {}}
    start = time.perf_counter()
    matte_path(long_clip, work / "long_seq.webm", MatteOptions(device="cpu", overwrite=True), engine=engine)
    results["clip"]["single"] = time.perf_counter() - start
    out = work / "shoot_seq"
    out.mkdir()
    start = time.perf_counter()
    for clip in short:
        matte_path(clip, out / f"{clip.stem}.webm", MatteOptions(device="cpu", overwrite=True), engine=engine)
    results["folder"]["single"] = time.perf_counter() - start
    startup = {}
    for workers in (1, 2):
        t0 = time.perf_counter()
        with RayPool(Settings(workers=workers), MatteOptions(device="cpu")) as pool:
            startup[workers] = time.perf_counter() - t0
            options = MatteOptions(device="cpu", overwrite=True, workers=workers)
            start = time.perf_counter()
            matte_clip(long_clip, work / f"long_{workers}.webm", options=options, pool=pool)
            results["clip"][f"w{workers}"] = time.perf_counter() - start
            out = work / f"shoot_{workers}"
            out.mkdir()
            start = time.perf_counter()
            matte_many(short, out, workers=workers, options=options, pool=pool)
            results["folder"][f"w{workers}"] = time.perf_counter() - start
        print(f"  scaling {workers} workers: done", file=sys.stderr)
    plan = split_clip(target, [], segment_frames=default_segment_frames(rate))
    extra = sum(s.preroll for s in plan) / target
    for case, label, count in (
        ("clip", f"720p clip, {seconds:g} s ({len(plan)} segments)", target),
        ("folder", f"folder of 8 clips x {short_frames} frames (720p)", 8 * short_frames),
    ):
        r = results[case]
        rows.append(
            f"| {label} | {count} | {r['single']:.1f} s ({count / r['single']:.1f} f/s) | "
            f"{r['w1']:.1f} s ({count / r['w1']:.1f} f/s) | {r['w2']:.1f} s ({count / r['w2']:.1f} f/s) | "
            f"{r['single'] / r['w1']:.2f}x | {r['single'] / r['w2']:.2f}x |"
        )
    rows.append("")
    rows.append(
        f"Ray start + actors (model loaded once each), outside the times above: "
        f"{startup[1]:.1f} s for 1 worker, {startup[2]:.1f} s for 2. Preroll: {extra * 100:.1f}% extra "
        f"frames run on the 720p clip ({MatteOptions().preroll} per segment start inside a shot)."
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale-seconds", type=float, default=10.0)
    parser.add_argument("--short-frames", type=int, default=40)
    parser.add_argument("--parts", default="preroll,seams,exactness,scaling", help="which sections to run")
    args = parser.parse_args()
    if not (EVAL / "videos").is_dir():
        print(f"skipped: {EVAL} is absent (the evaluation clips are not part of the repository)")
        return
    import ray

    parts = set(args.parts.split(","))

    engine = MattingEngine(device="cpu")
    lines = [
        "# Scale-out on Ray: seams, exactness, scaling",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other work while measured); torch CPU.",
        "",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        try:
            with RayPool(Settings(workers=2), MatteOptions(device="cpu")) as pool:
                if "preroll" in parts:
                    lines += ["## How much preroll: a state started mid-shot against the sequential run", ""]
                    lines += [*preroll_table(engine), ""]
                if "seams" in parts:
                    lines += [f"## Seams (2 workers, preroll {MatteOptions().preroll})", ""]
                    lines += [*seams(pool, engine, work), ""]
                if "exactness" in parts:
                    lines += ["## Exactness (matanyone_test-sample1.mp4, 79 frames 720p with audio, 3 segments)", ""]
                    lines += [*exactness(pool, engine, work), ""]
            if "scaling" in parts:
                lines += ["## Scaling", "", *scaling(engine, work, args.scale_seconds, args.short_frames), ""]
        finally:
            ray.shutdown()
    lines += [
        "GPU rows (1/2/4 workers sharing the GPU) and 16-core rows (1/2/4/8 CPU workers): not measured "
        "(no device lent to this session).",
    ]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
