"""The run report as a page people read: sections, one palette, the 3-D player in Chromium.

The player is checked in Debian's headless Chromium (the page's JavaScript
really runs, WebGL included): the scene is found in a screenshot by its
background, holds the person's colour, and changes between ``#frame=0`` and
a later frame.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import xarray as xr

from mocapflow.palette import person_colours, rgb, view_colours
from mocapflow.player import (
    MAX_FRAMES,
    SCENE_BACKGROUND,
    decimation,
    ordinal,
    player_html,
    prepare,
    up_vector,
)
from mocapflow.report import run_report_path, view_errors, write_run_report

SECTIONS = ("Summary", "Views", "3-D", "Quality")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _screenshot(url: str, shot: Path, profile: Path, height: int = 2600) -> np.ndarray:
    """Return a screenshot (RGB) of a page in headless Chromium, after its scripts ran."""
    from PIL import Image

    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", f"--window-size=1200,{height}",
         "--virtual-time-budget=8000", f"--screenshot={shot}", url],
        capture_output=True, timeout=180,
    )  # fmt: skip
    return np.asarray(Image.open(shot).convert("RGB")).astype(int)


def _scene(image: np.ndarray) -> np.ndarray:
    """The player's scene in a screenshot: the rows and columns full of its background."""
    bg = np.abs(image - np.array(rgb(SCENE_BACKGROUND))).sum(-1) <= 3
    rows, cols = np.flatnonzero(bg.sum(1) > 50), np.flatnonzero(bg.sum(0) > 50)
    assert len(rows) > 100 and len(cols) > 100, "no 3-D scene on the page"
    return image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _near(image: np.ndarray, colour: str, tolerance: int = 40) -> int:
    return int((np.abs(image - np.array(rgb(colour))).sum(-1) <= tolerance).sum())


# -- pieces, no store ----------------------------------------------------------------


def test_decimation_says_what_is_shown():
    assert decimation(100) == (1, "showing all 100 frames")
    assert decimation(MAX_FRAMES)[0] == 1
    step, sentence = decimation(36000)  # 10 minutes at 60 fps
    assert step == 120
    assert sentence == (
        "showing every 120th frame (300 of 36000) for display; the store holds them all"
    )
    assert decimation(301) == (
        2,
        "showing every 2nd frame (151 of 301) for display; the store holds them all",
    )
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 111, 112)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd",
        "111th", "112th",
    ]  # fmt: skip


def test_up_axis():
    up, note = up_vector("+z")
    assert up.tolist() == [0, 0, 1] and note is None
    assert up_vector("-y")[0].tolist() == [0, -1, 0]
    up, note = up_vector(None)
    assert up.tolist() == [0, -1, 0] and "drawn with its -y up" in note
    # cameras standing level in a z-up world: their images' -y is +z
    level = np.array([[0.05, 0.0, 0.99], [-0.05, 0.02, 0.99]])
    up, note = up_vector(None, level)
    assert up.tolist() == [0, 0, 1] and "drawn with +z up" in note


def _long_group(frames: int, people: int = 2) -> xr.Dataset:
    """A 3-D group of two walkers, ``frames`` frames at 60 fps, with cameras and bones."""
    from mocapflow.calib import Camera, look_at

    t = np.arange(frames) / 60.0
    keypoints = ["head", "left_hip", "right_hip", "left_foot", "right_foot"]
    base = np.array([[0, 0, 1700], [-150, 0, 950], [150, 0, 950], [-150, 0, 50], [150, 0, 50]])
    pos = np.zeros((frames, 3, len(keypoints), people))
    for p in range(people):
        walk = np.stack([1000 * np.sin(t / 3 + p), 800 * p + 100 * t % 500, 0 * t], axis=1)
        pos[..., p] = (base[None] + walk[:, None, :]).transpose(0, 2, 1) + 0.123
    pos[5, :, 0, 0] = np.nan  # a missed head
    cams = {}
    for i, angle in enumerate(np.linspace(0, 2 * np.pi, 4, endpoint=False)):
        eye = np.array([4000 * np.cos(angle), 4000 * np.sin(angle), 2000.0])
        rot = look_at(eye, np.array([0.0, 0.0, 1000.0]))
        cam = Camera(f"cam{i + 1:02d}", (640, 480), np.array([[500, 0, 320], [0, 500, 240],
                     [0, 0, 1.0]]), np.zeros(5), cv2.Rodrigues(rot)[0].ravel(),
                     -rot @ eye)  # fmt: skip
        cams[cam.name] = cam.to_dict()
    return xr.Dataset(
        {"position": (("time", "space", "keypoint", "individual"), pos)},
        coords={"time": t, "space": ["x", "y", "z"], "keypoint": keypoints,
                "individual": [f"person{p}" for p in range(people)]},
        attrs={"fps": 60.0, "time_unit": "seconds", "up_axis": "+z", "cameras": cams,
               "skeleton": [["head", "left_hip"], ["head", "right_hip"], ["left_hip", "left_foot"],
                            ["right_hip", "right_foot"], ["left_hip", "right_hip"]]},
    )  # fmt: skip


