"""The Typer app, its global options, logging, and how errors reach the terminal.

Only the CLI configures logging and talks to the terminal. Exit codes: 0 when
every view succeeded, 1 when some views failed but the others were written, 2
for a usage or input error (a :class:`~mocapflow.errors.MocapflowError`: one
line, never a traceback), 130 when interrupted. Anything else is a bug and is
reported as one, in one line (``--debug`` shows the traceback).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .. import __version__
from ..errors import MocapflowError, shown_path

__all__ = ["app", "err", "errors", "out"]

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Track multi-camera motion-capture recordings in parallel, streamed into Zarr.",
)
#: Results go to stdout; progress, warnings and errors to stderr. Lines are never
#: wrapped (``soft_wrap``), so paths and messages stay whole in logs.
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
STATE = {"debug": False}

#: Loggers of the libraries under us: quiet unless ``-vv`` or ``--debug``.
NOISY = ("distributed", "tornado", "bokeh", "asyncio", "mediapipe", "absl", "numexpr")


class _ConsoleHandler(logging.Handler):
    """Print log records through the rich console, so they appear above a progress bar."""

    def __init__(self, verbose: int):
        super().__init__()
        self.verbose = verbose

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if self.verbose:
                text = f"{record.name} {text}"
            colour = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red"}.get(
                record.levelname, "dim"
            )
            err.print(f"[{colour}]{record.levelname.lower()}:[/] {escape(text)}", highlight=False)
            if record.exc_info and STATE["debug"]:
                err.print_exception()
        except Exception:  # a logging failure must never break the run
            self.handleError(record)


def _setup_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, handlers=[_ConsoleHandler(verbose)], force=True)
    import distributed  # noqa: F401  (it configures its own loggers on import; override after)

    quiet = logging.DEBUG if debug else logging.INFO if verbose > 1 else logging.CRITICAL
    for name in NOISY:
        lib = logging.getLogger(name)
        lib.setLevel(quiet)
        lib.handlers.clear()
        lib.propagate = True
    logging.captureWarnings(True)


def _stderr_apart() -> None:
    """Give Python's own stderr a duplicate of file descriptor 2.

    MediaPipe's native code logs to descriptor 2 while its models are built, and
    the tracker catches that by pointing descriptor 2 at a file for a moment. In
    ``--cluster threads`` those moments happen inside this process, so without
    this the progress bar and any log line written meanwhile would be caught
    too. The duplicate leads to the same terminal or file.
    """
    old = sys.stderr
    if old is None or old is not sys.__stderr__:  # done already, or captured (pytest, Jupyter)
        return
    try:
        fd = os.dup(old.fileno())
    except (AttributeError, OSError, ValueError):  # no real descriptor
        return
    old.flush()
    sys.stderr = os.fdopen(
        fd,
        "w",
        buffering=1,
        encoding=getattr(old, "encoding", None),
        errors=getattr(old, "errors", None) or "backslashreplace",
    )


def _version(value: bool) -> None:
    if value:
        out.print(f"mocapflow {__version__}")
        raise typer.Exit(0)


@app.callback()
def main(
    verbose: Annotated[
        int, typer.Option("-v", "--verbose", count=True, help="More log (-vv: the libraries' too).")
    ] = 0,
    debug: Annotated[bool, typer.Option(help="Show tracebacks and the libraries' logs.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Track multi-camera motion-capture recordings in parallel, streamed into Zarr."""
    STATE["debug"] = debug
    if not debug:
        # Bokeh checks every document it renders (the run report, Dask's performance
        # report) for mistakes in how its models were put together: a developer's
        # aid, which cost about 0.3 CPU s of each run. A value the user set stays.
        os.environ.setdefault("BOKEH_VALIDATE_DOC", "false")
    _stderr_apart()
    _setup_logging(verbose, debug)
    signal.signal(signal.SIGTERM, _terminate)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: unwinds like Ctrl-C (clusters close, stores resume)."""


def _terminate(signum, frame) -> None:
    raise _Terminated


@contextmanager
def errors():
    """Turn a :class:`MocapflowError` into one line on stderr and exit 2; a bug into one line."""
    try:
        yield
    except (typer.Exit, typer.Abort):
        raise
    except MocapflowError as exc:
        if STATE["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2) from None
    except OSError as exc:
        if STATE["debug"] or exc.errno not in _FILE_ERRORS:
            if STATE["debug"]:
                raise
            _bug(exc)
        what = exc.filename if exc.filename is not None else "a file"
        err.print(
            f"[bold red]error:[/] {escape(shown_path(what))}: {escape(exc.strerror or str(exc))}; "
            f"{_FILE_ERRORS[exc.errno]}",
            highlight=False,
        )
        raise typer.Exit(2) from None
    except KeyboardInterrupt as exc:
        what, code = ("terminated", 143) if isinstance(exc, _Terminated) else ("interrupted", 130)
        err.print(f"{what}; rerun the same command to resume", highlight=False)
        raise typer.Exit(code) from None
    except Exception as exc:
        if STATE["debug"]:
            raise
        _bug(exc)


#: File-system errors that are the user's to mend (the path, its permissions, the disk), and how.
_FILE_ERRORS = {
    errno.EACCES: "choose another path, or give yourself permission there",
    errno.EPERM: "choose another path, or give yourself permission there",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.EROFS: "the file system is read-only; choose another path",
    errno.ENOSPC: "the disk is full; make room and rerun",
    errno.EDQUOT: "your disk quota is used up; make room and rerun",
    errno.ENOTDIR: "a part of the path is a file, not a folder; fix the path",
    errno.EISDIR: "it is a folder; give a file name",
    errno.ELOOP: "the path loops through links; fix the path",
}


def _bug(exc: BaseException):
    err.print(
        f"[bold red]error:[/] {type(exc).__name__}: {escape(str(exc)[:2000])} "
        "(a bug in mocapflow; rerun with --debug for the traceback, and report it)",
        highlight=False,
    )
    raise typer.Exit(3) from None
