"""Remote profiles: a real dask scheduler and workers on loopback, and HPC job scripts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr

import mocapflow
from mocapflow.cluster import load_profile
from mocapflow.errors import ConfigError

BIN = Path(sys.executable).parent
EXE = str(BIN / "mocapflow")

HPC = """
profiles:
  hpc:
    type: {kind}
    cores: 8
    memory: 32GiB
    processes: 4
    walltime: "02:00:00"
    account: mylab
    queue: compute
    jobs: 3
"""


@pytest.fixture()
def scheduler(tmp_path):
    """`dask scheduler` and two `dask worker` processes, started with the CLI on 127.0.0.1."""
    sfile = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dask"),
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(sfile),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(300):
            if sfile.exists() and sfile.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sfile.read_text())["address"]
        for i in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        str(BIN / "dask"),
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--host",
                        "127.0.0.1",
                        "--no-dashboard",
                        "--name",
                        f"w{i}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from distributed import Client

        with Client(address) as c:
            c.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in procs[::-1]:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_address_profile_equals_local_run(markers_recording, tmp_path, scheduler):
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(f"profiles:\n  remote:\n    type: address\n    address: {scheduler}\n")
    proc = subprocess.run(
        [
            EXE,
            "process",
            str(markers_recording),
            "--out",
            str(tmp_path / "remote.zarr"),
            "-t",
            "markers",
            "--chunk-frames",
            "30",
            "--cluster",
            "remote",
            "--cluster-config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"cluster:   the scheduler at {scheduler}" in proc.stderr
    local = mocapflow.process(
        markers_recording, "markers", tmp_path / "local.zarr", chunk_frames=30, report=False
    )
    a = xr.open_zarr(tmp_path / "remote.zarr", consolidated=False)
    b = xr.open_zarr(local.store, consolidated=False)
    for name in b.data_vars:
        assert a[name].values.tobytes() == b[name].values.tobytes(), name
    assert a.attrs["cluster"]["reason"] == f"the scheduler at {scheduler}"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (
            "slurm",
            [
                "#SBATCH -A mylab",
                "#SBATCH -p compute",
                "#SBATCH --cpus-per-task=8",
                "#SBATCH --mem=32G",
                "#SBATCH -t 02:00:00",
                "dask_worker",
                "--nworkers 4",
            ],
        ),
        (
            "pbs",
            [
                "#PBS -A mylab",
                "#PBS -q compute",
                "ncpus=8",
                "mem=32GB",
                "#PBS -l walltime=02:00:00",
                "dask_worker",
                "--nworkers 4",
            ],
        ),
    ],
)
def test_job_scripts_carry_the_profile(tmp_path, kind, expected):
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(HPC.format(kind=kind))
    proc = subprocess.run(
        [EXE, "cluster", "show", "hpc", "--cluster-config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    for line in expected:
        assert line in proc.stdout, (line, proc.stdout)
    assert "scaling: 3 jobs" in proc.stdout


def test_hpc_profile_errors(tmp_path, monkeypatch):
    cfg = tmp_path / "cluster.yaml"
    cfg.write_text(HPC.format(kind="slurm").replace("walltime", "walltim"))
    with pytest.raises(ConfigError, match="unknown key 'walltim'; valid keys: .*walltime"):
        load_profile("hpc", cfg)
    cfg.write_text(HPC.format(kind="slurm") + "    adapt: {minimum_jobs: 1}\n")
    with pytest.raises(ConfigError, match="jobs or adapt, not both"):
        load_profile("hpc", cfg)
    cfg.write_text("profiles:\n  r:\n    type: address\n")
    with pytest.raises(ConfigError, match="exactly one of address"):
        load_profile("r", cfg)
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)  # as if not installed
    cfg.write_text(HPC.format(kind="pbs"))
    with pytest.raises(ConfigError, match=r"needs dask-jobqueue: pip install 'mocapflow\[hpc\]'"):
        load_profile("hpc", cfg)


def test_single_allocation_runner_equals_local_run(markers_recording, tmp_path):
    """flows/slurm_allocation.py as `srun -n 4` starts it: four ranks, SLURM's variables."""
    pytest.importorskip("dask_jobqueue")
    script = Path(__file__).resolve().parents[1] / "flows" / "slurm_allocation.py"
    out = tmp_path / "allocation.zarr"
    args = [sys.executable, str(script), str(markers_recording), "--out", str(out)]
    args += ["--chunk-frames", "30", "--host", "127.0.0.1", "--dashboard-address", "127.0.0.1:0"]
    args += ["--scheduler-file", str(tmp_path / "scheduler-{job_id}.json")]
    ranks = []
    for rank in range(4):
        env = {**os.environ, "SLURM_PROCID": str(rank), "SLURM_NTASKS": "4"}
        env["SLURM_JOB_ID"] = "4242"
        log = subprocess.PIPE if rank == 1 else (tmp_path / f"rank{rank}.log").open("w")
        ranks.append(subprocess.Popen(args, env=env, stdout=log, stderr=log, text=True))
    try:
        client_out, client_err = ranks[1].communicate(timeout=300)
        assert ranks[1].returncode == 0, client_err[-3000:]
        for p in ranks:  # the scheduler and workers exit once the client is done
            p.wait(timeout=60)
        codes = [p.returncode for p in ranks]
    finally:
        for p in ranks:
            p.kill()
    assert codes == [0, 0, 0, 0], [(tmp_path / f"rank{r}.log").read_text() for r in (0, 2, 3)]
    assert "12 tasks computed, 0 skipped on 2 workers; views not ok: none" in client_out, client_out
    local = mocapflow.process(
        markers_recording, "markers", tmp_path / "local.zarr", chunk_frames=30, report=False
    )
    a = xr.open_zarr(out, consolidated=False)
    b = xr.open_zarr(local.store, consolidated=False)
    for name in b.data_vars:
        assert a[name].values.tobytes() == b[name].values.tobytes(), name
