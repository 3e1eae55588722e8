"""Fingerprints by content, completion records, and store state."""

from __future__ import annotations

import os
import shutil

import pytest

from mocapflow import ledger
from mocapflow.errors import StoreError
from mocapflow.plan import make_plan
from mocapflow.recording import find_videos, open_recording
from mocapflow.trackers import get_tracker


@pytest.fixture()
def prepared(markers_recording, tmp_path):
    rec = open_recording(markers_recording)
    trk = get_tracker("markers")
    path = tmp_path / "s.zarr"
    assert ledger.prepare(path, make_plan(rec, trk, 30), overwrite=False) == {}
    return path, rec, trk


def test_fingerprint_is_by_content(recording_copy, tmp_path):
    trk = get_tracker("framestats")
    videos = find_videos(recording_copy)
    fp = ledger.fingerprint(videos, trk, 30)
    # a copy with new modification times is the same input
    copy = tmp_path / "copy"
    shutil.copytree(recording_copy, copy)
    for v in find_videos(copy):
        os.utime(v, (1, 1))
    assert ledger.fingerprint(find_videos(copy), trk, 30)["digest"] == fp["digest"]
    # one changed byte in a sampled block, at the same size, is another input
    victim = videos[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    changed = ledger.fingerprint(videos, trk, 30)
    assert changed["digest"] != fp["digest"]
    assert ledger.changes(fp, changed) == ["video cam2 changed"]
    assert ledger.changes(fp, ledger.fingerprint(videos, trk, 45))[-1] == "chunk_frames 30 -> 45"


def test_untouched_videos_are_not_read_again(recording_copy, monkeypatch):
    trk = get_tracker("framestats")
    videos = find_videos(recording_copy)
    fp = ledger.fingerprint(videos, trk, 30)
    monkeypatch.setattr(ledger, "video_digest", lambda *a: pytest.fail("read again"))
    assert ledger.fingerprint(videos, trk, 30, known=fp)["digest"] == fp["digest"]


def test_prepare_refuses_other_inputs(prepared):
    path, rec, _ = prepared
    with pytest.raises(StoreError, match=r"other inputs \(tracker 'markers' -> 'framestats'"):
        ledger.prepare(path, make_plan(rec, "framestats", 30), overwrite=False)
    assert ledger.prepare(path, make_plan(rec, "framestats", 30), overwrite=True) == {}


def test_records_and_state(prepared):
    path, rec, trk = prepared
    fp = ledger.fingerprint([v.path for v in rec.views], trk, 30)
    assert ledger.state(path, fp) == "resume"
    ledger.mark_done(path, 2, 30, 60, {"status": "ok"})
    assert ledger.done_chunks(path) == {(2, 30, 60): {"status": "ok"}}
    ledger.finalize(path, {}, completed=True)
    assert ledger.state(path, fp) == "complete"
    assert ledger.state(path.parent / "none.zarr", fp) == "new"
    assert ledger.state(path, ledger.fingerprint([v.path for v in rec.views], trk, 45)) == "changed"


def test_a_half_written_record_is_not_done(prepared):
    path, *_ = prepared
    folder = path / ledger.LEDGER_GROUP / "chunks"
    (folder / "00001_000000000_000000010.json").write_text('{"status": "o')
    (folder / "00001_000000010_000000020.json.tmp123").write_text("{}")
    assert ledger.done_chunks(path) == {}
    assert ledger.remove_partial_files(path) == 1


def test_summary_reads_without_dask_and_counts_what_dask_counts(markers_recording, tmp_path):
    """The summary (and the run report) open the tracks with xarray's own lazy arrays:
    the same counts as the Dask-backed store, without a Dask graph per variable."""
    import numpy as np

    import mocapflow
    from mocapflow.store import open_tracks

    store = tmp_path / "s.zarr"
    mocapflow.process(
        markers_recording, "markers", store, cluster=mocapflow.ClusterOptions("threads"),
        report=False,
    )  # fmt: skip
    plain, lazy = open_tracks(store, dask=False), open_tracks(store)
    assert plain.confidence.chunks is None and lazy.confidence.chunks is not None
    views = ledger.summary(store)["views"]
    assert [v["view"] for v in views] == [str(v) for v in lazy.view.values]
    for i, row in enumerate(views):
        n = row["frames"]
        assert row["decoded"] == int(lazy.decoded.isel(view=i).sum().compute())
        found = np.isfinite(lazy.confidence.isel(view=i, time=slice(0, n)).values)
        assert row["detected_pct"] == pytest.approx(100 * found.reshape(n, -1).any(axis=1).mean())
