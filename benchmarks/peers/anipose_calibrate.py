"""Calibrate with aniposelib 0.8.0 (in its venv), as anipose does, and time it.

    python anipose_calibrate.py VIDEO_FOLDER OUT.toml

``CameraGroup.calibrate_videos`` in its two steps: the board detected in the
videos (``get_rows_videos``; aniposelib looks at every 20th frame by default),
then the fit (``calibrate_rows``: initial poses, then its bundle adjustment).
The board is FreeMoCap's (7x5, DICT_4X4_250) with the synthetic scene's 120 mm
squares.
"""

import json
import sys
import time
from pathlib import Path

from aniposelib.boards import CharucoBoard
from aniposelib.cameras import CameraGroup

videos = [[str(v)] for v in sorted(Path(sys.argv[1]).glob("*.mp4"))]
out = Path(sys.argv[2])
board = CharucoBoard(7, 5, square_length=120.0, marker_length=96.0, marker_bits=4, dict_size=250)
cgroup = CameraGroup.from_names([Path(v[0]).stem for v in videos])
t0 = time.perf_counter()
rows = cgroup.get_rows_videos(videos, board, verbose=False)
cgroup.set_camera_sizes_videos(videos)
t1 = time.perf_counter()
cgroup.calibrate_rows(rows, board, init_intrinsics=True, init_extrinsics=True, verbose=False)
t2 = time.perf_counter()
cgroup.dump(str(out))
print(json.dumps({"detect_s": t1 - t0, "fit_s": t2 - t1}))
