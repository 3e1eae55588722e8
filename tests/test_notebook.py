"""notebooks/explore.ipynb executes top to bottom in a real Jupyter kernel (nbclient)."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "explore.ipynb"


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs"


def test_notebook_executes_with_plots(tmp_path):
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError naming the failing cell
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "tasks in the graph" in text and "chunk(s) to read of" in text
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert 'dashboard: <a href="http://127.0.0.1:' in html
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3, "detection rates, trajectories and the frame overlay"
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors
