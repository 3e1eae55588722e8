"""notebooks/explore.ipynb runs top to bottom (its code cells, as one script)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"


def test_notebook_has_no_outputs_and_runs(tmp_path):
    nb = json.loads(NOTEBOOK.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), "strip outputs"
    body = "\n".join("".join(c["source"]) for c in code)
    script = tmp_path / "explore.py"
    # Guarded like a notebook's __main__, so spawned Dask workers do not rerun it.
    script.write_text(
        "def main():\n" + textwrap.indent(body, "    ") + "\n\n"
        'if __name__ == "__main__":\n    main()\n'
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "tasks in the graph" in proc.stdout and "chunk(s) to read of" in proc.stdout
