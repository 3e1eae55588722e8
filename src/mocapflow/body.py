"""The body's geometry from the 3-D keypoints: joint angles and the centre of mass (pure numpy).

Every function here takes a block of 3-D positions ``(time, space, keypoint,
individual)`` in the store's layout and returns arrays of the same frames, so
the graph (:mod:`mocapflow.kinematics`) runs them per block of frames and the
result equals one call on the whole recording.

**Joint angles** (:data:`ANGLES`, degrees) are measured in the trunk's frame,
built per frame from the keypoints alone: *left* runs from the right hip to the
left hip, *up* along the trunk (mid-hip to mid-shoulder) made perpendicular to
*left*, and *forward* is *left* x *up*. MediaPipe's landmarks have no pelvis
markers, so the pelvis cannot tilt apart from the trunk: hip and shoulder
angles are relative to the trunk. Flexion and abduction follow the order of
OpenSim's hip and shoulder joints (flexion about the lateral axis, then
ab/adduction out of the sagittal plane), so a limb posed by those two rotations
gives them back exactly. Hinges (knee, elbow) are the angle between their two
segments, 0 with the limb straight. Trunk and pelvis angles are to the world's
up axis, which the 3-D group records (``up_axis``).

**Centre of mass** (:func:`centre_of_mass`): segment centres and mass fractions
from de Leva, P. (1996), *Adjustments to Zatsiorsky-Seluyanov's segment inertia
parameters*, J. Biomech. 29(9):1223-1230, Table 4. The whole-body centre is the
mass-weighted mean of the segment centres, NaN in a frame where a segment is
not seen (never renormalised over the segments that are).
"""

from __future__ import annotations

import numpy as np

from .errors import UsageError

__all__ = [
    "ANGLES",
    "DE_LEVA",
    "SEGMENTS",
    "UP_VECTORS",
    "centre_of_mass",
    "com_confidence",
    "check_keypoints",
    "joint_angles",
    "segment_lengths",
]

#: The world's up axis, as a 3-D group records it, as a vector.
UP_VECTORS = {
    "+x": (1.0, 0.0, 0.0),
    "-x": (-1.0, 0.0, 0.0),
    "+y": (0.0, 1.0, 0.0),
    "-y": (0.0, -1.0, 0.0),
    "+z": (0.0, 0.0, 1.0),
    "-z": (0.0, 0.0, -1.0),
}

#: Every joint angle: its name, the keypoints it reads, its sign and its zero. The README's
#: table is this one; ``side`` stands for ``left`` or ``right``.
ANGLES: dict[str, tuple[str, str, str]] = {
    "side_hip_flexion": (
        "side_hip, side_knee; the trunk's frame",
        "thigh forward of the trunk's long axis, in its sagittal plane",
        "thigh along the trunk's axis, pointing down",
    ),
    "side_hip_adduction": (
        "side_hip, side_knee; the trunk's frame",
        "thigh towards the mid-line, out of the sagittal plane",
        "thigh in the trunk's sagittal plane",
    ),
    "side_knee_flexion": (
        "side_hip, side_knee, side_ankle",
        "shank bent back from the thigh's line",
        "leg straight",
    ),
    "side_ankle_flexion": (
        "side_knee, side_ankle, side_heel, side_foot_index",
        "dorsiflexion (toes towards the shin)",
        "heel-to-toe line at right angles to the shank",
    ),
    "side_shoulder_flexion": (
        "side_shoulder, side_elbow; the trunk's frame",
        "upper arm forward, in the trunk's sagittal plane",
        "arm hanging along the trunk",
    ),
    "side_shoulder_abduction": (
        "side_shoulder, side_elbow; the trunk's frame",
        "upper arm out to the side, away from the sagittal plane",
        "arm in the trunk's sagittal plane",
    ),
    "side_elbow_flexion": (
        "side_shoulder, side_elbow, side_wrist",
        "forearm bent from the upper arm's line",
        "arm straight",
    ),
    "trunk_flexion": (
        "hips, shoulders; the world's up axis",
        "trunk leaning forward",
        "trunk vertical",
    ),
    "trunk_lateral_flexion": (
        "hips, shoulders; the world's up axis",
        "trunk leaning to the person's right",
        "trunk vertical",
    ),
    "pelvis_obliquity": (
        "left_hip, right_hip; the world's up axis",
        "left hip higher than the right",
        "hips level",
    ),
}

