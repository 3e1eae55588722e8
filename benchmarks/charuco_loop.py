"""The bare loop: one process, cv2.VideoCapture -> gray -> CharucoDetector, video by video.

    python charuco_loop.py VIDEO_FOLDER

The CPU-per-frame floor of mocapflow's ChArUco tracking (the same OpenCV).
"""

import sys
from pathlib import Path

import cv2

board = cv2.aruco.CharucoBoard(
    (7, 5), 1.0, 0.8, cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_250)
)
detector = cv2.aruco.CharucoDetector(board)
for video in sorted(Path(sys.argv[1]).glob("*.mp4")):
    cap = cv2.VideoCapture(str(video))
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        detector.detectBoard(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
