"""The biomechanics stage: joint angles, centre of mass and OpenSim inverse kinematics of a store.

:func:`kinematics_store` reads a 3-D group (``filtered`` when it is whole, else
``points3d``) and writes three groups, each computed per block of frames on the
cluster:

- ``angles``: joint angles in degrees, one variable per angle, ``(time, individual)``
  (:func:`mocapflow.body.joint_angles`);
- ``com``: the whole body's centre of mass and each segment's, as keypoints of a
  movement poses dataset, mm (:func:`mocapflow.body.centre_of_mass`);
- ``ik``: with OpenSim, each person's model is built from their segment lengths
  (:func:`mocapflow.osim.build_model`) and inverse kinematics runs per block of
  :data:`~mocapflow.schema.IK_FRAMES` frames (:func:`mocapflow.osim.solve`); one
  variable per coordinate, and the marker error per frame (frames above
  :data:`~mocapflow.schema.IK_FLAG_MM` are flagged, not hidden).

Beside the store it writes each person's ``.osim`` model, the ``.mot`` motion and a
TRC of the centre of mass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import body, ledger, osim
from . import store as _store
from .cluster.session import ClusterOptions, Session, Work
from .errors import UsageError
from .schema import (
    ANGLES,
    COM,
    DEFAULT_MASS,
    IK,
    IK_FLAG_MM,
    IK_FRAMES,
    KINEMATICS_GROUPS,
    TRIANGULATE_FRAMES,
    software_attrs,
    strings,
)

if TYPE_CHECKING:
    import xarray as xr
    from distributed import Client

__all__ = [
    "KinematicsResult",
    "angles_dataset",
    "com_dataset",
    "describe",
    "ik_dataset",
    "kinematics_store",
    "person_model",
]

logger = logging.getLogger(__name__)

NO_UP = (
    "{where}: the world's up axis is not known, so trunk and pelvis angles are NaN and "
    "IK takes the calibration's Y as up; calibrate with --origin board on a level board, or "
    "use a Qualisys calibration"
)


@dataclass
class KinematicsResult:
    """What :func:`kinematics_store` wrote.

    Attributes
    ----------
    store : Path
        The store.
    source : str
        The 3-D group read.
    groups : list of str
        The groups written.
    files : list of Path
        Models, motions and the centre-of-mass TRC, beside the store.
    unseen : dict
        Per individual, the frames (indices) with no angles (keypoints missing).
    ik : dict
        Per individual: frames solved, unsolved frame indices, marker RMS median and
        maximum (mm), and the flagged frames' indices.
    notes : list of str
        Warnings worth repeating (no up axis, OpenSim not installed).

    """

    store: Path
    source: str
    groups: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    unseen: dict = field(default_factory=dict)
    ik: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _attrs(points: xr.Dataset, source: str, **extra) -> dict:
    keep = ("fps", "time_unit", "up_axis", "views")
    return {
        **software_attrs(),
        **{k: points.attrs[k] for k in keep if k in points.attrs and points.attrs[k] is not None},
        "source_group": source,
        **extra,
    }


def _by_time(points: xr.Dataset):
    """Return the position as a Dask array in blocks of frames, whole along the other axes."""
    return points.position.data.rechunk({0: TRIANGULATE_FRAMES, 1: -1, 2: -1, 3: -1})


def angles_dataset(points: xr.Dataset, source: str = "filtered") -> xr.Dataset:
    """Return the joint angles of a 3-D group, lazily, one task per block of frames.

    Parameters
    ----------
    points : xarray.Dataset
        A 3-D group (MediaPipe's keypoints).
    source : str
        Its name, recorded in the attributes.

    Returns
    -------
    xarray.Dataset
        One variable per angle (:func:`mocapflow.body.angle_names`), ``(time, individual)``, deg.

    """
    import dask.array as da
    import xarray as xr

    keypoints = [str(k) for k in points.keypoint.values]
    body.check_keypoints(keypoints, "joint angles")
    up = points.attrs.get("up_axis")
    names = body.angle_names()
    pos = _by_time(points)
    arr = da.map_blocks(
        body.joint_angles,
        pos,
        keypoints=keypoints,
        up_axis=up,
        dtype=np.float64,
        drop_axis=2,
        chunks=(pos.chunks[0], (len(names),), pos.chunks[3]),
    )
    variables = {}
    for j, name in enumerate(names):
        key = name.replace("left_", "side_").replace("right_", "side_")
        reads, sign, zero = body.ANGLES[key]
        attrs = {
            "units": "degrees",
            "keypoints": reads.replace("side", name.split("_")[0]) if "side" in key else reads,
            "positive": sign,
            "zero": zero,
        }
        variables[name] = (("time", "individual"), arr[:, j, :], attrs)
    return xr.Dataset(
        variables,
        coords={"time": points.time.values, "individual": points.individual.values},
        attrs=_attrs(points, source, ds_type="angles", angles_reference=body.__name__),
    )


def com_dataset(
    points: xr.Dataset, source: str = "filtered", sex: str = "male", mass: float | None = None
) -> xr.Dataset:
    """Return the centres of mass of a 3-D group, lazily, as a movement poses dataset.

    Parameters
    ----------
    points : xarray.Dataset
        A 3-D group (MediaPipe's keypoints).
    source : str
        Its name, recorded in the attributes.
    sex : str
        Which of de Leva's tables.
    mass : float, optional
        The person's mass (kg): each segment's mass is written too.

    Returns
    -------
    xarray.Dataset
        ``position (time, space, keypoint, individual)`` in mm, keypoints ``com``
        then :data:`mocapflow.body.SEGMENTS`.

    """
    import dask.array as da
    import xarray as xr

    keypoints = [str(k) for k in points.keypoint.values]
    body.check_keypoints(keypoints, "the centre of mass")
    pos = _by_time(points)
    names = ["com", *body.SEGMENTS]
    arr = da.map_blocks(
        body.centre_of_mass,
        pos,
        keypoints=keypoints,
        sex=sex,
        dtype=np.float64,
        chunks=(pos.chunks[0], (3,), (len(names),), pos.chunks[3]),
    )
    conf = points.confidence.data.rechunk({0: TRIANGULATE_FRAMES, 1: -1, 2: -1})
    confidence = da.map_blocks(
        body.com_confidence,
        conf,
        keypoints=keypoints,
        sex=sex,
        dtype=np.float64,
        chunks=(conf.chunks[0], (len(names),), conf.chunks[2]),
    )
    table = body.DE_LEVA[sex]
    fractions = [1.0] + [table[s.split("_", 1)[1] if s.startswith(("left_", "right_")) else s][2]
                         for s in body.SEGMENTS]  # fmt: skip
    ds = xr.Dataset(
        {
            "position": (("time", "space", "keypoint", "individual"), arr, {"units": "mm"}),
            "confidence": (
                ("time", "keypoint", "individual"),
                confidence,
                {"description": "the lowest confidence of the keypoints it is made from"},
            ),
            "mass_fraction": (("keypoint",), np.asarray(fractions), {"source": "de Leva 1996"}),
        },
        coords={
            "time": points.time.values,
            "space": strings("xyz"),
            "keypoint": strings(names),
            "individual": points.individual.values,
        },
        attrs=_attrs(
            points,
            source,
            ds_type="poses",
            space_unit="mm",
            anthropometry=f"de Leva (1996), J. Biomech. 29(9):1223-1230, Table 4, {sex}",
            sex=sex,
        ),
    )
    if mass is not None:
        ds["segment_mass"] = (("keypoint",), np.asarray(fractions) * mass, {"units": "kg"})
        ds.attrs["mass_kg"] = float(mass)
    return ds


def _osim_markers(position: np.ndarray, up: str | None) -> np.ndarray:
    """``(time, space, keypoint)`` mm in the world -> ``(time, keypoint, 3)`` m, OpenSim's axes."""
    from .export import TO_Y_UP

    rot = TO_Y_UP.get(up, TO_Y_UP["+y"])
    return np.einsum("ij,tjk->tki", rot, np.asarray(position, float)) / 1000.0


def person_model(
    position: np.ndarray, keypoints, up: str | None, mass: float = DEFAULT_MASS, sex: str = "male",
    name: str = "mocapflow",
) -> str:  # fmt: skip
    """Build one person's OpenSim model from their 3-D keypoints.

    Parameters
    ----------
    position : numpy.ndarray
        ``(time, space, keypoint)`` of one person, mm.
    keypoints : sequence of str
        The keypoints' names.
    up : str or None
        The world's up axis.
    mass : float
        kg.
    sex : str
        Which of de Leva's tables.
    name : str
        The model's name.

    Returns
    -------
    str
        The ``.osim`` XML.

    """
    keypoints = [str(k) for k in keypoints]
    index = {k: i for i, k in enumerate(keypoints)}
    pos = np.asarray(position, float)
    lengths = {k: v / 1000.0 for k, v in body.segment_lengths(pos, keypoints).items()}
    left, upv, forward = (a[..., 0] for a in body.trunk_frame(pos[..., None], index))
    mid = (pos[:, :, index["left_shoulder"]] + pos[:, :, index["right_shoulder"]]) / 2
    face = {}
    for key in osim.FACE:
        d = pos[:, :, index[key]] - mid
        local = np.stack([(d * forward).sum(1), (d * upv).sum(1), -(d * left).sum(1)], axis=1)
        local = local[np.isfinite(local).all(axis=1)]
        face[key] = np.median(local, axis=0) / 1000.0 if len(local) else np.zeros(3)
    del up  # the lengths and the face's places do not depend on the world's axes
    return osim.build_model(lengths, face, mass=mass, sex=sex, name=name)


def _solve_block(model_xml, position, keypoints, up, times, skip):
    """One IK task: a block of one person's positions (mm, world) to coordinates."""
    position = np.asarray(position, float)
    markers = _osim_markers(position, up)
    angles = body.joint_angles(position[..., None], keypoints, up)[..., 0]
    guess = osim.initial_guess(markers, angles, list(keypoints))
    return osim.solve(model_xml, markers, list(keypoints), times, skip, guess)


def ik_dataset(
    points: xr.Dataset,
    models: dict[str, str],
    source: str = "filtered",
    chunk_frames: int = IK_FRAMES,
) -> xr.Dataset:
    """Return inverse kinematics of a 3-D group, lazily: one task per person and block of frames.

    Parameters
    ----------
    points : xarray.Dataset
        A 3-D group.
    models : dict
        Per individual, the ``.osim`` XML (:func:`person_model`).
    source : str
        The group's name, recorded in the attributes.
    chunk_frames : int
        Frames per task; each also solves :data:`mocapflow.osim.WARMUP` frames before.

    Returns
    -------
    xarray.Dataset
        One variable per coordinate ``(time, individual)`` (degrees; m for the
        pelvis's translations), ``marker_rms`` and ``marker_max`` (mm),
        ``markers_used`` and ``flagged`` (RMS above the threshold).

    """
    import dask
    import dask.array as da
    import xarray as xr

    if chunk_frames < 1:
        raise UsageError(f"--ik-frames must be at least 1, got {chunk_frames}")
    keypoints = tuple(str(k) for k in points.keypoint.values)
    up = points.attrs.get("up_axis")
    times = np.asarray(points.time.values, float)
    n = len(times)
    width = len(osim.COORDINATES) + 3
    people = []
    for ind in points.individual.values:
        pos = points.position.sel(individual=ind).data  # (time, space, keypoint)
        blocks = []
        for start in range(0, n, chunk_frames):
            stop = min(start + chunk_frames, n)
            lo = max(0, start - osim.WARMUP)
            task = dask.delayed(_solve_block, pure=True)(
                models[str(ind)], pos[lo:stop], keypoints, up, times[lo:stop], start - lo
            )
            blocks.append(da.from_delayed(task, shape=(stop - start, width), dtype=np.float64))
        people.append(da.concatenate(blocks, axis=0))
    arr = da.stack(people, axis=-1)  # (time, column, individual)
    variables = {}
    for j, (name, linear) in enumerate(osim.COORDINATES.items()):
        variables[name] = (
            ("time", "individual"),
            arr[:, j, :],
            {"units": "m" if linear else "degrees"},
        )
    k = len(osim.COORDINATES)
    rms = arr[:, k, :] * 1000.0
    variables["marker_rms"] = (("time", "individual"), rms, {"units": "mm"})
    variables["marker_max"] = (("time", "individual"), arr[:, k + 1, :] * 1000.0, {"units": "mm"})
    variables["markers_used"] = (("time", "individual"), arr[:, k + 2, :], {})
    variables["flagged"] = (
        ("time", "individual"),
        rms > IK_FLAG_MM,
        {"description": f"marker RMS error above {IK_FLAG_MM:g} mm"},
    )
    return xr.Dataset(
        variables,
        coords={"time": times, "individual": points.individual.values},
        attrs=_attrs(
            points,
            source,
            ds_type="opensim_ik",
            solver="OpenSim InverseKinematicsSolver",
            accuracy=osim.ACCURACY,
            ik_frames=chunk_frames,
            warmup_frames=osim.WARMUP,
            flag_mm=IK_FLAG_MM,
        ),
    )


def _frames(indices: np.ndarray) -> list[int]:
    return [int(i) for i in np.flatnonzero(indices)]


def kinematics_store(
    store: str | Path,
    *,
    group: str | None = None,
    ik: bool | None = None,
    mass: float | None = None,
    sex: str = "male",
    ik_frames: int = IK_FRAMES,
    out_dir: str | Path | None = None,
    cluster: ClusterOptions | Session | Client | str | None = None,
) -> KinematicsResult:
    """Write a store's joint angles, centres of mass and (with OpenSim) inverse kinematics.

    Parameters
    ----------
    store : path
        A store with a 3-D group.
    group : str, optional
        The 3-D group; default ``filtered`` when whole, else ``points3d``.
    ik : bool, optional
        Run OpenSim IK: None runs it when ``opensim`` is installed (and says how
        to install it otherwise); True requires it.
    mass : float, optional
        The person's mass, kg (segment masses; the model's default is 70 kg).
    sex : str
        Which of de Leva's tables.
    ik_frames : int
        Frames per IK task.
    out_dir : path, optional
        Where models, motions and the centre-of-mass TRC go; default beside the store.
    cluster : ClusterOptions, Session, Client or str, optional
        Where to compute (one cluster for the three groups).

    Returns
    -------
    KinematicsResult
        What was written.

    """
    from .export import check_owner, export_stem, record_owner, to_trc
    from .runner import _write_group

    store = Path(store)
    if mass is not None and not (np.isfinite(mass) and 0 < mass < 500):
        raise UsageError(f"--mass {mass}: give the person's mass in kg (0 to 500)")
    if sex not in body.DE_LEVA:
        raise UsageError(f"--sex {sex}: choose from {', '.join(body.DE_LEVA)}")
    source = ledger.choose_group(store, group)
    if stale := ledger.freshness(store).get(source):
        logger.warning("%s/%s is stale: %s", store, source, stale)
    points = _store.open_group(store, source)
    keypoints = [str(k) for k in points.keypoint.values]
    body.check_keypoints(keypoints)
    if ik is True:
        osim.require()
    run_ik = osim.available() if ik is None else ik
    result = KinematicsResult(store, source)
    up = points.attrs.get("up_axis")
    if up not in body.UP_VECTORS:
        note = NO_UP.format(where=f"{store}/{source}")
        logger.warning("%s", note)
        result.notes.append(note)
    if ik is None and not run_ik:
        logger.warning("%s", osim.INSTALL)
        result.notes.append(osim.INSTALL)
    folder = Path(out_dir) if out_dir is not None else store.parent
    folder.mkdir(parents=True, exist_ok=True)
    stem = export_stem(store)
    people = [str(i) for i in points.individual.values]
    lazy = {ANGLES: angles_dataset(points, source), COM: com_dataset(points, source, sex, mass)}
    files: dict[str, Path] = {}
    if run_ik:
        position = points.position.values  # small: (time, 3, keypoint, individual) floats
        models = {}
        for j, ind in enumerate(people):
            who = f".{ind}" if len(people) > 1 else ""
            files[f"model{j}"] = folder / f"{stem}{who}.osim"
            seen = np.isfinite(position[..., j]).any(axis=(1, 2))
            if not seen.any():
                continue
            models[ind] = person_model(
                position[..., j], keypoints, up, mass or DEFAULT_MASS, sex, name=f"{stem}{who}"
            )
        if models:
            chosen = points.sel(individual=list(models))
            lazy[IK] = ik_dataset(chosen, models, source, ik_frames)
    for path in files.values():
        check_owner(path, store)
    n_blocks = len(_by_time(points).chunks[0])
    outer = Session(Work(max(n_blocks, 1), 0, 1), cluster)
    with outer:
        for name, ds in lazy.items():
            tasks = n_blocks if name != IK else len(ds.marker_rms.data.chunks[0]) * ds.sizes[
                "individual"]  # fmt: skip
            _write_group(Session(Work(tasks, 0, 1), outer), tasks, ds, store, name)
            result.groups.append(name)
    angles = _store.open_group(store, ANGLES)
    values = np.stack([angles[v].values for v in angles.data_vars], axis=1)
    for j, ind in enumerate(people):
        lost = ~np.isfinite(values[:, :, j]).any(axis=1)
        result.unseen[ind] = _frames(lost)
    com = _store.open_group(store, COM)
    com_trc = folder / f"{stem}.com.trc"
    check_owner(com_trc, store)
    to_trc(com, com_trc)
    record_owner(com_trc, store, COM)
    result.files.append(com_trc)
    if IK in result.groups:
        solved = _store.open_group(store, IK)
        for j, ind in enumerate(str(i) for i in solved.individual.values):
            who = f".{ind}" if len(people) > 1 else ""
            model_path = folder / f"{stem}{who}.osim"
            model_path.write_text(models[ind])
            record_owner(model_path, store, IK)
            values = np.stack([solved[c].values[:, j] for c in osim.COORDINATES], axis=1)
            mot = osim.write_mot(
                folder / f"{stem}{who}.ik.mot", solved.time.values, values, list(osim.COORDINATES)
            )
            record_owner(mot, store, IK)
            result.files += [model_path, mot]
            rms = solved.marker_rms.values[:, j]
            ok = np.isfinite(rms)
            result.ik[ind] = {
                "solved": int(ok.sum()),
                "frames": int(len(rms)),
                "unsolved": _frames(~ok),
                "rms_median_mm": float(np.median(rms[ok])) if ok.any() else float("nan"),
                "rms_max_mm": float(rms[ok].max()) if ok.any() else float("nan"),
                "flagged": _frames(solved.flagged.values[:, j]),
            }
    return result


def describe(store: str | Path) -> list[str]:
    """Return one line per kinematics group of a store (``mocapflow info``), none if absent.

    Parameters
    ----------
    store : str or Path
        A mocapflow store.

    Returns
    -------
    list of str
        ``angles``: how many angles, from which group; ``com``: segments and mass;
        ``ik``: per person the frames solved, the marker error and the frames flagged.
    """
    store = Path(store)
    records = ledger.group_records(store)
    lines = []
    for name in KINEMATICS_GROUPS:
        if name not in records or not _store.has_group(store, name):
            continue
        ds = _store.open_group(store, name)
        source = ds.attrs.get("source_group", "?")
        if name == ANGLES:
            lines.append(f"{name}: {len(ds.data_vars)} joint angles (degrees) from {source}")
        elif name == COM:
            mass = ds.attrs.get("mass_kg")
            lines.append(
                f"{name}: whole body and {ds.sizes['keypoint'] - 1} segments (de Leva 1996, "
                f"{ds.attrs.get('sex', 'male')}) from {source}" + (f", {mass:g} kg" if mass else "")
            )
        else:
            for who in ds.individual.values:
                rms = ds.marker_rms.sel(individual=who).values
                solved = np.isfinite(rms)
                flagged = int(ds.flagged.sel(individual=who).values.sum())
                text = f"{name}: {who}: {int(solved.sum())} of {len(rms)} frames solved"
                if solved.any():
                    text += (
                        f", marker RMS median {np.median(rms[solved]):.1f} mm, "
                        f"max {rms[solved].max():.1f} mm"
                    )
                limit = ds.attrs.get("flag_mm", IK_FLAG_MM)
                text += f", {flagged} flagged (RMS above {limit:g} mm)"
                lines.append(text)
    return lines
