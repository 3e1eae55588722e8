"""The demo: a real recording of a person, then a synthetic one scored against its truth.

1. **People.** The Pose2Sim single-person sample (4 real cameras, Qualisys
   calibration) is tracked with MediaPipe in parallel chunks, triangulated,
   filtered and exported (``.trc``, ``.csv``, ``.npy``).
2. **Ground truth.** A synthetic ChArUco recording is calibrated and a
   synthetic marker recording reconstructed, then compared with the scene's
   known 3-D points.

Each part returns its figures; the CLI prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import RecordingError
from .ledger import summary
from .pipeline import PipelineResult, run_pipeline
from .schema import FILTERED, POINTS3D
from .store import open_group

__all__ = ["SAMPLE", "DemoPart", "find_sample", "pose_demo", "synthetic_demo"]

#: The sample's folder name under ``samples/``.
SAMPLE = "pose2sim_single_person"
#: Its calibration file.
SAMPLE_CALIBRATION = "Calib.qca.txt"


@dataclass
class DemoPart:
    """What one part of the demo made and measured.

    Attributes
    ----------
    result : PipelineResult
        The pipeline run.
    summary : dict
        :func:`mocapflow.ledger.summary` of the store.
    truth : dict
        For the synthetic part: camera-centre and 3-D errors against the truth.

    """

    result: PipelineResult
    summary: dict
    truth: dict = field(default_factory=dict)


def find_sample(path: str | Path | None = None) -> Path:
    """Return the sample recording: ``path``, else ``samples/`` of this checkout or the cwd.

    Raises
    ------
    RecordingError
        If no sample is found; the message says where to get it.

    """
    candidates = (
        [Path(path)]
        if path
        else [Path(__file__).resolve().parents[2] / "samples" / SAMPLE, Path("samples") / SAMPLE]
    )
    for folder in candidates:
        if (folder / SAMPLE_CALIBRATION).is_file():
            return folder
    raise RecordingError(
        f"{candidates[0]}: the sample recording is not there; give --sample PATH "
        f"(a clone of the repository has it in samples/{SAMPLE})"
    )


def _part(result: PipelineResult) -> DemoPart:
    return DemoPart(result, summary(result.store))


def pose_demo(folder: str | Path, sample: str | Path | None = None, cluster=None) -> DemoPart:
    """Track the real sample with MediaPipe, triangulate, filter and export it.

    Parameters
    ----------
    folder : path
        Where the store and the exports go (the sample is only read).
    sample : path, optional
        The sample recording (see :func:`find_sample`).
    cluster : ClusterOptions or str, optional
        Where to compute, and the progress callback (see :func:`mocapflow.process`).

    Returns
    -------
    DemoPart
        The run and its figures.

    """
    rec = find_sample(sample)
    result = run_pipeline(
        rec,
        calibration=rec / SAMPLE_CALIBRATION,
        tracker="mediapipe",
        out=Path(folder) / "pose.zarr",
        formats=("trc", "csv", "npy"),
        cluster=cluster,
        overwrite=True,
    )
    return _part(result)


def synthetic_demo(
    folder: str | Path, frames: int = 300, cameras: int = 4, cluster=None
) -> DemoPart:
    """Calibrate from a synthetic ChArUco recording, reconstruct markers, score them.

    Parameters
    ----------
    folder : path
        Where both recordings are made.
    frames, cameras : int
        The marker recording's length and camera count.
    cluster : ClusterOptions or str, optional
        Where to compute, and the progress callback (see :func:`mocapflow.process`).

    Returns
    -------
    DemoPart
        With ``truth``: ``camera_centre_mm`` per camera and ``rmse_mm`` /
        ``median_mm`` / ``points`` per 3-D group.

    """
    from .calib import align_worlds, read_toml
    from .synthetic import TRUE_CALIBRATION, synthesize

    root = Path(folder)
    calrec, recording = root / "calibration", root / "recording"
    for folder, kind, n in ((calrec, "charuco", 300), (recording, "markers", frames)):
        synthesize(
            folder, kind=kind, cameras=cameras, frames=n, size=(1280, 720), seed=1, overwrite=True
        )
    result = run_pipeline(
        recording,
        calibration_recording=calrec,
        tracker="markers",
        formats=("csv", "trc", "npy"),
        cluster=cluster,
        overwrite=True,
    )
    part = _part(result)
    gt = xr.open_zarr(recording / "ground_truth.zarr", consolidated=False)  # synthetic truth
    # The calibration's world has camera 1 at its origin; the ground truth's is the
    # scene's. Compare in one frame: align the two by the camera centres.
    truth, _ = read_toml(recording / TRUE_CALIBRATION)
    est = result.calibration_fit.cameras
    rot, shift = align_worlds(est, [truth[c.name] for c in est])
    part.truth["camera_centre_mm"] = {
        c.name: float(np.linalg.norm(rot @ c.center + shift - truth[c.name].center)) for c in est
    }
    for group in (POINTS3D, FILTERED):
        ds = open_group(result.store, group)
        pos = np.einsum("ij,tjkn->tikn", rot, ds.position.values) + shift[:, None, None]
        d = np.linalg.norm(pos - gt.position.values, axis=1)
        part.truth[group] = {
            "rmse_mm": float(np.sqrt(np.nanmean(d**2))),
            "median_mm": float(np.nanmedian(d)),
            "points": int(np.isfinite(d).sum()),
        }
    return part
