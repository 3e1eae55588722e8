"""Cameras and their calibration: the camera model, calibration files, and the fit.

``camera``  the pinhole model with OpenCV's distortion, and comparing worlds
``formats`` anipose/FreeMoCap TOML files and Qualisys ``.qca.txt`` files, and the
          registry of calibration formats (entry points ``mocapflow.calibrations``)
``fit``     multi-camera calibration from ChArUco corner tracks
"""

from .camera import Camera, align_worlds, centre_errors, look_at
from .fit import CalibrationResult, calibrate_cameras
from .formats import (
    CalibrationFormat,
    calibration_formats,
    fit_to_videos,
    read_calibration,
    read_qca,
    read_toml,
    up_axis,
    write_calibration,
    write_toml,
)

__all__ = [
    "CalibrationFormat",
    "CalibrationResult",
    "calibration_formats",
    "Camera",
    "align_worlds",
    "centre_errors",
    "calibrate_cameras",
    "fit_to_videos",
    "look_at",
    "read_calibration",
    "read_qca",
    "read_toml",
    "up_axis",
    "write_calibration",
    "write_toml",
]
