"""Frame identity does not depend on chunking (release items A3 and A4).

Frame ``i`` is the ``i``-th frame that a plain sequential decode of the whole file
yields. The sequential oracle here is PyAV decoding everything and keeping what
the decoder gives, on files made to be awkward: an H.264 cut mid-GOP (its first
packets cannot be decoded, A3), an MP4 whose edit list hides its first frames
(``ffmpeg -ss ... -c copy``), MJPEG and H.264 in MKV with a repeated timestamp
(A4), and an MKV with a timestamp missing (a dropped frame's gap). Range reads,
the planner's tasks and real ``mocapflow process`` runs at two chunk sizes must
all equal it frame by frame.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
import xarray as xr

from conftest import EXE, moving_pattern, write_video
from mocapflow.plan import plan_chunks
from mocapflow.recording import open_recording
from mocapflow.tasks import track_chunk
from mocapflow.trackers import FrameStats
from mocapflow.video import probe, read_range

#: Case -> (frames a sequential decode yields, packets that yield no frame).
CASES = {
    "midgop": (60, 5),
    "edit_list": (55, 5),
    "dup_mjpg": (60, 0),
    "dup_h264": (90, 0),
    "gap": (60, 0),
}


def remux(src: Path, dst: Path, *, first: int = 0, zero: int | None = None, edit=None) -> Path:
    """Copy ``src``'s packets from packet ``first`` on into ``dst``, without re-encoding.

    Timestamps move so that the first kept packet's dts is 0 (as a cut starts),
    or, given ``zero``, so that the kept frame ``zero`` in presentation order is
    at time 0 (the frames before it are then before the start: an MP4's edit
    list hides them). ``edit(k, packet, packets)`` may change a packet's
    timestamps before it is written.
    """
    with av.open(str(src)) as ic, av.open(str(dst), "w") as oc:
        ist = ic.streams.video[0]
        ost = oc.add_stream_from_template(ist)
        packets = [p for p in ic.demux(ist) if p.size][first:]
        if zero is None:
            offset = min(p.dts for p in packets)
        else:
            offset = sorted(p.pts for p in packets)[zero]
        for p in packets:
            p.pts -= offset
            p.dts -= offset
        for k, p in enumerate(packets):
            if edit is not None:
                edit(k, p, packets)
        for p in packets:  # muxing rescales a packet's timestamps: edit all first
            p.stream = ost
            oc.mux(p)
    return dst


def _dup_previous(k, packet, packets) -> None:
    if k == 20:  # packet 20 repeats packet 19's timestamp (A4)
        packet.pts, packet.dts = packets[19].pts, packets[19].dts


def _dup_bframe(k, packet, packets) -> None:
    if k == 6:  # a B-frame takes the timestamp of the P-frame two packets before it
        packet.pts = packets[4].pts


def _gap(k, packet, packets) -> None:
    if k >= 30:  # one frame's timestamp is missing: the rest come one frame late
        step = packets[1].pts - packets[0].pts
        packet.pts += step
        packet.dts += step


@pytest.fixture(scope="module")
def odd_videos(tmp_path_factory) -> dict[str, Path]:
    """One file per case (see :data:`CASES`), 160x120."""
    root = tmp_path_factory.mktemp("odd")
    h264 = write_video(root / "h264.mp4", moving_pattern(90), "h264", gop=30)
    mjpg = write_video(root / "mjpg.avi", moving_pattern(60, seed=2), "mjpg")
    videos = {
        # Packets 25-29 (the end of the first GOP) without their keyframe: A3.
        "midgop": remux(h264, root / "midgop.mp4", first=25),
        # From keyframe 30, its 6th frame at time 0: the edit list hides the first 5.
        "edit_list": remux(h264, root / "edit_list.mp4", first=30, zero=5),
        "dup_mjpg": remux(mjpg, root / "dup_mjpg.mkv", edit=_dup_previous),
        "dup_h264": remux(h264, root / "dup_h264.mkv", edit=_dup_bframe),
        "gap": remux(mjpg, root / "gap.mkv", edit=_gap),
    }
    return videos


def sequential(path: Path) -> np.ndarray:
    """The oracle: a plain PyAV decode of the whole file, every frame it yields, in order."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="bgr24") for f in c.decode(video=0)])


def stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    return FrameStats()(frames)


@pytest.mark.parametrize("case", CASES)
def test_the_files_are_what_the_cases_need(odd_videos, case):
    """Each file has the flaw its case names (else the other tests would prove nothing)."""
    with av.open(str(odd_videos[case])) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    pts = [p.pts for p in packets]
    oracle = sequential(odd_videos[case])
    assert len(oracle) == CASES[case][0]
    assert len(np.unique(stats(oracle)["frame_mean"], axis=0)) == len(oracle)  # all differ
    if case == "midgop":
        assert not packets[0].is_keyframe and len(packets) == 65
    elif case == "edit_list":
        assert packets[0].is_keyframe and sum(p.is_discard for p in packets) == 5
    elif case.startswith("dup"):
        assert len(set(pts)) == len(pts) - 1
    else:
        assert len(set(np.diff(sorted(pts)))) > 1  # a step twice as long


