"""Every tutorial notebook runs top to bottom at a small budget (PHYSRL_SMALL_BUDGET=1), so none can rot,
and every cell that draws a figure shows it (an image/png output in the executed notebook)."""

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
#: a cell that makes a figure this way must show it
DRAWS = re.compile(r"\bplt\.(figure|subplots)\(")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_at_small_budget_and_shows_its_figures(path, tmp_path, monkeypatch):
    monkeypatch.setenv("PHYSRL_SMALL_BUDGET", "1")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend, which shows figures
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    errors = [output for cell in code for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors
    drawing = [index for index, cell in enumerate(code) if DRAWS.search(cell.source)]
    assert drawing, f"{path.name} draws no figure"
    blank = [index for index in drawing
             if not any("image/png" in output.get("data", {}) for output in code[index].get("outputs", []))]
    assert not blank, f"code cells {blank} of {path.name} draw a figure but show no image/png output"
