"""Track a recording inside one SLURM allocation: scheduler, client and workers in one job.

Every task of the job step runs this same script; dask-jobqueue's ``SLURMRunner``
gives rank 0 the scheduler, rank 1 the client (the ``mocapflow.process`` call)
and every other rank a one-thread worker::

    #!/bin/bash
    #SBATCH --job-name=mocapflow --ntasks=18 --cpus-per-task=1 --mem-per-cpu=3G
    #SBATCH --time=02:00:00 --account=mylab --partition=compute
    srun /opt/mocapflow/.venv/bin/python flows/slurm_allocation.py /shared/session01 \\
        --tracker charuco --scheduler-file "$HOME/.mocapflow/scheduler-{job_id}.json"

The scheduler file must be on a file system every node sees. Needs dask-jobqueue
(``pip install 'mocapflow[hpc]'``). Exit code as ``mocapflow process``: 0 when
every view succeeded, 1 when some failed (rerun the job to resume), 2 on bad input.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    """Run the rank's role; the client rank tracks the recording."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recording")
    parser.add_argument("--tracker", "-t", default="markers")
    parser.add_argument("--out", default=None, help="store (default RECORDING/mocapflow.zarr)")
    parser.add_argument("--chunk-frames", type=int, default=240)
    parser.add_argument(
        "--scheduler-file",
        default="scheduler-{job_id}.json",
        help="on a shared file system; {job_id} is filled in",
    )
    parser.add_argument(
        "--host", default=None, help="interface address to listen on (default: all)"
    )
    parser.add_argument("--dashboard-address", default=":8787")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    try:
        from dask_jobqueue.slurm import SLURMRunner
    except ImportError:
        msg = "slurm_allocation.py needs dask-jobqueue: pip install 'mocapflow[hpc]'"
        print(msg, file=sys.stderr)
        return 2
    from distributed import Client

    import mocapflow
    from mocapflow.cluster import WORKER_ENV, WorkerSetup

    # Workers run one task at a time; let the decoder use the rank's own cores.
    os.environ.update(WORKER_ENV)
    os.environ["MOCAPFLOW_DECODE_THREADS"] = os.environ.get("SLURM_CPUS_PER_TASK", "1")
    host = {"host": args.host} if args.host else {}
    # Only the client rank returns from entering the runner; the others serve until
    # the client closes it, then exit.
    with SLURMRunner(
        scheduler_file=args.scheduler_file,
        scheduler_options={"dashboard_address": args.dashboard_address, **host},
        worker_options={"nthreads": 1, **host},
    ) as runner:
        with Client(runner) as client:
            client.wait_for_workers(runner.n_workers)
            client.register_plugin(WorkerSetup(), name="mocapflow-worker-setup")
            try:
                result = mocapflow.process(
                    args.recording,
                    args.tracker,
                    args.out,
                    chunk_frames=args.chunk_frames,
                    cluster=client,
                )
            except mocapflow.MocapflowError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 2
    bad = {k: v for k, v in result.views.items() if v["status"] != "ok"}
    print(
        f"{result.store}: {result.computed} tasks computed, {result.skipped} skipped on "
        f"{runner.n_workers} workers; views not ok: {sorted(bad) or 'none'}"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
