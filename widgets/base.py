"""``Explorer``: the shared frame of every widget (controls, busy state, errors, HTML export)."""

from __future__ import annotations

import html
import traceback
from collections.abc import Callable, Iterator
from copy import deepcopy
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from interp.report import Report


class FigureWidget(go.FigureWidget):
    """``go.FigureWidget`` whose first message to the browser already carries its traces and layout.

    plotly's FigureWidget opens its comm with empty data and sends the traces in a second message. In
    JupyterLab, anywidget holds that message until the widget's JavaScript (~5 MB) has loaded, and a view
    displayed meanwhile can draw first: the graph stays empty and later updates have no trace to change
    (seen in tests/browser on a fresh page). Opening the comm only once the state is complete avoids it.
    """

    def __init__(self, *args, **kwargs):
        self._hold_open = True
        try:
            super().__init__(*args, **kwargs)
        finally:
            self._hold_open = False
        self.open()

    def open(self) -> None:
        if not getattr(self, "_hold_open", False):
            super().open()


def _figures(widgets: list[W.Widget]) -> Iterator[go.FigureWidget]:
    """Every ``go.FigureWidget`` in ``widgets`` and inside their boxes (depth first)."""
    for w in widgets:
        if isinstance(w, go.FigureWidget):
            yield w
        elif isinstance(w, W.Box):
            yield from _figures(list(w.children))


def reannounce(fig: go.FigureWidget) -> None:
    """Give a plain ``go.FigureWidget`` (see ``FigureWidget``) a new comm whose opening message holds its
    current traces and layout. Call before display. The old front-end model is left alone, never displayed:
    closing it while anywidget still loads its code logs "[anywidget] Failed to initialize model"."""
    if isinstance(fig, FigureWidget) or fig.comm is None:
        return
    fig._widget_layout = deepcopy(fig._layout_obj._props)
    fig._widget_data = deepcopy(fig._data)
    fig.comm, fig._model_id = None, None
    fig.open()


class Explorer(W.VBox):
    """Base class: subclasses build ``self.controls`` (list of widgets) and implement ``render()``.

    ``render()`` computes and updates the view; it may call ``self.progress(i, n)``. ``run()`` wraps it:
    controls are disabled and the bar shown while it runs, and an exception is shown in the widget
    (the notebook keeps working). ``export_report()`` returns the ``Report`` the Export button saves;
    subclasses add their current figures and tables to it in ``add_to_report``.
    """

    title = "Explorer"

    def __init__(self, controls: list[W.Widget], view: list[W.Widget], export_path: str = "explorer.html"):
        self.controls = controls
        for fig in _figures(view):  # plotly figures must reach JupyterLab with their data (see FigureWidget)
            reannounce(fig)
        self.bar = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="200px", visibility="hidden"))
        self.status = W.HTML("")
        self.error = W.HTML("", layout=W.Layout(display="none"))
        self.export_path = W.Text(value=export_path, description="file", layout=W.Layout(width="260px"))
        self.export_button = W.Button(description="Export HTML", icon="download", tooltip="write this view as a report")
        self.export_button.on_click(lambda _: self.export())
        header = W.HTML(f"<b>{html.escape(self.title)}</b>")
        footer = W.HBox([self.export_button, self.export_path, self.bar, self.status])
        super().__init__([header, W.HBox(controls, layout=W.Layout(flex_flow="row wrap")), *view, self.error, footer])
        # CSS classes the browser tests (tests/browser/) use to find every view and its error box
        self.add_class("interp-explorer")
        self.error.add_class("interp-error")

    # ---- running ----------------------------------------------------------------------------
    def progress(self, i: int, n: int) -> None:
        """Show step ``i`` of ``n`` on the bar."""
        self.bar.max, self.bar.value = max(1, n), min(i, n)

    def run(self, fn: Callable[[], None] | None = None) -> bool:
        """Run ``fn`` (default ``self.render``) with the controls disabled; returns False on error."""
        for c in self.controls:
            c.disabled = True
        self.bar.layout.visibility, self.bar.value = "visible", 0
        self.status.value = "computing…"
        try:
            (fn or self.render)()
        except Exception as e:  # shown in the widget, never raised into the notebook
            self.show_error(e)
            return False
        else:
            self.error.layout.display, self.error.value = "none", ""
            self.status.value = ""
            return True
        finally:
            for c in self.controls:
                c.disabled = False
            self.bar.layout.visibility = "hidden"

    def show_error(self, e: BaseException) -> None:
        """Display ``e`` inside the widget (one line, details folded)."""
        detail = html.escape("".join(traceback.format_exception(e))[-3000:])
        self.error.value = (
            f"<div style='color:#a00'><b>Error:</b> {html.escape(f'{type(e).__name__}: {e}')}"
            f"<details><summary>details</summary><pre>{detail}</pre></details></div>"
        )
        self.error.layout.display = "block"
        self.status.value = "error"

    def render(self) -> None:
        raise NotImplementedError

    # ---- export -----------------------------------------------------------------------------
    def add_to_report(self, report: Report) -> None:
        """Add the current view to ``report`` (subclasses override)."""
        raise NotImplementedError

    def export_report(self) -> Report:
        report = Report(self.title)
        self.add_to_report(report)
        return report

    def export(self, path: str | Path | None = None) -> Path | None:
        """Write the current view to ``path`` (default: the file box); returns the path, or None on error."""
        out: list[Path] = []
        ok = self.run(lambda: out.append(self.export_report().save(path or self.export_path.value)))
        if ok:
            self.status.value = f"wrote {html.escape(str(out[0]))}"
            return out[0]
        return None
