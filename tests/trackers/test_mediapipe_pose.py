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
