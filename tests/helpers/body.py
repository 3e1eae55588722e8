"""A forward model of the body: known joint-angle curves in, MediaPipe keypoints out.

The oracle for the kinematics tests and benchmark. Written apart from mocapflow's
OpenSim model, in OpenSim's conventions (X forward, Y up, Z to the right; a hip
or shoulder turns by flexion about Z, then ab/adduction about X, then rotation
about the bone; knees flex backwards, ankles dorsiflex), then placed in a Z-up
world in millimetres, as a Qualisys calibration's 3-D is.
"""

from __future__ import annotations

import numpy as np

from mocapflow.trackers.mediapipe_pose import BODY as KEYPOINTS

#: Segment geometry, mm (a 1.69 m adult).
GEOMETRY = {
    "pelvis_width": 180.0,
    "trunk": 520.0,
    "shoulder_width": 360.0,
    "thigh": 430.0,
    "shank": 420.0,
    "upper_arm": 300.0,
    "forearm": 260.0,
    "heel": np.array([-60.0, -60.0, 0.0]),  # from the ankle, in the foot's frame
    "toe": np.array([150.0, -60.0, 0.0]),
}
#: Sole to vertex when standing straight.
STATURE = 60.0 + 420.0 + 430.0 + 520.0 + 260.0
#: OpenSim's axes (rows X, Y, Z) in the world's (Z up): X forward = world +y, Y up = world +z.
OSIM_TO_WORLD = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]]).T

#: Head landmarks from the mid-shoulder point, in the head's frame (neck joint there).
HEAD = {
    "nose": (90.0, 160.0, 0.0),
    "left_eye_inner": (80.0, 185.0, -15.0),
    "left_eye": (75.0, 185.0, -32.0),
    "left_eye_outer": (70.0, 185.0, -48.0),
    "right_eye_inner": (80.0, 185.0, 15.0),
    "right_eye": (75.0, 185.0, 32.0),
    "right_eye_outer": (70.0, 185.0, 48.0),
    "left_ear": (0.0, 170.0, -75.0),
    "right_ear": (0.0, 170.0, 75.0),
    "mouth_left": (80.0, 120.0, -25.0),
    "mouth_right": (80.0, 120.0, 25.0),
}


def _rx(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a):
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _zxy(z, x, y):
    return _rz(z) @ _rx(x) @ _ry(y)


