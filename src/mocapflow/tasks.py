"""Per-chunk work, free of Dask: decode, track and write one frame range of one video.

The tasks are the :class:`~mocapflow.plan.ChunkSpec` of a plan (see
:mod:`mocapflow.plan`). Inside a task, frames are decoded and tracked in small
batches, so a worker holds a batch of frames, never a whole chunk.
"""

from __future__ import annotations

import errno
import itertools
import logging
import time
from collections.abc import Iterator

import numpy as np

from . import ledger
from . import store as _store
from .errors import TrackerError, VideoError
from .plan import ChunkSpec
from .schema import BATCH_FRAMES, CONFIDENCE
from .trackers import Tracker, batch_of, pixel_format_of, reset_of
from .video import iter_range

__all__ = ["FATAL_ERRNOS", "run_chunk", "track_chunk"]

logger = logging.getLogger(__name__)

#: Errors a retry cannot mend (full disk, quota, read-only): the run stops at once.
FATAL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _check_outputs(tracker: Tracker, shapes: dict[str, tuple], result: dict, n: int) -> None:
    for name, frame_shape in shapes.items():
        if name not in result:
            raise TrackerError(f"tracker {tracker.name} returned no {name!r}")
        got = np.shape(result[name])
        want = (n, *frame_shape)
        if got != want:
            raise TrackerError(f"tracker {tracker.name}: {name!r} has shape {got}, expected {want}")
    if CONFIDENCE in shapes:
        conf = np.asarray(result[CONFIDENCE], dtype=np.float64)
        bad = conf[~np.isnan(conf) & ((conf < 0) | (conf > 1))]
        if bad.size:
            raise TrackerError(
                f"tracker {tracker.name} returned confidence {bad.flat[0]:g}, outside 0-1 "
                f"({bad.size} values); a confidence is a probability: scale it into 0-1, "
                "or NaN where nothing was found"
            )


def _batches(frames: Iterator[np.ndarray], batch: int, most: int) -> Iterator[np.ndarray]:
    """Group decoded frames into batches for the tracker, holding one batch at a time.

    A batch of one is the decoded frame itself, as a read-only ``(1, ...)`` view
    (it may be the decoder's own buffer); larger batches fill one reused buffer
    of at most ``most`` frames. If decoding fails part-way, the frames decoded so
    far come out as a last, short batch before the error is raised.
    """
    buffer: np.ndarray | None = None
    filled = 0
    try:
        for frame in frames:
            if batch == 1:
                view = frame[None]
                view.flags.writeable = False
                yield view
                continue
            if buffer is None:
                buffer = np.empty((min(batch, most), *frame.shape), frame.dtype)
            buffer[filled] = frame
            filled += 1
            if filled == len(buffer):
                yield buffer
                filled = 0
    except VideoError:
        if filled:
            yield buffer[:filled]
        raise
    if filled:
        yield buffer[:filled]


