"""GPU speed: the network alone at 1080p and 4K, and the pipeline against its slowest stage.

Part 1, model only (no decoding, no encoding): frames already on the GPU as float, state
carried, the clock stopped after a device synchronisation. 1920x1080 at ratio 0.25 and
3840x2160 at ratio 0.125, RVM's published settings (RTX 3090, fp16: 172 and 154 frames/s).
Variants, interleaved round by round so clock and thermal drift hit all alike: fp16 and fp32,
NHWC and NCHW layouts, chunks of 1 and 4 frames, and the fp16 NHWC step replayed as a CUDA
graph (shapes are fixed within a clip, and the network is ~400 small kernels a frame, so
launch overhead is what a graph removes).

Part 2, the pipeline (needs PyAV): a 1080p clip is decoded alone, matted alone (from frames
decoded beforehand to uint8 pictures back on the host, as the pipeline's model stages do),
encoded alone (pictures made beforehand), and run end to end with `matte_video`, for each
output form. The issue's target is end to end within 1.2x of the slowest single stage.

Results go to benchmarks/gpu_speed.md. Without a CUDA GPU the script says so and exits 2;
`--smoke` runs every code path on the CPU at toy sizes (fp32, no graphs) to check the script.

On the lent device machine (torch is there, PyAV is not): here, once,
    echo /.whl/ >> .git/info/exclude
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av
then run with carry [".whl"]:
    pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:. &&
    python3 benchmarks/gpu_speed.py --out $OUT &&
    python3 -m pytest -q -p no:cacheprovider -k cuda tests/test_transfer.py tests/test_engine.py tests/pipeline/test_clip.py
(about two minutes of device time: the model-only part takes seconds, the pipeline part
encodes a 150-frame 1080p clip three ways; the CUDA tests check the GPU path's results.)
Usage: python benchmarks/gpu_speed.py [--frames 48] [--clip-frames 150] [--rounds 5] [--no-pipeline] [--smoke]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from vidmatte import load_model  # noqa: E402

#: RVM's published model-only figures, RTX 3090, fp16 (Lin et al. 2021, table 6).
PUBLISHED = {"1080p": 172.0, "4K": 154.0}
SIZES = {"1080p": (1080, 1920, 0.25), "4K": (2160, 3840, 0.125)}
SMOKE_SIZES = {"1080p": (108, 192, 0.5), "4K": (216, 384, 0.25)}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def panning_frames(height: int, width: int, count: int) -> np.ndarray:
    """`(T,H,W,3)` uint8: the bundled portrait resized and panned, so the network sees a person."""
    import cv2

    image = cv2.cvtColor(cv2.imread(str(REPO / "samples" / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    big = cv2.resize(image, (width + 2 * count, height + 2 * count), interpolation=cv2.INTER_LINEAR)
    return np.stack([big[i : i + height, 2 * i : 2 * i + width] for i in range(count)])


@dataclass
class Variant:
    name: str
    dtype: torch.dtype
    nhwc: bool
    chunk: int
    graph: bool = False


class GraphedStep:
    """One network step (a chunk of `chunk` frames, state in and out) captured as a CUDA graph.

    Inputs and outputs live in static buffers: each replay copies the chunk and the state in,
    and the new state is copied back into the input buffers for the next replay.
    """

    def __init__(self, model: torch.nn.Module, example: torch.Tensor, ratio: float) -> None:
        self.src = example.clone()
        with torch.inference_mode():
            _, _, *state = model(self.src, downsample_ratio=ratio)
        self.state = [torch.zeros_like(r) for r in state]  # zeros = the empty state
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), torch.inference_mode():
            for _ in range(3):  # warm-up outside the capture (cuDNN autotuning, allocator pools)
                model(self.src, *self.state, downsample_ratio=ratio)
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.inference_mode(), torch.cuda.graph(self.graph):
            self.out = model(self.src, *self.state, downsample_ratio=ratio)

    def reset(self) -> None:
        for r in self.state:
            r.zero_()

    def __call__(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.src.copy_(src)
        self.graph.replay()
        for buffer, new in zip(self.state, self.out[2:]):
            buffer.copy_(new)
        return self.out[0], self.out[1]


def model_only(device: torch.device, sizes: dict, frames: int, rounds: int, smoke: bool) -> list[dict]:
    """Rows of the model-only table: frames/s (median round), peak GPU memory."""
    if smoke:
        variants = [
            Variant("fp32 NHWC, 1 frame a call", torch.float32, True, 1),
            Variant("fp32 NCHW, 4-frame chunks", torch.float32, False, 4),
        ]
    else:
        variants = [
            Variant("fp16 NHWC, 4-frame chunks", torch.float16, True, 4),
            Variant("fp16 NCHW, 4-frame chunks", torch.float16, False, 4),
            Variant("fp16 NHWC, 1 frame a call", torch.float16, True, 1),
            Variant("fp16 NHWC, 4-frame chunks, CUDA graph", torch.float16, True, 4, graph=True),
            Variant("fp16 NHWC, 1 frame a call, CUDA graph", torch.float16, True, 1, graph=True),
            Variant("fp32 NHWC, 4-frame chunks", torch.float32, True, 4),
        ]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    rows = []
    for label, (height, width, ratio) in sizes.items():
        clip_u8 = torch.from_numpy(panning_frames(height, width, frames)).to(device).permute(0, 3, 1, 2)
        runs: dict[str, Callable[[], None]] = {}
        models = {}
        for v in variants:
            key = (v.dtype, v.nhwc)
            if key not in models:
                models[key] = load_model(device, v.dtype, channels_last=v.nhwc)
            model = models[key]
            clip = clip_u8.to(v.dtype).div_(255).contiguous()
            try:
                runs[v.name] = _make_run(model, clip, v, ratio)
                runs[v.name]()  # warm-up (and cuDNN's search) outside the timed rounds
            except Exception as error:  # a variant that cannot run here is reported, not fatal
                runs.pop(v.name, None)
                rows.append({"size": label, "variant": v.name, "fps": None, "note": f"failed: {error!s:.120}"})
        times: dict[str, list[float]] = {name: [] for name in runs}
        peaks: dict[str, float] = {}
        for _ in range(rounds):
            for name, run in runs.items():
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                sync(device)
                t0 = time.perf_counter()
                run()
                sync(device)
                times[name].append(time.perf_counter() - t0)
                if device.type == "cuda":
                    peaks[name] = max(peaks.get(name, 0.0), torch.cuda.max_memory_allocated(device) / 2**20)
        for name, ts in times.items():
            rows.append(
                {
                    "size": label,
                    "variant": name,
                    "fps": frames / statistics.median(ts),
                    "peak_mb": peaks.get(name),
                    "note": "",
                }
            )
        del runs, models
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def _make_run(model: torch.nn.Module, clip: torch.Tensor, v: Variant, ratio: float) -> Callable[[], None]:
    frames = clip.shape[0]
    if v.graph:
        step = GraphedStep(model, clip[None, : v.chunk] if v.chunk > 1 else clip[:1], ratio)

        def run_graph() -> None:
            step.reset()
            for i in range(0, frames - frames % v.chunk, v.chunk):
                step(clip[None, i : i + v.chunk] if v.chunk > 1 else clip[i : i + 1])

        return run_graph

    def run_eager() -> None:
        state = [None] * 4
        with torch.inference_mode():
            for i in range(0, frames - frames % v.chunk, v.chunk):
                src = clip[None, i : i + v.chunk] if v.chunk > 1 else clip[i : i + 1]
                _, _, *state = model(src, *state, downsample_ratio=ratio)

    return run_eager


# ---- part 2: the pipeline against its stages ----

FORMS = {"webm": "out.webm", "mov": "out.mov", "mp4": "out.mp4"}


def pipeline_rows(device: torch.device, height: int, width: int, ratio: float, clip_frames: int) -> list[dict]:
    from speed import make_clip

    from vidmatte import Matter
    from vidmatte.compose import make_background, render
    from vidmatte.io import VideoReader, open_writer
    from vidmatte.pipeline import VideoOptions, matte_video
    from vidmatte.plan import plan_run

    work = Path(tempfile.mkdtemp(prefix="vidmatte-gpu-bench-"))
    try:
        clip = work / "clip.mp4"
        make_clip(clip, clip_frames, width, height)
        matter = Matter(device=device, downsample_ratio=ratio)
        rows = []

        t0 = time.perf_counter()
        with VideoReader(clip) as reader:
            info = reader.info
            decoded = [(f.rgb, f.pts) for f in reader]
        decode_s = time.perf_counter() - t0
        rows.append({"job": "decode alone (H.264 -> RGB)", "seconds": decode_s})
        rgb = np.stack([d[0] for d in decoded])
        chunk = plan_run(matter, (height, width)).chunk_size

        made: dict[str, tuple[float, list[np.ndarray]]] = {}  # webm and mov take the same rgba pictures

        def model_stage(output_type: str, background=None) -> tuple[float, list[np.ndarray]]:
            if output_type in made:
                return made[output_type]
            matter.reset()
            matter(rgb[:chunk])  # warm-up: cuDNN's search, the allocator's pools
            matter.reset()
            pictures = []
            sync(matter.device)
            start = time.perf_counter()
            for i in range(0, len(rgb), chunk):
                part = rgb[i : i + chunk]
                pictures.extend(render(matter(part), output_type, part, background))
            made[output_type] = time.perf_counter() - start, pictures
            return made[output_type]

        for form, name in FORMS.items():
            output_type = "composite" if form == "mp4" else "rgba"
            background = (
                make_background("green", width, height, matter.device, matter.dtype)
                if output_type == "composite"
                else None
            )
            model_s, pictures = model_stage(output_type, background)
            rows.append({"job": f"model alone -> {output_type} pictures on the host", "form": form, "seconds": model_s})
            start = time.perf_counter()
            with open_writer(
                work / f"enc_{name}",
                width=width,
                height=height,
                frame_rate=info.frame_rate,
                time_base=info.time_base,
                alpha=output_type == "rgba",
                audio_from=clip,
                overwrite=True,
            ) as writer:
                for picture, (_, pts) in zip(pictures, decoded):
                    writer.write(picture, pts)
            encode_s = time.perf_counter() - start
            rows.append({"job": f"encode alone -> {form}", "form": form, "seconds": encode_s})
            start = time.perf_counter()
            matte_video(clip, work / name, engine=matter, options=VideoOptions(overwrite=True))
            e2e_s = time.perf_counter() - start
            slowest = max(decode_s, model_s, encode_s)
            rows.append(
                {"job": f"vidmatte end to end -> {form}", "form": form, "seconds": e2e_s, "ratio": e2e_s / slowest}
            )
        for row in rows:
            row["fps"] = clip_frames / row["seconds"]
        return rows
    finally:
        shutil.rmtree(work, ignore_errors=True)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    from temporal import cpu_name

    return cpu_name()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=48, help="frames per model-only round")
    p.add_argument("--clip-frames", type=int, default=150, help="frames of the pipeline's 1080p clip")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-pipeline", action="store_true", help="model-only part alone (needs no PyAV)")
    p.add_argument("--smoke", action="store_true", help="every code path on the CPU at toy sizes")
    p.add_argument("--out", help="also copy the table here (a folder)")
    args = p.parse_args()
    if args.smoke:
        device = torch.device("cpu")
    elif torch.cuda.is_available():
        device = torch.device("cuda")
    else:
        print("gpu_speed.py needs a CUDA GPU (or --smoke to check the script on the CPU)", file=sys.stderr)
        sys.exit(2)
    sizes = SMOKE_SIZES if args.smoke else SIZES
    model_rows = model_only(device, sizes, args.frames, args.rounds, args.smoke)
    pipe_rows = []
    if not args.no_pipeline:
        height, width, ratio = sizes["1080p"]
        pipe_rows = pipeline_rows(device, height, width, ratio, args.clip_frames)

    name = device_name(device)
    lines = [
        f"# GPU speed: {name}" + (" (smoke run on CPU: not a result)" if args.smoke else ""),
        "",
        f"torch {torch.__version__}"
        + (f", CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}" if device.type == "cuda" else "")
        + ". "
        f"Command: `python benchmarks/gpu_speed.py --frames {args.frames} --clip-frames {args.clip_frames} "
        f"--rounds {args.rounds}{' --no-pipeline' if args.no_pipeline else ''}{' --smoke' if args.smoke else ''}`.",
        "",
        "## Model only",
        "",
        f"{args.frames} frames a round on the GPU, state carried, {args.rounds} interleaved rounds, median. "
        "Against RVM's published RTX 3090 fp16 figures (1080p 172, 4K 154 frames/s; target 3x).",
        "",
        "| size | variant | frames/s | vs published 3090 | peak GPU memory (MB) | note |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for r in model_rows:
        size = f"{r['size']} ({'x'.join(map(str, sizes[r['size']][1::-1]))}, ratio {sizes[r['size']][2]})"
        fps = "-" if r["fps"] is None else f"{r['fps']:.0f}"
        vs = "-" if r["fps"] is None or args.smoke else f"{r['fps'] / PUBLISHED[r['size']]:.2f}x"
        peak = "-" if r.get("peak_mb") is None else f"{r['peak_mb']:.0f}"
        lines.append(f"| {size} | {r['variant']} | {fps} | {vs} | {peak} | {r['note']} |")
    if pipe_rows:
        height, width, ratio = sizes["1080p"]
        lines += [
            "",
            f"## Pipeline, {width}x{height} clip of {args.clip_frames} frames with AAC audio, ratio {ratio}",
            "",
            "Each stage alone, then end to end; target: end to end within 1.2x of the slowest single stage.",
            "",
            "| job | frames/s | end to end / slowest stage |",
            "| --- | ---: | ---: |",
        ]
        for r in pipe_rows:
            ratio_text = f"{r['ratio']:.2f}" if "ratio" in r else ""
            lines.append(f"| {r['job']} | {r['fps']:.1f} | {ratio_text} |")
    lines.append("")
    text = "\n".join(lines)
    # a smoke run checks the script; it is no result for the repo
    target = Path(tempfile.gettempdir()) / "gpu_speed_smoke.md" if args.smoke else REPO / "benchmarks" / "gpu_speed.md"
    target.write_text(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / target.name).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