def test_a_long_recording_is_decimated_and_said():
    group = _long_group(3000)
    views = ["cam01", "cam02", "cam03", "cam04"]
    player = prepare(group, views, group="filtered")
    assert player.frames.tolist() == list(range(0, 3000, 10))
    assert player.positions.shape == (2, 300, 5, 3)
    np.testing.assert_array_equal(player.positions[np.isfinite(player.positions)] % 1, 0)
    assert [c[0] for c in player.cameras] == views
    centre = np.array(player.cameras[0][1])
    np.testing.assert_allclose(centre, [4000, 0, 2000], atol=1e-6)  # Camera.center
    page = player_html(player)
    assert "showing every 10th frame (300 of 3000) for display; the store holds them all" in page
    for colour in [*person_colours(player.people).values(), *view_colours(views).values()]:
        assert colour in page
    assert "null" in page  # the missed head
    assert len(page) < 4_815_765 + 400_000  # plotly.js, and a few hundred kB of frames
    short = player_html(prepare(group.isel(time=slice(0, 200)), views))
    assert "showing all 200 frames" in short


# -- a real store --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_store(sample_run, tmp_path_factory) -> Path:
    """A private copy of the real sample's store (MediaPipe, filtered 3-D, 4 views)."""
    store = tmp_path_factory.mktemp("report") / "pose.zarr"
    shutil.copytree(sample_run[0], store)
    return store


def test_the_page_has_sections_one_palette_and_the_player(sample_store):
    page = write_run_report(sample_store).read_text()
    assert run_report_path(sample_store).name == "pose.run.html"
    heads = re.findall(r"<h2 id='[^']*'>([^<]*)</h2>", page)
    assert heads[: len(SECTIONS)] == list(SECTIONS)
    views = ["cam01", "cam02", "cam03", "cam04"]
    for view, colour in view_colours(views).items():
        assert page.count(colour) >= 3, view  # table, detection rate, error per view, cameras
    assert "reprojection error per view (median over keypoints)" in page
    assert "id='player3d'" in page and "Plotly.newPlot" in page
    assert "skeleton of every person in <code>filtered</code>" in page
    assert "showing all 100 frames" in page
    assert not re.search(r"<script[^>]*\bsrc=", page)  # every script inline: works offline
    assert "Rendered frames" not in page


def test_error_per_view_reprojects_through_each_camera(sample_store):
    errors, time, reason = view_errors(sample_store)
    assert reason is None and list(errors) == ["cam01", "cam02", "cam03", "cam04"]
    assert len(time) == 100
    medians = {v: float(np.nanmedian(e)) for v, e in errors.items()}
    # the views' own errors straddle the mean over views the triangulation records
    points = xr.open_zarr(sample_store, group="points3d", consolidated=False)
    overall = float(np.nanmedian(points.reprojection_error.values))
    assert min(medians.values()) < overall < max(medians.values()) < 3 * overall, medians


def test_rendered_frames_are_embedded(sample_store, tmp_path):
    from PIL import Image

    images = []
    for i, colour in enumerate(("#1f77b4", "#ff7f0e")):
        path = tmp_path / f"cam0{i + 1}.{'png' if i == 0 else 'jpg'}"
        Image.new("RGB", (64, 48), rgb(colour)).save(path)
        images.append(path)
    page = write_run_report(
        sample_store, thumbnails={"cam01": [images[0]], "cam02": [images[1], tmp_path / "gone"]}
    ).read_text()
    assert "<h3>Rendered frames</h3>" in page
    assert page.count("<img src='data:image/png;base64,") == 1
    assert page.count("<img src='data:image/jpeg;base64,") == 1
    assert "alt='cam02: cam02.jpg'" in page
    assert page.index("Rendered frames") < page.index(">Quality<")


@pytest.mark.skipif(not CHROMIUM, reason="Debian's chromium is not installed")
@pytest.mark.slow  # make test-all (and CI)
def test_the_player_plays_in_chromium(sample_store, tmp_path):
    path = write_run_report(sample_store)
    shots = [
        _scene(_screenshot(f"{path.as_uri()}#frame={f}", tmp_path / f"{f}.png", tmp_path / "c"))
        for f in (0, 60)
    ]
    person = person_colours(["id_0"])["id_0"]
    for scene in shots:
        assert len(np.unique(scene.reshape(-1, 3), axis=0)) > 100, "the scene rendered blank"
        assert _near(scene, person) > 300, "no skeleton in the scene"
        for colour in view_colours(["cam02", "cam03", "cam04"]).values():
            assert _near(scene, colour) > 5, colour  # the cameras' markers and names
    a, b = shots
    assert a.shape == b.shape
    changed = (np.abs(a - b).sum(-1) > 60).sum()
    assert changed > 300, "frame 60 looks like frame 0"


def test_a_store_without_3d_has_no_player(markers_recording, tmp_path):
    import mocapflow

    res = mocapflow.process(markers_recording, "markers", tmp_path / "m.zarr",
                            cluster=mocapflow.ClusterOptions("threads", workers=2))  # fmt: skip
    assert res.exit_code == 0
    page = run_report_path(res.store).read_text()
    heads = re.findall(r"<h2 id='[^']*'>([^<]*)</h2>", page)
    assert heads == list(SECTIONS)
    assert "player3d" not in page and "No 3-D points" in page
    assert "detection rate per view" in page
    for colour in view_colours([f"cam{i}" for i in range(1, 5)]).values():
        assert colour in page


def test_a_store_with_nothing_to_plot_still_has_its_page(markers_recording, tmp_path):
    """framestats tracks no keypoints: no plot at all, and the page is written all the same."""
    import mocapflow

    res = mocapflow.process(markers_recording, "framestats", tmp_path / "f.zarr",
                            cluster=mocapflow.ClusterOptions("threads", workers=2))  # fmt: skip
    assert res.exit_code == 0
    page = run_report_path(res.store).read_text()
    assert re.findall(r"<h2 id='[^']*'>([^<]*)</h2>", page)[:2] == list(SECTIONS)[:2]