@pytest.mark.parametrize("case", CASES)
def test_probe_numbers_the_decodable_frames(odd_videos, case, caplog):
    path = odd_videos[case]
    info = probe(path)
    n, skipped = CASES[case]
    assert info.n_frames == n and info.undecodable == skipped
    assert not info.truncated and info.expected_frames == n
    assert np.all(np.diff(info.pts) > 0) and info.keyframes[0] == 0
    assert np.all(np.diff(info.keyframes) > 0) and info.keyframes[-1] < n
    if case == "midgop":
        assert f"{path}: its first 5 packets cannot be decoded" in caplog.text
    if case.startswith("dup"):
        assert f"{path}: 1 frames repeat the timestamp of another frame" in caplog.text


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("chunk", [1, 7, 20, 240])
def test_range_reads_equal_the_sequential_decode(odd_videos, case, chunk):
    path = odd_videos[case]
    oracle = sequential(path)
    info = probe(path)
    parts = []
    for a in range(0, info.n_frames, chunk):
        b = min(a + chunk, info.n_frames)
        key = info.keyframe_before(a)
        part = read_range(path, a, b, int(info.pts[a]), int(info.pts[key]))
        assert len(part) == b - a, f"{case}: frames {a}:{b}"
        parts.append(part)
    got = np.concatenate(parts)
    assert got.shape == oracle.shape
    for i in range(len(oracle)):
        assert np.array_equal(got[i], oracle[i]), f"{case} chunk {chunk}: frame {i} differs"


@pytest.mark.parametrize("case", CASES)
def test_planned_tasks_equal_the_sequential_decode(odd_videos, case, tmp_path):
    """The planner's tasks, with and without warm-up frames, track what the oracle holds."""
    rec = tmp_path / "rec"
    rec.mkdir()
    shutil.copy(odd_videos[case], rec / f"cam1{odd_videos[case].suffix}")
    want = stats(sequential(odd_videos[case]))
    recording = open_recording(rec)
    assert recording.n_frames == CASES[case][0]
    for chunk, warmup in [(20, 0), (20, 7), (240, 0)]:
        got = {name: np.full_like(a, np.nan) for name, a in want.items()}
        for spec in plan_chunks(recording, chunk, warmup=warmup):
            out = track_chunk(spec, FrameStats())
            assert out["error"] is None and out["decoded"].all(), out["error"]
            for name, a in out["arrays"].items():
                got[name][spec.start : spec.stop] = a
        for name, a in want.items():
            np.testing.assert_array_equal(got[name], a, err_msg=f"{case} {chunk}/{warmup} {name}")


# --- Through the CLI: A3 and A4 as users meet them ------------------------------------


def process(rec: Path, out: Path, chunk: int) -> subprocess.CompletedProcess:
    args = ["process", rec, "-t", "framestats", "--chunk-frames", chunk, "--out", out]
    args += ["--cluster", "threads", "--no-report"]
    return subprocess.run(
        [EXE, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=rec.parent
    )


def check_cli(odd: Path, tmp_path: Path) -> tuple[Path, list[subprocess.CompletedProcess]]:
    """Process a recording of ``odd`` and a plain camera at 20 and 240 frames a task.

    Both stores must hold, frame by frame, what the oracle's frames track to.
    """
    rec = tmp_path / "rec"
    rec.mkdir()
    cam1 = rec / f"cam1{odd.suffix}"
    shutil.copy(odd, cam1)
    write_video(rec / "cam2.avi", moving_pattern(60, seed=5), "mjpg")
    want = [stats(sequential(cam1)), stats(sequential(rec / "cam2.avi"))]
    procs = []
    for chunk in (20, 240):
        out = tmp_path / f"c{chunk}.zarr"
        proc = process(rec, out, chunk)
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr and "truncated" not in proc.stderr, proc.stderr
        assert "differ in length" not in proc.stderr, proc.stderr
        ds = xr.open_zarr(out, consolidated=False)
        assert ds.sizes["time"] == 60 and bool(ds["decoded"].all())
        for v, w in enumerate(want):
            for name, a in w.items():
                np.testing.assert_array_equal(ds[name].values[v], a, err_msg=f"{chunk} {name}")
        procs.append(proc)
    return cam1, procs


def test_a3_a_video_cut_mid_gop_through_the_cli(odd_videos, tmp_path):
    """A3: 5 leading packets cannot be decoded: said so, nothing lost, exit 0, no shift."""
    cam1, procs = check_cli(odd_videos["midgop"], tmp_path)
    for proc in procs:
        assert f"{cam1}: its first 5 packets cannot be decoded (it starts mid-GOP" in proc.stderr, (
            proc.stderr
        )
        assert "claims" not in proc.stderr, proc.stderr  # the 65 packets listed are all there


def test_a4_a_repeated_timestamp_through_the_cli(odd_videos, tmp_path):
    """A4: a repeated timestamp keeps its frame: 60 frames, the same at every chunk size."""
    cam1, procs = check_cli(odd_videos["dup_mjpg"], tmp_path)
    for proc in procs:
        assert f"{cam1}: 1 frames repeat the timestamp of another frame" in proc.stderr
