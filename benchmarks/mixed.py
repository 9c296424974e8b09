"""Mixed precision on CPU (`--precision mixed`): what bf16 convolutions cost in alpha, and gain in time.

Quality: the whole network, state carried frame by frame as the pipeline runs it, in fp32 and in
mixed precision, on synthetic clips with ground truth (people from ../shared/eval composited
over still and moving backgrounds, as in benchmarks/temporal.md) and on the real clips of
../shared/eval/videos; per clip: the difference to fp32 (mean, 99.9th percentile, max) and
MAD / dtSSD against the truth both ways. Time: the front and the recurrent decoder at the
network's real shape (720p at ratio 0.25, one thread, alternated rounds) and, with --cli-rounds,
the whole command line on a 150-frame 720p clip at `--precision fp32` and `mixed`, alternated.

Reads ../shared/eval/ for measuring only (only figures leave this script, into
benchmarks/mixed.md); `--crops DIR` also writes the worst crop of each clip (fp32, mixed, and
their difference x20) for looking at, outside the repository.

Usage: python benchmarks/mixed.py [--frames 40] [--cli-rounds 3] [--crops /tmp/mixed-crops]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import temporal  # noqa: E402  (the synthetic clips, the real clips and the metrics)
from speed import make_clip  # noqa: E402

from vidmatte import Matter  # noqa: E402
from vidmatte.io import VideoReader  # noqa: E402
from vidmatte.model.mixed import cpu_has_native_bf16  # noqa: E402

SIZES = [(512, 288), (1280, 720)]


def clips(frames: int) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{name: (frames, truth or None)}: synthetic clips at two sizes, hard ones, real ones."""
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for size in SIZES:
        temporal.SYNTH_SIZE = size
        for name, clip in temporal.synthetic_clips(frames).items():
            out[f"{name}, {size[0]}x{size[1]}"] = clip
    temporal.SYNTH_SIZE = SIZES[0]
    for name, clip in temporal.hard_clips(frames).items():
        out[f"{name}, {SIZES[0][0]}x{SIZES[0][1]}"] = clip
    for name in temporal.REAL_CLIPS:
        path = temporal.EVAL / "videos" / name
        out[f"real: {name}"] = (
            temporal.read_frames(path, frames, longest=1280, start=temporal.REAL_START.get(name, 0)),
            None,
        )
    return out


def run(matter: Matter, frames: np.ndarray) -> np.ndarray:
    """Alpha `(T,H,W)` of one clip, frame by frame from an empty state (the CPU pipeline's loop)."""
    with torch.inference_mode():
        return temporal.alphas(temporal.run_network(matter, frames, chunk=1))


