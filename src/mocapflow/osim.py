"""OpenSim: a full-body model built for the person, and inverse kinematics on a block of frames.

Needs the ``[opensim]`` extra (``pip install 'mocapflow[opensim]'``); nothing here
imports ``opensim`` until a function runs.

**The model** (:func:`build_model`) is built in code with OpenSim's API from the
person's own median segment lengths in the 3-D (:func:`mocapflow.body.segment_lengths`),
so no published model file is shipped and no scaling step is needed. Axes are
OpenSim's: X forward, Y up, Z to the right. Joints (all ``CustomJoint``, so each
coordinate is named as in OpenSim's gait models):

===========  ==============================  =====================================
joint        coordinates                     axes
===========  ==============================  =====================================
pelvis       tilt, list, rotation, tx ty tz  free: Z, X, Y, then translations
lumbar       flexion, bending, rotation      ball; held near neutral (see below)
neck         flexion, bending, rotation      ball
hip          flexion, adduction, rotation    ball: Z, then X, then the thigh's Y
knee         flexion                         hinge: flexion positive
ankle        flexion                         hinge: dorsiflexion positive
shoulder     flexion, abduction, rotation    ball: Z, then X, then the arm's Y
elbow        flexion                         hinge
===========  ==============================  =====================================

MediaPipe has no pelvis landmarks, so pelvis tilt and lumbar flexion cannot be
told apart from the hips and shoulders: a weak coordinate task keeps the lumbar
joint near neutral, and the trunk's motion shows as the pelvis's. Markers sit
at MediaPipe's landmarks: joint centres for hips, knees, ankles, shoulders,
elbows and wrists; heel and toe on the foot (placed from the median ankle-heel,
ankle-toe and heel-toe distances, the sole level at zero ankle flexion); the
face's landmarks on the head, at their median place relative to the shoulders.
Hand landmarks are left out (the model has no wrist joint).

**Inverse kinematics** (:func:`solve`) runs OpenSim's ``InverseKinematicsSolver``
frame by frame on a block, as ``InverseKinematicsTool`` does on a whole file.
Once the model is built, frames are independent, so :mod:`mocapflow.kinematics`
runs blocks in parallel; each block starts a few frames early (:data:`WARMUP`)
so that its first kept frame is tracked from a solved one, as in one sequential run.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from .body import DE_LEVA
from .errors import UsageError

__all__ = [
    "COORDINATES",
    "INSTALL",
    "MARKER_WEIGHTS",
    "WARMUP",
    "available",
    "build_model",
    "initial_guess",
    "marker_names",
    "require",
    "solve",
    "write_mot",
]

logger = logging.getLogger(__name__)

#: How to get OpenSim.
INSTALL = "OpenSim inverse kinematics needs the opensim extra: pip install 'mocapflow[opensim]'"
#: Frames solved before a block's first kept frame, and dropped.
WARMUP = 10
#: The solver's accuracy: tighter than the IK tool's default (1e-5), so that a block's result
#: does not depend on the pose its solve started from (chunked = sequential within 0.01 deg).
ACCURACY = 1e-7
#: Weight of the coordinate task holding the lumbar joint near neutral.
LUMBAR_WEIGHT = 0.01
#: Markers a frame needs to be solved.
MIN_MARKERS = 8
#: Marker weights: body landmarks 1, the face's less (many of them, on one small segment).
MARKER_WEIGHTS = {"face": 0.5, "body": 1.0}
FACE = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
)
_SIDES = (("r", "right", 1.0), ("l", "left", -1.0))
#: The model's coordinates, in order: name -> translational (m) or rotational (degrees).
COORDINATES: dict[str, bool] = {
    **{f"pelvis_{c}": False for c in ("tilt", "list", "rotation")},
    **{f"pelvis_{c}": True for c in ("tx", "ty", "tz")},
    **{f"lumbar_{c}": False for c in ("flexion", "bending", "rotation")},
    **{f"neck_{c}": False for c in ("flexion", "bending", "rotation")},
    **{
        f"{j}_{s}": False
        for s, _, _ in _SIDES
        for j in (
            "hip_flexion",
            "hip_adduction",
            "hip_rotation",
            "knee_flexion",
            "ankle_flexion",
            "shoulder_flexion",
            "shoulder_abduction",
            "shoulder_rotation",
            "elbow_flexion",
        )
    },
}


def available() -> bool:
    """Whether ``opensim`` is installed."""
    return importlib.util.find_spec("opensim") is not None


def require():
    """Import and return ``opensim``, or raise a one-line :class:`UsageError` saying how."""
    if not available():
        raise UsageError(INSTALL)
    import opensim

    # OpenSim logs to stdout and to ./opensim.log unless told otherwise: a library stays quiet.
    opensim.Logger.removeFileSink()
    opensim.Logger.setLevelString("error")
    return opensim


def marker_names() -> list[str]:
    """Return the model's markers (MediaPipe's landmarks it carries), in order."""
    body = [
        f"{side}_{p}"
        for _, side, _ in _SIDES
        for p in ("hip", "knee", "ankle", "heel", "foot_index", "shoulder", "elbow", "wrist")
    ]
    return body + list(FACE)


def _foot(lengths: dict, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Heel and toe in the foot's frame (m): sole level, heel behind, toe ahead of the ankle."""
    a, b, c = (lengths[f"{side}_{k}"] for k in ("heel", "toe", "foot"))
    p = (c * c + a * a - b * b) / (2 * c)
    h = np.sqrt(max(a * a - p * p, 0.0))
    return np.array([-p, -h, 0.0]), np.array([c - p, -h, 0.0])


