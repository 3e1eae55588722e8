from __future__ import annotations

import os
import threading

from mocapflow.trackers.mediapipe_pose import _native_stderr_to_log


def _fd2() -> tuple[int, int]:
    st = os.fstat(2)
    return st.st_dev, st.st_ino


def test_worker_threads_share_one_stderr_redirect():
    """A enters, B enters, A leaves, B leaves: fd 2 is caught throughout, then given back."""
    before = _fd2()
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a():
        with _native_stderr_to_log():
            seen["a"] = _fd2()
            a_in.set()
            b_in.wait(10)
        a_out.set()

    def b():
        a_in.wait(10)
        with _native_stderr_to_log():
            b_in.set()
            a_out.wait(10)
            seen["b after a left"] = _fd2()  # still caught: B's native code still runs

    threads = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen["a"] != before and seen["b after a left"] == seen["a"]
    assert _fd2() == before


CATCH = """
import os, sys
from mocapflow.cli.app import _stderr_apart
if sys.argv[1] == "cli":
    _stderr_apart()  # what every command does first
from mocapflow.trackers.mediapipe_pose import _native_stderr_to_log
with _native_stderr_to_log():  # as a worker thread of --cluster threads building its model
    print("progress bar and log lines", file=sys.stderr, flush=True)
    os.write(2, b"native model log\\n")
print("after", file=sys.stderr, flush=True)
"""


def test_the_command_keeps_its_own_stderr_while_native_logs_are_caught():
    """Under ``--cluster threads`` MediaPipe's log catch must not swallow the command's output.

    Without the command's own stderr (the control), Python's lines written
    while a model is built vanish into the catch with the native ones.
    """
    import subprocess
    import sys

    def run(mode: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-c", CATCH, mode], capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    assert run("cli").splitlines() == ["progress bar and log lines", "after"]
    assert run("control").splitlines() == ["after"]


def test_every_command_gives_python_its_own_stderr(tmp_path):
    """The duplicate is made by the command's entry point, whatever the command does."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mocapflow.cli import app\n"
        "try:\n"
        f"    app(['process', {str(tmp_path / 'missing')!r}], prog_name='mocapflow',"
        " standalone_mode=False)\n"
        "except BaseException:\n"
        "    pass\n"
        "print(sys.stderr.fileno() != 2, sys.stderr is not sys.__stderr__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "True True", proc.stdout + proc.stderr
