"""BVH motion files from 3-D keypoints: hierarchy, rest pose, joint rotations, writer and reader.

Pure numpy; :func:`mocapflow.export.to_bvh` feeds it a 3-D group turned Y up and
into metres. A BVH file is a tree of joints, each with an ``OFFSET`` from its
parent in the rest pose, and per frame the root's position and every joint's
rotation (:func:`fit_bvh`, :func:`write_bvh`); :func:`read_bvh` parses one
strictly and :func:`bvh_positions` poses it back (forward kinematics).

**Hierarchy.** Every keypoint is a joint named after it (so a keypoint's track
is the head of the bone of that name in Blender), a leaf joint ending in an
``End Site``. MediaPipe's 33 landmarks (:func:`mediapipe_hierarchy`) hang from
``hips`` (the root, at the mid-hip): ``spine`` (at the mid-hip too) leads to
``chest`` (the mid-shoulder), which carries the shoulders, elbows, wrists and
the hand points, and ``neck`` (at the mid-shoulder too), which leads to
``head`` (the mid-ear) with the face points; the hips lead to the knees, the
ankles, the heels and the toes (``foot_index``). Another tracker's keypoints
are joined by the bones of its skeleton (:func:`skeleton_hierarchy`), rooted at
the most central keypoint (the one fewest bones from every other).

**Rotations.** Joints are turned top down, each aiming from where the
skeleton has put it (not from where the 3-D has it), so that one bone's error
does not carry on sideways to every bone after it. A joint with one child turns
by the smallest rotation, in its parent's frame, that takes its rest direction
to the child's 3-D point (no twist is invented). A joint with several children
turns with a frame, so its rotation is fully defined: ``hips``, the trunk's
frame (:func:`mocapflow.body.trunk_frame`); ``chest``, the shoulder line and the
trunk; the others (wrists, ankles, ``head``), the rotation that best takes all
their children's rest offsets onto their 3-D points (least squares, Kabsch),
the offsets being the children's median places in a frame of two of them
(wrist to index and pinky to thumb; ankle to toe and to heel; mid-ear to nose
and the ear line), so a rigid group (a foot, a hand) is reproduced exactly.
Channels are in the conventional ``Zrotation Xrotation Yrotation`` order (the
rotation is ``Rz @ Rx @ Ry``), degrees, unwrapped over time; the root also has
``Xposition Yposition Zposition``, and its ``OFFSET`` is zero. The root's
position is the mid-hip moved by the median of every keypoint's remaining
error (:data:`ROOT_PASSES`): where the whole body fits best, within
millimetres of the mid-hip.

Bone lengths are fixed in a BVH file, while the 3-D's vary from frame to
frame (MediaPipe's by several percent), so the 3-D is reproduced exactly only
where they do not: on the repository's sample, the keypoints come back within
8 mm (median; 23 mm at the 90th percentile) of the filtered 3-D.

**Rest pose** (the ``OFFSET`` s, which Blender imports as the armature's rest
pose): bone lengths are the person's medians over the frames. MediaPipe's
hierarchy is in a T-pose, facing +Z with Y up and the person's left along +X:
trunk up, legs straight down, arms straight out to the sides; the feet, hands
and head keep their median pose relative to the shin, the forearm and the neck.
Other trackers' bones point in their median direction relative to their
parent (the median pose).

**Missing points.** A rotation that cannot be computed in a frame (a point it
needs is NaN) holds its last valid value (before the first valid one, that
one; never valid: the rest pose), and so does the root's position: the motion
never jumps to the rest pose or to the origin. Frames where the person is not
seen at all are named in a warning.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError

__all__ = [
    "Bvh",
    "JOINT_CHANNELS",
    "JointSpec",
    "ROOT_CHANNELS",
    "bvh_positions",
    "euler_zxy",
    "fit_bvh",
    "hierarchy",
    "mediapipe_hierarchy",
    "read_bvh",
    "rotation_matrices",
    "skeleton_hierarchy",
    "write_bvh",
]

logger = logging.getLogger(__name__)

#: The root's channels, and every other joint's.
ROOT_CHANNELS = ("Xposition", "Yposition", "Zposition", "Zrotation", "Xrotation", "Yrotation")
JOINT_CHANNELS = ("Zrotation", "Xrotation", "Yrotation")
_VALID_CHANNELS = {f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}
#: An End Site sits this fraction of its joint's offset beyond the joint (a short last bone).
END_FRACTION = 0.25
#: Passes that move the root to where the whole body fits best (0: the root at the mid-hip).
ROOT_PASSES = 1

Points = tuple[str, ...]  # keypoints averaged to one point


@dataclass(frozen=True)
class JointSpec:
    """One joint of a hierarchy, before it is fitted to the data.

    Attributes
    ----------
    name : str
        The joint's name in the file (a keypoint's, or ``hips``, ``spine``...).
    parent : int
        Index of the parent joint; -1 for the root.
    at : tuple of str
        The keypoints whose mean is the joint's position.
    frame : tuple, optional
        For a joint with several children: two vectors, each ``(plus, minus)``
        (tuples of keypoints, a vector from the mean of ``minus`` to the mean of
        ``plus``), whose Gram-Schmidt frame turns the joint. ``"trunk"``: the
        trunk's frame of :func:`mocapflow.body.trunk_frame`. None: chosen from
        the children.
    rest : tuple of float, optional
        The rest pose: a direction (3 values) for a joint with one child, a
        rotation (9 values, row by row) of the frame above for one with
        several; None: the median pose.
    best_fit : bool
        For a joint with several children: turn it by the rotation that best
        fits all its children (least squares, Kabsch), the frame giving their
        places only; False: by the frame itself.

    """

    name: str
    parent: int
    at: Points
    frame: tuple | str | None = None
    rest: tuple[float, ...] | None = None
    best_fit: bool = True


@dataclass
class Bvh:
    """A BVH file's contents.

    Attributes
    ----------
    names : list of str
        Joint names, depth first as in the file.
    parents : list of int
        Each joint's parent index (-1: the root).
    offsets : numpy.ndarray
        ``(joint, 3)`` rest offsets from the parent.
    channels : list of tuple of str
        Each joint's channels, in the file's order.
    end_sites : dict
        Joint index -> the ``(3,)`` offset of its End Site.
    frame_time : float
        Seconds per frame.
    motion : numpy.ndarray
        ``(frame, channel)``: every joint's channels, in order.

    """

    names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[tuple[str, ...]]
    end_sites: dict[int, np.ndarray] = field(default_factory=dict)
    frame_time: float = 1 / 30
    motion: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))

    def columns(self, joint: int) -> slice:
        """Return the motion columns of a joint's channels."""
        start = sum(len(c) for c in self.channels[:joint])
        return slice(start, start + len(self.channels[joint]))