def build_model(
    lengths: dict[str, float],
    face: dict[str, np.ndarray],
    mass: float = 70.0,
    sex: str = "male",
    name: str = "mocapflow",
) -> str:
    """Build the person's model and return it as ``.osim`` XML.

    Parameters
    ----------
    lengths : dict
        Segment lengths in metres, as :func:`mocapflow.body.segment_lengths` names them.
    face : dict
        Each face landmark's place (m) from the mid-shoulder point, in the trunk's
        frame as OpenSim's axes (X forward, Y up, Z right).
    mass : float
        The person's mass, kg; segments get de Leva's fractions of it.
    sex : str
        Which of de Leva's tables.
    name : str
        The model's name.

    Returns
    -------
    str
        The model, as OpenSim writes it.

    """
    osim = require()
    bad = [k for k, v in lengths.items() if not np.isfinite(v) or v <= 0]
    if bad:
        raise UsageError(
            f"cannot build the OpenSim model: no length for {', '.join(bad)} "
            "(those keypoints are never seen); record the whole body in view"
        )
    table = DE_LEVA[sex]
    model = osim.Model()
    model.setName(name)
    model.setGravity(osim.Vec3(0, -9.80665, 0))
    bodies = {}

    def body(key: str, kind: str, length: float):
        _, _, fraction, ratio = table[kind]
        m = max(fraction * mass, 1e-3)
        r = 0.3 * length  # a rod's radius of gyration, roughly
        b = osim.Body(
            key,
            m,
            osim.Vec3(0, -ratio * length, 0),
            osim.Inertia(m * r * r, m * r * r / 10, m * r * r),
        )
        model.addBody(b)
        bodies[key] = b
        return b

    def joint(key, parent, at, child, axes):
        """axes: up to three (coordinate, axis) rotations, then translations if any."""
        st = osim.SpatialTransform()
        rot = [a for a in axes if not COORDINATES[a[0]]]
        trans = [a for a in axes if COORDINATES[a[0]]]
        defaults = [(1, 0, 0), (0, 1, 0), (0, 0, 1)]
        for i in range(6):
            ax = st.updTransformAxis(i)
            chosen = rot if i < 3 else trans
            j = i if i < 3 else i - 3
            if j < len(chosen):
                coord, axis = chosen[j]
                ax.setCoordinateNames(osim.ArrayStr(coord, 1))
                ax.setAxis(osim.Vec3(*axis))
                ax.set_function(osim.LinearFunction())
            else:
                ax.setAxis(osim.Vec3(*_free_axis(rot, j) if i < 3 else defaults[j]))
                ax.set_function(osim.Constant(0))
        pf = model.getGround() if parent is None else bodies[parent]
        jt = osim.CustomJoint(
            key, pf, osim.Vec3(*at), osim.Vec3(0), child, osim.Vec3(0), osim.Vec3(0), st
        )
        model.addJoint(jt)
        return jt

    trunk = lengths["trunk"]
    pelvis = body("pelvis", "trunk", 0.0)
    joint(
        "ground_pelvis",
        None,
        (0, 0, 0),
        pelvis,
        [
            ("pelvis_tilt", (0, 0, 1)),
            ("pelvis_list", (1, 0, 0)),
            ("pelvis_rotation", (0, 1, 0)),
            ("pelvis_tx", (1, 0, 0)),
            ("pelvis_ty", (0, 1, 0)),
            ("pelvis_tz", (0, 0, 1)),
        ],
    )
    torso = body("torso", "trunk", -trunk)  # centre of mass above the joint
    joint("lumbar", "pelvis", (0, 0, 0), torso,
          [("lumbar_flexion", (0, 0, 1)), ("lumbar_bending", (1, 0, 0)),
           ("lumbar_rotation", (0, 1, 0))])  # fmt: skip
    head = body("head", "head", 0.0)
    joint("neck", "torso", (0, trunk, 0), head,
          [("neck_flexion", (0, 0, 1)), ("neck_bending", (1, 0, 0)),
           ("neck_rotation", (0, 1, 0))])  # fmt: skip
    markers = []
    for s, side, sign in _SIDES:
        half_hip = sign * lengths["pelvis_width"] / 2
        thigh_len, shank_len = lengths[f"{side}_thigh"], lengths[f"{side}_shank"]
        thigh = body(f"thigh_{s}", "thigh", thigh_len)
        joint(f"hip_{s}", "pelvis", (0, 0, half_hip), thigh,
              [(f"hip_flexion_{s}", (0, 0, 1)), (f"hip_adduction_{s}", (sign, 0, 0)),
               (f"hip_rotation_{s}", (0, sign, 0))])  # fmt: skip
        shank = body(f"shank_{s}", "shank", shank_len)
        joint(f"knee_{s}", f"thigh_{s}", (0, -thigh_len, 0), shank,
              [(f"knee_flexion_{s}", (0, 0, -1))])  # fmt: skip
        foot = body(f"foot_{s}", "foot", 0.0)
        joint(f"ankle_{s}", f"shank_{s}", (0, -shank_len, 0), foot,
              [(f"ankle_flexion_{s}", (0, 0, 1))])  # fmt: skip
        heel, toe = _foot(lengths, side)
        half_sh = sign * lengths["shoulder_width"] / 2
        ua_len, fa_len = lengths[f"{side}_upper_arm"], lengths[f"{side}_forearm"]
        arm = body(f"humerus_{s}", "upper_arm", ua_len)
        joint(f"shoulder_{s}", "torso", (0, trunk, half_sh), arm,
              [(f"shoulder_flexion_{s}", (0, 0, 1)), (f"shoulder_abduction_{s}", (-sign, 0, 0)),
               (f"shoulder_rotation_{s}", (0, sign, 0))])  # fmt: skip
        forearm = body(f"forearm_{s}", "forearm", fa_len)
        joint(f"elbow_{s}", f"humerus_{s}", (0, -ua_len, 0), forearm,
              [(f"elbow_flexion_{s}", (0, 0, 1))])  # fmt: skip
        markers += [
            (f"{side}_hip", pelvis, (0, 0, half_hip)),
            (f"{side}_knee", shank, (0, 0, 0)),
            (f"{side}_ankle", foot, (0, 0, 0)),
            (f"{side}_heel", foot, tuple(heel)),
            (f"{side}_foot_index", foot, tuple(toe)),
            (f"{side}_shoulder", torso, (0, trunk, half_sh)),
            (f"{side}_elbow", forearm, (0, 0, 0)),
            (f"{side}_wrist", forearm, (0, -fa_len, 0)),
        ]
    for key in FACE:
        markers.append((key, head, tuple(np.asarray(face[key], float))))
    for key, frame, at in markers:
        model.addMarker(osim.Marker(key, frame, osim.Vec3(*at)))
    model.finalizeConnections()
    coord_set = model.updCoordinateSet()
    for i in range(coord_set.getSize()):
        c = coord_set.get(i)
        limit = 50.0 if COORDINATES[c.getName()] else np.pi
        c.setRangeMin(-limit)
        c.setRangeMax(limit)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.osim"
        model.printToXML(str(path))
        return path.read_text()


