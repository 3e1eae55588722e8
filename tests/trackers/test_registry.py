"""Trackers by name, by package.module:factory, and by entry point (a real dist-info)."""

from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from mocapflow.trackers import TrackerError, available, get_tracker


@pytest.fixture()
def plugin(tmp_path, monkeypatch):
    (tmp_path / "myplugin.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from mocapflow.trackers import Output

            class Brightness:
                name = "brightness"
                def __init__(self, scale=1.0):
                    self.scale = scale
                def params(self):
                    return {"scale": self.scale}
                def outputs(self):
                    return {"brightness": Output(dims=())}
                def __call__(self, frames):
                    return {"brightness": frames.mean(axis=(1, 2, 3)) * self.scale}

            def make(**kw):
                return Brightness(**kw)
            """
        )
    )
    dist = tmp_path / "myplugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[mocapflow.trackers]\nbright = myplugin:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("myplugin", None)


def test_spec_and_entry_point(plugin):
    t = get_tracker("myplugin:make", scale=2.0)
    assert t.params() == {"scale": 2.0}
    assert "bright" in available()
    t2 = get_tracker("bright")
    out = t2(np.full((2, 4, 4, 3), 10, np.uint8))
    np.testing.assert_allclose(out["brightness"], [10, 10])


def test_unknown_tracker_lists_choices():
    with pytest.raises(TrackerError, match="unknown tracker 'nope'; choose one of .*framestats"):
        get_tracker("nope")
    with pytest.raises(TrackerError, match="no module 'no_such_module_xyz'; check the name"):
        get_tracker("no_such_module_xyz:make")
