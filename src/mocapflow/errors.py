"""The errors mocapflow raises for problems a user can fix.

Every one derives from :class:`MocapflowError`, and its message is one line that
names the file or option at fault and the fix. The CLI prints exactly that line
and exits 2; anything else that escapes is a bug, shown as one (``--debug``
gives the traceback).
"""

from __future__ import annotations

__all__ = [
    "CalibrationError",
    "ConfigError",
    "MocapflowError",
    "RecordingError",
    "StoreBusyError",
    "StoreError",
    "TrackerError",
    "UsageError",
    "VideoError",
    "shown_path",
]


def shown_path(path) -> str:
    """Return a path for a one-line message: whole when short, else its start and its end."""
    text = path.decode(errors="backslashreplace") if isinstance(path, bytes) else str(path)
    return text if len(text) <= 160 else f"{text[:60]}...{text[-80:]}"


class MocapflowError(Exception):
    """A problem with the input or the options; the message names it and the fix."""


class UsageError(MocapflowError, ValueError):
    """An option or argument has a value that cannot work."""


class RecordingError(MocapflowError):
    """The recording as a whole cannot be used."""


class VideoError(MocapflowError):
    """A video cannot be opened or decoded."""


class TrackerError(MocapflowError):
    """A tracker cannot be found or built, or returned what it did not declare."""


class StoreError(MocapflowError):
    """A store cannot be used: missing, foreign, damaged, or made from other inputs."""


class StoreBusyError(StoreError):
    """Another run holds the store's lock."""


class ConfigError(MocapflowError, ValueError):
    """A ``cluster.yaml`` problem."""


class CalibrationError(MocapflowError, ValueError):
    """A calibration cannot be read, fitted, or does not match the recording."""