def _free_axis(rot: list, j: int) -> tuple:
    """Return an axis for an unused rotation slot, apart from the used ones (OpenSim needs 3)."""
    used = [np.asarray(a, float) for _, a in rot]
    for cand in ((1, 0, 0), (0, 1, 0), (0, 0, 1)):
        c = np.asarray(cand, float)
        if all(abs(abs(c @ u) - 1) > 1e-9 for u in used):
            used.append(c)
            if j == len(used) - 1:
                return cand
    return (1, 0, 0)


def _load(model_xml: str):
    osim = require()
    fd, path = tempfile.mkstemp(suffix=".osim")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(model_xml)
        model = osim.Model(path)
    finally:
        os.unlink(path)
    return osim, model


def solve(
    model_xml: str,
    markers: np.ndarray,
    names: list[str],
    times: np.ndarray,
    skip: int = 0,
    guess: np.ndarray | None = None,
) -> np.ndarray:
    """Inverse kinematics of a block of frames.

    Parameters
    ----------
    model_xml : str
        The model (:func:`build_model`).
    markers : numpy.ndarray
        ``(time, marker, 3)``, metres, OpenSim's axes (Y up); NaN where unseen.
    names : list of str
        The markers' names (columns not on the model are ignored).
    times : numpy.ndarray
        Each frame's time, seconds.
    skip : int
        Leading frames solved only to start from a solved pose (see :data:`WARMUP`),
        and left out of the result.
    guess : numpy.ndarray, optional
        ``(time, len(COORDINATES))``, radians or metres: where assembly starts on a
        block's first frame and after a gap (see :func:`initial_guess`), so that it
        lands on the pose a sequential run tracks to; NaN entries start at zero.

    Returns
    -------
    numpy.ndarray
        ``(time - skip, len(COORDINATES) + 3)``: the coordinates (degrees, or metres
        for translations), then the marker error's RMS and maximum (m) and the
        markers used; NaN rows where a frame has fewer than :data:`MIN_MARKERS`
        markers or the solver fails.

    """
    osim, model = _load(model_xml)
    on_model = {
        model.getMarkerSet().get(i).getName() for i in range(model.getMarkerSet().getSize())
    }
    cols = [i for i, n in enumerate(names) if n in on_model]
    labels = [names[i] for i in cols]
    data = np.asarray(markers, float)[:, cols, :]
    out = np.full((len(times) - skip, len(COORDINATES) + 3), np.nan)
    if not cols or len(times) <= skip:
        return out
    state = model.initSystem()
    coord_set = model.getCoordinateSet()
    coords = [coord_set.get(n) for n in COORDINATES]
    scale = np.array([1.0 if COORDINATES[n] else 180 / np.pi for n in COORDINATES])
    weights = osim.SetMarkerWeights()
    for n in labels:
        weights.cloneAndAppend(
            osim.MarkerWeight(n, MARKER_WEIGHTS["face" if n in FACE else "body"])
        )
    refs = osim.SimTKArrayCoordinateReference()
    for n in ("lumbar_flexion", "lumbar_bending", "lumbar_rotation"):
        ref = osim.CoordinateReference(n, osim.Constant(0.0))
        ref.setWeight(LUMBAR_WEIGHT)
        refs.push_back(ref)
    table = osim.TimeSeriesTableVec3()
    table.setColumnLabels(osim.StdVectorString(labels))
    for t, frame in zip(np.asarray(times, float), data, strict=True):
        table.appendRow(float(t), osim.RowVectorVec3([osim.Vec3(*p) for p in frame]))
    solver = osim.InverseKinematicsSolver(model, osim.MarkersReference(table, weights), refs)
    solver.setAccuracy(ACCURACY)
    errors = osim.SimTKArrayDouble()
    enough = np.isfinite(data).all(axis=2).sum(axis=1) >= MIN_MARKERS
    tracking = False
    for i, t in enumerate(np.asarray(times, float)):
        if not enough[i]:
            tracking = False
            continue
        state.setTime(float(t))
        if not tracking and guess is not None:
            for c, v in zip(coords, guess[i], strict=True):
                c.setValue(state, float(v) if np.isfinite(v) else 0.0, False)
        try:  # from the previous frame's pose once one is solved, as the IK tool does
            solver.track(state) if tracking else solver.assemble(state)
        except Exception as exc:  # OpenSim's own failure to converge
            logger.debug("IK failed at t=%.3f: %s", t, exc)
            tracking = False
            continue
        tracking = True
        if i < skip:
            continue
        solver.computeCurrentMarkerErrors(errors)
        err = np.array([errors.getElt(j) for j in range(errors.size())])
        values = np.array([c.getValue(state) for c in coords]) * scale
        out[i - skip] = [*values, np.sqrt(np.mean(err**2)), err.max(), err.size]
    return out


