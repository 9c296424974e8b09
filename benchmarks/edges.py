"""Edge-band refinement quality: converged still-mode network alpha vs + `refine_edges` settings.

Reads the licensed evaluation pictures from ../shared/eval (people/ and objects/, `NNNN.png` with
`NNNN_alpha.png`); only metrics leave this script. Writes benchmarks/edges.md.

Usage: python benchmarks/edges.py [--eval ../shared/eval] [--out benchmarks/edges.md] [--threads 1]

Metrics as in benchmarks/stills.py (its functions are reused): MAD and MSE x1e3, Grad x1e-3.
Time is the refinement's alone (the network's still-mode pass is run once per picture and shared
by all rows), in seconds per megapixel of picture.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from stills import cases, metrics  # noqa: E402
from temporal import cpu_name as _cpu_name  # noqa: E402

from vidmatte import Matter  # noqa: E402
from vidmatte.edges import refine_edges  # noqa: E402
from vidmatte.stills import matte_still, read_image  # noqa: E402

DEFAULT_EVAL = REPO.parent / "shared" / "eval"


def pictures(eval_dir: Path) -> list[tuple[str, Path, Path]]:
    """(name, image, truth) of every people/ and objects/ picture as it is (no composites)."""
    return [(c.name, c.image, c.truth) for c in cases(eval_dir) if c.background == "original"]


#: (label, keyword arguments of refine_edges); None is the network alone.
SETTINGS: list[tuple[str, dict | None]] = [
    ("converged network alone (still mode)", None),
    ("**+ refine, default** (band 7, full res, eps 1e-5, lambda_net 0, 50 CG it.)", {}),
    ("+ refine, band 3", {"band": 3}),
    ("+ refine, band 5", {"band": 5}),
    ("+ refine, band 11", {"band": 11}),
    ("+ refine, band 15", {"band": 15}),
    ("+ refine, half-resolution solve", {"scale": 0.5}),
    ("+ refine, half-resolution solve, band 11", {"scale": 0.5, "band": 11}),
    ("+ refine, lambda_net 0.01", {"lambda_net": 0.01}),
    ("+ refine, lambda_net 0.1", {"lambda_net": 0.1}),
    ("+ refine, eps 1e-6", {"eps": 1e-6}),
    ("+ refine, eps 1e-4", {"eps": 1e-4}),
    ("+ refine, 25 CG iterations", {"iterations": 25}),
    ("+ refine, 100 CG iterations", {"iterations": 100}),
]


def groups(names: list[str]) -> dict[str, list[str]]:
    return {
        "people/0002 (whole portrait, 1280x1940)": [n for n in names if n == "people/0002"],
        "people crops (20 x 320x320 hair/edge crops)": [
            n for n in names if n.startswith("people/") and n != "people/0002"
        ],
        "objects (8 non-human foregrounds, ~2 MP)": [n for n in names if n.startswith("objects/")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--eval", type=Path, default=DEFAULT_EVAL)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "edges.md")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: steady timings on a shared machine; 0: torch's default)",
    )
    args = parser.parse_args()
    if not (args.eval / "people").is_dir() or not (args.eval / "objects").is_dir():
        print(
            f"skipped: evaluation data not found at {args.eval} (people/, objects/ with *_alpha.png); "
            f"nothing measured, {args.out} left as it is"
        )
        return
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    matter = Matter(device="cpu")
    items = pictures(args.eval)
    rows: list[dict[str, tuple[float, float, float]]] = [{} for _ in SETTINGS]
    seconds = [0.0] * len(SETTINGS)
    megapixels = 0.0
    for name, image_path, truth_path in items:
        rgb = read_image(image_path).rgb
        truth = cv2.imread(str(truth_path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        start = time.perf_counter()
        still = matte_still(matter, rgb)
        seconds[0] += time.perf_counter() - start
        megapixels += truth.size / 1e6
        image = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
        alpha = torch.from_numpy(still.alpha)[None]
        for i, (_, options) in enumerate(SETTINGS):
            if options is None:
                refined = still.alpha
            else:
                start = time.perf_counter()
                refined = refine_edges(image, alpha, None, **options)[0][0].numpy()
                seconds[i] += time.perf_counter() - start
            rows[i][name] = metrics(refined, truth)
        print(name, " ".join(f"{r[name][0]:.2f}" for r in rows), flush=True)
    args.out.write_text(report(args, rows, seconds, megapixels, items))
    print(f"wrote {args.out}")


def report(args: argparse.Namespace, rows: list[dict], seconds: list[float], megapixels: float, items: list) -> str:
    names = [n for n, _, _ in items]
    command = "python benchmarks/edges.py"
    if args.eval.resolve() != DEFAULT_EVAL.resolve():
        command += f" --eval {shlex.quote(str(args.eval))}"
    if args.threads != 1:
        command += f" --threads {args.threads}"
    lines = [
        "# Edge-band refinement: converged network alpha vs + closed-form matting in the edge band",
        "",
        f"Command: `{command}`  ",
        f"Machine: {_cpu_name()}, {os.cpu_count()} cores (shared with other work while measured), "
        f"{torch.get_num_threads()} torch thread(s), torch {torch.__version__}, OpenCV {cv2.__version__}, "
        f"Python {platform.python_version()}; CPU, fp32.  ",
        f"Data: ../shared/eval people/ and objects/ ({len(items)} pictures with ground-truth alpha; licensed, "
        "read only here). Base: `matte_still` (still mode, converged network) at full resolution.",
        "",
        "MAD, MSE x1e3; Grad x1e-3 (as in benchmarks/stills.md). Lower is better. `band` is the width in "
        "pixels of the unknown strip around the network's 0.5 contour (its fractional pixels are unknown "
        "too, grown by band // 2). The last column counts pictures whose MAD moved by more than 0.005 "
        "either way (pictures without any edge band come back unchanged).",
        "",
    ]
    for title, members in groups(names).items():
        if not members:
            continue
        lines += [
            f"## {title}",
            "",
            "| setting | MAD | MSE | Grad | MAD better / worse than the network |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for (label, options), row in zip(SETTINGS, rows):
            values = np.array([row[n] for n in members])
            change = np.array([row[n][0] - rows[0][n][0] for n in members])
            versus = "" if options is None else f"{(change < -0.005).sum()} / {(change > 0.005).sum()}"
            lines.append(
                f"| {label} | {values[:, 0].mean():.3f} | {values[:, 1].mean():.3f} | {values[:, 2].mean():.2f} "
                f"| {versus} |"
            )
        lines.append("")
    lines += [f"## Time ({megapixels:.1f} MP in all)", "", "| setting | seconds per megapixel |", "| --- | ---: |"]
    for (label, options), total in zip(SETTINGS, seconds):
        shown = f"{total / megapixels:.2f}" + (" (the network's still mode itself)" if options is None else "")
        lines.append(f"| {label} | {shown} |")
    lines.append("")
    lines += [
        "## Reading",
        "",
        "- Recommended default (what `refine_edges` uses): band 7, full-resolution solve, eps 1e-5, no "
        "data term (lambda_net 0), at most 50 Jacobi-preconditioned CG iterations warm-started from the "
        "network's alpha. It improves all three groups' means; the band width matters most on the "
        "portrait, where a wider band lets the closed-form solve overrule good network pixels.",
        "- The half-resolution solve is about twice as fast and as good on these pictures, whose network "
        "alpha is itself upsampled from a low-resolution pass (its errors are smooth). On fine strands at "
        "the picture's own resolution (tests/test_edges.py's synthetic hair) it recovers far less, so full "
        "resolution stays the default and `scale=0.5` is the fast option.",
        "- The data term (lambda_net) pulls the band back towards the network's alpha: it helps the crops a "
        "little at 0.01 and costs the portrait most of its gain, so it is off by default.",
        "- The crops and objects means are dominated by pictures on which the network itself fails "
        "(MAD > 100: the person or object is missed or half-missed); an edge refinement cannot repair "
        "those, and on a missed region it can make matters slightly worse. The better/worse column shows "
        "how many pictures each setting helps. objects/ with no alpha at all come back unchanged.",
        "- Time is the refinement alone on one thread; it scales with the band's area (only 32 px tiles "
        "holding band pixels are solved), not with the picture's.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
