"""Calibrate with aniposelib 0.8.0 (in its venv) on any ChArUco board, and time it.

    python anipose_calibrate_board.py VIDEO_FOLDER OUT.toml SQUARES_X SQUARES_Y \
        SQUARE_LENGTH MARKER_LENGTH DICT_SIZE

As ``anipose_calibrate.py`` (``calibrate_videos``'s two steps, every 20th frame
looked at), with the board given: aniposelib's ``CharucoBoard`` with 4-bit
markers from a dictionary of ``DICT_SIZE`` (its boards are never inverted).
"""

import json
import sys
import time
from pathlib import Path

from aniposelib.boards import CharucoBoard
from aniposelib.cameras import CameraGroup

videos = [[str(v)] for v in sorted(Path(sys.argv[1]).glob("*.mp4"))]
out = Path(sys.argv[2])
sx, sy = int(sys.argv[3]), int(sys.argv[4])
square, marker, dict_size = float(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
board = CharucoBoard(sx, sy, square_length=square, marker_length=marker, marker_bits=4,
                     dict_size=dict_size)  # fmt: skip
cgroup = CameraGroup.from_names([Path(v[0]).stem for v in videos])
t0 = time.perf_counter()
rows = cgroup.get_rows_videos(videos, board, verbose=False)
cgroup.set_camera_sizes_videos(videos)
t1 = time.perf_counter()
cgroup.calibrate_rows(rows, board, init_intrinsics=True, init_extrinsics=True, verbose=False)
t2 = time.perf_counter()
cgroup.dump(str(out))
print(json.dumps({"detect_s": t1 - t0, "fit_s": t2 - t1}))
