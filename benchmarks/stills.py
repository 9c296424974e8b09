"""Still-image quality against ground-truth alpha: still mode as shipped vs the base's default vs variants.

Reads the licensed evaluation pictures from ../shared/eval (people/ and objects/, `NNNN.png` with
`NNNN_alpha.png`; backgrounds/) at run time; only metrics leave this script (nothing of the
pictures, no crops). Writes benchmarks/stills.md.

Cases: every people/ picture (the whole portrait 0002 and the 20 hair crops, reported apart) as
it is and composited over three backgrounds made from backgrounds/: bright (0.6 + 0.4 x the park
photo bgm2_test_bg: a backlit window), dark (0.25 x the atrium bgm1_background_0001) and busy
(the roofs and town of bgm1_0001_back, unchanged). The composites take the picture's own ground
truth as alpha and its foreground colour estimated from picture + truth with vidmatte's blur
fusion (`vidmatte.edges.blur_fusion`); the portrait gets the background resized to cover it,
each crop a 320x320 patch at a place drawn from its number. objects/ as they are.

Usage: python benchmarks/stills.py [--eval ../shared/eval] [--out benchmarks/stills.md] [--variants a,b,...]
                                   [--upscale 8000] [--no-objects]

Metrics (the matting literature's, as in the RVM paper): MAD and MSE x1e3 (mean absolute / squared
alpha error), Grad x1e-3 (sum over the picture of the squared difference of gradient magnitudes,
Gaussian-derivative filters sigma 1.4, alpha in 0..1), band MAD x1e3 (MAD over the pixels whose
true alpha is in (0.05, 0.95) only: the hair). Lower is better.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from temporal import cpu_name  # noqa: E402  (one helper for all benchmark headers)

from vidmatte import Matter  # noqa: E402
from vidmatte.edges import blur_fusion, refine_edges, refine_edges_in_strips, refine_still  # noqa: E402
from vidmatte.stills import converge, matte_still, read_image  # noqa: E402
from vidmatte.stills.converge import (  # noqa: E402
    DEFAULT_MAX_PASSES,
    DEFAULT_TOL,
    STILL_PIXELS,
    converge_coarse,
    refine_in_strips,
    still_scale,
)

DEFAULT_EVAL = REPO.parent / "shared" / "eval"


# --- metrics ----------------------------------------------------------------------------------


def _gradient_kernel(sigma: float = 1.4) -> np.ndarray:
    r = int(np.ceil(3 * sigma))
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2 * sigma**2))
    kx = np.outer(g, -x / sigma**2 * g)  # derivative along x, Gaussian along y
    return (kx / np.sqrt((kx**2).sum())).astype(np.float32)


_KX = _gradient_kernel()


def _gradient_magnitude(alpha: np.ndarray) -> np.ndarray:
    gx = cv2.filter2D(alpha, cv2.CV_32F, _KX, borderType=cv2.BORDER_REPLICATE)
    gy = cv2.filter2D(alpha, cv2.CV_32F, np.ascontiguousarray(_KX.T), borderType=cv2.BORDER_REPLICATE)
    return np.sqrt(gx * gx + gy * gy)


def metrics(alpha: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    """(MAD x1e3, MSE x1e3, Grad x1e-3) of `alpha` against `truth`, both float32 (H,W) in 0..1."""
    d = alpha - truth
    grad = float(((_gradient_magnitude(alpha) - _gradient_magnitude(truth)) ** 2).sum()) / 1e3
    return float(np.abs(d).mean()) * 1e3, float((d * d).mean()) * 1e3, grad


def band_mad(alpha: np.ndarray, truth: np.ndarray) -> float:
    """MAD x1e3 over the pixels whose true alpha is in (0.05, 0.95); 0 where there are none."""
    band = (truth > 0.05) & (truth < 0.95)
    return float(np.abs(alpha - truth)[band].mean()) * 1e3 if band.any() else 0.0


def scores(alpha: np.ndarray, truth: np.ndarray) -> tuple[float, float, float, float]:
    """(MAD, MSE, Grad, band MAD)."""
    return (*metrics(alpha, truth), band_mad(alpha, truth))


# --- variants ---------------------------------------------------------------------------------


@dataclass
class Outcome:
    alpha: np.ndarray
    passes: int
    refine_seconds: float = 0.0


Variant = Callable[[Matter, np.ndarray], Outcome]


def video_path(ratio: float | str, passes: int, tol: float = DEFAULT_TOL) -> Variant:
    """The video engine as is (bilinear downsampling at `ratio`), one pass or repeated."""

    def run(matter: Matter, rgb: np.ndarray) -> Outcome:
        engine = Matter(device=matter.device, model=matter.model, downsample_ratio=ratio)
        if passes == 1:
            return Outcome(engine.step(rgb)[0].alpha[0, 0].float().numpy(), 1)
        return Outcome(converge(engine, rgb, passes, tol).alpha[0, 0].float().numpy(), -1)

    return run


def still(
    passes: int = DEFAULT_MAX_PASSES,
    tol: float = DEFAULT_TOL,
    pixels: int = STILL_PIXELS,
    flip: bool = False,
    refine: bool = False,
) -> Variant:
    def run(matter: Matter, rgb: np.ndarray) -> Outcome:
        scale = still_scale(*rgb.shape[:2], pixels=pixels)
        result = matte_still(matter, rgb, max_passes=passes, tol=tol, scale=scale, flip=flip)
        if refine:  # what matte_image does by default (benchmarks/edges.md has its settings)
            refine_edges(
                torch.from_numpy(rgb).permute(2, 0, 1),
                torch.from_numpy(result.alpha)[None],
                torch.from_numpy(result.foreground).permute(2, 0, 1),
                inplace=True,
            )
        return Outcome(result.alpha, result.passes)

    return run


def still_bilinear(passes: int = DEFAULT_MAX_PASSES, tol: float = DEFAULT_TOL) -> Variant:
    """Still mode with the video path's bilinear (aliasing) downsampling instead of area averaging."""

    @torch.inference_mode()
    def run(matter: Matter, rgb: np.ndarray) -> Outcome:
        scale = still_scale(*rgb.shape[:2])
        src = matter.to_tensor(rgb)
        small = (
            src
            if scale >= 1
            else F.interpolate(
                src, scale_factor=scale, mode="bilinear", align_corners=False, recompute_scale_factor=False
            )
        )
        coarse, n, _ = converge_coarse(matter, small, passes, tol)
        ab = matter.guided_coefficients(coarse)
        return Outcome(refine_in_strips(ab, rgb)[0], n)

    return run