# ----------------------------------------------------------------------------- hierarchies

_MP_BODY = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
_HEAD_POINTS = _MP_BODY[:11]
_IDENTITY = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def mediapipe_hierarchy() -> list[JointSpec]:
    """Return the hierarchy of MediaPipe's 33 body landmarks (see the module's notes)."""
    hips: Points = ("left_hip", "right_hip")
    shoulders: Points = ("left_shoulder", "right_shoulder")
    joints: list[JointSpec] = []

    def add(name, parent, at=None, frame=None, rest=None, best_fit=True) -> int:
        joints.append(JointSpec(name, parent, at or (name,), frame, rest, best_fit))
        return len(joints) - 1

    root = add("hips", -1, hips, "trunk", _IDENTITY, best_fit=False)
    spine = add("spine", root, hips, rest=(0.0, 1.0, 0.0))
    girdle = ((("left_shoulder",), ("right_shoulder",)), (shoulders, hips))
    chest = add("chest", spine, shoulders, girdle, _IDENTITY, best_fit=False)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        out = (sign, 0.0, 0.0)
        j = add(f"{side}_shoulder", chest, rest=out)
        j = add(f"{side}_elbow", j, rest=out)
        hand = (((f"{side}_index",), (f"{side}_wrist",)), ((f"{side}_thumb",), (f"{side}_pinky",)))
        j = add(f"{side}_wrist", j, frame=hand)
        for point in ("pinky", "index", "thumb"):
            add(f"{side}_{point}", j)
    neck = add("neck", chest, shoulders, rest=(0.0, 1.0, 0.0))
    ears: Points = ("left_ear", "right_ear")
    head = add("head", neck, ears, ((("nose",), ears), (("left_ear",), ("right_ear",))))
    for point in _HEAD_POINTS:
        add(point, head)
    for side in ("left", "right"):
        down = (0.0, -1.0, 0.0)
        j = add(f"{side}_hip", root, rest=down)
        j = add(f"{side}_knee", j, rest=down)
        foot = (
            ((f"{side}_foot_index",), (f"{side}_ankle",)),
            ((f"{side}_heel",), (f"{side}_ankle",)),
        )
        j = add(f"{side}_ankle", j, frame=foot)
        for point in ("heel", "foot_index"):
            add(f"{side}_{point}", j)
    return joints


def _central(names: list[str], adjacency: dict[str, set[str]]) -> str:
    """Return the keypoint fewest bones from every other of its part (ties: the first)."""

    def distances(start: str) -> dict[str, int]:
        seen, queue = {start: 0}, deque([start])
        while queue:
            node = queue.popleft()
            for nxt in sorted(adjacency[node], key=names.index):
                if nxt not in seen:
                    seen[nxt] = seen[node] + 1
                    queue.append(nxt)
        return seen

    sizes = {n: len(distances(n)) for n in names}
    biggest = max(sizes.values())
    return min(
        (n for n in names if sizes[n] == biggest),
        key=lambda n: (max(distances(n).values()), names.index(n)),
    )


