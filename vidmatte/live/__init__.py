"""Live mode: a camera through the stage chain to a preview window and/or a recording."""

from .run import LIVE_NETWORK_SIZE, LiveFrame, LiveStats, live_downsample_ratio, run_live, save_snapshot
from .views import BACKGROUNDS, NO_DISPLAY, NO_GUI, VIEWS, CheckerBackground, CvWindow, Display

__all__ = [
    "BACKGROUNDS",
    "LIVE_NETWORK_SIZE",
    "NO_DISPLAY",
    "NO_GUI",
    "VIEWS",
    "CheckerBackground",
    "CvWindow",
    "Display",
    "LiveFrame",
    "LiveStats",
    "live_downsample_ratio",
    "run_live",
    "save_snapshot",
]
