"""``Explorer``: the shared frame of every widget (controls, busy state, errors, HTML export)."""

from __future__ import annotations

import html
import traceback
from collections.abc import Callable
from pathlib import Path

import ipywidgets as W

from interp.report import Report


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
        self.bar = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="200px", visibility="hidden"))
        self.status = W.HTML("")
        self.error = W.HTML("", layout=W.Layout(display="none"))
        self.export_path = W.Text(value=export_path, description="file", layout=W.Layout(width="260px"))
        self.export_button = W.Button(description="Export HTML", icon="download", tooltip="write this view as a report")
        self.export_button.on_click(lambda _: self.export())
        header = W.HTML(f"<b>{html.escape(self.title)}</b>")
        footer = W.HBox([self.export_button, self.export_path, self.bar, self.status])
        super().__init__([header, W.HBox(controls, layout=W.Layout(flex_flow="row wrap")), *view, self.error, footer])

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