def skeleton_hierarchy(keypoints: Sequence[str], skeleton) -> list[JointSpec]:
    """Return a hierarchy from a tracker's bones, rooted at its most central keypoint.

    Parameters
    ----------
    keypoints : sequence of str
        The keypoints' names.
    skeleton : sequence of pairs of str
        The bones (keypoint names); a bone naming an unknown keypoint is left out.

    Returns
    -------
    list of JointSpec
        Depth first; one joint per keypoint the bones reach from the root.
        Keypoints no bone joins to the root's part of the skeleton hang from
        the root (their offsets are their median places in its frame).

    """
    names = [str(k) for k in keypoints]
    adjacency: dict[str, set[str]] = {n: set() for n in names}
    for bone in skeleton:
        a, b = (str(x) for x in bone)
        if a in adjacency and b in adjacency and a != b:
            adjacency[a].add(b)
            adjacency[b].add(a)
    root = _central(names, adjacency)
    children: dict[str, list[str]] = {n: [] for n in names}
    seen, queue = {root}, deque([root])
    while queue:  # breadth first: each keypoint hangs from the joint nearest the root
        node = queue.popleft()
        for nxt in sorted(adjacency[node], key=names.index):
            if nxt not in seen:
                seen.add(nxt)
                children[node].append(nxt)
                queue.append(nxt)
    loose = [n for n in names if n not in seen]
    if loose:
        logger.info("BVH: %d keypoints no bone joins to %s hang from it", len(loose), root)
        children[root] += loose
    joints: list[JointSpec] = []

    def visit(name: str, parent: int) -> None:
        joints.append(JointSpec(name, parent, (name,)))
        me = len(joints) - 1
        for child in children[name]:
            visit(child, me)

    visit(root, -1)
    return joints


def hierarchy(keypoints: Sequence[str], skeleton=None, what: str = "bvh") -> list[JointSpec]:
    """Return the hierarchy for a tracker's keypoints: MediaPipe's, else one from its bones.

    Raises
    ------
    UsageError
        If the keypoints are not MediaPipe's body landmarks and there is no skeleton.

    """
    names = [str(k) for k in keypoints]
    if set(_MP_BODY) <= set(names):
        joints = mediapipe_hierarchy()
        extra = [n for n in names if n not in set(_MP_BODY)]
        return _attach(joints, extra, skeleton or []) if extra else joints
    if not skeleton:
        raise UsageError(
            f"{what}: a BVH needs the tracker's skeleton (its bones) to build its joints' tree, "
            "and the store records none: track with a tracker that declares bones "
            "(-t mediapipe), or export trc, csv or npy"
        )
    return skeleton_hierarchy(names, skeleton)


def _attach(joints: list[JointSpec], extra: list[str], skeleton) -> list[JointSpec]:
    """Hang keypoints beyond MediaPipe's body (Holistic's hands) from it, by the bones."""
    placed = {j.name for j in joints}
    children: dict[str, list[str]] = {}
    pending = set(extra)
    bones = [(str(x), str(y)) for x, y in skeleton]
    bones += [(f"{side}_wrist", f"{side}_hand_wrist") for side in ("left", "right")]  # Holistic
    grew = True
    while pending and grew:
        grew = False
        for a, b in bones:
            for near, far in ((a, b), (b, a)):
                if near in placed and far in pending:
                    children.setdefault(near, []).append(far)
                    placed.add(far)
                    pending.discard(far)
                    grew = True
    if pending:
        logger.info("BVH: %d keypoints no bone joins to the body are left out", len(pending))
    out: list[JointSpec] = []  # depth first again: the template's children, then the new ones
    template_children: dict[int, list[int]] = {}
    for i, j in enumerate(joints):
        template_children.setdefault(j.parent, []).append(i)

    def walk(i: int, parent: int) -> None:
        spec = joints[i]
        out.append(JointSpec(spec.name, parent, spec.at, spec.frame, spec.rest))
        me = len(out) - 1
        for c in template_children.get(i, []):
            walk(c, me)
        for name in children.get(spec.name, []):
            grow(name, me)

    def grow(name: str, parent: int) -> None:
        out.append(JointSpec(name, parent, (name,)))
        me = len(out) - 1
        for name2 in children.get(name, []):
            grow(name2, me)

    walk(0, -1)
    return out


# ----------------------------------------------------------------------------- rotations


