"""The oracle for the MediaPipe trackers: a plain sequential MediaPipe run, in its own process.

Every frame of each video, read in order by ``cv2.VideoCapture``, converted to
RGB by ``cv2.cvtColor`` and given to one ``mp.solutions.pose.Pose``; landmarks
become pixels as ``x * width``, ``y * height`` (float32), confidence is the
visibility. It runs in a subprocess so that no MediaPipe graph ever lives in
the test process (a process that forks after using one crashes its children).

    python mediapipe_sequential.py OUT.npz VIDEO... [--tracking] [--masks N]

writes ``position (view, time, 2, 33)``, ``confidence (view, time, 33)`` and,
with ``--masks N``, MediaPipe's person segmentation of the first N frames of
each view, ``masks (view, N, h, w)`` (views padded to the largest size).
"""

import argparse

import cv2
import mediapipe as mp
import numpy as np


def track(path: str, static: bool) -> tuple[np.ndarray, np.ndarray]:
    pose = mp.solutions.pose.Pose(static_image_mode=static, model_complexity=1)
    cap = cv2.VideoCapture(path)
    positions, confidences = [], []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        pos = np.full((2, 33), np.nan, np.float32)
        conf = np.full(33, np.nan, np.float32)
        if res.pose_landmarks is not None:
            arr = np.array(
                [(p.x, p.y, p.visibility) for p in res.pose_landmarks.landmark], np.float32
            )
            pos[0], pos[1], conf[:] = arr[:, 0] * w, arr[:, 1] * h, arr[:, 2]
        positions.append(pos)
        confidences.append(conf)
    return np.stack(positions), np.stack(confidences)


def masks(path: str, n: int) -> np.ndarray:
    pose = mp.solutions.pose.Pose(static_image_mode=True, enable_segmentation=True)
    cap = cv2.VideoCapture(path)
    out = []
    for _ in range(n):
        ok, frame = cap.read()
        res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        out.append(res.segmentation_mask)
    return np.stack(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--tracking", action="store_true")
    ap.add_argument("--masks", type=int, default=0)
    args = ap.parse_args()
    runs = [track(v, not args.tracking) for v in args.videos]
    n = max(len(p) for p, _ in runs)
    position = np.full((len(runs), n, 2, 33), np.nan, np.float32)
    confidence = np.full((len(runs), n, 33), np.nan, np.float32)
    for i, (p, c) in enumerate(runs):
        position[i, : len(p)], confidence[i, : len(c)] = p, c
    data = {"position": position, "confidence": confidence}
    if args.masks:
        ms = [masks(v, args.masks) for v in args.videos]
        h = max(m.shape[1] for m in ms)
        w = max(m.shape[2] for m in ms)
        data["masks"] = np.zeros((len(ms), args.masks, h, w), np.float32)
        for i, m in enumerate(ms):
            data["masks"][i, :, : m.shape[1], : m.shape[2]] = m
    np.savez(args.out, **data)


if __name__ == "__main__":
    main()
