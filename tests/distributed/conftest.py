"""A real local Ray for the distributed tests (no mocks), started once for the session, and one
pool of two workers shared by the tests (each worker loads the model once)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import moving_clip
from tests.io.conftest import make_clip

#: A hard cut at frame 50: a long first shot (split into three segments with preroll at
#: SEGMENT_FRAMES) and a short second one that starts exactly at the cut.
CUT, FRAMES, SEGMENT_FRAMES = 50, 70, 20
#: Short enough that the third segment starts inside the shot, past the preroll's reach
PREROLL = 32


@pytest.fixture(scope="session")
def ray_session():
    ray = pytest.importorskip("ray", reason="the distributed tests need Ray (pip install 'vidmatte[ray]')")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield ray
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def pool(ray_session):
    from vidmatte.distributed.driver import RayPool, Settings
    from vidmatte.options import MatteOptions

    # fp32 as the session's engine, whose runs the workers' are compared with to the last level
    with RayPool(Settings(workers=2), MatteOptions(device="cpu", precision="fp32")) as running:
        yield running


@pytest.fixture(scope="session")
def cut_clip(tmp_path_factory, sample_rgb) -> Path:
    """96x160, 25 fps, AAC audio: 50 frames of one moving shot, then a cut to another picture."""
    first = moving_clip(sample_rgb, 96, 160, CUT, seed=1)
    other = np.ascontiguousarray(moving_clip(sample_rgb[::-1, ::-1].copy(), 96, 160, FRAMES - CUT, seed=2)[..., ::-1])
    path = tmp_path_factory.mktemp("clips") / "cut.mp4"
    make_clip(path, images=np.concatenate([first, other]), audio="aac", rate=Fraction(25))
    return path