def _unit(v: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _gram_schmidt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(time, 3, 3)`` frames, columns ``a``, ``b`` made perpendicular, and their cross."""
    e1 = _unit(a)
    e2 = _unit(b - np.sum(b * e1, axis=-1, keepdims=True) * e1)
    return np.stack([e1, e2, np.cross(e1, e2)], axis=-1)


def _min_rotation(r: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``(time, 3, 3)``: the smallest rotations taking the unit ``r`` to the units ``u``."""
    v = np.cross(r, u)
    c = u @ r
    k = np.zeros(u.shape[:-1] + (3, 3))
    k[..., 0, 1], k[..., 0, 2], k[..., 1, 2] = -v[..., 2], v[..., 1], -v[..., 0]
    k[..., 1, 0], k[..., 2, 0], k[..., 2, 1] = v[..., 2], -v[..., 1], v[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.eye(3) + k + (k @ k) / (1.0 + c)[..., None, None]
    flip = np.isfinite(c) & (c < -1 + 1e-12)  # opposite: half a turn about any perpendicular
    if flip.any():
        axis = np.cross(r, np.eye(3)[np.argmin(np.abs(r))])
        axis /= np.linalg.norm(axis)
        out[flip] = 2 * np.outer(axis, axis) - np.eye(3)
    return out


def _chordal_mean(rotations: np.ndarray) -> np.ndarray:
    """Return the rotation nearest the mean of ``(n, 3, 3)`` rotations (identity for none)."""
    if not len(rotations):
        return np.eye(3)
    u, _, vt = np.linalg.svd(rotations.mean(axis=0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))]) @ vt


def _axis(name: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    out = np.zeros(np.shape(angle) + (3, 3))
    i, j = {"X": (1, 2), "Y": (2, 0), "Z": (0, 1)}[name]
    out[..., "XYZ".index(name), "XYZ".index(name)] = 1.0
    out[..., i, i], out[..., j, j], out[..., i, j], out[..., j, i] = c, c, -s, s
    return out


def rotation_matrices(angles: np.ndarray, order: str = "ZXY") -> np.ndarray:
    """``(..., 3, 3)`` rotations from BVH angles in degrees, applied in the channels' order.

    ``order`` names the axes as the channels list them; the rotation is the
    product of the axis rotations in that order (``ZXY``: ``Rz @ Rx @ Ry``).
    """
    rad = np.radians(np.asarray(angles, dtype=np.float64))
    out = np.broadcast_to(np.eye(3), rad.shape[:-1] + (3, 3)).copy()
    for k, axis in enumerate(order):
        out = out @ _axis(axis, rad[..., k])
    return out


def euler_zxy(rotations: np.ndarray) -> np.ndarray:
    """``(..., 3)`` angles ``(z, x, y)`` in degrees with ``rotations == Rz @ Rx @ Ry``."""
    r = rotations
    x = np.arcsin(np.clip(r[..., 2, 1], -1.0, 1.0))
    z = np.arctan2(-r[..., 0, 1], r[..., 1, 1])
    y = np.arctan2(-r[..., 2, 0], r[..., 2, 2])
    lock = np.hypot(r[..., 2, 0], r[..., 2, 2]) < 1e-9  # x at +-90: y is folded into z
    z = np.where(lock, np.arctan2(r[..., 1, 0], r[..., 0, 0]), z)
    y = np.where(lock, 0.0, y)
    return np.degrees(np.stack([z, x, y], axis=-1))


def _hold(values: np.ndarray, valid: np.ndarray, default: np.ndarray) -> np.ndarray:
    """Fill invalid frames with the last valid value (the first one before it; else default)."""
    out = np.array(values, dtype=np.float64)
    if not valid.any():
        out[:] = default
        return out
    index = np.where(valid, np.arange(len(valid)), -1)
    index = np.maximum.accumulate(index)
    index[index < 0] = np.argmax(valid)
    return out[index]


# ----------------------------------------------------------------------------- fitting


def _median(v: np.ndarray) -> np.ndarray:
    ok = np.isfinite(v).all(axis=-1)
    return np.median(v[ok], axis=0) if ok.any() else np.zeros(v.shape[-1])


def _frames_of(rows: list[int]) -> str:
    """``3-7, 12`` for frames 3, 4, 5, 6, 7 and 12."""
    runs: list[list[int]] = []
    for r in rows:
        if runs and r == runs[-1][1] + 1:
            runs[-1][1] = r
        else:
            runs.append([r, r])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def fit_bvh(
    points: np.ndarray,
    keypoints: Sequence[str],
    skeleton=None,
    fps: float = 30.0,
    what: str = "bvh",
) -> Bvh:
    """Fit a BVH skeleton and its motion to one person's 3-D keypoints.

    Parameters
    ----------
    points : numpy.ndarray
        ``(time, keypoint, 3)``, Y up, in the unit the file is to be in; NaN where missing.
    keypoints : sequence of str
        The keypoints' names.
    skeleton : sequence of pairs of str, optional
        The tracker's bones; needed unless the keypoints are MediaPipe's.
    fps : float
        Frames per second.
    what : str
        What the messages name (the file).

    Returns
    -------
    Bvh
        The hierarchy, rest offsets (median bone lengths), and per frame the
        root's position and every joint's rotation (see the module's notes).

    Raises
    ------
    UsageError
        If there is no skeleton for keypoints that are not MediaPipe's.

    """
    specs = hierarchy(keypoints, skeleton, what)
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts)
    index = {str(k): i for i, k in enumerate(keypoints)}
    unseen = np.where(~np.isfinite(pts).any(axis=(1, 2)))[0]
    if len(unseen):
        logger.warning(
            "%s: the person is not seen in %d of %d frames (%s); the BVH holds the pose seen "
            "last there (the first one seen before it; the rest pose if never seen)",
            what,
            len(unseen),
            n,
            _frames_of(unseen.tolist()),
        )

    def point(names: Points) -> np.ndarray:
        return pts[:, [index[k] for k in names]].mean(axis=1)

    def vector(spec) -> np.ndarray:
        plus, minus = spec
        return point(plus) - point(minus)

    children: dict[int, list[int]] = {i: [] for i in range(len(specs))}
    for i, s in enumerate(specs):
        if s.parent >= 0:
            children[s.parent].append(i)
    position = [point(s.at) for s in specs]
    rest = _rest_pose(specs, children, position, pts, index, vector)
    seen = np.isfinite(position[0]).all(axis=1)
    root = _hold(np.where(seen[:, None], position[0], 0.0), seen, np.zeros(3))
    joint_of = {s.name: j for j, s in enumerate(specs) if s.at == (s.name,)}
    order = [joint_of[k] for k in map(str, keypoints) if k in joint_of]
    targets = np.stack([position[j] for j in order], axis=1)
    for _ in range(ROOT_PASSES):  # the root where the whole body fits best
        _, _, fk = _pose(specs, children, position, rest, root)
        residual = targets - fk[:, order]
        shift = np.zeros((n, 3))
        fits = np.isfinite(residual).all(axis=2).any(axis=1)
        if fits.any():
            with np.errstate(invalid="ignore"):
                shift[fits] = np.nanmedian(residual[fits], axis=1)
        root = root + shift
    local = _pose(specs, children, position, rest, root)[0]
    offsets = rest.offsets
    angles = euler_zxy(local)  # (joint, time, 3)
    angles = np.unwrap(angles, period=360.0, axis=1) if n else angles
    columns = [root] + [angles[i] for i in range(len(specs))]
    motion = np.concatenate(columns, axis=1) if n else np.zeros((0, 3 + 3 * len(specs)))
    ends = {i: END_FRACTION * offsets[i] for i in range(len(specs)) if not children[i]}
    return Bvh(
        names=["_".join(s.name.split()) for s in specs],  # a name is one word in the file
        parents=[s.parent for s in specs],
        offsets=offsets,
        channels=[ROOT_CHANNELS] + [JOINT_CHANNELS] * (len(specs) - 1),
        end_sites=ends,
        frame_time=1.0 / float(fps),
        motion=motion,
    )