#: Angles that need the world's up axis.
WORLD_ANGLES = ("trunk_flexion", "trunk_lateral_flexion", "pelvis_obliquity")

#: Keypoints the angles and the centre of mass read (MediaPipe's names).
NEEDED = tuple(
    f"{side}_{part}"
    for side in ("left", "right")
    for part in (
        "shoulder",
        "elbow",
        "wrist",
        "hip",
        "knee",
        "ankle",
        "heel",
        "foot_index",
        "index",
        "pinky",
        "ear",
    )
)

#: de Leva (1996), Table 4: segment -> (proximal end, distal end, mass fraction, centre of
#: mass from the proximal end as a fraction of the length), for males and females. Ends are
#: keypoints or midpoints of two (``a+b``). The head's centre is put at the ears' midpoint
#: (de Leva's head centre lies at the level of the ear canal; MediaPipe has no vertex).
DE_LEVA: dict[str, dict[str, tuple[str, str, float, float]]] = {
    "male": {
        "head": ("left_ear+right_ear", "left_ear+right_ear", 0.0694, 0.0),
        "trunk": ("left_shoulder+right_shoulder", "left_hip+right_hip", 0.4346, 0.4486),
        "upper_arm": ("shoulder", "elbow", 0.0271, 0.5772),
        "forearm": ("elbow", "wrist", 0.0162, 0.4574),
        "hand": ("wrist", "index+pinky", 0.0061, 0.7900),
        "thigh": ("hip", "knee", 0.1416, 0.4095),
        "shank": ("knee", "ankle", 0.0433, 0.4459),
        "foot": ("heel", "foot_index", 0.0137, 0.4415),
    },
    "female": {
        "head": ("left_ear+right_ear", "left_ear+right_ear", 0.0668, 0.0),
        "trunk": ("left_shoulder+right_shoulder", "left_hip+right_hip", 0.4257, 0.4151),
        "upper_arm": ("shoulder", "elbow", 0.0255, 0.5754),
        "forearm": ("elbow", "wrist", 0.0138, 0.4559),
        "hand": ("wrist", "index+pinky", 0.0056, 0.7474),
        "thigh": ("hip", "knee", 0.1478, 0.3612),
        "shank": ("knee", "ankle", 0.0481, 0.4416),
        "foot": ("heel", "foot_index", 0.0129, 0.4014),
    },
}

#: The segments of :func:`centre_of_mass`, in order (limbs per side).
SEGMENTS = ("head", "trunk") + tuple(
    f"{side}_{seg}"
    for side in ("left", "right")
    for seg in ("upper_arm", "forearm", "hand", "thigh", "shank", "foot")
)


def angle_names() -> list[str]:
    """Return the names of the angle variables, in :data:`ANGLES`' order, sides expanded."""
    names = []
    for key in ANGLES:
        if key.startswith("side_"):
            names += [key.replace("side", side, 1) for side in ("left", "right")]
        else:
            names.append(key)
    return names


def check_keypoints(keypoints, what: str = "kinematics") -> None:
    """Refuse a skeleton without the body landmarks, in one line with the fix.

    Raises
    ------
    UsageError
        Naming the missing keypoints.

    """
    missing = [k for k in NEEDED if k not in set(keypoints)]
    if missing:
        raise UsageError(
            f"{what} needs a body tracker's keypoints (MediaPipe's names); the store has no "
            f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}: track with -t mediapipe"
        )


def _point(position: np.ndarray, index: dict[str, int], name: str) -> np.ndarray:
    """``(time, 3, individual)`` of a keypoint or the mean of ``a+b``."""
    parts = name.split("+")
    return np.mean([position[:, :, index[p], :] for p in parts], axis=0)


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("tsi,tsi->ti", a, b)


