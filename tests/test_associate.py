"""Person association across views and over time, against a synthetic crowd's ground truth.

The crowd (``benchmarks/association.py``'s ``make_scene``): MediaPipe's 33
keypoints on 2-4 walking skeletons in a ring of 4-8 cameras, 2 px noise, 5 %
missed detections, 5 % dropped keypoints, 5 % left/right swaps, skeleton-shaped
junk (15 % per slot), one person who crosses the room and leaves, one who
arrives late, and the slots shuffled in every view and frame.
"""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mocapflow.associate import (
    ASSOCIATION_FRACTION,
    ROBUST_FRACTION,
    LinkState,
    associate,
    associate_block,
    by_track,
    choose_person,
    default_threshold,
    frame_ranges,
    image_diagonals,
    link_people,
    mirror_index,
    summarize_people,
    triangulate_people,
)
from mocapflow.errors import CalibrationError, MocapflowError, UsageError
from mocapflow.triangulate import CameraSet

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "association.py"


def _load_bench():
    spec = importlib.util.spec_from_file_location("association_bench", _BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["association_bench"] = module
    spec.loader.exec_module(module)
    return module


bench = _load_bench()
KEYPOINTS = bench.KEYPOINTS


def majority(scene, slots: np.ndarray) -> np.ndarray:
    """``(time, person)``: the true person most of each group's slots belong to (-3: empty)."""
    t, _, p = slots.shape
    out = np.full((t, p), -3)
    for f, j in zip(*np.nonzero((slots >= 0).any(1)), strict=True):
        g = slots[f, :, j]
        v = np.flatnonzero(g >= 0)
        ids, counts = np.unique(scene.truth[f, v, g[v]], return_counts=True)
        out[f, j] = ids[np.argmax(counts)]
    return out


def evaluate(scene, slots: np.ndarray, labels: np.ndarray) -> dict:
    """The figures: assignment recall and precision, identity switches, spurious tracks."""
    truth = scene.truth
    owner = majority(scene, slots)
    n_true = scene.points.shape[-1]
    total = correct = 0
    for f in range(truth.shape[0]):
        for p in range(n_true):
            hit = truth[f] == p  # (view, slot)
            views = np.flatnonzero(hit.any(1))
            if len(views) < 2:  # one view cannot be triangulated: left out by design
                continue
            mine = np.flatnonzero(owner[f] == p)
            for v in views:
                total += 1
                s = np.flatnonzero(hit[v])[0]
                correct += len(mine) == 1 and slots[f, v, mine[0]] == s
    members = wrong = 0
    for f, j in zip(*np.nonzero(owner >= 0), strict=True):
        g = slots[f, :, j]
        v = np.flatnonzero(g >= 0)
        members += len(v)
        wrong += int((truth[f, v, g[v]] != owner[f, j]).sum())
    switches = 0
    tracks_of = {}
    for p in range(n_true):
        seq = labels[owner == p]  # row-major: in frame order
        switches += int((np.diff(seq) != 0).sum())
        tracks_of[p] = set(seq.tolist())
    people_of = {}
    for lab, who in zip(labels[labels >= 0].tolist(), owner[labels >= 0].tolist(), strict=True):
        people_of.setdefault(lab, set()).add(who)
    return {
        "assignments": total,
        "recall": correct / total,
        "precision": 1 - wrong / members,
        "switches": switches,
        "tracks_per_person": {p: len(t) for p, t in tracks_of.items()},
        "mixed_tracks": sum(len(w - {-1}) > 1 for w in people_of.values()),
        "spurious_tracks": sum(w == {-1} for w in people_of.values()),
    }


@pytest.fixture(scope="module", params=[(4, 2), (6, 3), (8, 4)], ids=lambda p: f"{p[0]}v{p[1]}p")
def crowd(request):
    n_views, n_people = request.param
    scene = bench.make_scene(n_views, n_people, 150, seed=n_views * 10 + n_people)
    people = associate_block(scene.uv, scene.conf, scene.cams, keypoints=KEYPOINTS)
    labels, _ = link_people(summarize_people(people.position))
    return scene, people, labels


def test_crowd_is_associated_and_followed(crowd):
    scene, people, labels = crowd
    figures = evaluate(scene, people.slots, labels)
    print(figures)  # shown with -s: the figures of the report
    assert figures["assignments"] > 500
    assert figures["recall"] >= 0.99, figures
    assert figures["precision"] >= 0.99, figures
    assert figures["switches"] == 0, figures
    assert figures["mixed_tracks"] == 0, figures
    # Every person keeps one track from entering to leaving.
    assert all(n == 1 for n in figures["tracks_per_person"].values()), figures


def test_crowd_points_are_accurate(crowd):
    scene, people, _ = crowd
    owner = majority(scene, people.slots)
    f, j = np.nonzero(owner >= 0)
    got = people.position[f, :, :, j]  # (n, 3, K)
    want = scene.points[f, :, :, owner[f, j]]
    err = np.linalg.norm(got - want, axis=1)
    # 2 px at f ~ 1090 px and 5 m is ~9 mm per ray (measured medians 7-9 mm);
    # left/right swaps are undone where three views or more see the point
    # (99th percentile 23-29 mm; two views cannot outvote a swap).
    assert np.nanmedian(err) < 10.0, np.nanmedian(err)
    three = people.n_views[f, :, j] >= 3
    assert three.sum() > 0.9 * np.isfinite(err).sum()
    assert np.percentile(err[three], 99) < 40.0, np.percentile(err[three], 99)
    assert np.isclose(people.max_error, ROBUST_FRACTION * np.hypot(*bench.SIZE))


def test_three_views_reject_chance_pairs_of_junk():
    scene = bench.make_scene(6, 3, 120, seed=5)
    two, _ = associate(scene.uv, scene.conf, scene.cams, keypoints=KEYPOINTS)
    three, _ = associate(scene.uv, scene.conf, scene.cams, keypoints=KEYPOINTS, min_group_views=3)
    junk_two = (majority(scene, two) == -1).sum()
    junk_three = (majority(scene, three) == -1).sum()
    assert junk_three < junk_two / 5, (junk_two, junk_three)


def test_identities_do_not_depend_on_the_block_size():
    scene = bench.make_scene(5, 3, 100, seed=3)
    results = {}
    for block in (1, 7, 50, 100):
        labels, position, state = [], [], None
        for lo in range(0, 100, block):
            people = associate_block(
                scene.uv[:, lo : lo + block],
                scene.conf[:, lo : lo + block],
                scene.cams,
                keypoints=KEYPOINTS,
            )
            lab, state = link_people(summarize_people(people.position), state=state)
            labels.append(lab)
            position.append(people.position)
        results[block] = (np.concatenate(labels), np.concatenate(position), state)
    ref_labels, ref_position, ref_state = results[100]
    assert len(np.unique(ref_labels[ref_labels >= 0])) >= 3
    for block, (labels, position, state) in results.items():
        np.testing.assert_array_equal(labels, ref_labels, err_msg=f"block {block}")
        np.testing.assert_array_equal(position, ref_position, err_msg=f"block {block}")
        assert state.next_id == ref_state.next_id and state.frame == 100


def test_people_and_tracks_reorder_into_track_order():
    scene = bench.make_scene(4, 2, 40, seed=2)
    people = associate_block(scene.uv, scene.conf, scene.cams, keypoints=KEYPOINTS)
    labels, state = link_people(summarize_people(people.position))
    tracked = by_track(people.position, labels, state.next_id)
    assert tracked.shape == (40, 3, len(KEYPOINTS), state.next_id)
    for f, j in zip(*np.nonzero(labels >= 0), strict=True):
        np.testing.assert_array_equal(tracked[f, ..., labels[f, j]], people.position[f, ..., j])
    views = by_track(people.group_views, labels, state.next_id, fill=0)
    assert views.dtype.kind == "i" and views.sum() == people.group_views.sum()


# --------------------------------------------------------------------------- linking


def _walker(frames: int, start, step) -> np.ndarray:
    """A rigid 33-keypoint skeleton walking in a straight line: ``(time, K, 3)`` mm."""
    sk = bench.skeleton(np.zeros(2), 0.0, 0.0)
    offset = np.asarray(start, float) + np.arange(frames)[:, None] * np.asarray(step, float)
    return sk[None] + np.c_[offset, np.zeros(frames)][:, None, :]


def test_tracks_survive_short_gaps_and_end_after_long_ones():
    a = _walker(60, (0, 0), (20, 0))
    b = _walker(60, (0, 1500), (-20, 0))
    pts = np.stack([a, b], 1)  # (T, person, K, 3)
    pts[10:15, 0] = np.nan  # 5 missing frames: the track goes on
    pts[30:45, 1] = np.nan  # 15 missing frames: a new track
    labels, state = link_people(pts)
    assert set(labels[:10, 0]) == set(labels[15:, 0]) == {0}
    assert (labels[10:15, 0] == -1).all()
    assert set(labels[:30, 1]) == {1} and set(labels[45:, 1]) == {2}
    assert state.next_id == 3


def test_crossing_people_keep_their_tracks_whatever_the_slot_order():
    a = _walker(80, (-1200, 0), (30, 0))
    b = _walker(80, (1200, 400), (-30, 0))  # they pass 0.4 m apart at frame 40
    pts = np.stack([a, b], 1)
    rng = np.random.default_rng(4)
    flip = rng.random(80) < 0.5
    pts[flip] = pts[flip][:, ::-1]
    labels, _ = link_people(pts)
    truth = np.where(flip[:, None], [[1, 0]], [[0, 1]])
    np.testing.assert_array_equal(labels, truth)


def test_a_fixed_gate_refuses_jumps():
    a = _walker(20, (0, 0), (0, 0))
    a[10:] += np.array([800.0, 0, 0])  # a jump of 0.8 m
    labels, _ = link_people(a[:, None], gate=500.0)
    assert set(labels[:10, 0]) == {0} and set(labels[10:, 0]) == {1}
    labels, _ = link_people(a[:, None], gate=1000.0)
    assert set(labels[:, 0]) == {0}


# --------------------------------------------------------------------------- choice


def test_choose_person_prefers_the_best_supported_track():
    labels = np.array([[0, 1], [0, 1], [0, -1], [0, 2], [-1, 2]])
    views = np.array([[4, 2], [4, 2], [4, 0], [3, 3], [0, 3]])
    error = np.array([[3.0, 1.0], [3.0, 1.0], [3.0, np.nan], [3.0, 2.0], [np.nan, 2.0]])
    choice = choose_person(labels, views, error)
    assert choice.track == 0
    assert choice.others == 2
    np.testing.assert_array_equal(choice.other_frames, [0, 1, 3, 4])
    assert choice.support[0] == {"frames": 4.0, "view_frames": 15.0, "error": 3.0}
    line = choice.describe()
    assert "kept person 0" in line and "2 other people seen in frames 0-1, 3-4" in line
    # Equal support: the lower error wins.
    tie = choose_person(np.array([[0, 1]]), np.array([[3, 3]]), np.array([[5.0, 2.0]]))
    assert tie.track == 1 and tie.describe().endswith("frames 0")


def test_choose_person_on_the_crowd_picks_someone_always_there(crowd):
    scene, people, labels = crowd
    err = people.reprojection_error
    seen = np.isfinite(err).sum(1)
    mean = np.where(seen > 0, np.nan_to_num(err).sum(1) / np.maximum(seen, 1), np.nan)
    choice = choose_person(labels, people.group_views, mean)
    owner = majority(scene, people.slots)
    kept = owner[labels == choice.track]
    assert (kept == Counter(kept.tolist()).most_common(1)[0][0]).all()
    assert Counter(kept.tolist()).most_common(1)[0][0] >= 0  # a real person
    assert choice.support[choice.track]["frames"] >= 0.95 * len(labels)
    assert choice.others >= scene.points.shape[-1] - 1


def test_choose_person_with_nobody():
    choice = choose_person(np.full((3, 2), -1), np.zeros((3, 2)))
    assert choice.track == -1 and choice.others == 0
    assert choice.describe() == "nobody was seen in two views at once"
    assert frame_ranges(np.array([5, 1, 2, 3, 9])) == [(1, 3), (5, 5), (9, 9)]


# --------------------------------------------------------------------------- edge cases


def test_a_view_without_detections():
    scene = bench.make_scene(4, 2, 30, seed=6, junk=0.0)
    uv, conf = scene.uv.copy(), scene.conf.copy()
    uv[2] = np.nan
    conf[2] = np.nan
    slots, _ = associate(uv, conf, scene.cams, keypoints=KEYPOINTS)
    assert (slots[:, 2] == -1).all()
    truth = scene.truth.copy()
    truth[:, 2] = -2
    scene.truth = truth
    owner = majority(scene, slots)
    assert ((owner >= 0).sum(1) == 2).mean() > 0.9  # both people, from three views


def _one_person_per_view(n_views: int, frames: int, seed: int, lift: bool):
    """Each view sees its own person, nobody else; ``lift``: at heights 2 m apart."""
    rng = np.random.default_rng(seed)
    scene = bench.make_scene(n_views, 1, frames, seed=seed, miss=0.0, junk=0.0)
    uv = np.full_like(scene.uv, np.nan)
    for v, cam in enumerate(scene.cameras):
        for f in range(frames):
            sk = bench.skeleton(rng.uniform(-1500, 1500, 2), rng.uniform(-3, 3), 0.0)
            if lift:
                sk[:, 2] += 2000.0 * (v - (n_views - 1) / 2)
            uv[v, f, :, :, 0] = cam.project(sk).T
    return scene, uv, np.where(np.isfinite(uv[:, :, 0]), 0.9, np.nan)


def test_views_that_see_different_people_give_nobody():
    scene, uv, conf = _one_person_per_view(4, 10, 7, lift=True)
    slots, cost = associate(uv, conf, scene.cams, keypoints=KEYPOINTS)
    assert (slots == -1).all() and np.isnan(cost).all()
    people = triangulate_people(uv, conf, scene.cams, slots, keypoints=KEYPOINTS)
    assert np.isnan(people.position).all() and not people.present.any()
    labels, state = link_people(summarize_people(people.position))
    assert (labels == -1).all() and state.next_id == 0


def test_ghosts_of_unrelated_people_are_rare_with_three_views():
    # The limit of geometry: with the cameras at about the people's height, two
    # views agree on almost any two upright people (their epipolar lines are
    # nearly horizontal), and even three views sometimes do. Measured with
    # 4 views: ghosts of 2 views in 98 % of the frames, of 3 views in 6 %.
    scene, uv, conf = _one_person_per_view(4, 50, 7, lift=False)
    slots, _ = associate(uv, conf, scene.cams, keypoints=KEYPOINTS, min_group_views=3)
    assert (slots >= 0).any((1, 2)).mean() <= 0.15


def test_a_single_view_gives_nobody():
    scene = bench.make_scene(3, 2, 10, seed=8)
    one = CameraSet.from_cameras(scene.cameras[:1])
    slots, _ = associate(scene.uv[:1], scene.conf[:1], one, keypoints=KEYPOINTS)
    assert slots.shape == (10, 1, scene.uv.shape[-1]) and (slots == -1).all()
    people = triangulate_people(scene.uv[:1], scene.conf[:1], one, slots)
    assert np.isnan(people.position).all()


def test_empty_blocks_and_no_confidence():
    scene = bench.make_scene(3, 2, 10, seed=9, junk=0.0)
    slots, _ = associate(scene.uv[:, :0], scene.conf[:, :0], scene.cams)
    assert slots.shape == (0, 3, scene.uv.shape[-1])
    labels, state = link_people(summarize_people(np.zeros((0, 3, 33, 4))))
    assert labels.shape == (0, 4) and state.frame == 0
    with_conf, _ = associate(scene.uv, None, scene.cams, keypoints=KEYPOINTS)
    assert (with_conf >= 0).any()


# --------------------------------------------------------------------------- thresholds


def test_thresholds_scale_with_the_image():
    scene = bench.make_scene(3, 1, 2, seed=10)
    diag = np.hypot(*bench.SIZE)
    np.testing.assert_allclose(image_diagonals(scene.cams), diag)
    assert default_threshold(scene.cams, ASSOCIATION_FRACTION) == pytest.approx(
        ASSOCIATION_FRACTION * diag
    )
    double = CameraSet.from_cameras([c.scaled(2, 2) for c in scene.cameras])
    assert default_threshold(double, ROBUST_FRACTION) == pytest.approx(2 * ROBUST_FRACTION * diag)
    # No size in the calibration: twice the principal point.
    blind = CameraSet.from_cameras([replace(c, size=None) for c in scene.cameras])
    pp = np.array([np.hypot(2 * c.matrix[0, 2], 2 * c.matrix[1, 2]) for c in scene.cameras])
    np.testing.assert_allclose(image_diagonals(blind), pp)


def test_robust_step_drops_a_wrong_view():
    scene = bench.make_scene(5, 1, 20, seed=11, junk=0.0, miss=0.0, drop=0.0, swap=0.0)
    slots, _ = associate(scene.uv, scene.conf, scene.cams, keypoints=KEYPOINTS)
    assert ((slots >= 0).sum(1)[:, 0] == 5).all()
    uv = scene.uv.copy()
    s = slots[:, 3, 0]
    wrist = KEYPOINTS.index("left_wrist")
    uv[3, np.arange(20), :, wrist, s] += 120.0  # one view's wrist far off, in every frame
    robust = triangulate_people(uv, scene.conf, scene.cams, slots, keypoints=KEYPOINTS)
    plain = triangulate_people(uv, scene.conf, scene.cams, slots, keypoints=KEYPOINTS, robust=False)
    assert (robust.n_views[:, wrist, 0] == 4).all() and (plain.n_views[:, wrist, 0] == 5).all()
    assert np.nanmax(robust.reprojection_error[:, wrist, 0]) < robust.max_error
    truth = scene.points[:, :, wrist, 0]
    err_robust = np.linalg.norm(robust.position[:, :, wrist, 0] - truth, axis=1)
    err_plain = np.linalg.norm(plain.position[:, :, wrist, 0] - truth, axis=1)
    assert err_robust.max() < 30.0 < 40.0 < err_plain.min()
    # The other keypoints keep all five views.
    assert (np.delete(robust.n_views[:, :, 0], wrist, 1) == 5).mean() > 0.99


def test_mirror_index_pairs_left_and_right():
    m = mirror_index(KEYPOINTS, len(KEYPOINTS))
    assert KEYPOINTS[m[KEYPOINTS.index("left_knee")]] == "right_knee"
    assert m[KEYPOINTS.index("nose")] == KEYPOINTS.index("nose")
    np.testing.assert_array_equal(m[m], np.arange(len(KEYPOINTS)))
    np.testing.assert_array_equal(mirror_index(None, 4), np.arange(4))


# --------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def small():
    return bench.make_scene(3, 2, 4, seed=12)


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda s: associate(s.uv[0], s.conf, s.cams), UsageError, "(view, time, 2, keypoint"),
        (lambda s: associate(s.uv, s.conf[..., :1], s.cams), UsageError, "confidence must be"),
        (lambda s: associate(s.uv[:2], s.conf[:2], s.cams), CalibrationError, "2 views"),
        (lambda s: associate(s.uv.astype(str), None, s.cams), UsageError, "numbers"),
        (lambda s: associate(s.uv, s.conf, s.cams, threshold=-1), UsageError, "threshold"),
        (lambda s: associate(s.uv, s.conf, s.cams, min_group_views=1), UsageError, "one view"),
        (lambda s: associate(s.uv, s.conf, s.cams, max_people=0), UsageError, "max_people"),
        (lambda s: associate(s.uv, s.conf, s.cams, keypoints=["a"]), UsageError, "keypoint names"),
        (
            lambda s: triangulate_people(s.uv, s.conf, s.cams, np.zeros((4, 2, 1), int)),
            UsageError,
            "slots must be",
        ),
        (lambda s: link_people(np.zeros((4, 3))), UsageError, "(time, person, keypoint, 3)"),
        (lambda s: link_people(np.zeros((4, 1, 5, 3)), max_gap=-1), UsageError, "max_gap"),
        (lambda s: summarize_people(np.zeros((4, 2, 5, 1))), UsageError, "(time, 3, keypoint"),
        (lambda s: choose_person(np.zeros((2, 2)), np.zeros((2, 3))), UsageError, "(time, person)"),
        (
            lambda s: link_people(
                np.zeros((1, 1, 4, 3)),
                state=LinkState(ids=np.zeros(1, np.int64), points=np.zeros((1, 5, 3))),
            ),
            UsageError,
            "same keypoints",
        ),
    ],
)
def test_bad_input_is_named_in_one_line(small, call, error, words):
    with pytest.raises(error) as caught:
        call(small)
    assert isinstance(caught.value, MocapflowError)
    message = str(caught.value)
    assert words in message and "\n" not in message