def worst_crop(a: np.ndarray, b: np.ndarray, size: int = 96) -> tuple[int, int, int]:
    """(frame, y, x) of the `size` square where fp32 and mixed differ most."""
    d = np.abs(a - b)
    t = int(d.reshape(len(d), -1).max(1).argmax())
    y, x = np.unravel_index(int(d[t].argmax()), d[t].shape)
    h, w = d[t].shape
    return t, int(np.clip(y - size // 2, 0, max(0, h - size))), int(np.clip(x - size // 2, 0, max(0, w - size)))


def save_crop(folder: Path, name: str, a: np.ndarray, b: np.ndarray, size: int = 96) -> None:
    t, y, x = worst_crop(a, b, size)
    crop = [im[t, y : y + size, x : x + size] for im in (a, b, np.clip(np.abs(a - b) * 20, 0, 1))]
    strip = np.concatenate([np.kron(c, np.ones((4, 4))) for c in crop], 1)  # 4x, nearest: pixels stay pixels
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(
        str(folder / (name.replace("/", "_").replace(" ", "_").replace(",", "") + ".png")),
        (strip * 255).round().astype(np.uint8),
    )


def network_ms(rounds: int) -> dict[str, dict[str, float]]:
    """Median ms a frame, one thread, 720p at ratio 0.25, of the front (resize, encoder, LR-ASPP;
    4 frames a call, as the CPU pipeline runs it) and of the recurrent decoder (blocks, last
    block, projection): {"front" | "decoder": {"fp32": ms, "mixed": ms}}."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, 24)
        matter = Matter(device="cpu", precision="fp32", downsample_ratio=0.25)
        with VideoReader(clip) as reader:
            frames = [f.rgb for f in reader]
    batches = [np.stack(frames[i : i + 4]) for i in range(0, len(frames), 4)]
    times: dict[str, dict[str, list[float]]] = {
        "front": {"fp32": [], "mixed": []},
        "decoder": {"fp32": [], "mixed": []},
    }
    with torch.inference_mode():
        features = [matter.encode(f) for f in frames]

        def encode() -> None:
            for batch in batches:
                matter.encode(batch)

        def decode() -> None:
            state: tuple = (None,) * 4
            for f in features:
                _, *state = matter.model.decode(f, *state)

        for _ in range(rounds):
            for mode in ("fp32", "mixed"):
                matter.model.use_conv_operands(torch.bfloat16 if mode == "mixed" else None)
                for part, run_part in (("front", encode), ("decoder", decode)):
                    run_part()  # warm-up: oneDNN builds its kernels for the new types
                    start = time.perf_counter()
                    run_part()
                    times[part][mode].append((time.perf_counter() - start) / len(frames) * 1000)
    torch.set_num_threads(2)
    return {part: {mode: statistics.median(t) for mode, t in by_mode.items()} for part, by_mode in times.items()}


def cli_seconds(rounds: int) -> dict[str, list[float]]:
    """Whole-process wall time of the command line on a 150-frame 720p clip, fp32 and mixed alternated."""
    seconds: dict[str, list[float]] = {"fp32": [], "mixed": []}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        make_clip(clip, 150)
        for r in range(rounds):
            for mode in list(seconds)[:: 1 if r % 2 == 0 else -1]:
                cmd = [sys.executable, "-m", "vidmatte", str(clip), "-o", f"{tmp}/{mode}.mp4", "-y", "-q"]
                start = time.perf_counter()
                subprocess.run([*cmd, "--downsample-ratio", "0.25", "--precision", mode], check=True)
                seconds[mode].append(time.perf_counter() - start)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=5, help="alternated rounds of the network timing")
    parser.add_argument("--cli-rounds", type=int, default=3, help="alternated whole-process runs (0: none)")
    parser.add_argument("--crops", type=Path, help="write the worst crop of each clip here (outside the repo)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "mixed.md")
    args = parser.parse_args()
    if not (temporal.EVAL / "people" / "0002.png").is_file():
        print(f"skipped: evaluation data not found at {temporal.EVAL}; nothing measured, {args.out} left as it is")
        return
    started = time.perf_counter()
    torch.set_num_threads(2)
    matter = Matter(device="cpu", precision="fp32")
    rows = []
    for name, (frames, truth) in clips(args.frames).items():
        matter.model.use_conv_operands(None)
        fp32 = run(matter, frames)
        matter.model.use_conv_operands(torch.bfloat16)
        mixed = run(matter, frames)
        d = np.abs(fp32 - mixed)
        row = [name, f"{d.mean() * 1e3:.3f}", f"{np.percentile(d, 99.9):.4f}", f"{d.max():.3f}"]
        if truth is None:
            row += ["-", "-"]
        else:
            row += [
                f"{temporal.mad(fp32, truth):.3f} -> {temporal.mad(mixed, truth):.3f}",
                f"{temporal.dtssd(fp32, truth):.3f} -> {temporal.dtssd(mixed, truth):.3f}",
            ]
        rows.append(row)
        print(" | ".join(row), flush=True)
        if args.crops:
            save_crop(args.crops, name, fp32, mixed)
    network = network_ms(args.rounds)
    print(f"ms/frame: {network}", flush=True)
    cli = cli_seconds(args.cli_rounds) if args.cli_rounds else None
    write_report(args, rows, network, cli, time.perf_counter() - started)


def write_report(args: argparse.Namespace, rows: list, network: dict, cli: dict | None, elapsed: float) -> None:
    command = f"python benchmarks/mixed.py --frames {args.frames} --rounds {args.rounds} --cli-rounds {args.cli_rounds}"
    native = "has" if cpu_has_native_bf16() else "lacks"
    lines = [
        "# Mixed precision on CPU: bf16 operands for the largest convolutions",
        "",
        f"Command: `{command}` ({elapsed / 60:.1f} min).  ",
        f"Machine: {temporal.cpu_name()}, 2 cores, torch {torch.__version__}; the processor {native} "
        "bf16 dot-product instructions (AVX512_BF16 / AMX-BF16).  ",
        f"Clips: {args.frames} frames each, state carried frame by frame from an empty state, the network at "
        "the automatic ratio; synthetic clips with ground truth as in benchmarks/temporal.md (people over "
        "still and moving backgrounds), real clips from ../shared/eval/videos (720p at most).",
        "",
        "Difference = |alpha fp32 - alpha mixed| over all pixels of all frames; MAD x1e3 and dtSSD x1e2 "
        "against ground truth, fp32 -> mixed.",
        "",
        "| clip | mean diff x1e3 | 99.9th pct diff | max diff | MAD fp32 -> mixed | dtSSD fp32 -> mixed |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *[f"| {' | '.join(row)} |" for row in rows],
        "",
        "| time | fp32 | mixed | mixed / fp32 |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {label}, 720p at ratio 0.25, one thread, ms a frame (median of {args.rounds} alternated "
            f"rounds) | {network[part]['fp32']:.1f} | {network[part]['mixed']:.1f} | "
            f"{network[part]['mixed'] / network[part]['fp32']:.2f} |"
            for part, label in (
                ("front", "front: resize, encoder, LR-ASPP, 4 frames a call"),
                ("decoder", "recurrent decoder + projection"),
            )
        ],
    ]
    if cli:
        fp32, mixed = statistics.median(cli["fp32"]), statistics.median(cli["mixed"])
        each = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(cli["fp32"], cli["mixed"]))
        lines.append(
            f"| whole command line, 150-frame 720p clip to a green mp4 at ratio 0.25, s (median of "
            f"{len(cli['fp32'])} alternated; each fp32/mixed: {each}) | {fp32:.2f} | {mixed:.2f} | {mixed / fp32:.2f} |"
        )
    lines.append("")
    old = args.out.read_text() if args.out.exists() else ""
    notes = old[old.index("\n## Notes") :].lstrip("\n") if "\n## Notes" in old else ""
    args.out.write_text("\n".join(lines) + ("\n" + notes if notes else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