def shipped(refine: bool = True) -> Variant:
    """What `vidmatte photo.jpg` does now: still mode at the picture's real resolution, then
    `refine_still` (as `matte_image`)."""

    def run(matter: Matter, rgb: np.ndarray) -> Outcome:
        result = matte_still(matter, rgb)
        start = time.perf_counter()
        if refine:
            refine_still(rgb, result.alpha, result.foreground, network_scale=result.scale, detail=result.detail)
        return Outcome(result.alpha, result.passes, time.perf_counter() - start)

    return run


def base_default(matter: Matter, rgb: np.ndarray) -> Outcome:
    """The default of this branch's base commit (e580569), kept to compare side by side: still
    size without the enlargement measure, then `refine_edges_in_strips` with its defaults."""
    result = matte_still(matter, rgb, detail=1)
    start = time.perf_counter()
    refine_edges_in_strips(
        torch.from_numpy(rgb).permute(2, 0, 1),
        torch.from_numpy(result.alpha)[None],
        torch.from_numpy(result.foreground).permute(2, 0, 1),
    )
    return Outcome(result.alpha, result.passes, time.perf_counter() - start)


def variants() -> dict[str, tuple[str, Variant]]:
    p, t = DEFAULT_MAX_PASSES, DEFAULT_TOL
    k = STILL_PIXELS // 1000
    return {
        "network": ("still mode network alone (converged, real resolution, no refinement)", shipped(refine=False)),
        "today": ("base commit's default (e580569): still mode + `refine_edges_in_strips` defaults", base_default),
        "shipped": ("**still mode default now**: real resolution + `refine_still`", shipped()),
        "single": ("single pass, auto ratio (what a video's first frame gets)", video_path("auto", 1)),
        "conv-auto": (f"converged (<= {p} passes, tol {t}), auto ratio, bilinear", video_path("auto", p)),
        "conv-0.375": (f"converged (<= {p} passes), ratio 0.375, bilinear", video_path(0.375, p)),
        "still-1": (f"still size ({k}k px, area), single pass", still(passes=1)),
        "converged": (f"still mode network: {k}k px, area, converged (<= {p} passes, tol {t})", still()),
        "default": ("**still mode default**: the above + edge-band refinement (vidmatte.edges)", still(refine=True)),
        "bilinear": ("still mode network, bilinear downsampling", still_bilinear()),
        "px256k": ("still mode network, 256k px", still(pixels=256_000)),
        "px512k": ("still mode network, 512k px", still(pixels=512_000)),
        "p8": ("still mode network, <= 8 passes", still(passes=8)),
        "p32-tol.01": ("still mode network, <= 32 passes, tol 0.01", still(passes=32, tol=0.01)),
        "tol.02": ("still mode network, tol 0.02", still(tol=0.02)),
        "flip": ("still mode network + flip averaging (2x passes)", still(flip=True)),
        "flip-refine": ("still mode network + flip averaging + edge-band refinement", still(flip=True, refine=True)),
    }


