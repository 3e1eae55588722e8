"""The release red team's input cases (B1-B11, C1-C5, C7, C8), each through the CLI.

Every bad input is exit 2 with one line naming the value and the fix, before
any cluster starts or any store is written; a user's own tracker failing is
reported as that tracker failing, not as a bug in mocapflow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import xarray as xr

EXE = str(Path(sys.executable).with_name("mocapflow"))
FAST = ["--no-report", "--chunk-frames", "30"]


def run(*args, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("timeout", 300)
    return subprocess.run([EXE, *map(str, args)], capture_output=True, text=True, **kw)


def one_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """The single ``error:`` line of a command that failed as a usage error."""
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "bug in mocapflow" not in output, output
    assert proc.returncode == code, output
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


@pytest.fixture()
def rec(markers_recording, tmp_path) -> Path:
    dst = tmp_path / "rec"
    shutil.copytree(markers_recording / "synchronized_videos", dst / "synchronized_videos")
    return dst


# --- B1-B4: names and output paths -------------------------------------------------------


def test_b1_a_video_name_that_is_not_utf8(rec, tmp_path):
    videos = os.fsencode(rec / "synchronized_videos")
    os.rename(videos + b"/cam2.mp4", videos + b"/cam\xff2.mp4")
    store = tmp_path / "s.zarr"
    line = one_line(run("process", rec, "-t", "framestats", "--out", store, *FAST))
    assert "b'cam\\xff2.mp4' is not valid UTF-8" in line and "rename it" in line
    assert not store.exists()


@pytest.mark.parametrize("target", ["dangling", "empty folder"])
def test_b2_a_store_path_that_is_a_link(rec, tmp_path, target):
    real = tmp_path / "real.zarr"
    if target == "empty folder":
        real.mkdir()
    link = tmp_path / "s.zarr"
    link.symlink_to(real)
    line = one_line(run("process", rec, "-t", "framestats", "--out", link, *FAST))
    assert f"s.zarr: is a link to {real}" in line and "real path as --out" in line
    assert not real.exists() or not any(real.iterdir())


def test_b3_an_output_folder_without_write_permission(rec, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    cmd = [EXE, "process", str(rec), "-t", "framestats", "--out", str(folder / "s.zarr"), *FAST]
    if os.geteuid() == 0:  # root writes anywhere: drop the capabilities that allow it
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", "--bounding-set", caps, "--inh-caps", caps, *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        line = one_line(proc)
    finally:
        folder.chmod(0o755)
    assert "locked: no permission to write there" in line
    assert not any(folder.iterdir())


def test_b4_a_path_over_4096_bytes(rec, tmp_path):
    deep = tmp_path.joinpath(*["d" * 200] * 21) / "s.zarr"
    line = one_line(run("process", rec, "-t", "framestats", "--out", deep, *FAST))
    assert "bytes, more than the 4096 the system allows" in line and len(line) < 400
    assert not (tmp_path / ("d" * 200)).exists()


# --- B5: remote schedulers that do not answer --------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Garbage(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"\xff" * 64)  # read by Dask as a frame of exabytes
        time.sleep(3)


class _Http(socketserver.BaseRequestHandler):
    def handle(self):
        time.sleep(30)  # an HTTP server waits for the request; Dask waits for the handshake


@pytest.fixture()
def serve():
    servers = []

    def start(handler) -> str:
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"tcp://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("endpoint", ["refused", "http", "not dask", "no scheduler file"])
def test_b5_an_address_profile_that_does_not_answer(rec, tmp_path, serve, endpoint):
    if endpoint == "refused":
        key = f"address: tcp://127.0.0.1:{free_port()}"
    elif endpoint == "http":
        key = f"address: {serve(_Http)}"
    elif endpoint == "not dask":
        key = f"address: {serve(_Garbage)}"
    else:
        key = f"scheduler_file: {tmp_path / 'nowhere.json'}"
    config = tmp_path / "cluster.yaml"
    config.write_text(f"profiles:\n  lab:\n    type: address\n    {key}\n    timeout: 2\n")
    store = tmp_path / "s.zarr"
    t0 = time.monotonic()
    proc = run(
        "process", rec, "-t", "framestats", "--out", store, "--cluster", "lab",
        "--cluster-config", config, *FAST, timeout=60,
    )  # fmt: skip
    line = one_line(proc)
    assert time.monotonic() - t0 < 20  # the profile's 2 s, and the command's start-up
    assert "cluster.yaml: profile 'lab'" in line
    expected = {
        "refused": "cannot reach the scheduler at tcp://127.0.0.1",
        "http": "within 2 s",
        "not dask": "not a Dask scheduler",
        "no scheduler file": "nowhere.json does not exist; start the scheduler first",
    }[endpoint]
    assert expected in line, line
    assert not store.exists()


# --- B6-B8: parameters and the user's own tracker ----------------------------------------


@pytest.mark.parametrize(
    "board, says",
    [
        ("squares_x=1", "at least 2x2 squares"),
        ("abc", "--board 'abc': write it as NAME=VALUE"),
        ("dictionary=BOGUS", "unknown dictionary 'BOGUS'"),
        ("square_length=0", "square_length=0.0 must be above 0"),
        ("squares_x=seven", "squares_x takes a whole number"),
        ("squares_y=100000", "needs 350000 markers, more than the 250 of DICT_4X4_250"),
    ],
)
def test_b6_invalid_board_values(rec, tmp_path, board, says):
    line = one_line(run("calibrate", rec, "--board", board, "--out", tmp_path / "c.toml"))
    assert "--board" in line and says in line, line
    assert not (rec / "mocapflow.zarr").exists()


@pytest.mark.parametrize(
    "param, says",
    [
        ("n_markers=2.5", "n_markers takes a whole number"),
        ("min_chroma=1000", "min_chroma=1000 is outside 0-255"),
        ("n_marker=3", "has no parameter 'n_marker'; its parameters: n_markers"),
        ("n_markers=999999", "n_markers=999999 must be from 1 to 60"),
    ],
)
def test_b7_tracker_parameters_are_checked_before_anything_runs(rec, tmp_path, param, says):
    store = tmp_path / "s.zarr"
    line = one_line(run("process", rec, "-t", "markers", "-p", param, "--out", store, *FAST))
    assert says in line, line
    assert not store.exists()


USER_TRACKER = """
import numpy as np
from mocapflow.trackers import Markers

