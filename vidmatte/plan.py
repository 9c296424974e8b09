"""How a run uses its device, decided in one place: frames per network call, which stages get a
thread of their own, which renderer runs the full-resolution half, and the process-wide thread
settings while the run lasts.

Files, frame sequences, live sources and (later) workers all ask `plan_run` and go through the
same stage chain with what it says; nothing else chooses threads or renderers.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import torch

from .cpus import available_cpus
from .engine import MattingEngine

#: Chunks queued between stages: enough to absorb jitter; each holds full-resolution frames.
QUEUE = 2
#: Frames per call of the stateless encoder on CPU: its late layers run on maps of a few hundred
#: pixels, where each call's fixed cost is a good share of the work (benchmarks/speed.md)...
CPU_FRONT_FRAMES = 4
#: ...for frames up to this size: above it the full-resolution stages dominate, the batch gained
#: nothing measurable at 1080p and only held more frames in memory.
CPU_FRONT_MAX_PIXELS = 1280 * 720


@dataclass(frozen=True)
class RunPlan:
    """What `plan_run` decided for one run (see there for why)."""

    chunk_size: int  # frames per call of the recurrent decoder and of the full-resolution half
    front_chunk: int  # frames per call of the stateless front (a multiple of chunk_size)
    read_ahead: bool  # the source is read on a thread of its own, `queue` chunks ahead
    encode_ahead: bool  # `front` runs the network's stateless encoder (else it only uploads frames)
    render_ahead: bool  # the full-resolution half runs on a thread of its own (else inline)
    fused: bool  # the full-resolution half runs as the fused CPU renderer
    refine_edges: bool  # the full-resolution half refines the edge band (VideoEdgeRefiner)
    separate_encoder: bool  # the output encoder gets a thread of its own after the renderer
    queue: int  # chunks queued between stages
    torch_threads: int | None  # torch's threads while the run lasts (None: leave as is)
    thread_ceiling: int | None  # `tuning.ThreadTuner` moves torch_threads up to this by timing frames
    opencv_threads: int | None  # OpenCV's threads while the run lasts (None: leave as is)
    cudnn_benchmark: bool  # let cuDNN time its algorithms for the clip's fixed shapes


def plan_run(
    engine: MattingEngine,
    size: tuple[int, int],
    *,
    smooth: bool = False,
    refine: bool = False,
    live: bool = False,
    chunk_size: int | None = None,
) -> RunPlan:
    """The plan for a run of `engine` on frames of `size` (height, width) whose full-resolution
    half smooths and/or refines edges.

    - Chunks: 1 frame on CPU, where full-resolution tensors of several frames fall out of cache
      and cost ~30% more per frame (measured at 720p); 4 on GPUs, which want batches. A live
      source gives one newest frame at a time. The stateless encoder takes 4 frames a call on
      CPU all the same, for frames up to 720p: at the network's small sizes its per-call cost
      is what batching saves, for some more peak memory (both in benchmarks/speed.md).
    - CPU: three stages (read + stateless encoder, recurrent decoder, full-resolution half) keep
      both cores busy (benchmarks/speed.md); each stage gets its own torch threads, since one
      pool shared by the model stages made them fight (9.8 -> 15.0 frames/s at 720p on 2 cores),
      as many as `stage_threads(3)` allows (one on 2 cores, 2 on 4, 3 on 8); OpenCV's own pool
      would fan every resize out over all cores under the stages' feet.
    - GPU: the reading thread uploads frames (pinned, asynchronous), so copies overlap the
      network; the model is far faster than the codecs, so the output encoder gets a thread of
      its own. On a 2-core CPU that split measured within noise (mp4 10.9 s inline vs 11.3 s,
      webm 13.1 vs 12.4 s), so the CPU keeps three threads.
    - Edge refinement recovers detail the network's reduced-resolution pass lost; where the
      network runs at full resolution it only adds noise (benchmarks/video_quality.md), so it
      is skipped there.
    - The fused renderer covers float32 CPU engines with nothing between the guided filter and the
      picture (no smoothing, no edge refinement).
    - Live sources hand out their newest frame only: a thread reading ahead would hold a frame
      while newer ones arrive, so the source is read where the recurrent decoder runs. On a CPU
      the whole chain then runs on the calling thread: a second thread running a multi-threaded
      torch stage puts more OpenMP threads than cores in the process, and libgomp then stops
      spinning between parallel regions (the network at 320x240 cost 67 ms a frame instead of
      46); stages on threads of one core each would trade that for latency, and the live window
      wants the newest frame shown soon. How many cores that one thread's team gets is timed as
      the run goes (`tuning.ThreadTuner`, from one up): all of them on an idle machine, fewer
      beside other busy processes, where a team of all the cores collapses (benchmarks/live.md).
    """
    cpu = engine.device.type == "cpu"
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    refine_edges = refine and engine.ratio_for(*size) < 1
    chunk = 1 if live else chunk_size or (1 if cpu else 4)
    batch_front = cpu and not live and size[0] * size[1] <= CPU_FRONT_MAX_PIXELS
    front = chunk * -(-CPU_FRONT_FRAMES // chunk) if batch_front else chunk
    return RunPlan(
        chunk_size=chunk,
        front_chunk=front,
        read_ahead=not live,
        encode_ahead=cpu,
        render_ahead=not live,
        fused=cpu and engine.dtype == torch.float32 and not smooth and not refine_edges,
        refine_edges=refine_edges,
        separate_encoder=not cpu,
        queue=1 if live else QUEUE,
        torch_threads=(1 if live else stage_threads(3)) if cpu else None,
        thread_ceiling=available_cpus() if cpu and live else None,
        opencv_threads=1 if cpu else None,
        cudnn_benchmark=engine.device.type == "cuda",
    )


@contextmanager
def applied(plan: RunPlan) -> Iterator[None]:
    """The plan's process-wide settings for the length of a run, restored afterwards (also after
    an error). Enter it before any worker thread starts and leave it after they all stopped."""
    before = torch.get_num_threads(), cv2.getNumThreads(), torch.backends.cudnn.benchmark
    if plan.torch_threads is not None:
        torch.set_num_threads(plan.torch_threads)
    if plan.opencv_threads is not None:
        cv2.setNumThreads(plan.opencv_threads)
    if plan.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])
        torch.backends.cudnn.benchmark = before[2]


def stage_threads(stages: int) -> int:
    """Torch threads for each of `stages` threads that run multi-threaded torch work at once:
    the most that keeps the process's OpenMP threads within the cores.

    With libgomp (Linux builds of torch) a thread's team holds `threads - 1` helpers besides
    the thread itself and the process's first thread counts once; once the total outnumbers the
    cores, every team stops spinning between parallel regions and the network's hundreds of
    small regions a frame get slow (on 2 cores: 67 ms a frame instead of 46 at 320x240,
    benchmarks/live.md). So `1 + stages * (threads - 1) <= cores`."""
    return max(1, (available_cpus() - 1) // max(1, stages) + 1)


def one_torch_thread() -> None:
    """This thread runs torch with one thread from now on: no OpenMP team of its own, so the
    threads that do the work (a server's still workers, `stage_threads` each) have the cores.
    A 1-MP still on a worker thread took 3.3 s instead of 2.4 while the serving thread's own
    team was alive (benchmarks/serve_load.md). Threads started later start from the same setting."""
    torch.set_num_threads(1)


def describe_run(engine: MattingEngine, network: tuple[int, int], size: tuple[int, int], what: str = "") -> str:
    """One line saying how a run uses the machine, e.g.
    `cpu, fp32 (this torch build has no CUDA); network at 512x288 for 1280x720 frames`."""
    (nh, nw), (h, w) = network, size
    text = f"{engine.describe()}; network at {nw}x{nh} for {w}x{h} frames"
    return f"{text} {what}".rstrip()
