"""cluster.yaml profiles: defaults, overrides, and errors that list the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest

import mocapflow
from mocapflow.cluster import load_profile
from mocapflow.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "cluster.yaml"
    p.write_text(text)
    return p


def test_repository_cluster_yaml_is_valid():
    prof = load_profile(path=REPO / "cluster.yaml")
    assert prof["type"] == "local" and prof["dashboard_address"] == "127.0.0.1:8787"
    assert "workers" not in prof  # auto


def test_builtin_local_without_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_profile() == {"type": "local", "name": "local", "source": "built-in"}


def test_builtin_threads_profile(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    prof = load_profile("threads")
    assert prof == {"type": "local", "name": "threads", "source": "built-in", "processes": False}
    assert load_profile("threads", REPO / "cluster.yaml")["processes"] is False


def test_overrides(tmp_path):
    p = write(
        tmp_path, "profiles:\n  small:\n    type: local\n    workers: 1\n    memory_limit: 2GiB\n"
    )
    prof = load_profile("small", p)
    assert prof["workers"] == 1 and prof["memory_limit"] == 2 * 2**30


@pytest.mark.parametrize(
    ("text", "name", "message"),
    [
        ("profiles:\n  local: {}\n", "lcoal", "no cluster profile 'lcoal'; valid names: local"),
        ("profiles:\n  local:\n    wrokers: 2\n", None, "unknown key 'wrokers'; valid keys: dash"),
        (
            "profiles:\n  x:\n    type: slurmish\n",
            "x",
            "type .slurmish.; supported types: address, local, pbs, slurm",
        ),
        ("profiles:\n  local:\n    memory_limit: lots\n", None, "not a size like 4GiB"),
        ("profiles:\n  local:\n    workers: 0\n", None, "positive integer"),
        ("profiles:\n  local:\n    processes: 2\n", None, "processes must be true or false"),
        ("profiles: [1, 2]\n", None, "expected a mapping"),
    ],
)
def test_errors(tmp_path, text, name, message):
    with pytest.raises(ConfigError, match=message):
        load_profile(name, write(tmp_path, text))


def test_missing_file():
    with pytest.raises(ConfigError, match="no such cluster profiles file"):
        load_profile(path="/nonexistent/cluster.yaml")


def test_process_uses_the_profile(markers_recording, tmp_path):
    p = write(tmp_path, "profiles:\n  one:\n    type: local\n    workers: 1\n")
    res = mocapflow.process(
        markers_recording,
        "framestats",
        tmp_path / "s.zarr",
        cluster=mocapflow.ClusterOptions(profile="one", config=p),
        report=False,
    )
    assert res.sizing["workers"] == 1 and "cluster profile" in res.sizing["reason"]
    with pytest.raises(ConfigError):
        mocapflow.process(
            markers_recording,
            "framestats",
            tmp_path / "t.zarr",
            cluster=mocapflow.ClusterOptions(profile="nope", config=p),
        )
    assert not (tmp_path / "t.zarr").exists()


def test_a_profile_type_registered_by_a_package(markers_recording, tmp_path):
    """A package adds a kind of cluster through the ``mocapflow.profiles`` entry points:
    its keys are checked, ``cluster show`` lists it, and ``process`` runs on what it opens
    (here a real LocalCluster of one worker process)."""
    import os
    import subprocess
    import sys
    import textwrap

    (tmp_path / "mylab.py").write_text(
        textwrap.dedent("""
        from distributed import Client, LocalCluster
        from mocapflow.cluster.profiles import ProfileType
        from mocapflow.errors import ConfigError

        def check(where, profile):
            if not isinstance(profile.get("nodes", 1), int):
                raise ConfigError(f"{where}: nodes must be a whole number")

        def open_(profile):
            cluster = LocalCluster(n_workers=profile.get("nodes", 1), threads_per_worker=1,
                                   host="127.0.0.1", dashboard_address=":0")
            return cluster, Client(cluster), f"mylab profile {profile['name']!r}"

        TYPE = ProfileType("mylab", lambda: {"nodes"}, check, open_)
    """)
    )
    info = tmp_path / "mylab-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mocapflow.profiles]\nmylab = mylab:TYPE\n")
    config = write(tmp_path, "profiles:\n  rack:\n    type: mylab\n    nodes: 1\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("profiles:\n  rack:\n    type: mylab\n    nodes: one\n")
    exe = str(Path(sys.executable).with_name("mocapflow"))
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def run(*args):
        return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=env,
                              timeout=300)  # fmt: skip

    shown = run("cluster", "show", "rack", "--cluster-config", config)
    assert shown.returncode == 0 and "mylab" in shown.stdout, shown.stderr
    refused = run("process", markers_recording, "-t", "framestats", "--out", tmp_path / "x.zarr",
                  "--cluster", "rack", "--cluster-config", bad)  # fmt: skip
    assert refused.returncode == 2 and "nodes must be a whole number" in refused.stderr
    assert not (tmp_path / "x.zarr").exists()
    done = run("process", markers_recording, "-t", "framestats", "--out", tmp_path / "s.zarr",
               "--cluster", "rack", "--cluster-config", config)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "mylab profile 'rack'" in done.stderr