{body}
"""


@pytest.mark.parametrize(
    "body, says",
    [
        ("def make():\n    raise RuntimeError('no licence key')",
         "its factory raised RuntimeError: no licence key"),
        ("import a_package_nobody_has\ndef make():\n    return Markers()",
         "your module 'usertrk' failed to import: No module named 'a_package_nobody_has'"),
        ("def make(:\n    pass", "your module 'usertrk' failed to import (" ),
        ("class T(Markers):\n    def params(self):\n        return {'n': np.int64(3)}\n"
         "def make():\n    return T()", "params() returned n=np.int64(3)"),
    ],
    ids=["factory raises", "import error", "syntax error", "numpy params"],
)  # fmt: skip
def test_b8_the_users_tracker_failing_is_the_users(rec, tmp_path, body, says):
    (tmp_path / "usertrk.py").write_text(USER_TRACKER.format(body=body))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    store = tmp_path / "s.zarr"
    proc = run("process", rec, "-t", "usertrk:make", "--out", store, *FAST, env=env)
    line = one_line(proc)
    assert "tracker 'usertrk:make'" in line and says in line, line
    assert not store.exists()


# --- B9-B11 -----------------------------------------------------------------------------


def test_b9_export_out_dir_that_is_a_file(tmp_path):
    store = tmp_path / "s.zarr"  # the option is checked whatever the store holds
    (tmp_path / "afile").write_text("mine")
    proc = run("export", store, "--out-dir", tmp_path / "afile")
    line = one_line(proc)
    assert "afile" in line and (tmp_path / "afile").read_text() == "mine"


def test_b10_dashboard_addresses(rec, tmp_path):
    proc = run(
        "process", rec, "-t", "framestats", "--out", tmp_path / "a.zarr", "--dashboard",
        "192.0.2.1:0", *FAST,
    )  # fmt: skip
    line = one_line(proc)
    assert "--dashboard 192.0.2.1: this machine cannot listen there" in line
    assert not (tmp_path / "a.zarr").exists()
    proc = run(
        "process", rec, "-t", "framestats", "--out", tmp_path / "b.zarr", "--dashboard",
        "[::1]:0", *FAST,
    )  # fmt: skip
    assert "--dashboard '[::1]:0': Dask's dashboard cannot listen on an IPv6" in one_line(proc)
    assert not (tmp_path / "b.zarr").exists()


@pytest.mark.parametrize(
    "args, says",
    [
        (["--markers", "0"], "--markers 0: a markers scene has 1 to 24 markers"),
        (["--size", "100000x100000"], "at most 7680 pixels a side"),
        (["--size", "161x121"], "width and height must be even"),  # crashed the encoder
        (["--fps", "nan"], "fps > 0"),
    ],
)
def test_b11_synth_checks_its_arguments_before_deleting_anything(tmp_path, args, says):
    out = tmp_path / "synth"
    assert run("synth", out, "--frames", "5", "--size", "64x48").returncode == 0
    before = sorted(p.name for p in (out / "synchronized_videos").iterdir())
    line = one_line(run("synth", out, "--frames", "5", "--overwrite", *args))
    assert says in line
    assert sorted(p.name for p in (out / "synchronized_videos").iterdir()) == before


# --- C cases ------------------------------------------------------------------------------


def test_c1_a_store_of_another_layout(rec, tmp_path):
    store = tmp_path / "s.zarr"
    assert run("process", rec, "-t", "framestats", "--out", store, *FAST).returncode == 0
    for file in (store / "zarr.json", store / "_mocapflow" / "attrs.json"):
        doc = json.loads(file.read_text())
        attrs = doc.get("attributes", doc)
        attrs["mocapflow_format"] = "mocapflow-store/0"
        file.write_text(json.dumps(doc))
    for command in (
        ["verify", store],
        ["info", store],
        ["export", store],
        ["process", rec, "--out", store],
    ):
        line = one_line(run(*command, "-t", "framestats", *FAST) if command[0] == "process"
                        else run(*command))  # fmt: skip
        assert "store layout mocapflow-store/0" in line and "reads mocapflow-store/1" in line
        assert "--overwrite" in line
    proc = run("process", rec, "-t", "framestats", "--out", store, "--overwrite", *FAST)
    assert proc.returncode == 0, proc.stderr
    assert "whole" in run("verify", store).stdout


def test_c2_synth_vp9_is_processed(tmp_path):
    out = tmp_path / "vp9"
    assert run("synth", out, "--codec", "vp9", "--frames", "10", "--size", "64x48").returncode == 0
    proc = run("process", out, "-t", "framestats", "--cluster", "threads", *FAST)
    assert proc.returncode == 0, proc.stderr


def test_c3_parameters_are_typed_by_the_tracker_not_yaml_1_1(rec, tmp_path):
    store = tmp_path / "s.zarr"
    proc = run("process", rec, "-t", "markers", "-p", "n_markers=010", "--out", store,
               "--cluster", "threads", *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert xr.open_zarr(store, consolidated=False).attrs["tracker_params"]["n_markers"] == 10
    line = one_line(run("process", rec, "-t", "mediapipe", "-p", "static_image_mode=maybe",
                        "--out", tmp_path / "m.zarr", *FAST))  # fmt: skip
    assert "static_image_mode is true or false" in line


def test_c4_a_yaml_error_names_the_cluster_file(rec, tmp_path):
    config = tmp_path / "my-cluster.yaml"
    config.write_text("profiles:\n  lab: {type: address\n")
    proc = run("process", rec, "--cluster-config", config, "--out", tmp_path / "s.zarr", *FAST)
    line = one_line(proc)
    assert f"{config}: not valid YAML at line" in line
    config.write_bytes(b"\xff\xfe\x00bad")
    proc = run("process", rec, "--cluster-config", config, "--out", tmp_path / "s.zarr", *FAST)
    assert f"{config}: not a text file in UTF-8" in one_line(proc)


def test_c5_batch_follows_recordings_that_are_links(rec, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "linked").symlink_to(rec)
    (root / "again").symlink_to(rec)  # the same recording twice: processed once
    proc = run("batch", root, "-t", "framestats", "--chunk-frames", "30")
    assert proc.returncode == 0, proc.stderr
    log = (root / "mocapflow-batch.jsonl").read_text().splitlines()
    assert len(log) == 1 and json.loads(log[0])["action"] != "skipped"
    assert (rec / "mocapflow.zarr").is_dir()


CONFIDENT = """
import numpy as np
from mocapflow.trackers import Markers