def track_chunk(
    spec: ChunkSpec, tracker: Tracker, batch: int | None = None, threads: int | None = None
) -> dict:
    """Decode and track one task's frames in batches.

    The tracker is reset first (if it keeps state), gets its frames in the
    pixel format it declares, and sees ``spec.warmup`` frames before the
    task's own, whose results are dropped.

    Parameters
    ----------
    spec : ChunkSpec
        The task.
    tracker : Tracker
        The tracker.
    batch : int, optional
        Frames decoded before each tracker call; default the tracker's
        ``batch_frames``, else :data:`~mocapflow.schema.BATCH_FRAMES`. A batch
        of one is the decoded frame itself, not a copy.
    threads : int, optional
        Decoder threads; default from ``MOCAPFLOW_DECODE_THREADS`` (see
        :func:`mocapflow.video.decode_threads`).

    Returns
    -------
    dict
        ``arrays`` (each output, padded with its fill value to the task's
        length), ``decoded`` (bool per frame), ``n_decoded`` and ``error``
        (the decoding error, or ``None``).

    """
    batch = batch_of(tracker, BATCH_FRAMES) if batch is None else batch
    if batch < 1:
        raise TrackerError(f"tracker {tracker.name}: a batch needs at least 1 frame, got {batch}")
    outputs = tracker.outputs()
    shapes = {name: out.frame_shape() for name, out in outputs.items()}  # once, not per call
    parts: dict[str, list[np.ndarray]] = {name: [] for name in outputs}
    n_decoded, error = 0, None

    def track(frames: np.ndarray) -> None:
        nonlocal n_decoded
        result = tracker(frames)
        _check_outputs(tracker, shapes, result, len(frames))
        for name, out in outputs.items():
            parts[name].append(np.array(result[name], dtype=out.dtype))
        n_decoded += len(frames)

    reset = reset_of(tracker)
    if reset is not None:
        reset()
    frames = iter_range(
        spec.path,
        spec.start - spec.warmup,
        spec.stop,
        spec.read_pts if spec.warmup else spec.start_pts,
        spec.seek_pts,
        threads=threads,
        pixel_format=pixel_format_of(tracker),
    )
    try:
        for frames_before in _batches(itertools.islice(frames, spec.warmup), batch, spec.warmup):
            tracker(frames_before)  # warm-up: the results are dropped
        for some in _batches(frames, batch, spec.n_frames):
            track(some)
    except VideoError as exc:
        error = str(exc)
    n = spec.n_frames
    arrays = {}
    for name, out in outputs.items():
        full = np.full((n, *shapes[name]), out.fill, dtype=out.dtype)
        if n_decoded:
            full[:n_decoded] = np.concatenate(parts[name])
        arrays[name] = full
    decoded = np.zeros(n, bool)
    decoded[:n_decoded] = True
    if error is None and n_decoded < n:
        error = (
            f"{spec.path}: the stream ended after {n_decoded} of frames "
            f"{spec.start}:{spec.stop}; the file is truncated, re-export it"
        )
    return {"arrays": arrays, "decoded": decoded, "n_decoded": n_decoded, "error": error}


def run_chunk(
    spec: ChunkSpec,
    tracker: Tracker,
    store_path: str,
    time_chunk: int,
    decode_threads: int | None = None,
) -> dict:
    """Run one task end to end: decode, track, write its region, record it done.

    A task whose video cannot be opened at all writes nothing and is not
    recorded as done (a rerun tries it again). One that decodes only part of
    its frames writes them, leaves the rest NaN, and is recorded ``partial``.

    Parameters
    ----------
    spec : ChunkSpec
        The task.
    tracker : Tracker
        The tracker.
    store_path : str
        The store, whose template already exists.
    time_chunk : int
        The store's chunk length along ``time``.
    decode_threads : int, optional
        Decoder threads (a worker thread of the command's own process decodes
        with one); default from ``MOCAPFLOW_DECODE_THREADS``.

    Returns
    -------
    dict
        The task record: ``view``, ``view_index``, ``start``, ``stop``,
        ``n_decoded``, ``status`` (ok, partial, failed), ``error``, ``seconds``,
        and ``chunks``: the digest of every chunk file it wrote.

    """
    t0 = time.perf_counter()
    _store.check_region(time_chunk, spec.start, spec.stop, spec.view_end)
    out = track_chunk(spec, tracker, threads=decode_threads)
    record = {
        "view": spec.view,
        "view_index": spec.view_index,
        "start": spec.start,
        "stop": spec.stop,
        "n_decoded": out["n_decoded"],
        "error": out["error"],
    }
    if out["n_decoded"] == 0 and out["error"]:
        record.update(status="failed", seconds=time.perf_counter() - t0)
        return record  # the client reports it
    try:
        sums = _store.write_region(
            store_path, spec.view_index, spec.start, out["arrays"], out["decoded"]
        )
        record.update(
            status="ok" if out["error"] is None else "partial",
            seconds=time.perf_counter() - t0,
            chunks=sums,
        )
        ledger.mark_done(store_path, *spec.key, record)
    except OSError as exc:
        if exc.errno not in FATAL_ERRNOS:
            raise
        # Retrying cannot mend a full or read-only disk: tell the client at once.
        record.update(status="fatal", errno=exc.errno, error=f"{store_path}: {exc.strerror}")
    return record
