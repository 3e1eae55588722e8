"""The ``mocapflow`` command's entry point, and ``python -m mocapflow``.

The entry point lives here, not in :mod:`mocapflow.cli`, so that it loads
nothing. Worker processes are started with ``spawn``, and each one first
re-runs the command's own script (``bin/mocapflow``, which imports
:func:`main`). Importing the command line there (Typer, Rich and every
command) would cost each worker about 0.1 CPU s of its start-up, for nothing:
a worker runs tasks, never commands.
"""


def main() -> None:
    """Run the ``mocapflow`` command (see :func:`mocapflow.cli.run`)."""
    from .cli import run

    run()


if __name__ == "__main__":
    main()