class TooSure(Markers):
    def __call__(self, frames):
        out = super().__call__(frames)
        out["confidence"] = np.where(np.isnan(out["confidence"]), np.nan, 7.5)
        return out

def make():
    return TooSure()
"""


def test_c7_a_confidence_outside_0_1_fails_its_views(rec, tmp_path):
    (tmp_path / "toosure.py").write_text(CONFIDENT)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    store = tmp_path / "s.zarr"
    proc = run("process", rec, "-t", "toosure:make", "--out", store, "--cluster", "threads",
               *FAST, env=env)  # fmt: skip
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "returned confidence 7.5, outside 0-1" in proc.stdout + proc.stderr
    status = xr.open_zarr(store, consolidated=False).attrs["view_status"]
    assert {s["status"] for s in status.values()} == {"failed"}


def test_c8_min_confidence_above_1_and_max_error_nan(tmp_path):
    line = one_line(run("triangulate", tmp_path / "s.zarr", "-c", tmp_path / "c.toml",
                        "--min-confidence", "2"))  # fmt: skip
    assert "--min-confidence 2: a confidence is between 0 and 1" in line
    line = one_line(run("triangulate", tmp_path / "s.zarr", "-c", tmp_path / "c.toml",
                        "--max-error", "nan"))  # fmt: skip
    assert "--max-error must be a positive number of pixels, got nan" in line


def test_file_system_errors_of_any_command_are_one_line(tmp_path):
    """Permission and name-length errors wherever they arise: one line, exit 2, not a bug."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    cmd = [EXE, "synth", str(locked / "rec"), "--frames", "3", "--size", "64x48"]
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        caps = "-dac_override,-dac_read_search"
        cmd = ["setpriv", "--bounding-set", caps, "--inh-caps", caps, *cmd]
    try:
        line = one_line(subprocess.run(cmd, capture_output=True, text=True, timeout=120))
    finally:
        locked.chmod(0o755)
    assert "locked/rec" in line and "Permission denied; choose another path" in line
    long = tmp_path / ("n" * 300)
    for command in (["synth", long, "--frames", "3"], ["info", long / "s.zarr"]):
        line = one_line(run(*command))
        assert "File name too long" in line and len(line) < 400, line


