"""Run skellytracker's folder processing with its MediaPipe (Holistic) tracker, stock.

Runs inside skellytracker's own venv (see venvs.py):

    python skelly_pose.py VIDEO_FOLDER OUT_FOLDER --static 0|1 [--processes N]

It calls ``process_folder_of_videos`` as FreeMoCap does, with model complexity 1
(the only one that works offline), writing its ``.npy`` and its annotated
videos into OUT_FOLDER. Without ``--processes`` its own pool rule applies:
``min(cpu_count() - 1, n_videos)``.
"""

import argparse
from pathlib import Path

from skellytracker.process_folder_of_videos import process_folder_of_videos
from skellytracker.trackers.mediapipe_tracker.mediapipe_model_info import (
    MediapipeModelInfo,
    MediapipeTrackingParams,
)

ap = argparse.ArgumentParser()
ap.add_argument("videos")
ap.add_argument("out")
ap.add_argument("--static", type=int, default=0)
ap.add_argument("--processes", type=int, default=None)
args = ap.parse_args()
out = Path(args.out)
params = MediapipeTrackingParams(mediapipe_model_complexity=1, static_image_mode=bool(args.static))
process_folder_of_videos(
    model_info=MediapipeModelInfo(),
    tracking_params=params,
    synchronized_video_path=Path(args.videos),
    output_folder_path=out,
    annotated_video_path=out / "annotated",
    num_processes=args.processes,
)
