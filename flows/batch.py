"""Scheduled batch flow: process every new or changed recording under a folder.

    python flows/batch.py ROOT [--tracker markers]     # same as: mocapflow batch ROOT

Cron, systemd timers and SLURM scrontab call this (or `mocapflow batch`) on a
schedule; see flows/README.md. Complete recordings are skipped in milliseconds,
a lock per recording stops overlapping runs from doing the same work twice, and
each outcome is appended to ROOT/mocapflow-batch.jsonl.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    # Imported here, not above: each worker process re-runs this script first
    # (spawn), and a worker has no use for the command line.
    from mocapflow.__main__ import main

    sys.exit(main(["batch", *sys.argv[1:]], prog_name="flows/batch.py"))