@dataclass
class _Rest:
    """The fitted rest pose: offsets, and per joint how it turns."""

    offsets: np.ndarray
    swing: dict[int, np.ndarray]  # joint -> rest direction of its one child
    frames: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray | None]]  # joint -> (g, ok, places)
    turn: dict[int, np.ndarray]  # joint -> the rest rotation q of its frame


def _rest_pose(specs, children, position, pts, index, vector) -> _Rest:
    """Fit the rest pose: median bone lengths, and directions (template or median pose)."""
    n = len(pts)
    rest = _Rest(np.zeros((len(specs), 3)), {}, {}, {})
    world = np.zeros((len(specs), n, 3, 3))
    for i, spec in enumerate(specs):
        above = world[spec.parent] if spec.parent >= 0 else np.broadcast_to(np.eye(3), (n, 3, 3))
        kids = children[i]
        local = np.broadcast_to(np.eye(3), (n, 3, 3))
        if len(kids) == 1 and spec.frame is None:
            d = position[kids[0]] - position[i]
            u = _unit(np.einsum("tji,tj->ti", above, d))
            ok = np.isfinite(u).all(axis=1)
            if spec.rest is not None and len(spec.rest) == 3:
                r = np.asarray(spec.rest, dtype=np.float64)
            else:
                mean = u[ok].mean(axis=0) if ok.any() else np.zeros(3)
                r = mean / np.linalg.norm(mean) if np.linalg.norm(mean) > 0 else np.eye(3)[1]
            length = np.linalg.norm(d, axis=1)[ok]
            rest.offsets[kids[0]] = r * (float(np.median(length)) if length.size else 0.0)
            rest.swing[i] = r
            local = _hold(_min_rotation(r, np.where(ok[:, None], u, r)), ok, np.eye(3))
        elif kids:
            if spec.frame == "trunk":
                from .body import trunk_frame

                stacked = pts.transpose(0, 2, 1)[..., None]
                g = np.stack([f[..., 0] for f in trunk_frame(stacked, index)], axis=-1)
            else:
                a, b = spec.frame if spec.frame is not None else _choose_frame(specs, i, vector)
                g = _gram_schmidt(vector(a), vector(b))
            ok = np.isfinite(g).all(axis=(1, 2))
            vectors = np.stack([position[k] - position[i] for k in kids], axis=1)
            places = _median_places(g, vectors, ok)
            fit = spec.best_fit and np.linalg.matrix_rank(places, tol=1e-9) >= 2
            if fit:
                for _ in range(2):  # best-fit rotations, then the places in them again
                    g, ok = _kabsch(places, vectors)
                    places = _median_places(g, vectors, ok)
            if spec.rest is not None and len(spec.rest) == 9:
                q = np.asarray(spec.rest, dtype=np.float64).reshape(3, 3)
            else:  # the median pose: the frame's mean orientation relative to the parent
                q = _chordal_mean(np.einsum("tji,tjk->tik", above[ok], g[ok]))
            rest.offsets[kids] = places @ q.T
            rest.frames[i] = (g, ok, places if fit else None)
            rest.turn[i] = q
            w = np.einsum("tij,kj->tik", np.where(ok[:, None, None], g, np.eye(3)), q)
            local = _hold(np.einsum("tji,tjk->tik", above, w), ok, np.eye(3))
        world[i] = above @ local
    return rest


