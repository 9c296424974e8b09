"""The run plan: one place decides chunks, threads and renderers for each kind of device and run."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest
import torch

from vidmatte.plan import CPU_FRONT_FRAMES, CPU_FRONT_MAX_PIXELS, QUEUE, describe_run, plan_run, stage_threads


def test_cpu_file_run_uses_three_stages_and_the_fused_renderer(engine):
    plan = plan_run(engine, (720, 1280))
    assert plan.chunk_size == 1 and plan.read_ahead and plan.encode_ahead and plan.queue == QUEUE
    assert plan.fused and not plan.refine_edges and not plan.separate_encoder and not plan.cudnn_benchmark
    assert plan.torch_threads == max(1, (os.cpu_count() or 2) // 2) and plan.opencv_threads == 1
    assert plan_run(engine, (720, 1280), chunk_size=3).chunk_size == 3
    with pytest.raises(ValueError):
        plan_run(engine, (720, 1280), chunk_size=0)


def test_cpu_files_batch_the_stateless_front_but_decode_frame_by_frame(engine):
    """The encoder's small late layers cost per call; the decoder and the full-resolution half
    cost per frame and lose cache with more frames a call."""
    plan = plan_run(engine, (720, 1280))
    assert plan.front_chunk == CPU_FRONT_FRAMES > plan.chunk_size == 1
    chosen = plan_run(engine, (720, 1280), chunk_size=3)
    assert chosen.front_chunk % 3 == 0 and chosen.front_chunk >= CPU_FRONT_FRAMES
    assert plan_run(engine, (720, 1280), chunk_size=8).front_chunk == 8
    assert plan_run(engine, (480, 640), live=True).front_chunk == 1  # the newest frame, at once
    assert 1080 * 1920 > CPU_FRONT_MAX_PIXELS and plan_run(engine, (1080, 1920)).front_chunk == 1


def test_filters_between_the_guided_filter_and_the_picture_turn_fusing_off(engine):
    assert not plan_run(engine, (720, 1280), smooth=True).fused
    refined = plan_run(engine, (720, 1280), refine=True)  # auto ratio 0.4 at 720p: detail to recover
    assert refined.refine_edges and not refined.fused
    full = plan_run(engine, (120, 160), refine=True)  # the network already runs at full resolution
    assert not full.refine_edges and full.fused


def test_live_sources_are_not_read_ahead(engine):
    plan = plan_run(engine, (480, 640), live=True, chunk_size=4)
    assert plan.chunk_size == 1 and not plan.read_ahead and plan.queue == 1
    assert plan.encode_ahead  # inline, but from the bytes: no full-resolution float copy first
    assert plan.fused


def test_live_cpu_plan_keeps_the_network_on_one_thread_with_every_core(engine, monkeypatch):
    """Two threads running multi-threaded torch stages at once make libgomp stop spinning (more
    OpenMP threads than cores): live mode renders inline with all cores, files split the cores."""
    monkeypatch.setenv("VIDMATTE_CPUS", "4")
    live = plan_run(engine, (480, 640), live=True)
    assert not live.render_ahead and not live.read_ahead
    assert live.torch_threads == 1 and live.thread_ceiling == 4  # the tuner times its way up
    files = plan_run(engine, (480, 640))
    assert files.render_ahead and files.read_ahead and files.torch_threads == 2 and files.thread_ceiling is None


@pytest.mark.parametrize(("cpus", "per_stage"), [(1, 1), (2, 1), (4, 2), (8, 3), (16, 6)])
def test_file_stages_keep_the_openmp_threads_within_the_cores(engine, monkeypatch, cpus, per_stage):
    """Three stages with their own teams: 1 + 3 * (threads - 1) <= cores (see `stage_threads`)."""
    monkeypatch.setenv("VIDMATTE_CPUS", str(cpus))
    threads = plan_run(engine, (720, 1280)).torch_threads
    assert threads == per_stage and 1 + 3 * (threads - 1) <= cpus
    assert stage_threads(1) == cpus and 1 + 2 * (stage_threads(2) - 1) <= cpus


def test_gpu_plan_batches_uploads_and_gives_the_encoder_a_thread():
    gpu = SimpleNamespace(device=torch.device("cuda"), dtype=torch.float16, ratio_for=lambda h, w: 0.25)
    plan = plan_run(gpu, (1080, 1920))  # type: ignore[arg-type]
    assert plan.chunk_size == 4 and plan.read_ahead and not plan.encode_ahead  # uploads, not the encoder
    assert plan.front_chunk == plan.chunk_size
    assert plan.separate_encoder and plan.cudnn_benchmark and not plan.fused
    assert plan.torch_threads is None and plan.opencv_threads is None


def test_describe_run_names_device_precision_and_sizes(engine):
    line = describe_run(engine, engine.network_size(720, 1280), (720, 1280))
    assert line == "cpu, fp32; network at 512x288 for 1280x720 frames"
    assert describe_run(engine, (240, 320), (480, 640), "(live)").endswith("640x480 frames (live)")
