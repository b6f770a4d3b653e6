"""Write tests/browser/probe.ipynb: a tiny ``Explorer`` (slider + dropdown + ``Figure``) used to test the
browser harness and the shared widget frame in a real JupyterLab, independently of any analysis.

Its render raises on purpose when the dropdown says "fail", so the test can check that the error shows
inside the widget and that the notebook keeps working. Run: ``python tests/browser/make_probe.py``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    new_markdown_cell("# Probe: the widget frame in JupyterLab (test fixture of `tests/browser/`)"),
    new_code_cell(
        "import sys\n\nimport ipywidgets as W\nimport plotly.graph_objects as go\n\nfrom widgets.base import Explorer, Figure\n\n"
        "print('kernel prefix:', sys.prefix)"
    ),
    new_code_cell(
        '''class Probe(Explorer):
    """A slider picks a step; the dropdown can make render() raise."""

    title = "Probe"

    def __init__(self):
        self.step = W.IntSlider(value=2, min=1, max=6, description="step")
        self.mode = W.Dropdown(options=["ok", "fail"], value="ok", description="mode")
        self.fig = Figure(go.Scatter(y=[0] * 20, mode="lines+markers"))
        self.fig.update_layout(height=260, margin=dict(l=30, r=10, t=30, b=30), title="(i * step) mod 7")
        super().__init__([self.step, self.mode], [self.fig], export_path="probe.html")
        self.step.observe(lambda _: self.run(), "value")
        self.mode.observe(lambda _: self.run(), "value")
        self.run()

    def render(self):
        if self.mode.value == "fail":
            raise ValueError("planted failure in render()")
        ys = [(i * self.step.value) % 7 for i in range(20)]
        for i in range(len(ys)):
            self.progress(i + 1, len(ys))
        self.fig.data[0].y = ys

    def add_to_report(self, report):
        report.add_figure("Probe figure", go.Figure(self.fig))


probe = Probe()
probe'''
    ),
    new_code_cell("print('cells after the widget still run')"),
]


def main() -> Path:
    nb = new_notebook(cells=CELLS)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    out = Path(__file__).with_name("probe.ipynb")
    nbformat.write(nb, out)
    return out


if __name__ == "__main__":
    print(main())