def _between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between two vectors per frame, degrees."""
    return np.degrees(np.arctan2(np.linalg.norm(np.cross(a, b, axis=1), axis=1), _dot(a, b)))


def trunk_frame(position: np.ndarray, index: dict[str, int]):
    """Return the trunk's unit axes ``left, up, forward``, each ``(time, 3, individual)``."""
    p = lambda n: _point(position, index, n)  # noqa: E731
    left = _unit(p("left_hip") - p("right_hip"))
    trunk = p("left_shoulder+right_shoulder") - p("left_hip+right_hip")
    up = _unit(trunk - _dot(trunk, left)[:, None] * left)
    return left, up, np.cross(left, up, axis=1)


def joint_angles(position: np.ndarray, keypoints, up_axis: str | None = None) -> np.ndarray:
    """Joint angles per frame, degrees (see :data:`ANGLES`).

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, space, keypoint, individual)``, any length unit.
    keypoints : sequence of str
        The keypoints' names (MediaPipe's).
    up_axis : str, optional
        The world's up axis (``+z``, ...); without it the trunk and pelvis angles are NaN.

    Returns
    -------
    numpy.ndarray
        ``(time, angle, individual)``, in :func:`angle_names`' order; NaN where a
        keypoint it reads is missing.

    """
    index = {str(k): i for i, k in enumerate(keypoints)}
    pos = np.asarray(position, dtype=np.float64)
    p = lambda n: _point(pos, index, n)  # noqa: E731
    left, up, forward = trunk_frame(pos, index)
    out: dict[str, np.ndarray] = {}
    for side, sign in (("left", 1.0), ("right", -1.0)):
        medial = -sign * left
        for joint, (a, b) in {"hip": ("hip", "knee"), "shoulder": ("shoulder", "elbow")}.items():
            seg = _unit(p(f"{side}_{b}") - p(f"{side}_{a}"))
            flexion = np.degrees(np.arctan2(_dot(seg, forward), -_dot(seg, up)))
            sideways = np.degrees(np.arcsin(np.clip(_dot(seg, medial), -1, 1)))
            out[f"{side}_{joint}_flexion"] = flexion
            if joint == "hip":
                out[f"{side}_hip_adduction"] = sideways
            else:
                out[f"{side}_shoulder_abduction"] = -sideways
        for joint, (a, b, c) in {
            "knee": ("hip", "knee", "ankle"),
            "elbow": ("shoulder", "elbow", "wrist"),
        }.items():
            mid = p(f"{side}_{b}")
            out[f"{side}_{joint}_flexion"] = 180.0 - _between(
                p(f"{side}_{a}") - mid, p(f"{side}_{c}") - mid
            )
        shank_up = p(f"{side}_knee") - p(f"{side}_ankle")
        foot = p(f"{side}_foot_index") - p(f"{side}_heel")
        out[f"{side}_ankle_flexion"] = 90.0 - _between(shank_up, foot)
    n_time, n_ind = pos.shape[0], pos.shape[3]
    if up_axis in UP_VECTORS:
        world_up = np.asarray(UP_VECTORS[up_axis])[None, :, None]
        world_up = np.broadcast_to(world_up, (n_time, 3, n_ind))
        left_h = _unit(left - _dot(left, world_up)[:, None] * world_up)
        forward_h = np.cross(left_h, world_up, axis=1)
        trunk = p("left_shoulder+right_shoulder") - p("left_hip+right_hip")
        vertical = _dot(trunk, world_up)
        out["trunk_flexion"] = np.degrees(np.arctan2(_dot(trunk, forward_h), vertical))
        out["trunk_lateral_flexion"] = np.degrees(np.arctan2(-_dot(trunk, left_h), vertical))
        out["pelvis_obliquity"] = np.degrees(np.arcsin(np.clip(_dot(left, world_up), -1, 1)))
    else:
        for name in WORLD_ANGLES:
            out[name] = np.full((n_time, n_ind), np.nan)
    return np.stack([out[name] for name in angle_names()], axis=1)


