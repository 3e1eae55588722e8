"""Process every recording under a folder, for scheduled runs.

``mocapflow batch ROOT`` (and ``flows/batch.py``) finds every recording folder
under ROOT, however deep, and processes the new and unfinished ones, one
after another on one shared cluster (a single recording already fills every
worker with its chunk tasks, and one at a time keeps memory bounded).

* A complete store made from the same inputs is skipped after a few ``stat``
  calls and one small JSON read (the fingerprint's digests are reused while
  the videos' sizes and modification times are unchanged).
* A store made from other inputs (another tracker, other parameters, videos
  whose content changed) is **reported and left alone**: batch never deletes
  results, and the 3-D groups in a store are results it cannot rebuild.
  ``mocapflow process --overwrite`` rebuilds it when that is what you want.
* A recording whose store another run is writing is skipped (the store lock).

Every outcome is appended to ``ROOT/mocapflow-batch.jsonl``; one failed
recording never stops the others.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

from . import ledger
from . import store as _store
from .cluster.session import ClusterOptions, Session, Work
from .errors import MocapflowError, RecordingError, StoreBusyError
from .recording import find_recordings, find_videos
from .runner import process
from .schema import DEFAULT_CHUNK_FRAMES, DEFAULT_TRACKER, STORE_NAME
from .trackers import Tracker, get_tracker

__all__ = ["SUMMARY_NAME", "recording_state", "run_batch"]

logger = logging.getLogger(__name__)

SUMMARY_NAME = "mocapflow-batch.jsonl"


def recording_state(recording: Path, tracker: Tracker, chunk_frames: int) -> tuple[str, str]:
    """Return a recording's state (see :func:`mocapflow.ledger.state`) and, if changed, what."""
    store = recording / STORE_NAME
    attrs = _store.read_attrs(store) if _store.is_store(store) else {}
    fp = ledger.fingerprint(find_videos(recording), tracker, chunk_frames, attrs.get("fingerprint"))
    state = ledger.state(store, fp)
    detail = (
        "; ".join(ledger.changes(attrs.get("fingerprint", {}), fp)) if state == "changed" else ""
    )
    return state, detail


def run_batch(
    root: str | Path,
    tracker: str = DEFAULT_TRACKER,
    *,
    tracker_params: dict | None = None,
    chunk_frames: int = DEFAULT_CHUNK_FRAMES,
    cluster: ClusterOptions | str | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Process every recording under ``root`` that needs it; return one record each.

    Parameters
    ----------
    root : path
        Folder searched for recordings, however deep.
    tracker : str
        Tracker for every recording.
    tracker_params : dict, optional
        Its parameters.
    chunk_frames : int
        Frames per task.
    cluster : ClusterOptions or str, optional
        Where to run, as :func:`mocapflow.process` takes it; one cluster serves
        every recording.
    on_result : callable, optional
        Called with each record as it is made.

    Returns
    -------
    list of dict
        Per recording: ``recording``, ``action`` (skipped, processed, left, busy,
        failed), ``seconds``, ``exit_code``, ``views`` and ``error``.

    """
    root = Path(root)
    if not root.is_dir():
        raise RecordingError(f"{root}: no such folder; check the batch root")
    trk = get_tracker(tracker, **(tracker_params or {}))
    session = Session(Work(10**6), cluster)
    records = []
    with contextlib.ExitStack() as stack:
        for rec in find_recordings(root):
            t0 = time.perf_counter()
            record: dict = {"recording": str(rec), "tracker": trk.name, "error": None}
            try:
                record.update(_one(rec, trk, chunk_frames, session, stack))
            except StoreBusyError as exc:
                record.update(action="busy", exit_code=0, error=str(exc))
            except MocapflowError as exc:  # one bad recording never stops the others
                record.update(action="failed", exit_code=2, error=str(exc))
                logger.warning("%s", exc)
            except Exception as exc:  # a bug: recorded, and the others still run
                record.update(action="failed", exit_code=2, error=f"{type(exc).__name__}: {exc}")
                logger.error("%s: %s (a bug: rerun with --debug)", rec, record["error"])
                logger.debug("traceback", exc_info=True)
            record.update(seconds=round(time.perf_counter() - t0, 4), time=ledger.now())
            with open(root / SUMMARY_NAME, "a") as fh:
                fh.write(json.dumps(record) + "\n")
            records.append(record)
            if on_result:
                on_result(record)
    return records


def _one(
    rec: Path, trk: Tracker, chunk_frames: int, session: Session, stack: contextlib.ExitStack
) -> dict:
    """Skip, leave or process one recording; the cluster starts with the first to process."""
    state, detail = recording_state(rec, trk, chunk_frames)
    if state == "complete":
        return {"action": "skipped", "exit_code": 0}
    if state == "changed":
        error = (
            f"its store holds results from other inputs ({detail}); left as it is "
            "(mocapflow process --overwrite rebuilds it)"
        )
        logger.warning("%s: %s", rec, error)
        return {"action": "left", "exit_code": 0, "error": error}
    if session.client is None:
        stack.enter_context(session)
    result = process(rec, trk, chunk_frames=chunk_frames, cluster=session)
    views = {k: v["status"] for k, v in result.views.items()}
    return {"action": "processed", "exit_code": result.exit_code, "views": views}
