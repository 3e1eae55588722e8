"""Person association and linking: time per frame at 2, 4 and 8 views with 2-4 people.

A synthetic crowd (:func:`make_scene`, also the ground truth of
``tests/test_associate.py``): MediaPipe's 33 keypoints on walking skeletons,
projected into a ring of cameras, with missed detections, dropped keypoints,
pixel noise, left/right swaps, skeleton-shaped junk, people entering and
leaving, and the slots shuffled per view and frame. Timed: association
(:func:`mocapflow.associate.associate`), the per-person triangulation with the
robust step (:func:`~mocapflow.associate.triangulate_people`), and linking
(:func:`~mocapflow.associate.link_people`), in blocks of ``--block`` frames on one
core. Tracking costs MediaPipe about 20-40 ms per person-frame.

    python benchmarks/association.py [--frames 300] [--block 64] [--json PATH]
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one core, before numpy loads (not when imported by the tests)
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from mocapflow.calib import Camera  # noqa: E402
from mocapflow.synthetic import make_cameras  # noqa: E402
from mocapflow.trackers.mediapipe_pose import BODY  # noqa: E402
from mocapflow.triangulate import CameraSet  # noqa: E402

KEYPOINTS = list(BODY)
SIZE = (1280, 720)
#: Body-frame template (mm): x forward, y left, z up, feet at the origin.
_LEFT = {
    "eye_inner": (90, 15, 1650),
    "eye": (88, 32, 1652),
    "eye_outer": (82, 46, 1650),
    "ear": (10, 75, 1630),
    "shoulder": (0, 185, 1420),
    "elbow": (-10, 210, 1130),
    "wrist": (20, 215, 870),
    "pinky": (35, 215, 790),
    "index": (55, 205, 780),
    "thumb": (55, 190, 820),
    "hip": (0, 100, 950),
    "knee": (25, 105, 520),
    "ankle": (0, 105, 90),
    "heel": (-50, 105, 45),
    "foot_index": (150, 110, 20),
}
_SWING = {"elbow": 0.5, "wrist": 1.0, "pinky": 1.0, "index": 1.0, "thumb": 1.0}
_LEG = {"knee": 0.5, "ankle": 1.0, "heel": 1.0, "foot_index": 1.0}


def template() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the template ``(K, 3)`` mm, and arm and leg swings ``(K,)`` signed by side."""
    pts, arm, leg = [], [], []
    for name in KEYPOINTS:
        if name == "nose":
            pts.append((105, 0, 1610))
            arm.append(0.0)
            leg.append(0.0)
            continue
        if name.startswith("mouth_"):
            side = 1 if name.endswith("left") else -1
            pts.append((92, 25 * side, 1575))
            arm.append(0.0)
            leg.append(0.0)
            continue
        side = 1 if name.startswith("left_") else -1
        part = name.split("_", 1)[1]
        x, y, z = _LEFT[part]
        pts.append((x, y * side, z))
        arm.append(_SWING.get(part, 0.0) * side)
        leg.append(_LEG.get(part, 0.0) * side)
    return np.asarray(pts, float), np.asarray(arm), np.asarray(leg)


def skeleton(centre: np.ndarray, heading: float, phase: float, scale: float = 1.0) -> np.ndarray:
    """A walking skeleton ``(K, 3)`` mm at ``centre`` (x, y on the floor) facing ``heading``."""
    pts, arm, leg = template()
    pts = pts * scale
    pts[:, 0] += 250 * np.sin(phase) * (leg - arm)  # legs and the opposite arms swing
    c, s = np.cos(heading), np.sin(heading)
    rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    return pts @ rot.T + np.array([centre[0], centre[1], 0.0])


@dataclass
class Scene:
    """A synthetic multi-person recording's detections and ground truth.

    ``uv (view, time, 2, keypoint, slot)``, ``conf (view, time, keypoint, slot)``,
    ``truth (time, view, slot)`` the true person of each slot (-1 junk, -2 empty),
    ``points (time, 3, keypoint, person)`` the true 3-D points (NaN when absent),
    and ``swapped (time, view, person)`` whether a left/right swap was applied.
    """

    cameras: list[Camera]
    cams: CameraSet
    uv: np.ndarray
    conf: np.ndarray
    truth: np.ndarray
    points: np.ndarray
    swapped: np.ndarray