def curves(n: int, fps: float = 60.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Joint-angle curves in degrees (a gait-like cycle with a little of everything), and the
    pelvis's path (mm) and turns, named as mocapflow's angles and OpenSim's coordinates."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / fps
    w = 2 * np.pi * 0.9
    ph = rng.uniform(0, 2 * np.pi, 8)
    out = {}
    for side, shift in (("left", 0.0), ("right", np.pi)):
        out[f"{side}_hip_flexion"] = 15 + 25 * np.sin(w * t + shift)
        out[f"{side}_hip_adduction"] = 4 * np.sin(w * t + shift + ph[0])
        out[f"{side}_hip_rotation"] = 8 * np.sin(w * t + ph[1])
        out[f"{side}_knee_flexion"] = 35 + 30 * np.sin(w * t + shift + 1.2)
        out[f"{side}_ankle_flexion"] = 5 + 12 * np.sin(w * t + shift + 0.5)
        out[f"{side}_shoulder_flexion"] = 10 + 30 * np.sin(w * t + shift + np.pi)
        out[f"{side}_shoulder_abduction"] = 20 + 10 * np.sin(w * t + ph[2])
        out[f"{side}_shoulder_rotation"] = 10 * np.sin(w * t + ph[3])
        out[f"{side}_elbow_flexion"] = 50 + 30 * np.sin(w * t + shift + 2.0)
    out["pelvis_tilt"] = 8 + 4 * np.sin(2 * w * t)  # the trunk's forward lean (no lumbar)
    out["pelvis_list"] = 3 * np.sin(w * t + ph[4])
    out["pelvis_rotation"] = 30 + 10 * np.sin(w * t + ph[5])
    out["neck_flexion"] = 10 * np.sin(w * t + ph[6])
    out["neck_rotation"] = 20 * np.sin(w * t + ph[7])
    out["pelvis_x"] = 400 * t
    out["pelvis_y"] = 910 + 15 * np.sin(2 * w * t)
    out["pelvis_z"] = 20 * np.sin(w * t)
    return out


def standing(n: int = 1) -> dict[str, np.ndarray]:
    """Every angle zero: standing straight, arms down, facing OpenSim's +X."""
    c = {k: np.zeros(n) for k in curves(n)}
    c["pelvis_y"] = np.full(n, 910.0)
    return c


def keypoints(c: dict[str, np.ndarray], g: dict | None = None) -> np.ndarray:
    """MediaPipe's 33 keypoints of the posed body: ``(time, 3, 33, 1)``, mm, world Z up."""
    g = {**GEOMETRY, **(g or {})}
    n = len(c["pelvis_x"])
    out = np.full((n, 33, 3), np.nan)
    idx = {k: i for i, k in enumerate(KEYPOINTS)}
    d = lambda name, i: np.radians(c[name][i])  # noqa: E731
    down = np.array([0.0, -1.0, 0.0])
    for i in range(n):
        root = np.array([c["pelvis_x"][i], c["pelvis_y"][i], c["pelvis_z"][i]])
        rp = _zxy(d("pelvis_tilt", i), d("pelvis_list", i), d("pelvis_rotation", i))
        pts = {}
        shoulder_mid = root + rp @ np.array([0, g["trunk"], 0])
        rh = rp @ _zxy(d("neck_flexion", i), 0.0, d("neck_rotation", i))
        for name, off in HEAD.items():
            pts[name] = shoulder_mid + rh @ np.asarray(off)
        for side, s in (("left", -1.0), ("right", 1.0)):
            # the right side's ab/adduction and rotation axes are the left's mirrored
            hip = root + rp @ np.array([0, 0, s * g["pelvis_width"] / 2])
            r_th = rp @ _zxy(
                d(f"{side}_hip_flexion", i),
                s * d(f"{side}_hip_adduction", i),
                s * d(f"{side}_hip_rotation", i),
            )
            knee = hip + r_th @ (down * g["thigh"])
            r_sh = r_th @ _rz(-d(f"{side}_knee_flexion", i))
            ankle = knee + r_sh @ (down * g["shank"])
            r_ft = r_sh @ _rz(d(f"{side}_ankle_flexion", i))
            pts[f"{side}_hip"], pts[f"{side}_knee"], pts[f"{side}_ankle"] = hip, knee, ankle
            pts[f"{side}_heel"] = ankle + r_ft @ g["heel"]
            pts[f"{side}_foot_index"] = ankle + r_ft @ g["toe"]
            shoulder = shoulder_mid + rp @ np.array([0, 0, s * g["shoulder_width"] / 2])
            r_ua = rp @ _zxy(
                d(f"{side}_shoulder_flexion", i),
                -s * d(f"{side}_shoulder_abduction", i),
                s * d(f"{side}_shoulder_rotation", i),
            )
            elbow = shoulder + r_ua @ (down * g["upper_arm"])
            r_fa = r_ua @ _rz(d(f"{side}_elbow_flexion", i))
            wrist = elbow + r_fa @ (down * g["forearm"])
            pts[f"{side}_shoulder"], pts[f"{side}_elbow"], pts[f"{side}_wrist"] = (
                shoulder,
                elbow,
                wrist,
            )
            for name, off in (("pinky", (10, -80, s * 20)), ("index", (10, -85, -s * 15)),
                              ("thumb", (35, -45, -s * 25))):  # fmt: skip
                pts[f"{side}_{name}"] = wrist + r_fa @ np.asarray(off, float)
        for name, p in pts.items():
            out[i, idx[name]] = OSIM_TO_WORLD @ p
    return out.transpose(0, 2, 1)[..., None]