def test_triangulate_is_refused_while_process_writes(rec, markers_recording, tmp_path):
    """A store another run is writing is busy for triangulate too, not silently mixed."""
    helpers = Path(__file__).resolve().parents[1] / "helpers"
    env = {**os.environ, "PYTHONPATH": str(helpers)}
    store = tmp_path / "s.zarr"
    proc = subprocess.Popen(
        [EXE, "process", str(rec), "-t", "slowtrack:Slow", "-p", "delay=0.05", "-p",
         "inner=markers", "--out", str(store), "--chunk-frames", "15", "--no-report",
         "--cluster", "threads"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        t0 = time.monotonic()
        while not list((store / "_mocapflow" / "chunks").glob("*.json")):
            assert proc.poll() is None and time.monotonic() - t0 < 120
            time.sleep(0.02)
        calib = markers_recording / "true_calibration.toml"
        line = one_line(run("triangulate", store, "-c", calib, "--cluster", "threads"))
        assert "busy: process" in line
    finally:
        proc.kill()
        proc.wait()


def test_a_taken_dashboard_port_is_one_fact_not_a_warning(rec, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = run("process", rec, "-t", "framestats", "--out", tmp_path / "s.zarr",
                   "--dashboard", f"127.0.0.1:{port}", "--cluster", "threads", *FAST)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "already in use" not in proc.stderr
    output = proc.stdout + proc.stderr
    assert "dashboard: http://127.0.0.1:" in output and f":{port}/" not in output
