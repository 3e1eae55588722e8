"""Cameras and their calibration: the camera model, calibration files, and the fit.

``camera``  the pinhole model with OpenCV's distortion, and comparing worlds
``formats`` anipose/FreeMoCap TOML files and Qualisys ``.qca.txt`` files
``fit``     multi-camera calibration from ChArUco corner tracks
"""

from .camera import Camera, align_worlds, look_at
from .fit import CalibrationResult, calibrate_cameras
from .formats import (
    fit_to_videos,
    read_calibration,
    read_qca,
    read_toml,
    up_axis,
    write_toml,
)

__all__ = [
    "CalibrationResult",
    "Camera",
    "align_worlds",
    "calibrate_cameras",
    "fit_to_videos",
    "look_at",
    "read_calibration",
    "read_qca",
    "read_toml",
    "up_axis",
    "write_toml",
]