def _paths(n_people: int, frames: int, fps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Floor centres ``(T, person, 2)`` mm, headings ``(T, person)``, presence ``(T, person)``."""
    t = np.arange(frames) / fps
    centres = np.zeros((frames, n_people, 2))
    present = np.ones((frames, n_people), bool)
    # Person 0 and 1 circle in opposite directions (they pass each other 0.8 m
    # apart twice a lap); person 2 crosses the room and leaves; person 3 arrives
    # late and walks a slow loop.
    specs = [
        (500.0, 0.35, 0.0),
        (1300.0, -0.25, np.pi / 2),
        (None, None, None),
        (900.0, 0.2, np.pi),
    ]
    for p in range(n_people):
        radius, rate, phase = specs[p % 4]
        if radius is None:  # a straight line across the room, seen frames 15 % to 75 %
            lo, hi = int(0.15 * frames), int(0.75 * frames)
            s = np.clip((np.arange(frames) - lo) / max(hi - lo, 1), 0, 1)
            centres[:, p, 0] = -1700 + 3400 * s
            centres[:, p, 1] = -1900 + 200 * s
            present[:, p] = (np.arange(frames) >= lo) & (np.arange(frames) < hi)
            continue
        ang = phase + 2 * np.pi * rate * t
        centres[:, p, 0] = radius * np.cos(ang)
        centres[:, p, 1] = radius * np.sin(ang)
        if p == 3:
            present[:, p] = np.arange(frames) >= int(0.3 * frames)
    vel = np.gradient(centres, axis=0)
    heading = np.arctan2(vel[..., 1], vel[..., 0])
    return centres, heading, present


def make_scene(
    n_views: int = 6,
    n_people: int = 3,
    frames: int = 200,
    *,
    seed: int = 0,
    noise_px: float = 2.0,
    miss: float = 0.05,
    drop: float = 0.05,
    junk: float = 0.15,
    swap: float = 0.05,
    extra_slots: int = 2,
    fps: float = 30.0,
) -> Scene:
    """Make a synthetic crowd's detections (see the module docstring); seeded."""
    rng = np.random.default_rng(seed)
    cameras = make_cameras(n_views, SIZE, rng, radius=5000.0)
    cams = CameraSet.from_cameras(cameras)
    centres, heading, present = _paths(n_people, frames, fps)
    k = len(KEYPOINTS)
    slots = n_people + extra_slots
    points = np.full((frames, 3, k, n_people), np.nan)
    for f in range(frames):
        for p in range(n_people):
            if present[f, p]:
                sk = skeleton(
                    centres[f, p], heading[f, p], 2 * np.pi * 0.9 * f / fps + p, 1 + 0.05 * p
                )
                points[f, :, :, p] = sk.T
    pairs = [
        (i, KEYPOINTS.index("right_" + n[5:]))
        for i, n in enumerate(KEYPOINTS)
        if n.startswith("left_")
    ]
    uv = np.full((n_views, frames, 2, k, slots), np.nan)
    conf = np.full((n_views, frames, k, slots), np.nan)
    truth = np.full((frames, n_views, slots), -2, np.int64)
    swapped = np.zeros((frames, n_views, n_people), bool)
    w, h = SIZE
    for v, cam in enumerate(cameras):
        flat = np.nan_to_num(np.moveaxis(points, 1, -1).reshape(-1, 3))  # (T*K*P, 3)
        proj = cam.project(flat).reshape(frames, k, n_people, 2)
        depth = cam.to_camera(flat)[:, 2].reshape(frames, k, n_people)
        inside = (proj[..., 0] >= 0) & (proj[..., 0] < w) & (proj[..., 1] >= 0) & (proj[..., 1] < h)
        inside &= (depth > 0) & np.isfinite(points[:, 0])
        for f in range(frames):
            dets, ids = [], []
            for p in range(n_people):
                seen = inside[f, :, p]
                if seen.sum() < k // 2 or rng.random() < miss:
                    continue
                d = proj[f, :, p] + rng.normal(0, noise_px, (k, 2))
                c = rng.uniform(0.6, 1.0, k)
                lost = ~seen | (rng.random(k) < drop)
                d[lost] = np.nan
                c[lost] = np.nan
                if rng.random() < swap:  # one or several left/right pairs exchanged
                    chosen = rng.choice(len(pairs), rng.integers(1, len(pairs) + 1), replace=False)
                    for q in chosen:
                        a, b = pairs[q]
                        d[[a, b]] = d[[b, a]]
                        c[[a, b]] = c[[b, a]]
                    swapped[f, v, p] = True
                dets.append((d, c))
                ids.append(p)
            while len(dets) < slots and rng.random() < junk:  # skeleton-shaped junk
                fake = skeleton(
                    rng.uniform(-2000, 2000, 2), rng.uniform(-np.pi, np.pi), rng.uniform(0, 6)
                )
                d = cam.project(fake) + rng.normal(0, noise_px, (k, 2))
                if cam.to_camera(fake)[:, 2].min() <= 0:
                    break
                d[(d[:, 0] < 0) | (d[:, 0] >= w) | (d[:, 1] < 0) | (d[:, 1] >= h)] = np.nan
                c = np.where(np.isfinite(d[:, 0]), rng.uniform(0.5, 1.0, k), np.nan)
                dets.append((d, c))
                ids.append(-1)
            order = rng.permutation(slots)[: len(dets)]
            for (d, c), p, s in zip(dets, ids, order, strict=True):
                uv[v, f, :, :, s] = d.T
                conf[v, f, :, s] = c
                truth[f, v, s] = p
    return Scene(cameras, cams, uv, conf, truth, points, swapped)


def main() -> None:
    from mocapflow.associate import associate, link_people, summarize_people, triangulate_people

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--block", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=Path("docs/benchmark-association.json"))
    args = parser.parse_args()
    cv2.setNumThreads(1)
    rows = []
    for n_views in (2, 4, 8):
        for n_people in (2, 3, 4):
            scene = make_scene(n_views, n_people, args.frames, seed=n_views * 10 + n_people)
            best = {"associate": np.inf, "triangulate": np.inf, "link": np.inf}
            for _ in range(args.repeats):
                spent = dict.fromkeys(best, 0.0)
                state = None
                for lo in range(0, args.frames, args.block):
                    uv = scene.uv[:, lo : lo + args.block]
                    conf = scene.conf[:, lo : lo + args.block]
                    t0 = time.perf_counter()
                    slots, cost = associate(uv, conf, scene.cams, keypoints=KEYPOINTS)
                    t1 = time.perf_counter()
                    people = triangulate_people(
                        uv, conf, scene.cams, slots, cost=cost, keypoints=KEYPOINTS
                    )
                    t2 = time.perf_counter()
                    _, state = link_people(summarize_people(people.position), state=state)
                    t3 = time.perf_counter()
                    spent["associate"] += t1 - t0
                    spent["triangulate"] += t2 - t1
                    spent["link"] += t3 - t2
                best = {k: min(best[k], spent[k]) for k in best}
            ms = {k: 1000 * v / args.frames for k, v in best.items()}
            ms["total"] = sum(ms.values())
            rows.append({"views": n_views, "people": n_people, "ms_per_frame": ms})
            print(
                f"{n_views} views, {n_people} people: "
                + ", ".join(f"{k} {v:.2f}" for k, v in ms.items())
                + " ms/frame"
            )
    result = {
        "what": "ms per frame, best of repeats, one core; association + robust triangulation "
        "+ linking over a synthetic crowd (MediaPipe's 33 keypoints, 2 spare slots per view)",
        "frames": args.frames,
        "block": args.block,
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
