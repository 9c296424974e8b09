"""How many CPU cores this process may use: one answer for every thread pool vidmatte sizes.

Normally the cores the process may run on. A Ray worker (`vidmatte.distributed`) holds a share
of the machine, so its actors set `VIDMATTE_CPUS` to that share: the pipeline's torch threads,
FFmpeg's encoder and scaler threads then stay within it instead of every worker fanning out
over all cores and fighting for them.
"""

from __future__ import annotations

import os

#: Environment variable that bounds the cores this process uses (a positive integer).
CPUS_VARIABLE = "VIDMATTE_CPUS"


def available_cpus() -> int:
    """`VIDMATTE_CPUS` when set (a positive integer), else the cores this process may run on."""
    given = os.environ.get(CPUS_VARIABLE, "").strip()
    if given:
        try:
            value = int(given)
        except ValueError:
            value = 0
        if value >= 1:
            return value
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1