def _pose(specs, children, position, rest: _Rest, root: np.ndarray):
    """Turn every joint, top down, to aim from where the skeleton puts it at its children.

    Returns the local and world rotations ``(joint, time, 3, 3)`` and the
    joints' positions ``(time, joint, 3)``.
    """
    n = len(root)
    local = np.zeros((len(specs), n, 3, 3))
    world = np.zeros((len(specs), n, 3, 3))
    fk = np.zeros((n, len(specs), 3))
    for i, spec in enumerate(specs):
        if spec.parent >= 0:
            above = world[spec.parent]
            fk[:, i] = fk[:, spec.parent] + above @ rest.offsets[i]
        else:
            above = np.broadcast_to(np.eye(3), (n, 3, 3))
            fk[:, i] = root
        kids = children[i]
        if i in rest.swing:
            r = rest.swing[i]
            u = _unit(np.einsum("tji,tj->ti", above, position[kids[0]] - fk[:, i]))
            ok = np.isfinite(u).all(axis=1)
            local[i] = _hold(_min_rotation(r, np.where(ok[:, None], u, r)), ok, np.eye(3))
        elif i in rest.frames:
            g, ok, places = rest.frames[i]
            if places is not None:  # best fit from where the joint is
                aims = np.stack([position[k] - fk[:, i] for k in kids], axis=1)
                g, ok = _kabsch(places, aims)
            w = np.einsum("tij,kj->tik", np.where(ok[:, None, None], g, np.eye(3)), rest.turn[i])
            local[i] = _hold(np.einsum("tji,tjk->tik", above, w), ok, np.eye(3))
        else:
            local[i] = np.eye(3)
        world[i] = above @ local[i]
    return local, world, fk


