"""Board descriptions and the checkerboard tracker, against boards rendered with known truth.

Board files: mocapflow's ``board.toml`` and caliscope's ``charuco.toml`` (its
real content), what a bad file or an unknown parameter says, and ``--board FILE
NAME=VALUE`` overriding the file. The checkerboard tracker: a 4x7 inner-corner
board ray-cast through a known camera in eight turns about its normal, its
corners found in the board's own order (the orientation rule), a board printed
in negative, and the symmetric boards it cannot orient. Then the intrinsics
stage on folders of such images recovers the camera that rendered them.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mocapflow.calib.boards import board_tracker, read_board
from mocapflow.calibration import calibrate_intrinsics
from mocapflow.cli.options import board as board_option
from mocapflow.errors import CalibrationError, UsageError
from mocapflow.trackers import Charuco, Checkerboard

# caliscope's charuco.toml, exactly as caliscope writes it (its inverted-board session).
CALISCOPE_CHARUCO = (
    'columns = 4\nrows = 5\nboard_height = 11.0\nboard_width = 8.5\ndictionary = "DICT_4X4_1000"\n'
    'units = "inch"\naruco_scale = 0.75\nsquare_size_override_cm = 5.4\ninverted = true\n'
    "legacy_pattern = false\n"
)
BOARD_TOML = """\
[board]
type = "charuco"
squares_x = 4
squares_y = 5
square_length = 54.0   # mm
marker_ratio = 0.75
dictionary = "DICT_4X4_1000"
inverted = true
"""


# --- board files -------------------------------------------------------------------------


def test_board_toml(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text(BOARD_TOML)
    board = read_board(path)
    assert board == {
        "type": "charuco",
        "squares_x": 4,
        "squares_y": 5,
        "square_length": 54.0,
        "marker_ratio": 0.75,
        "dictionary": "DICT_4X4_1000",
        "inverted": True,
    }
    tracker = board_tracker(path)  # a path is read as a board file
    assert isinstance(tracker, Charuco)
    assert (tracker.squares_x, tracker.squares_y, tracker.legacy) == (4, 5, False)
    assert tracker.inverted and tracker.square_length == 54.0
    # Top-level keys without the [board] table; the type defaults to charuco.
    flat = tmp_path / "flat.toml"
    flat.write_text("squares_x = 6\nsquares_y = 4\n")
    assert read_board(flat) == {"squares_x": 6, "squares_y": 4, "type": "charuco"}
    checker = tmp_path / "checker.toml"
    checker.write_text('[board]\ntype = "checkerboard"\ncorners_x = 4\ncorners_y = 7\n')
    tracker = board_tracker(checker)
    assert isinstance(tracker, Checkerboard) and (tracker.corners_x, tracker.corners_y) == (4, 7)


def test_caliscope_charuco_toml(tmp_path):
    path = tmp_path / "charuco.toml"
    path.write_text(CALISCOPE_CHARUCO)
    tracker = board_tracker(read_board(path))
    assert isinstance(tracker, Charuco)
    assert (tracker.squares_x, tracker.squares_y) == (4, 5)
    # square_size_override_cm wins over the sheet (8.5 x 11 inch would give 2.2 inch squares).
    assert tracker.square_length == pytest.approx(54.0)
    assert tracker.marker_ratio == 0.75 and tracker.dictionary == "DICT_4X4_1000"
    assert tracker.inverted and not tracker.legacy
    # Without the override the squares fill the sheet: min(8.5 / 4, 11 / 5) inches.
    path.write_text(CALISCOPE_CHARUCO.replace("square_size_override_cm = 5.4\n", ""))
    assert read_board(path)["square_length"] == pytest.approx(2.125 * 25.4)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (None, "not found"),
        ("squares_x = = 4\n", "not a readable board TOML"),
        (b"\xff\xfe squares_x = 4", "not a readable board TOML"),
        ('[board]\ntype = "circles"\n', "board type 'circles' unknown"),
        (CALISCOPE_CHARUCO.replace('"inch"', '"furlong"'), "unknown units"),
        ("columns = 4\nrows = 5\n", "incomplete board description"),
        ("columns = 4\nrows = 5\nboard_width = 8.5\n", "incomplete board description"),
    ],
)
def test_bad_board_files(tmp_path, text, said):
    path = tmp_path / "my board.toml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(CalibrationError) as exc:
        read_board(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    assert said in message, message
    with pytest.raises(CalibrationError):  # the same through the tracker
        board_tracker(path)


def test_unknown_board_parameters(tmp_path):
    path = tmp_path / "board.toml"
    path.write_text("[board]\nsquares = 5\nsquare_length = 40\n")
    with pytest.raises(UsageError) as exc:
        board_tracker(path)
    message = str(exc.value)
    assert "\n" not in message and "['squares']" in message and "squares_x" in message, message
    with pytest.raises(UsageError, match="corners_x"):  # a checkerboard's parameters are its own
        board_tracker({"type": "checkerboard", "squares_x": 5})
    with pytest.raises(UsageError, match="type=hexagons"):
        board_tracker({"type": "hexagons"})
    with pytest.raises(UsageError, match="no-such-dictionary"):
        board_tracker({"dictionary": "no-such-dictionary"})


def test_command_line_overrides_the_board_file(tmp_path):
    path = tmp_path / "charuco.toml"
    path.write_text(CALISCOPE_CHARUCO)
    spec = board_option([str(path), "square_length=50", "inverted=false"])
    tracker = board_tracker(spec)
    # The command line's values (text, typed by the tracker) win; the rest is the file's.
    assert tracker.square_length == 50.0 and tracker.inverted is False
    assert (tracker.squares_x, tracker.squares_y, tracker.dictionary) == (4, 5, "DICT_4X4_1000")
    assert board_option(None) is None
    assert board_tracker(board_option(["squares_x=5"])).squares_x == 5
    with pytest.raises(UsageError, match="one board file"):
        board_option([str(path), str(path)])
    with pytest.raises(UsageError, match="NAME=VALUE"):
        board_option([str(path), "=50"])


# --- checkerboards rendered through a known camera --------------------------------------

NX, NY, SQUARE = 4, 7, 30.0  # inner corners, mm
SIZE = (640, 480)
NOISE = 1.0  # scale of the gray noise
BLUR = 0.9  # px, the optics
SAMPLES = 12  # samples per pixel of the renders (n-rooks: 12 distinct offsets on each axis)


def _rays(matrix, dist, size=SIZE, n=SAMPLES) -> np.ndarray:
    """Each pixel's sample rays ``(n, h, w, 3)`` as ``(x, y, 1)`` in the camera, undistorted.

    The ``n`` samples of a pixel sit on an n-rooks pattern (each its own column
    and row of an ``n x n`` grid): an edge along the image's rows or columns is
    placed within 1/n px, where a regular ``k x k`` grid would place it within 1/k.
    """
    w, h = size
    k = np.arange(n)
    offsets = np.stack([(k + 0.5) / n - 0.5, ((k * 5) % n + 0.5) / n - 0.5], -1)
    xs, ys = np.meshgrid(np.arange(w, dtype=float), np.arange(h, dtype=float))
    grid = (np.stack([xs, ys], -1)[None] + offsets[:, None, None]).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-9)
    norm = cv2.undistortPointsIter(grid, matrix, dist, None, None, crit).reshape(n, h, w, 2)
    return np.concatenate([norm, np.ones((n, h, w, 1))], -1)


def _render(rays, rvec, tvec, rng, nx=NX, ny=NY, square=SQUARE) -> np.ndarray:
    """A gray image of the checkerboard at pose ``rvec, tvec`` (board to camera).

    The board's own frame: corner ``(0, 0)`` at its origin, x along rows, y down
    the columns, z into the board (the camera sees its face). Its squares run
    from -1 to ``nx`` across and -1 to ``ny`` down, the one outside corner
    ``(0, 0)`` dark (the tracker's first corner), with a white margin of one
    square. Each pixel is the mean of its samples, blurred by ``BLUR`` px (the
    optics), plus gray noise of 1.5 levels.
    """
    rot, t = cv2.Rodrigues(np.asarray(rvec, float))[0], np.ravel(tvec)
    normal = rot[:, 2]
    depth = (normal @ t) / (rays @ normal)
    board = (rays * depth[..., None] - t) @ rot  # rot.T @ (hit - t), per sample
    bx, by = board[..., 0], board[..., 1]
    i, j = np.floor(bx / square) + 1, np.floor(by / square) + 1
    h = rays.shape[1]
    value = np.broadcast_to(120.0 + np.linspace(-30, 30, h)[:, None], bx.shape).copy()
    sheet = (bx > -2 * square) & (bx < (nx + 1) * square)
    sheet &= (by > -2 * square) & (by < (ny + 1) * square) & (depth > 0)
    value[sheet] = 225.0
    squares = (i >= 0) & (i <= nx) & (j >= 0) & (j <= ny) & (depth > 0)
    value[squares & ((i + j) % 2 == 0)] = 25.0
    img = cv2.GaussianBlur(value.mean(0), (0, 0), BLUR)
    img += rng.normal(0, 1.5 * NOISE, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _pose(roll, tilt, centre, nx=NX, ny=NY, square=SQUARE):
    """Board to camera: turned ``roll`` degrees about its normal, tilted ``tilt`` (x, y) degrees,
    its middle at ``centre`` (mm, camera frame)."""
    turn = cv2.Rodrigues(np.array([0.0, 0.0, np.radians(roll)]))[0]
    rot = cv2.Rodrigues(np.radians([tilt[0], tilt[1], 0.0]))[0] @ turn
    middle = np.array([(nx - 1) * square / 2, (ny - 1) * square / 2, 0.0])
    return cv2.Rodrigues(rot)[0].ravel(), np.asarray(centre, float) - rot @ middle


PINHOLE = np.array([[600.0, 0.0, 322.5], [0.0, 600.0, 236.0], [0.0, 0.0, 1.0]])
ROLLS = (0, 45, 90, 135, 180, 225, 270, 315)


@pytest.fixture(scope="module")
def turned_boards():
    """The board in eight turns about its normal (0 to 315 degrees), tilted, half a metre away:
    ``[(image, true corners (28, 2))]`` through an undistorted camera."""
    rng = np.random.default_rng(11)
    rays = _rays(PINHOLE, np.zeros(5))
    obj = Checkerboard(NX, NY, SQUARE).object_points()
    out = []
    for k, roll in enumerate(ROLLS):
        tilt = (rng.uniform(-25, 25), rng.uniform(-25, 25))
        rvec, tvec = _pose(roll, tilt, (rng.uniform(-40, 40), rng.uniform(-30, 30), 520 + 10 * k))
        truth = cv2.projectPoints(obj, rvec, tvec, PINHOLE, np.zeros(5))[0].reshape(-1, 2)
        out.append((_render(rays, rvec, tvec, rng), truth))
    return out


def _found(tracker, image) -> np.ndarray:
    return tracker(image[None])["position"][0, :, :, 0].T  # (corner, 2)


def test_checkerboard_corners_in_the_boards_own_order(turned_boards):
    tracker = Checkerboard(NX, NY, SQUARE)
    for roll, (image, truth) in zip(ROLLS, turned_boards, strict=True):
        corners = _found(tracker, image)
        assert np.isfinite(corners).all(), roll
        # Measured: 0.05-0.19 px at most over the 28 corners, 0.03-0.10 px on average
        # (cornerSubPix's own error on these renders, not a bias: the signed mean is within
        # 0.02 px). A corner taken for another is at least a square (27 px) off.
        err = np.linalg.norm(corners - truth, axis=1)
        assert err.max() < 0.25 and err.mean() < 0.12, (roll, err.max(), err.mean())


def test_orientation_rule_undoes_reversed_and_mirrored_orders(turned_boards):
    """Whatever order the corners come in, ``_orient`` gives the board's own.

    OpenCV's detector already returns these renders in the board's order, so the
    rule is fed the true corners reversed (the board turned half round), with
    rows mirrored, and both, as another detector or OpenCV version may give them.
    """
    tracker = Checkerboard(NX, NY, SQUARE)
    for roll, (image, truth) in zip(ROLLS, turned_boards, strict=True):
        grid = truth.reshape(NY, NX, 2)
        orders = {
            "as is": grid,
            "reversed": grid[::-1, ::-1],
            "rows mirrored": grid[:, ::-1],
            "columns mirrored": grid[::-1],
        }
        for what, order in orders.items():
            got = tracker._orient(image, order.reshape(-1, 2).astype(np.float32))
            np.testing.assert_allclose(got, truth, atol=1e-4, err_msg=f"{roll} deg, {what}")


def test_negative_checkerboard(turned_boards):
    image, truth = turned_boards[4]  # turned half round
    negative = 255 - image
    # Printed in negative, the plain detector finds nothing (its squares merge with the
    # dark margin); inverted=True finds it, first corner and all.
    assert not np.isfinite(_found(Checkerboard(NX, NY, SQUARE), negative)).any()
    corners = _found(Checkerboard(NX, NY, SQUARE, inverted=True), negative)
    assert np.linalg.norm(corners - truth, axis=1).max() < 0.25  # as the normal board


def test_symmetric_checkerboards():
    assert Checkerboard(5, 7).symmetric and Checkerboard(6, 8).symmetric
    assert not Checkerboard(4, 7).symmetric and not Checkerboard(7, 4).symmetric
    with pytest.raises(ValueError, match="2x2"):
        Checkerboard(1, 7)


# --- the intrinsics stage on folders of images -----------------------------------------

DISTORTED = np.array([[610.0, 0.0, 326.0], [0.0, 610.0, 231.5], [0.0, 0.0, 1.0]])
MILD = np.array([-0.12, 0.04, 4e-4, -3e-4, 0.0])


def test_intrinsics_from_image_folders(tmp_path):
    """20 renders of the board through a camera with mild distortion, as a folder of PNGs:
    the stage recovers its focal length within 0.5 % and principal point within 2 px."""
    rng = np.random.default_rng(5)
    rays = _rays(DISTORTED, MILD)
    folder = tmp_path / "int_cam07_img"  # Pose2Sim's folder naming
    folder.mkdir()
    for k in range(20):
        depth = rng.uniform(380, 650)
        # Spread over the image (the board's middle up to a third of the way to its edges).
        u, v = rng.uniform(0.3, 0.7) * SIZE[0], rng.uniform(0.3, 0.7) * SIZE[1]
        centre = ((u - DISTORTED[0, 2]) * depth / 610.0, (v - DISTORTED[1, 2]) * depth / 610.0)
        tilt = rng.uniform(-35, 35, 2)
        rvec, tvec = _pose(rng.uniform(0, 360), tilt, (*centre, depth))
        cv2.imwrite(str(folder / f"img{k}.png"), _render(rays, rvec, tvec, rng))
    out = tmp_path / "intrinsics.toml"
    board = {"type": "checkerboard", "corners_x": NX, "corners_y": NY, "square_length": SQUARE}
    results, path = calibrate_intrinsics([folder], out, board=board, cluster="threads")
    assert path == out and out.exists() and list(results) == ["cam07"]
    fit = results["cam07"]
    assert fit.camera.size == SIZE and fit.n_views >= 15, fit.rejected
    # Measured: focal length +0.05 %, principal point 0.35 and 0.51 px off, 0.04 px RMS, all 20
    # views kept; held to the bounds asked of a good intrinsics fit.
    focal = fit.camera.matrix[[0, 1], [0, 1]]
    assert np.abs(focal / 610.0 - 1).max() < 0.005, focal
    centre = fit.camera.matrix[:2, 2]
    assert np.abs(centre - DISTORTED[:2, 2]).max() < 2.0, centre
    assert fit.rms < 0.3, fit.rms
    assert fit.camera.distortions[0] == pytest.approx(MILD[0], abs=0.03)
