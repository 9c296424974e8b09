"""Static int8 for the network's front on CPU: does it pay, and what does it cost in alpha?

The route measured: PyTorch 2 export quantization (`torchao.quantization.pt2e`, the successor of
the deprecated FX flow) with the X86 Inductor quantizer (oneDNN int8 kernels, per-channel weights,
static activations calibrated on real frames), compiled by Inductor. The front (MobileNetV3
encoder + LR-ASPP) is the part that is stateless and convolution-only, so it is where int8 can pay
without touching the recurrent state; the decoder and guided filter stay float.

Timing: one torch thread, the front alone at the network's real shapes (720p at the default ratio
0.4 -> 288x512, and at 0.25 -> 180x320), eager fp32 (what vidmatte runs), Inductor fp32 (to tell
the compiler's gain from int8's) and Inductor int8, in alternating rounds, median per round.
Quality: the whole network (decoder, refiner in fp32) fed the int8 front's features, against fp32:
on consecutive frames of every real clip in ../shared/eval/videos (state carried), and against
ground truth on people from ../shared/eval/people composited over its backgrounds.

Usage: pip install torchao==0.18.0 --no-deps; python benchmarks/int8.py [--rounds 3]
Results go to benchmarks/int8.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import platform
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
EVAL = REPO.parent / "shared" / "eval"

from temporal import cpu_name  # noqa: E402  (one helper for all benchmark headers)

from vidmatte.model.layout import channels_last  # noqa: E402
from vidmatte.weights import load_model  # noqa: E402


class Front(nn.Module):
    """Encoder + LR-ASPP: `[1,3,h,w]` in 0..1 -> the four feature maps the decoder takes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.backbone, self.aspp = model.backbone, model.aspp

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        f1, f2, f3, f4 = self.backbone(x)
        return f1, f2, f3, self.aspp(f4)


def clip_frames(path: str, n: int, size: tuple[int, int], step: int = 1, skip: int = 0) -> list[np.ndarray]:
    out = []
    with av.open(path) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i >= skip and (i - skip) % step == 0:
                out.append(cv2.resize(fr.to_ndarray(format="rgb24"), size, interpolation=cv2.INTER_AREA))
            if len(out) >= n:
                break
    return out


