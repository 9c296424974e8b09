"""Exceptions a user can cause. Each message is one line that says what is wrong and what to do.

The CLI turns any `VidmatteError` into that line on stderr and a non-zero exit code;
library callers can catch the specific kinds.
"""

from __future__ import annotations


class VidmatteError(Exception):
    """Base class: a problem with the user's input, output or installation, not a bug."""

    exit_code = 1


class InputError(VidmatteError):
    """The input is missing, unreadable, not media, truncated, or of an unsupported form."""

    exit_code = 2


class OutputError(VidmatteError):
    """The output cannot be written (exists, no permission, disk full, unknown format)."""

    exit_code = 3


class WeightsError(VidmatteError):
    """The bundled model weights are missing or damaged."""

    exit_code = 4


class DeviceError(VidmatteError):
    """The requested device or precision is not available on this machine."""

    exit_code = 5


class DisplayError(VidmatteError):
    """A preview window was asked for but there is no display or no GUI support."""

    exit_code = 6


class FolderFailures(VidmatteError):
    """Some files of a folder failed (each was reported as it happened); the others were written."""

    exit_code = 1


class ClusterError(VidmatteError):
    """Scale-out cannot run: Ray is not installed, the cluster cannot be reached, or workers died."""

    exit_code = 7
