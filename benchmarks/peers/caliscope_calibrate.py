"""Calibrate with caliscope 0.11.x (in its venv) through its scripting API, and time it.

    python caliscope_calibrate.py VIDEO_FOLDER OUT_DIR --columns 7 --rows 5 \
        --square-cm 12 --dictionary DICT_4X4_250 --aruco-scale 0.8 [--inverted] \
        [--frame-step 5]

caliscope's own one-recording workflow (its ``scripts/demo/
demo_shared_video_calibration.py``): the board detected once in the synchronised
videos (``extract_image_points_multicam``, every ``--frame-step``-th moment),
each camera's intrinsics from its own observations (``calibrate_intrinsics``),
then the extrinsics with the board's geometry as constraints
(``calibrate_extrinsics``, intrinsics held, as the demo does). The cameras are
saved as caliscope saves them (``OUT_DIR/camera_array.toml``, metres); the
timings go to stdout as JSON. Videos are taken in name order; camera ids are
their positions.
"""

import argparse
import json
import logging
import time
from pathlib import Path

from caliscope.api import (
    CameraArray,
    Charuco,
    CharucoTracker,
    ConstraintSet,
    calibrate_extrinsics,
    calibrate_intrinsics,
    extract_image_points_multicam,
)

logging.disable(logging.WARNING)
ap = argparse.ArgumentParser()
ap.add_argument("videos", type=Path)
ap.add_argument("out", type=Path)
ap.add_argument("--columns", type=int, required=True)
ap.add_argument("--rows", type=int, required=True)
ap.add_argument("--square-cm", type=float, required=True)
ap.add_argument("--dictionary", required=True)
ap.add_argument("--aruco-scale", type=float, required=True)
ap.add_argument("--inverted", action="store_true")
ap.add_argument("--frame-step", type=int, default=5)
args = ap.parse_args()

paths = sorted(p for p in args.videos.iterdir() if p.suffix.lower() in (".mp4", ".avi", ".mov"))
videos = dict(enumerate(paths))
charuco = Charuco.from_squares(
    columns=args.columns,
    rows=args.rows,
    square_size_cm=args.square_cm,
    dictionary=args.dictionary,
    aruco_scale=args.aruco_scale,
    inverted=args.inverted,
)
tracker = CharucoTracker(charuco)
constraints = ConstraintSet.from_charuco(charuco)
t0 = time.perf_counter()
cameras = CameraArray.from_video_metadata(videos)
points = extract_image_points_multicam(videos, tracker, frame_step=args.frame_step, progress=None)
t1 = time.perf_counter()
for cam_id in videos:
    cameras[cam_id] = calibrate_intrinsics(points, cameras[cam_id]).camera
t2 = time.perf_counter()
run = calibrate_extrinsics(points, cameras, constraints, refine_intrinsics=False)
t3 = time.perf_counter()
args.out.mkdir(parents=True, exist_ok=True)
run.capture_volume.camera_array.to_toml(args.out / "camera_array.toml")
names = {str(cam_id): path.stem for cam_id, path in videos.items()}
print(
    json.dumps(
        {"detect_s": t1 - t0, "intrinsics_s": t2 - t1, "extrinsics_s": t3 - t2, "names": names}
    )
)