def initial_guess(markers: np.ndarray, angles: np.ndarray, names: list[str]) -> np.ndarray:
    """Return a pose to start assembly from, per frame, from the markers and the geometric angles.

    Parameters
    ----------
    markers : numpy.ndarray
        ``(time, marker, 3)`` in OpenSim's axes (m).
    angles : numpy.ndarray
        ``(time, angle)`` of :func:`mocapflow.body.joint_angles` (degrees).
    names : list of str
        The markers' names.

    Returns
    -------
    numpy.ndarray
        ``(time, len(COORDINATES))``: the pelvis from the trunk's frame, hips,
        shoulders and hinges from the angles (same conventions), the rest zero.

    """
    from .body import angle_names

    index = {n: i for i, n in enumerate(names)}
    pick = lambda n: markers[:, index[n], :]  # noqa: E731
    mid_hip = (pick("left_hip") + pick("right_hip")) / 2
    left = pick("left_hip") - pick("right_hip")
    left /= np.linalg.norm(left, axis=1, keepdims=True)
    trunk = (pick("left_shoulder") + pick("right_shoulder")) / 2 - mid_hip
    up = trunk - (trunk * left).sum(1, keepdims=True) * left
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    forward = np.cross(left, up)
    rot = np.stack([forward, up, -left], axis=2)  # columns: the pelvis's X, Y, Z
    out = np.zeros((len(markers), len(COORDINATES)))
    col = {n: j for j, n in enumerate(COORDINATES)}
    out[:, col["pelvis_tilt"]] = np.arctan2(-rot[:, 0, 1], rot[:, 1, 1])
    out[:, col["pelvis_list"]] = np.arcsin(np.clip(rot[:, 2, 1], -1, 1))
    out[:, col["pelvis_rotation"]] = np.arctan2(-rot[:, 2, 0], rot[:, 2, 2])
    for axis, name in enumerate(("pelvis_tx", "pelvis_ty", "pelvis_tz")):
        out[:, col[name]] = mid_hip[:, axis]
    geometric = angle_names()
    for s, side, _ in _SIDES:
        for joint in ("hip_flexion", "hip_adduction", "knee_flexion", "ankle_flexion",
                      "shoulder_flexion", "shoulder_abduction", "elbow_flexion"):  # fmt: skip
            out[:, col[f"{joint}_{s}"]] = np.radians(angles[:, geometric.index(f"{side}_{joint}")])
    return out