def _median_places(g: np.ndarray, vectors: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``(child, 3)``: the median of each child's vector in the frames ``g`` (``ok`` ones)."""
    rel = np.einsum("tji,tcj->tci", g[ok], vectors[ok])
    return np.stack([_median(rel[:, c]) for c in range(vectors.shape[1])])


def _kabsch(places: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return per frame the rotation that best takes ``places`` to ``vectors``, and where seen.

    Least squares over the children seen in the frame (Kabsch); a frame where
    fewer than two are seen is not.
    """
    seen = np.isfinite(vectors).all(axis=2)
    v = np.where(seen[..., None], vectors, 0.0)
    h = np.einsum("ci,tcj->tij", places, v)  # sum over children of place @ vector^T
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.transpose(0, 2, 1) @ u.transpose(0, 2, 1)))
    fix = np.ones((len(h), 3))
    fix[:, 2] = d
    r = vt.transpose(0, 2, 1) @ (fix[:, :, None] * u.transpose(0, 2, 1))
    ok = (seen.sum(axis=1) >= 2) & np.isfinite(r).all(axis=(1, 2))
    return r, ok


def _choose_frame(specs: list[JointSpec], i: int, vector) -> tuple:
    """Return two vectors that turn a joint of several children.

    To its farthest child, and to the child (or the parent) most across that
    one (the largest median sine between them).
    """
    children = [s.at for s in specs if s.parent == i and s.at != specs[i].at]
    others = [s.at for s in specs if s.parent == i and s.at == specs[i].at]
    candidates = [(at, specs[i].at) for at in children]
    if specs[i].parent >= 0:
        candidates.append((specs[specs[i].parent].at, specs[i].at))
    if len(candidates) < 2:  # a child at the joint itself: its rotation is not seen
        candidates += [(at, specs[i].at) for at in others] or [candidates[0]]

    def median(v: np.ndarray) -> float:
        v = v[np.isfinite(v)]
        return float(np.median(v)) if v.size else 0.0

    vectors = [vector(c) for c in candidates]
    first = int(np.argmax([median(np.linalg.norm(v, axis=1)) for v in vectors]))
    a = _unit(vectors[first])
    sines = [
        -1.0 if k == first else median(np.linalg.norm(np.cross(a, _unit(v)), axis=1))
        for k, v in enumerate(vectors)
    ]
    return candidates[first], candidates[int(np.argmax(sines))]


# ----------------------------------------------------------------------------- files


def _fmt(values, precision: int) -> str:
    return " ".join(f"{v:.{precision}f}" for v in values)


def write_bvh(path: str | Path, bvh: Bvh, precision: int = 8) -> Path:
    """Write a BVH file: tab-indented hierarchy, then one line of numbers per frame.

    Offsets and positions get ``precision`` decimals, rotations 6 (degrees).
    """
    children: dict[int, list[int]] = {i: [] for i in range(len(bvh.names))}
    for i, p in enumerate(bvh.parents):
        if p >= 0:
            children[p].append(i)
    lines = ["HIERARCHY"]

    def joint(i: int, depth: int) -> None:
        pad = "\t" * depth
        lines.append(f"{pad}{'ROOT' if bvh.parents[i] < 0 else 'JOINT'} {bvh.names[i]}")
        lines.append(f"{pad}{{")
        lines.append(f"{pad}\tOFFSET {_fmt(bvh.offsets[i], precision)}")
        lines.append(f"{pad}\tCHANNELS {len(bvh.channels[i])} {' '.join(bvh.channels[i])}")
        for c in children[i]:
            joint(c, depth + 1)
        if i in bvh.end_sites:
            lines.extend([f"{pad}\tEnd Site", f"{pad}\t{{"])
            lines.append(f"{pad}\t\tOFFSET {_fmt(bvh.end_sites[i], precision)}")
            lines.append(f"{pad}\t}}")
        lines.append(f"{pad}}}")

    joint(0, 0)
    lines += ["MOTION", f"Frames: {len(bvh.motion)}", f"Frame Time: {bvh.frame_time:.8f}"]
    kinds = [c.endswith("rotation") for chans in bvh.channels for c in chans]
    digits = [6 if rot else precision for rot in kinds]
    body = [" ".join(f"{v:.{d}f}" for v, d in zip(row, digits, strict=True)) for row in bvh.motion]
    Path(path).write_text("\n".join(lines + body) + "\n")
    return Path(path)


class _Tokens:
    """The hierarchy's words, each with its line number, for the parser."""

    def __init__(self, lines: list[str]):
        self.words = [(w, n + 1) for n, line in enumerate(lines) for w in line.split()]
        self.i = 0

    def next(self, expected: str | None = None) -> tuple[str, int]:
        if self.i >= len(self.words):
            raise ValueError(f"BVH ends early: expected {expected or 'more'}")
        word, line = self.words[self.i]
        self.i += 1
        if expected is not None and word != expected:
            raise ValueError(f"BVH line {line}: expected {expected!r}, found {word!r}")
        return word, line

    def number(self) -> float:
        word, line = self.next()
        try:
            return float(word)
        except ValueError:
            raise ValueError(f"BVH line {line}: expected a number, found {word!r}") from None

    def peek(self) -> str | None:
        return self.words[self.i][0] if self.i < len(self.words) else None


def read_bvh(path: str | Path) -> Bvh:
    """Parse a BVH file strictly.

    The grammar: ``HIERARCHY``, one ``ROOT name { OFFSET x y z CHANNELS n c1..cn
    children }`` where children are ``JOINT`` blocks of the same form or one
    ``End Site { OFFSET x y z }`` (a joint has one or the other); then
    ``MOTION``, ``Frames: N``, ``Frame Time: t`` and exactly N lines of exactly
    as many numbers as there are channels.

    Raises
    ------
    ValueError
        Naming the line at fault, for any departure from the grammar.

    """
    lines = Path(path).read_text().splitlines()
    try:
        split = next(i for i, line in enumerate(lines) if line.strip() == "MOTION")
    except StopIteration:
        raise ValueError("BVH has no MOTION line") from None
    tok = _Tokens(lines[:split])
    tok.next("HIERARCHY")
    bvh = Bvh(names=[], parents=[], offsets=np.zeros((0, 3)), channels=[])
    offsets: list[list[float]] = []

    def block(parent: int) -> None:
        name, line = tok.next()
        if name in ("{", "}", "OFFSET", "CHANNELS", "End", "JOINT", "ROOT"):
            raise ValueError(f"BVH line {line}: a joint needs a name, found {name!r}")
        if name in bvh.names:
            raise ValueError(f"BVH line {line}: joint {name!r} named twice")
        bvh.names.append(name)
        bvh.parents.append(parent)
        me = len(bvh.names) - 1
        tok.next("{")
        tok.next("OFFSET")
        offsets.append([tok.number() for _ in range(3)])
        tok.next("CHANNELS")
        count, line = tok.next()
        if not count.isdigit():
            raise ValueError(f"BVH line {line}: CHANNELS needs a count, found {count!r}")
        chans = tuple(tok.next()[0] for _ in range(int(count)))
        bad = [c for c in chans if c not in _VALID_CHANNELS]
        if bad or len(set(chans)) != len(chans):
            raise ValueError(f"BVH line {line}: bad channels {' '.join(chans)}")
        bvh.channels.append(chans)
        kids = 0
        while True:
            word, line = tok.next()
            if word == "}":
                break
            if word == "JOINT":
                if me in bvh.end_sites:
                    raise ValueError(f"BVH line {line}: a JOINT after the End Site of {name}")
                block(me)
                kids += 1
            elif word == "End":
                tok.next("Site")
                if kids or me in bvh.end_sites:
                    raise ValueError(f"BVH line {line}: {name} has joints or an End Site already")
                tok.next("{")
                tok.next("OFFSET")
                bvh.end_sites[me] = np.array([tok.number() for _ in range(3)])
                tok.next("}")
            else:
                raise ValueError(f"BVH line {line}: expected JOINT, End Site or }}, found {word!r}")
        if not kids and me not in bvh.end_sites:
            raise ValueError(f"BVH: joint {name} has neither joints nor an End Site")

    tok.next("ROOT")
    block(-1)
    if tok.peek() is not None:
        word, line = tok.next()
        raise ValueError(f"BVH line {line}: {word!r} after the root's block (one ROOT only)")
    bvh.offsets = np.asarray(offsets, dtype=np.float64)
    header = [line.split() for line in lines[split + 1 : split + 3]]
    if len(header) < 2 or len(header[0]) != 2 or header[0][0] != "Frames:":
        raise ValueError(f"BVH line {split + 2}: expected 'Frames: N'")
    if len(header[1]) != 3 or header[1][:2] != ["Frame", "Time:"]:
        raise ValueError(f"BVH line {split + 3}: expected 'Frame Time: t'")
    if not header[0][1].isdigit():
        raise ValueError(f"BVH line {split + 2}: bad frame count {header[0][1]!r}")
    frames = int(header[0][1])
    bvh.frame_time = float(header[1][2])
    rows = lines[split + 3 :]
    while rows and not rows[-1].strip():
        rows.pop()
    if len(rows) != frames:
        raise ValueError(f"BVH: Frames: {frames} but {len(rows)} lines of motion")
    width = sum(len(c) for c in bvh.channels)
    motion = np.zeros((frames, width))
    for r, row in enumerate(rows):
        words = row.split()
        if len(words) != width:
            raise ValueError(
                f"BVH line {split + 4 + r}: {len(words)} numbers where the channels need {width}"
            )
        motion[r] = [float(w) for w in words]
    bvh.motion = motion
    return bvh


def bvh_positions(bvh: Bvh, end_sites: bool = False) -> np.ndarray:
    """Pose a BVH file: every joint's world position per frame (forward kinematics).

    A joint's position channels replace its offset (as Blender reads them); its
    rotation channels turn it in their listed order (``Zrotation Xrotation
    Yrotation``: ``Rz @ Rx @ Ry``), after its parent's rotation.

    Parameters
    ----------
    bvh : Bvh
        What :func:`read_bvh` returns.
    end_sites : bool
        Also return the End Sites' positions, after the joints', in joint order.

    Returns
    -------
    numpy.ndarray
        ``(frame, joint [+ end site], 3)``, in the file's unit.

    """
    n = len(bvh.motion)
    out = np.zeros((n, len(bvh.names), 3))
    world = np.zeros((len(bvh.names), n, 3, 3))
    for i in range(len(bvh.names)):
        values = bvh.motion[:, bvh.columns(i)]
        chans = bvh.channels[i]
        where = np.broadcast_to(bvh.offsets[i], (n, 3)).copy()
        for k, axis in enumerate("XYZ"):
            if f"{axis}position" in chans:
                where[:, k] = values[:, chans.index(f"{axis}position")]
        turns = [c for c in chans if c.endswith("rotation")]
        rot = rotation_matrices(
            np.stack([values[:, chans.index(c)] for c in turns], axis=1)
            if turns
            else np.zeros((n, 0)),
            "".join(c[0] for c in turns),
        )
        p = bvh.parents[i]
        if p < 0:
            out[:, i], world[i] = where, rot
        else:
            out[:, i] = out[:, p] + np.einsum("tij,tj->ti", world[p], where)
            world[i] = world[p] @ rot
    if not end_sites:
        return out
    ends = [out[:, i] + world[i] @ bvh.end_sites[i] for i in sorted(bvh.end_sites)]
    return np.concatenate([out, np.stack(ends, axis=1)], axis=1) if ends else out