def planar(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div(255)


def quantize(front: Front, example: torch.Tensor, calibration: list[torch.Tensor]) -> nn.Module:
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    exported = torch.export.export(front, (example,)).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(exported, quantizer)  # type: ignore[arg-type]
    for x in calibration:
        prepared(channels_last(x))
    return convert_pt2e(prepared)


def median_ms(fn, x: torch.Tensor, n: int = 10) -> float:
    for _ in range(2):
        fn(x)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1000


def alphas(model, front_fn, frames: list[np.ndarray], passes: int = 1) -> list[np.ndarray]:
    """The network's full-resolution alpha for consecutive frames, the front swapped for `front_fn`."""
    state: tuple = (None, None, None, None)
    out = []
    for rgb in frames:
        for _ in range(passes):
            src = planar(rgb)
            feats = model.encode(src[None], downsample_ratio=0.4)
            f1, f2, f3, f4 = front_fn(feats.small)
            feats = dataclasses.replace(feats, f1=f1, f2=f2, f3=f3, f4=f4)
            coarse, *state = model.decode(feats, *state)
            _, pha = model.refine(coarse)
        out.append(pha[0, 0, 0].float().numpy())
    return out


def composites(size: tuple[int, int], people: int, backgrounds: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """People from eval/people over eval/backgrounds at `size`: (name, rgb, ground-truth alpha)."""
    w, h = size
    shots = []
    images = sorted(p for p in glob.glob(str(EVAL / "people" / "*.png")) if not p.endswith("_alpha.png"))[:people]
    for bg_path in backgrounds:
        bg = cv2.cvtColor(cv2.imread(bg_path), cv2.COLOR_BGR2RGB)
        bg = cv2.resize(bg, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        for path in images:
            fg = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
            alpha = cv2.imread(path[:-4] + "_alpha.png", cv2.IMREAD_GRAYSCALE)
            scale = min(h / fg.shape[0], w / fg.shape[1])
            fw, fh = int(fg.shape[1] * scale), int(fg.shape[0] * scale)
            canvas_a = np.zeros((h, w), np.float32)
            canvas_f = np.zeros((h, w, 3), np.float32)
            x0 = (w - fw) // 2
            canvas_a[h - fh :, x0 : x0 + fw] = cv2.resize(alpha, (fw, fh), interpolation=cv2.INTER_AREA) / 255
            canvas_f[h - fh :, x0 : x0 + fw] = cv2.resize(fg, (fw, fh), interpolation=cv2.INTER_AREA) / 255
            a = canvas_a[..., None]
            rgb = np.clip((canvas_f * a + bg * (1 - a)) * 255 + 0.5, 0, 255).astype(np.uint8)
            shots.append((f"{Path(path).stem} over {Path(bg_path).stem}", rgb, canvas_a))
    return shots


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--people", type=int, default=4)
    args = p.parse_args()
    torch.set_num_threads(1)
    import torch._inductor.config as inductor

    inductor.freezing = True  # weights folded as constants: what int8 kernels need
    model = load_model("cpu")
    front = Front(model).eval()
    videos = sorted(glob.glob(str(EVAL / "videos" / "*")))
    lines = [
        "# int8 for the network's front on CPU (pt2e static quantization, X86 Inductor quantizer)",
        "",
        f"Machine: {cpu_name()} ({platform.machine()}), {os.cpu_count()} cores, torch {torch.__version__}, "
        f"one torch thread. Command: `python benchmarks/int8.py --rounds {args.rounds}`. Calibration: 8 frames "
        "from each real clip (every 7th). Times are the front alone (encoder + LR-ASPP), median of 10 calls "
        "per round, rounds alternated.",
        "",
        "| network input | round | eager fp32 (vidmatte) ms | Inductor fp32 ms | Inductor int8 ms | int8 / eager |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    compile_s: dict[str, float] = {}
    q288 = None
    with torch.no_grad():
        for h, w in ((288, 512), (180, 320)):
            calibration = [planar(f) for v in videos for f in clip_frames(v, 8, (w, h), step=7)]
            x0 = channels_last(calibration[0])
            t0 = time.perf_counter()
            qfront = torch.compile(quantize(front, x0, calibration))
            qfront(x0)
            compile_s[f"int8 {h}x{w}"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            cfront = torch.compile(front)
            cfront(x0)
            compile_s[f"fp32 {h}x{w}"] = time.perf_counter() - t0
            for r in range(args.rounds):
                e, c, q = median_ms(front, x0), median_ms(cfront, x0), median_ms(qfront, x0)
                lines.append(f"| {h}x{w} | {r + 1} | {e:.1f} | {c:.1f} | {q:.1f} | {q / e:.2f} |")
                print(lines[-1], flush=True)
            if h == 288:
                q288 = qfront
            torch._dynamo.reset()
        lines += [
            "",
            "Compile time (what a user would wait for at start-up, per shape): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in compile_s.items())
            + ".",
            "",
            "## Alpha with the int8 front (720p frames, network at 288x512), against fp32",
            "",
            "| case | mean abs diff x1e3 | 99.9th pct diff | max diff | MAD vs GT fp32 x1e3 | MAD vs GT int8 x1e3 |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        assert q288 is not None

        def fp32_front(small):
            return front(channels_last(small))

        def int8_front(small):
            return q288(channels_last(small.contiguous()))

        for v in videos:
            frames = clip_frames(v, 24, (1280, 720), skip=30)
            a = np.stack(alphas(model, fp32_front, frames))
            b = np.stack(alphas(model, int8_front, frames))
            d = np.abs(a - b)
            lines.append(
                f"| {Path(v).name}, 24 frames | {d.mean() * 1e3:.2f} | {np.percentile(d, 99.9):.3f} | {d.max():.3f} | - | - |"
            )
            print(lines[-1], flush=True)
        bgs = sorted(glob.glob(str(EVAL / "backgrounds" / "*.png")) + glob.glob(str(EVAL / "backgrounds" / "*.jpg")))
        for name, rgb, gt in composites((1280, 720), args.people, bgs[:2]):
            a = alphas(model, fp32_front, [rgb], passes=4)[0]
            b = alphas(model, int8_front, [rgb], passes=4)[0]
            d = np.abs(a - b)
            lines.append(
                f"| {name} | {d.mean() * 1e3:.2f} | {np.percentile(d, 99.9):.3f} | {d.max():.3f} | "
                f"{np.abs(a - gt).mean() * 1e3:.2f} | {np.abs(b - gt).mean() * 1e3:.2f} |"
            )
            print(lines[-1], flush=True)
    lines.append("")
    out = REPO / "benchmarks" / "int8.md"
    old = out.read_text() if out.exists() else ""
    notes = old[old.index("\n## Notes") :].lstrip("\n") if "\n## Notes" in old else ""
    out.write_text("\n".join(lines) + ("\n" + notes if notes else ""))


if __name__ == "__main__":
    main()
