"""The bare loop: one process, ``cv2.VideoCapture`` -> RGB -> one MediaPipe model, video by video.

    python pose_loop.py VIDEO_FOLDER --kind pose|holistic --static 0|1

This is the per-frame cost floor mocapflow's tracking tasks are held to (the
same model, the same mode, no Dask, no store). Prints the frames done as JSON.
"""

import argparse
import json
from pathlib import Path

import cv2
from mediapipe.python.solutions import holistic, pose

ap = argparse.ArgumentParser()
ap.add_argument("videos")
ap.add_argument("--kind", default="pose")
ap.add_argument("--static", type=int, default=1)
args = ap.parse_args()
cls = {"pose": pose.Pose, "holistic": holistic.Holistic}[args.kind]
frames = 0
for video in sorted(Path(args.videos).glob("*.mp4")):
    model = cls(static_image_mode=bool(args.static), model_complexity=1)
    cap = cv2.VideoCapture(str(video))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        model.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        frames += 1
    model.close()
print(json.dumps({"frames": frames}))
