"""Fast front-end tier: every notebook under notebooks/ executes headless with nbclient, with no error output.

Each notebook runs in a fresh kernel whose working folder is a temporary ``<tmp>/notebooks/`` beside a
link to the repo's ``data/`` (relative paths behave as in the repo; exported reports stay out of it) and
is never written back. A widget error (``widgets.base.Explorer`` shows it in the widget instead of
raising) fails the test too. The browser tier (tests/browser/) runs the same notebooks in JupyterLab.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def test_notebooks_exist():
    """The tour is there, and every notebook starts by loading a model by name (the project's convention)."""
    assert REPO / "notebooks" / "00_tour.ipynb" in NOTEBOOKS
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "load_model(" in first_code.source, f"{path.name}: the first code cell must load a model by name"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, tmp_path: Path):
    nb = nbformat.read(path, as_version=4)
    # run in <tmp>/notebooks/ beside a link to the repo's data/, so "../data/..." resolves as in the repo
    # while every file the notebook writes (exported reports) stays in the temporary folder
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    (tmp_path / "data").symlink_to(REPO / "data", target_is_directory=True)
    for extra in path.parent.iterdir():  # small helper files a notebook may read next to itself
        if extra.is_file() and extra.suffix not in {".ipynb", ".html"}:
            shutil.copy(extra, workdir / extra.name)
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "MPLBACKEND": "Agg"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client = NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
        client.execute()  # raises CellExecutionError on the first cell that errors
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    # a widget shows its own errors (widgets.base.Explorer puts them in an HTML widget of class
    # "interp-error") instead of raising: none may hold a message at the end of the run
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    shown = [m["state"].get("value") for m in state.values()
             if "interp-error" in m.get("state", {}).get("_dom_classes", []) and m["state"].get("value")]
    assert shown == []
