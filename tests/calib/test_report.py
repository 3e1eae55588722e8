"""The calibration report on a real fit: residuals, findings, and the page in a browser.

One synthetic ChArUco recording (4 cameras, 120 frames, 640x480, seed 1),
tracked and calibrated through the real pipeline on threads. Its board sweeps
the middle of each image only, so every camera's image corners never see a
corner: the coverage check must name exactly those cells, and nothing else.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import tomllib

import numpy as np
import pytest
import xarray as xr

from mocapflow.calib.report import (
    MIN_TILTED,
    TILT_DEG,
    Finding,
    calibration_residuals,
    diagnose,
    write_calibration_report,
)
from mocapflow.synthetic import synthesize
from mocapflow.trackers import Charuco

SIZE = (640, 480)
CELLS = (
    ("top-left", "top", "top-right"),
    ("left", "centre", "right"),
    ("bottom-left", "bottom", "bottom-right"),
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``(fit, position, object_points, sizes)`` of the calibrated synthetic recording."""
    from mocapflow.pipeline import calibrate

    root = tmp_path_factory.mktemp("calib_report") / "charuco"
    synthesize(root, kind="charuco", cameras=4, frames=120, size=SIZE, seed=1)
    fit, path = calibrate(root, root / "estimated.toml", report=False, cluster="threads")
    ds = xr.open_zarr(root / "mocapflow.zarr", consolidated=False)
    assert [str(v) for v in ds.view.values] == [c.name for c in fit.cameras]
    position = ds.position.isel(individual=0).transpose("view", "time", "space", ...).values
    board = tomllib.loads(path.read_text())["metadata"]["board"]
    params = {f.name: board[f.name] for f in dataclasses.fields(Charuco) if f.init}
    obj = np.asarray(Charuco(**params).board().getChessboardCorners(), np.float64)
    return fit, position, obj, [SIZE] * len(fit.cameras)


def _of(findings: list[Finding], camera: str, word: str) -> list[Finding]:
    return [f for f in findings if f.camera == camera and word in f.problem]


def _named(finding: Finding) -> set[str]:
    """The image cells a coverage finding names."""
    match = re.fullmatch(r"the (.*) of the image never saw a corner", finding.problem)
    assert match, finding
    return set(re.split(r", | and ", match.group(1)))


