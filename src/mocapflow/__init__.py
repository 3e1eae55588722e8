"""mocapflow: track multi-camera recordings as frame-chunk Dask graphs streamed into Zarr.

Importing the package has no side effects and configures no logging. The Dask
machinery loads on first use of :func:`process`, :func:`track` or the cluster.

Examples
--------
>>> import mocapflow
>>> rec = mocapflow.open_recording("session01")          # doctest: +SKIP
>>> ds = mocapflow.track(rec, "markers")                 # lazy, Dask-backed
>>> result = mocapflow.process(rec, "markers")           # runs on a LocalCluster

"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "MocapflowError": "errors",
    "open_recording": "recording",
    "Recording": "recording",
    "RecordingError": "errors",
    "read_frames": "video",
    "probe": "video",
    "get_tracker": "trackers",
    "synthesize": "synthetic",
    "open_tracks": "store",
    "track": "graph",
    "make_plan": "plan",
    "Plan": "plan",
    "process": "runner",
    "RunResult": "runner",
    "triangulate_store": "runner",
    "filter_store": "runner",
    "run_pipeline": "pipeline",
    "calibrate": "calibration",
    "calibrate_intrinsics": "calibration",
    "Session": "cluster.session",
    "ClusterOptions": "cluster.session",
    "TriangulationSettings": "schema",
    "FilterSettings": "schema",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'mocapflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