# --- cases ------------------------------------------------------------------------------------

BACKGROUNDS = ("original", "bright", "dark", "busy")


@dataclass
class Case:
    name: str  # e.g. people/0002 over bright
    group: str  # portrait, crops, objects
    background: str
    image: Path
    truth: Path


def cases(eval_dir: Path, objects: bool = True) -> list[Case]:
    found = []
    for group in ("people", "objects") if objects else ("people",):
        for truth in sorted((eval_dir / group).glob("*_alpha.png")):
            image = truth.with_name(truth.name.replace("_alpha", ""))
            if not image.is_file():
                continue
            kind = "objects" if group == "objects" else "portrait" if image.stem == "0002" else "crops"
            for background in BACKGROUNDS if group == "people" else ("original",):
                found.append(Case(f"{group}/{image.stem}", kind, background, image, truth))
    return found


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def background(eval_dir: Path, name: str) -> np.ndarray:
    """A background as float32 RGB 0..1 (see the module docstring)."""
    folder = eval_dir / "backgrounds"
    if name == "bright":
        return 0.6 + 0.4 * _rgb(folder / "bgm2_test_bg.jpg").astype(np.float32) / 255
    if name == "dark":
        return 0.25 * _rgb(folder / "bgm1_background_0001.png").astype(np.float32) / 255
    if name == "busy":
        return _rgb(folder / "bgm1_0001_back.png").astype(np.float32) / 255
    raise ValueError(name)


def _cover(bg: np.ndarray, height: int, width: int) -> np.ndarray:
    bh, bw = bg.shape[:2]
    s = max(height / bh, width / bw)
    if s > 1:
        bg = cv2.resize(bg, (max(width, round(bw * s)), max(height, round(bh * s))), interpolation=cv2.INTER_CUBIC)
    bh, bw = bg.shape[:2]
    y, x = (bh - height) // 2, (bw - width) // 2
    return bg[y : y + height, x : x + width]


