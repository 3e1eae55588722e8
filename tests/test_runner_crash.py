"""Killed runs resume to a store identical to an uninterrupted run's; dead workers are
replaced; the cluster listens on loopback only; nothing is written outside the output."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr

from mocapflow.synthetic import synthesize

EXE = str(Path(sys.executable).with_name("mocapflow"))
ARGS = ["--tracker", "markers", "--chunk-frames", "20", "--no-report", "--workers", "2"]


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("crash") / "rec"
    synthesize(root, kind="markers", cameras=4, frames=200, size=(320, 240), seed=11, gop=60)
    return root


@pytest.fixture(scope="module")
def reference(recording, tmp_path_factory) -> Path:
    store = tmp_path_factory.mktemp("ref") / "ref.zarr"
    proc = subprocess.run([EXE, "process", recording, "--out", store, *ARGS], capture_output=True)
    assert proc.returncode == 0, proc.stderr
    return store


def n_done(store: Path) -> int:
    return len(list((store / "_mocapflow" / "chunks").glob("*.json")))


def start(recording, store) -> subprocess.Popen:
    return subprocess.Popen(
        [EXE, "process", str(recording), "--out", str(store), *ARGS],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_for(cond, proc, timeout=120.0) -> bool:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if cond():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.01)
    raise TimeoutError


def assert_identical(a: Path, b: Path) -> None:
    da, db = xr.open_zarr(a, consolidated=False), xr.open_zarr(b, consolidated=False)
    assert set(da.data_vars) == set(db.data_vars)
    for name in da.data_vars:
        va, vb = da[name].values, db[name].values
        assert va.dtype == vb.dtype and va.tobytes() == vb.tobytes(), name
    assert db.attrs["completed"] and db.attrs["view_status"] == da.attrs["view_status"]


@pytest.mark.slow  # make test-all (and CI)
def test_sigkill_at_several_points_then_rerun(recording, reference, tmp_path):
    store = tmp_path / "s.zarr"
    total = 40  # 4 views x 200 frames / 20
    kill_points = [
        ("as the store appears", lambda: (store / "zarr.json").exists()),
        ("after 5 chunks", lambda: n_done(store) >= 5),
        ("after 25 chunks", lambda: n_done(store) >= 25),
    ]
    killed = 0
    for _what, cond in kill_points:
        proc = start(recording, store)
        if wait_for(cond, proc):
            os.killpg(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
    assert killed >= 2, "the run finished before it could be killed"
    before = n_done(store)
    assert before < total
    final = subprocess.run(
        [EXE, "process", recording, "--out", store, *ARGS], capture_output=True, text=True
    )
    assert final.returncode == 0, final.stderr
    if before:
        assert (
            f"resuming:  {before} chunks already done, {total - before} to compute" in final.stderr
        )
    assert f"{total - before} chunks computed, {before} skipped" in final.stdout
    assert_identical(reference, store)


def test_killed_worker_is_replaced_and_results_complete(recording, reference, tmp_path):
    store = tmp_path / "s.zarr"
    proc = start(recording, store)
    try:
        assert wait_for(lambda: n_done(store) >= 3, proc)
        workers = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline())
        ]
        assert workers, "no worker processes found"
        workers[0].kill()
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert_identical(reference, store)


@pytest.mark.parametrize("processes", [True, False], ids=["processes", "threads"])
def test_cluster_listens_on_loopback_only_and_moves_off_a_taken_port(processes):
    from mocapflow.cluster import Resources, bound_link, size_cluster, start_cluster

    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        blocker.bind(("127.0.0.1", 8787))
        blocker.listen()
    except OSError:
        pass  # already taken by someone else: the point stands
    sizing = size_cluster(4, 100, 1, Resources(cores=2, memory=8 * 2**30), processes=processes)
    cluster, client = start_cluster(sizing, "127.0.0.1:8787")
    try:
        # As Session.dashboard says it.
        link = bound_link(client.dashboard_link, "127.0.0.1", cluster.scheduler_address)
        assert link.startswith("http://127.0.0.1:") and ":8787/" not in link
        procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
        listening = [
            c.laddr
            for p in procs
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        ours = [a for a in listening if a.port != 8787]
        # Scheduler, dashboard and the workers; threads talk in memory: dashboards only.
        assert len(ours) >= (3 if processes else 2)
        assert all(a.ip == "127.0.0.1" for a in ours), ours
    finally:
        client.close()
        cluster.close()
        blocker.close()


def test_writes_stay_in_the_output(recording, tmp_path):
    import shutil

    rec = tmp_path / "rec"
    shutil.copytree(recording, rec)
    out = tmp_path / "results" / "s.zarr"
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    proc = subprocess.run(
        [EXE, "process", rec, "-t", "framestats", "--out", out, "--chunk-frames", "100"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    changed = {p for p in after if before.get(p) != after[p]}
    allowed = {out.parent, out.with_name(".s.zarr.lock")}
    allowed |= {out.with_name("s.report.html"), out.with_name("s.run.html")}
    assert all(p in allowed or out in p.parents or p == out for p in changed), sorted(changed)
    assert np.all([before[p] == after[p] for p in before])
