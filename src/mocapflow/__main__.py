"""The ``mocapflow`` command's entry point, and ``python -m mocapflow``.

The entry point lives here, not in :mod:`mocapflow.cli`, so that it loads
nothing. Worker processes are started with ``spawn``, and each one first
re-runs the command's own script (``bin/mocapflow``, which imports
:func:`main`). Importing the command line there (Typer, Rich and every
command) would cost each worker about 0.05 CPU s of its start-up, for nothing:
a worker runs tasks, never commands.
"""

import os

#: Set in the command's own process before anything loads, unless the user set
#: them: BLAS on one thread, as in the workers (``cluster.WORKER_ENV``). numpy
#: and OpenCV each start an OpenBLAS thread when they load, which busy-waits
#: about 0.1 s then and after every call: about 0.2 CPU s of each command, for
#: no time saved (calibration included).
COMMAND_ENV = {"OPENBLAS_NUM_THREADS": "1"}


def main(args: list[str] | None = None, prog_name: str = "mocapflow") -> None:
    """Run the ``mocapflow`` command (see :func:`mocapflow.cli.run`).

    Parameters
    ----------
    args : list of str, optional
        The command's arguments; default the command line's.
    prog_name : str
        The name its help and errors show (``flows/batch.py`` gives its own).

    """
    for name, value in COMMAND_ENV.items():
        os.environ.setdefault(name, value)
    from .cli import run

    run(args, prog_name)


if __name__ == "__main__":
    main()