def _patch(bg: np.ndarray, height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = rng.integers(0, bg.shape[0] - height + 1), rng.integers(0, bg.shape[1] - width + 1)
    return bg[y : y + height, x : x + width]


def estimate_foreground(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Foreground colour (H,W,3) float32 from a picture and its true alpha (blur fusion)."""
    image = torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1)[None]
    fg, _ = blur_fusion(image, torch.from_numpy(alpha)[None, None])
    return fg[0].permute(1, 2, 0).numpy()


def load_case(case: Case, eval_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 RGB picture, float32 truth)."""
    rgb = read_image(case.image).rgb
    truth = cv2.imread(str(case.truth), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    if case.background == "original":
        return rgb, truth
    height, width = truth.shape
    bg = background(eval_dir, case.background)
    bg = _cover(bg, height, width) if case.group == "portrait" else _patch(bg, height, width, int(case.image.stem))
    a = truth[..., None]
    composite = a * estimate_foreground(rgb, truth) + (1 - a) * bg
    return np.round(np.clip(composite, 0, 1) * 255).astype(np.uint8), truth


# --- run --------------------------------------------------------------------------------------

DEFAULT_VARIANTS = "network,today,shipped"
DEFAULT_OUT = REPO / "benchmarks" / "stills.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--variants", default=DEFAULT_VARIANTS, help="comma-separated subset of: " + ", ".join(variants())
    )
    parser.add_argument("--no-objects", action="store_true", help="people/ only")
    parser.add_argument(
        "--upscale",
        type=int,
        default=0,
        metavar="SIDE",
        help="also enlarge crops (--upscale-crops) to SIDE x SIDE and score today vs shipped there",
    )
    parser.add_argument("--upscale-crops", default="0013,0011")
    parser.add_argument("--job", help=argparse.SUPPRESS)  # internal: one upscale run in a child process
    args = parser.parse_args()
    if args.job:
        print(json.dumps(upscale_job(args.eval, *args.job.split(":"))))
        return
    if not (args.eval / "people").is_dir() or not (args.eval / "backgrounds").is_dir():
        print(
            f"skipped: evaluation data not found at {args.eval} (people/ with *_alpha.png, backgrounds/); "
            f"nothing measured, {args.out} left as it is"
        )
        return
    torch.set_num_threads(1)  # steady timings on a shared machine
    chosen = variants()
    unknown = set(args.variants.split(",")) - set(chosen)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    chosen = {k: v for k, v in chosen.items() if k in args.variants.split(",")}
    matter = Matter(device="cpu")
    items = cases(args.eval, objects=not args.no_objects)
    rows: dict[str, dict[tuple[str, str], tuple[float, ...]]] = {k: {} for k in chosen}
    seconds = {k: 0.0 for k in chosen}
    refine_seconds = {k: 0.0 for k in chosen}
    megapixels = 0.0
    for case in items:
        rgb, truth = load_case(case, args.eval)
        megapixels += truth.size / 1e6
        for key, (_, run) in chosen.items():
            start = time.perf_counter()
            outcome = run(matter, rgb)
            seconds[key] += time.perf_counter() - start
            refine_seconds[key] += outcome.refine_seconds
            rows[key][(case.name, case.background)] = (*scores(outcome.alpha, truth), outcome.passes)
        print(
            case.name,
            case.background,
            " ".join(f"{k}={rows[k][(case.name, case.background)][0]:.2f}" for k in chosen),
            flush=True,
        )
    upscaled = upscale_rows(args) if args.upscale else []
    args.out.write_text(report(args, chosen, rows, seconds, refine_seconds, megapixels, items, upscaled))
    print(f"wrote {args.out}")


# --- quality at every size --------------------------------------------------------------------


def upscale_job(eval_dir: Path, variant: str, crop: str, side: str) -> dict:
    """One enlarged crop through `variant` (today / shipped), in this process: scores, time, peak memory."""
    torch.set_num_threads(1)
    side_px = int(side)
    rgb = read_image(eval_dir / "people" / f"{crop}.png").rgb
    truth = cv2.imread(str(eval_dir / "people" / f"{crop}_alpha.png"), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
    if side_px != rgb.shape[0]:
        rgb = cv2.resize(rgb, (side_px, side_px), interpolation=cv2.INTER_CUBIC)
    matter = Matter(device="cpu")
    start = time.perf_counter()
    outcome = (shipped() if variant == "shipped" else base_default)(matter, rgb)
    elapsed = time.perf_counter() - start
    del rgb
    if side_px != truth.shape[0]:
        truth = np.clip(cv2.resize(truth, (side_px, side_px), interpolation=cv2.INTER_CUBIC), 0, 1)
    return {
        "scores": scores(outcome.alpha, truth),
        "seconds": elapsed,
        "refine_seconds": outcome.refine_seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def upscale_rows(args: argparse.Namespace) -> list[tuple[str, str, int, dict]]:
    out = []
    for crop in args.upscale_crops.split(","):
        for side in (320, args.upscale):
            for variant in ("today", "shipped"):
                job = subprocess.run(
                    [sys.executable, __file__, "--eval", str(args.eval), "--job", f"{variant}:{crop}:{side}"],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(job.stdout.strip().splitlines()[-1])
                out.append((crop, variant, side, result))
                print("upscale", crop, side, variant, result, flush=True)
    return out


# --- report -----------------------------------------------------------------------------------


def report(
    args: argparse.Namespace,
    chosen: dict,
    rows: dict,
    seconds: dict,
    refine_seconds: dict,
    megapixels: float,
    items: list[Case],
    upscaled: list,
) -> str:
    command = "python benchmarks/stills.py"
    if args.variants != DEFAULT_VARIANTS:
        command += f" --variants {args.variants}"
    if args.no_objects:
        command += " --no-objects"
    if args.upscale:
        command += f" --upscale {args.upscale}" + (
            f" --upscale-crops {args.upscale_crops}" if args.upscale_crops != "0013,0011" else ""
        )
    if args.eval.resolve() != DEFAULT_EVAL.resolve():
        command += f" --eval {shlex.quote(str(args.eval))}"
    if args.out.resolve() != DEFAULT_OUT.resolve():
        command += f" --out {shlex.quote(os.path.relpath(args.out, REPO))}"
    lines = [
        "# Still images against ground truth: portrait and hair crops over four backgrounds",
        "",
        f"Command: `{command}`  ",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores (shared while measured), 1 torch thread, "
        f"torch {torch.__version__}, OpenCV {cv2.__version__}, Python {platform.python_version()}; CPU, fp32.  ",
        f"Data: ../shared/eval people/ (+ objects/), {len(items)} cases; licensed, read only here. Composites: "
        "the picture's true alpha, its foreground colour estimated from picture + truth (blur fusion), over "
        "bright / dark / busy backgrounds made from backgrounds/ (see the script's docstring).",
        "",
        "MAD, MSE x1e3; Grad x1e-3 (summed over the picture: it grows with picture size); band = MAD x1e3 over "
        "the pixels whose true alpha is in (0.05, 0.95). Lower is better.",
        "",
    ]
    keys = list(chosen)
    titles = {
        "portrait": "people/0002, whole portrait (1280x1940)",
        "crops": "people crops (20 x 320x320 hair/edge crops)",
        "objects": "objects (8 non-human foregrounds, ~2 MP)",
    }
    for group in ("portrait", "crops", "objects"):
        members = [c for c in items if c.group == group]
        if not members:
            continue
        lines += [
            f"## {titles[group]}",
            "",
            "| background | variant | MAD | MSE | Grad | band |",
            "| --- | --- | ---: | ---: | ---: | ---: |",
        ]
        for bg in BACKGROUNDS:
            names = [(c.name, c.background) for c in members if c.background == bg]
            if not names:
                continue
            for key in keys:
                v = np.array([rows[key][n][:4] for n in names])
                lines.append(
                    f"| {bg} | {chosen[key][0]} | {v[:, 0].mean():.2f} | {v[:, 1].mean():.2f} "
                    f"| {v[:, 2].mean():.2f} | {v[:, 3].mean():.1f} |"
                )
        lines.append("")
        if "today" in rows and "shipped" in rows and group != "portrait":
            names = [(c.name, c.background) for c in members]
            ratio = np.array([rows["shipped"][n][0] / max(rows["today"][n][0], 1e-9) for n in names])
            worst = names[int(ratio.argmax())]
            lines += [
                f"Per case, shipped vs today's MAD: {(ratio < 0.995).sum()} better, {(ratio > 1.005).sum()} worse, "
                f"{(ratio > 1.05).sum()} worse by more than 5% (largest ratio {ratio.max():.3f}, "
                f"{worst[0]} over {worst[1]}).",
                "",
            ]
    if "today" in rows and "shipped" in rows:
        lines += [
            "## Whole portrait: shipped vs today, per background",
            "",
            "| background | MAD today | MAD shipped | change | Grad today | Grad shipped | change |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for bg in BACKGROUNDS:
            n = ("people/0002", bg)
            if n not in rows["today"]:
                continue
            t, s = rows["today"][n], rows["shipped"][n]
            lines.append(
                f"| {bg} | {t[0]:.2f} | {s[0]:.2f} | {100 * (s[0] / t[0] - 1):+.1f}% | {t[2]:.2f} | {s[2]:.2f} "
                f"| {100 * (s[2] / t[2] - 1):+.1f}% |"
            )
        lines.append("")
    lines += [
        f"## Cost ({megapixels:.1f} MP in all)",
        "",
        "| variant | passes (mean) | seconds per MP, all | of which the edge refinement |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key in keys:
        passes = np.array([r[4] for r in rows[key].values()])
        shown = "n/a" if (passes < 0).any() else f"{passes.mean():.1f}"
        lines.append(
            f"| {chosen[key][0]} | {shown} | {seconds[key] / megapixels:.2f} | {refine_seconds[key] / megapixels:.2f} |"
        )
    lines.append("")
    if upscaled:
        lines += [
            "## Quality at every size: hair crops enlarged (cubic) to a large square",
            "",
            "Each row is its own process (peak = its max RSS, model included); truth enlarged the same way.",
            "",
            "| crop | side | variant | MAD | MSE | Grad | band | seconds | of which refinement | peak MB |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for crop, variant, side, r in upscaled:
            m = r["scores"]
            lines.append(
                f"| {crop} | {side} | {variant} | {m[0]:.1f} | {m[1]:.1f} | {m[2]:.1f} | {m[3]:.1f} | "
                f"{r['seconds']:.1f} | {r['refine_seconds']:.1f} | {r['peak_mb']:.0f} |"
            )
        lines.append("")
    lines += READING
    return "\n".join(lines)


#: Notes kept under the tables (edited by hand when the code changes; figures refer to the tables above).
READING: list[str] = [
    "## Reading",
    "",
    "See benchmarks/edges.md for the refinement's settings and the solvers measured.",
    "",
]


if __name__ == "__main__":
    main()