def _empty_cells(pos_c: np.ndarray) -> set[str]:
    """The test's own count: 3x3 cells of a 640x480 image where no corner was seen."""
    x, y = pos_c[:, 0].ravel(), pos_c[:, 1].ravel()
    ok = np.isfinite(x)
    col = np.minimum((x[ok] * 3 // SIZE[0]).astype(int), 2)
    row = np.minimum((y[ok] * 3 // SIZE[1]).astype(int), 2)
    seen = set(zip(row.tolist(), col.tolist(), strict=True))
    return {CELLS[i][j] for i in range(3) for j in range(3) if (i, j) not in seen}


def _tilt(fit, obj, c: int, frames: np.ndarray) -> np.ndarray:
    """Degrees between the board's normal and camera ``c``'s line of sight, per frame."""
    index = {int(t): f for f, t in enumerate(fit.frames)}
    out = []
    for t in frames:
        pose = fit.board_poses[index[int(t)]]
        ray = pose[:3, :3] @ obj.mean(0) + pose[:3, 3] - fit.cameras[c].center
        cos = abs(pose[:3, 2] @ ray) / np.linalg.norm(ray)
        out.append(np.degrees(np.arccos(min(cos, 1.0))))
    return np.array(out)


def test_residuals_give_the_fits_rms(run):
    fit, position, obj, _ = run
    residuals = calibration_residuals(fit, position, obj)
    assert list(residuals) == [c.name for c in fit.cameras]
    for name, r in residuals.items():
        assert r.ndim == 2 and r.shape[1] == 2 and len(r) > 100
        rms = np.sqrt((r**2).sum(1).mean())
        assert rms == pytest.approx(fit.per_camera_rms[name], rel=1e-6), name
    every = np.concatenate(list(residuals.values()))
    assert np.sqrt((every**2).sum(1).mean()) == pytest.approx(fit.rms, rel=1e-6)


def test_the_good_run_is_named_for_its_uncovered_image_corners_only(run):
    fit, position, obj, sizes = run
    findings = diagnose(fit, position, obj, sizes)
    for c, cam in enumerate(fit.cameras):
        empty = _empty_cells(position[c])
        assert {"top-left", "bottom-right"} & empty  # what this recording really shows
        (coverage,) = _of(findings, cam.name, "never saw a corner")
        assert _named(coverage) == empty, (cam.name, coverage)
        assert "wave the board there" in coverage.fix
    # Tilted views aplenty (17-44 per camera) and sub-pixel errors: nothing else to say.
    assert len(findings) == len(fit.cameras), [str(f) for f in findings]


def test_blanking_a_region_names_it(run):
    fit, position, obj, sizes = run
    w, h = SIZE
    c = next(c for c in range(4) if "right" not in _empty_cells(position[c]))
    name = fit.cameras[c].name
    (before,) = _of(diagnose(fit, position, obj, sizes), name, "never saw a corner")
    assert "right" not in _named(before)
    blanked = position.copy()
    x, y = blanked[c, :, 0], blanked[c, :, 1]
    inside = (x >= 2 * w / 3) & (y >= h / 3) & (y < 2 * h / 3)  # the right-hand middle cell
    assert inside.sum() > 20
    blanked[c, :, 0][inside] = np.nan
    blanked[c, :, 1][inside] = np.nan
    (after,) = _of(diagnose(fit, blanked, obj, sizes), name, "never saw a corner")
    assert _named(after) == _named(before) | {"right"}


def test_face_on_views_only_are_named(run):
    fit, position, obj, sizes = run
    c = 3  # cam4: views from 2 to 68 degrees from face-on
    name = fit.cameras[c].name
    found = np.isfinite(position[c]).all(1).sum(-1)
    frames = np.array([t for t in fit.frames if found[t] >= 6])
    angle = _tilt(fit, obj, c, frames)
    tilted = frames[angle > TILT_DEG]
    assert len(tilted) > MIN_TILTED and not _of(diagnose(fit, position, obj, sizes), name, "tilt")
    for keep, named in ((MIN_TILTED, False), (MIN_TILTED - 1, True), (0, True)):
        blanked = position.copy()
        blanked[c][tilted[keep:]] = np.nan  # the camera saw only its face-on views (and `keep`)
        found_tilt = _of(diagnose(fit, blanked, obj, sizes), name, "tilted views")
        assert bool(found_tilt) == named, (keep, found_tilt)
        if named:
            assert f"({keep} of " in found_tilt[0].problem
            assert f"tilt the board towards and away from {name}" in found_tilt[0].fix
    # Only this camera: the others still saw those frames tilted.
    others = diagnose(fit, blanked, obj, sizes)
    assert all(f.camera == name for f in others if "tilted" in f.problem)


def test_a_camera_above_a_pixel_is_named(run):
    fit, position, obj, sizes = run
    worse = dataclasses.replace(fit, per_camera_rms={**fit.per_camera_rms, "cam2": 1.7})
    findings = [f for f in diagnose(worse, position, obj, sizes) if "px RMS" in f.problem]
    assert [(f.camera, "1.70 px" in f.problem) for f in findings] == [("cam2", True)]
    assert "cam2" in findings[0].fix


def test_the_page_is_self_contained_and_renders(run, tmp_path):
    fit, position, obj, sizes = run
    path = write_calibration_report(tmp_path / "calibration.html", fit, position, obj, sizes)
    assert path == tmp_path / "calibration.html" and not list(tmp_path.glob("*.partial"))
    text = path.read_text()
    assert path.stat().st_size < 4_000_000
    assert not re.search(r"<script[^>]*\bsrc=", text)  # every script inline
    assert not re.search(r"<link[^>]*href=\"https?:", text)
    assert "mocapflow calibration" in text and "never saw a corner" in text
    assert all(cam.name in text for cam in fit.cameras)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        pytest.skip("page written; Debian's chromium is not installed for the screenshot")
    shot = tmp_path / "calibration.png"
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chrome'}",
         "--window-size=1400,1400", "--virtual-time-budget=4000",
         f"--screenshot={shot}", path.as_uri()],
        capture_output=True, timeout=120,
    )  # fmt: skip
    from PIL import Image

    image = Image.open(shot).convert("RGB")
    # The plots are drawn by Bokeh's JavaScript: a page without them has a few greys.
    colours = len(image.getcolors(maxcolors=1 << 24))
    assert colours > 200, "the calibration page rendered blank"
    lower = np.asarray(image)[700:]  # below the summary: the first camera's plots
    assert (lower.std(axis=2) > 40).mean() > 0.005, "no coloured plots below the summary"
