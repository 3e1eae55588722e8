"""Time skellytracker's annotated-video writing, inside its own process (its venv).

    python skelly_annotate.py VIDEO_FOLDER OUT_FOLDER RESULT_JSON

Runs ``MediapipeHolisticTracker(model_complexity=1).process_video`` on every
video of the folder, one after another in one process (skellytracker's pool
rule, ``min(cpu_count() - 1, n_videos)``, gives one process on 2 cores), with
its annotated video written (``VideoHandler``: OpenCV's ``mp4v`` writer), and
times apart, by wrapping skellytracker's own functions:

* ``decode``: ``cv2.VideoCapture.read``;
* ``annotate``: the tracker's ``annotate_image`` (MediaPipe's drawing utils);
* ``write``: ``VideoHandler.add_frame`` and ``close`` (the encoding);
* ``track``: ``process_image`` less ``annotate``.

``annotate + write`` is what the annotated videos cost on top of tracking;
``decode + annotate + write`` is what a pass that only draws would cost.
"""

import json
import sys
import time
import types
from pathlib import Path

import cv2
from skellytracker.trackers.base_tracker import base_tracker, video_handler
from skellytracker.trackers.mediapipe_tracker.mediapipe_holistic_tracker import (
    MediapipeHolisticTracker,
)

videos, out, result = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
out.mkdir(parents=True, exist_ok=True)
spent = {"decode": 0.0, "annotate": 0.0, "write": 0.0, "process_image": 0.0}


def timed(name, fn):
    def wrapper(*args, **kwargs):
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[name] += time.perf_counter() - t

    return wrapper


class TimedCapture:
    """``cv2.VideoCapture`` with its ``read`` timed (a wrapper: a Python subclass of
    OpenCV 4.8's capture crashes the garbage collector)."""

    def __init__(self, *args):
        self._capture = cv2.VideoCapture(*args)

    def read(self, *args):
        t = time.perf_counter()
        try:
            return self._capture.read(*args)
        finally:
            spent["decode"] += time.perf_counter() - t

    def __getattr__(self, name):
        return getattr(self._capture, name)


class _Cv2(types.ModuleType):
    """cv2 as skellytracker's base tracker sees it: the same, with the capture timed."""

    VideoCapture = TimedCapture

    def __getattr__(self, name):
        return getattr(cv2, name)


base_tracker.cv2 = _Cv2("cv2")  # the module's own cv2 reference
handler = video_handler.VideoHandler
handler.add_frame = timed("write", handler.add_frame)
handler.close = timed("write", handler.close)
MediapipeHolisticTracker.annotate_image = timed("annotate", MediapipeHolisticTracker.annotate_image)
MediapipeHolisticTracker.process_image = timed(
    "process_image", MediapipeHolisticTracker.process_image
)

frames = 0
start = time.perf_counter()
for video in sorted(videos.glob("*.mp4")):
    tracker = MediapipeHolisticTracker(model_complexity=1)
    data = tracker.process_video(video, output_video_filepath=out / video.name, use_tqdm=False)
    frames += len(data)
wall = time.perf_counter() - start
spent["track"] = spent.pop("process_image") - spent["annotate"]
result.write_text(
    json.dumps({"frames": frames, "wall_s": wall, **{f"{k}_s": v for k, v in spent.items()}})
)
