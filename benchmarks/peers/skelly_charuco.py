"""Run skellytracker's folder processing with its ChArUco tracker (in skellytracker's venv).

    python skelly_charuco.py VIDEO_FOLDER OUT_FOLDER [--bare]

Stock: ``process_folder_of_videos`` as FreeMoCap calls it (its pool rule and its
annotated videos). ``--bare``: the same tracker's ``process_video`` on every
video in this process, without the annotated videos: its loop at its fastest.
"""

import argparse
from pathlib import Path

from skellytracker.process_folder_of_videos import process_folder_of_videos
from skellytracker.trackers.charuco_tracker.charuco_model_info import (
    CharucoModelInfo,
    CharucoTrackingParams,
)
from skellytracker.trackers.charuco_tracker.charuco_tracker import CharucoTracker

ap = argparse.ArgumentParser()
ap.add_argument("videos")
ap.add_argument("out")
ap.add_argument("--bare", action="store_true")
args = ap.parse_args()
out = Path(args.out)
if args.bare:
    for video in sorted(Path(args.videos).glob("*.mp4")):
        CharucoTracker(squares_x=7, squares_y=5).process_video(video, None, use_tqdm=False)
else:
    process_folder_of_videos(
        model_info=CharucoModelInfo(),
        tracking_params=CharucoTrackingParams(),
        synchronized_video_path=Path(args.videos),
        output_folder_path=out,
        annotated_video_path=out / "annotated",
    )