def write_mot(path: str | Path, times: np.ndarray, values: np.ndarray, names: list[str]) -> Path:
    """Write coordinates as an OpenSim motion file (``.mot``, degrees), as the IK tool does.

    Rows with NaN are written as they are (OpenSim reads ``nan``); ``names`` label the columns.
    """
    n, m = values.shape
    header = [
        Path(path).stem,
        "version=1",
        f"nRows={n}",
        f"nColumns={m + 1}",
        "inDegrees=yes",
        "",
        "Units are S.I. units (second, meters, Newtons, ...)",
        "If the header above contains a line with 'inDegrees', this indicates whether "
        "rotational values are in degrees (yes) or radians (no).",
        "",
        "endheader",
        "time\t" + "\t".join(names),
    ]
    rows = [
        "\t".join([f"{t:.6f}", *(f"{v:.6f}" for v in row)])
        for t, row in zip(times, values, strict=True)
    ]
    Path(path).write_text("\n".join(header + rows) + "\n")
    return Path(path)


def run_ik_tool(model_path: str | Path, trc: str | Path, mot: str | Path) -> Path:
    """One sequential ``InverseKinematicsTool`` run on a TRC, as Pose2Sim runs it.

    The same tasks as :func:`solve` (marker weights, the lumbar joint's coordinate
    task) and accuracy: the oracle the chunked run is held to, and the benchmark's peer.

    Parameters
    ----------
    model_path : path
        The ``.osim`` model.
    trc : path
        Markers (a TRC in metres, Y up, as mocapflow exports it).
    mot : path
        The motion to write.

    Returns
    -------
    Path
        ``mot``.

    """
    osim = require()
    model = osim.Model(str(model_path))
    on_model = [
        model.getMarkerSet().get(i).getName() for i in range(model.getMarkerSet().getSize())
    ]
    tasks = osim.IKTaskSet()
    for name in on_model:
        task = osim.IKMarkerTask()
        task.setName(name)
        task.setWeight(MARKER_WEIGHTS["face" if name in FACE else "body"])
        tasks.cloneAndAppend(task)
    for name in ("lumbar_flexion", "lumbar_bending", "lumbar_rotation"):
        task = osim.IKCoordinateTask()
        task.setName(name)
        task.setValueType(osim.IKCoordinateTask.DefaultValue)
        task.setWeight(LUMBAR_WEIGHT)
        tasks.cloneAndAppend(task)
    markers = osim.TimeSeriesTableVec3(str(trc))
    times = markers.getIndependentColumn()
    tool = osim.InverseKinematicsTool()
    tool.setModel(model)
    tool.set_IKTaskSet(tasks)
    tool.setMarkerDataFileName(str(trc))
    tool.setStartTime(times[0])
    tool.setEndTime(times[-1])
    tool.set_accuracy(ACCURACY)
    tool.setOutputMotionFileName(str(mot))
    tool.set_report_errors(False)
    tool.run()
    return Path(mot)
