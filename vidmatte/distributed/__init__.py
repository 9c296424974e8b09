"""Scale-out on Ray: long clips split across workers, folders and lists in parallel.

    from vidmatte.distributed import matte_many, split_clip
    summary = matte_many(["a.mp4", "b.mp4"], "out/", workers=2)          # Ray started in the run
    summary = matte_many(paths, "out/", workers=8, cluster="auto")       # an existing cluster

`split_clip` (the pure splitter) needs nothing; the drivers import Ray when they run (the
`vidmatte[ray]` extra), never on import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .split import DEFAULT_PREROLL, Segment, default_segment_frames, split_clip

if TYPE_CHECKING:
    from .driver import RayPool, matte_clip, matte_folder, matte_many

__all__ = [
    "DEFAULT_PREROLL",
    "RayPool",
    "Segment",
    "default_segment_frames",
    "matte_clip",
    "matte_folder",
    "matte_many",
    "split_clip",
]


def __getattr__(name: str) -> Any:
    if name in ("RayPool", "matte_clip", "matte_folder", "matte_many"):
        from . import driver

        return getattr(driver, name)
    raise AttributeError(name)