def centre_of_mass(position: np.ndarray, keypoints, sex: str = "male") -> np.ndarray:
    """Segment centres of mass and the whole body's, from de Leva (1996).

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, space, keypoint, individual)``.
    keypoints : sequence of str
        The keypoints' names (MediaPipe's).
    sex : {"male", "female"}
        Which of de Leva's tables.

    Returns
    -------
    numpy.ndarray
        ``(time, space, 1 + len(SEGMENTS), individual)``: the whole body's centre
        first, then each of :data:`SEGMENTS`; NaN where a segment is not seen.

    """
    if sex not in DE_LEVA:
        raise UsageError(f"--sex {sex}: choose from {', '.join(DE_LEVA)}")
    index = {str(k): i for i, k in enumerate(keypoints)}
    pos = np.asarray(position, dtype=np.float64)
    table = DE_LEVA[sex]
    centres, masses = [], []
    for segment in SEGMENTS:
        side, _, kind = segment.partition("_") if segment not in table else ("", "", segment)
        near, far, mass, ratio = table[kind]
        a, b = (_point(pos, index, _sided(end, side)) for end in (near, far))
        centres.append(a + ratio * (b - a))
        masses.append(mass)
    seg = np.stack(centres, axis=2)
    weights = np.asarray(masses)
    whole = np.einsum("tski,k->tsi", seg, weights) / weights.sum()
    return np.concatenate([whole[:, :, None, :], seg], axis=2)


def com_confidence(confidence: np.ndarray, keypoints, sex: str = "male") -> np.ndarray:
    """Return the confidence of each centre of :func:`centre_of_mass`: its keypoints' lowest.

    Parameters
    ----------
    confidence : numpy.ndarray
        ``(time, keypoint, individual)`` of the 3-D group.
    keypoints : sequence of str
        The keypoints' names.
    sex : str
        Which of de Leva's tables (they name the same keypoints).

    Returns
    -------
    numpy.ndarray
        ``(time, 1 + len(SEGMENTS), individual)``: the whole body's (the lowest of
        all) first.

    """
    index = {str(k): i for i, k in enumerate(keypoints)}
    conf = np.asarray(confidence, dtype=np.float64)
    table = DE_LEVA[sex]
    per_segment = []
    for segment in SEGMENTS:
        side, _, kind = segment.partition("_") if segment not in table else ("", "", segment)
        near, far = table[kind][:2]
        names = {n for end in (near, far) for n in _sided(end, side).split("+")}
        per_segment.append(np.min([conf[:, index[n], :] for n in sorted(names)], axis=0))
    seg = np.stack(per_segment, axis=1)
    return np.concatenate([seg.min(axis=1, keepdims=True), seg], axis=1)


def _sided(end: str, side: str) -> str:
    """``index+pinky`` of the left side -> ``left_index+left_pinky``."""
    return "+".join(f"{side}_{x}" if side else x for x in end.split("+"))


def segment_lengths(position: np.ndarray, keypoints) -> dict[str, float]:
    """Median lengths of the body's segments over the frames, in the positions' unit.

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, space, keypoint)`` of one individual.
    keypoints : sequence of str
        The keypoints' names.

    Returns
    -------
    dict
        ``pelvis_width``, ``shoulder_width``, ``trunk``, and per side ``thigh``,
        ``shank``, ``upper_arm``, ``forearm``, ``heel``, ``toe``, ``foot``
        (ankle to heel, ankle to toe, heel to toe); NaN where never seen.

    """
    index = {str(k): i for i, k in enumerate(keypoints)}
    pos = np.asarray(position, dtype=np.float64)[..., None]

    def length(a: str, b: str) -> float:
        d = np.linalg.norm(_point(pos, index, a) - _point(pos, index, b), axis=1)
        d = d[np.isfinite(d)]
        return float(np.median(d)) if d.size else float("nan")

    out = {
        "pelvis_width": length("left_hip", "right_hip"),
        "shoulder_width": length("left_shoulder", "right_shoulder"),
        "trunk": length("left_hip+right_hip", "left_shoulder+right_shoulder"),
    }
    for side in ("left", "right"):
        for name, (a, b) in {
            "thigh": ("hip", "knee"),
            "shank": ("knee", "ankle"),
            "upper_arm": ("shoulder", "elbow"),
            "forearm": ("elbow", "wrist"),
            "heel": ("ankle", "heel"),
            "toe": ("ankle", "foot_index"),
            "foot": ("heel", "foot_index"),
        }.items():
            out[f"{side}_{name}"] = length(f"{side}_{a}", f"{side}_{b}")
    return out
