"""``Explorer``: the shared frame of every widget, and ``Figure``, the one figure class the widgets draw in.

The frame holds what every explorer does the same way: the prompt box, Run buttons and re-run-on-change, the busy
state (controls disabled, progress bar), errors shown inside the widget, figure content replaced in place, HTML
tables, and "Export HTML" (the current view as a self-contained report).
"""

from __future__ import annotations

import html
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from copy import deepcopy
from pathlib import Path

import ipywidgets as W
import plotly.graph_objects as go

from interp.errors import InterpError
from interp.prompts import default_prompt
from interp.report import Report

__all__ = ["Cancelled", "Explorer", "Figure", "MAX_FIGURE_HEIGHT", "html_table", "show_figure"]

MAX_FIGURE_HEIGHT = 520
"""Tallest a figure of an explorer shows (px): a taller (or wider) one scrolls inside its box, so that a figure sized
for a real model (30 layers, 50 tokens, one label each) does not stretch the notebook by thousands of pixels."""


class Cancelled(Exception):
    """Raised by ``Explorer.progress`` inside a computation after the user pressed Cancel."""


class _OpensWhenShown:
    """ipywidgets mixin: the comm to the browser opens when the widget is first shown (displayed, or named in the
    state of a box that opens) instead of at construction, so the opening message carries the widget's state as it
    is then. Until then trait changes stay in Python (ipywidgets sends nothing without a comm)."""

    _shown = False

    def open(self) -> None:
        if self._shown:
            super().open()

    @property
    def model_id(self) -> str:
        """The comm id; asking for it (a display, a parent box's state) opens the comm."""
        if self.comm is None and not self._shown:
            self._shown = True
            self.open()
        return self.comm.comm_id

    def _repr_mimebundle_(self, **kwargs):
        self.model_id  # noqa: B018 (opens the comm)
        return super()._repr_mimebundle_(**kwargs)


_READY = "interp-figure-ready"
_LOADING_ESM = f"export default {{ initialize({{ model }}) {{ model.send({{ event: '{_READY}' }}); }} }};\n"
"""The JavaScript module a ``Figure`` opens with: it only tells the kernel that the model is up, and the kernel answers
with plotly's own module (its 5 MB widget bundle) as an ``_esm`` update.

Why: anywidget 0.11 gives each model 2 s (a fixed ``AbortSignal.timeout(2000)`` in its front-end ``Runtime``) to import
its module, else it logs "[anywidget] Failed to initialize model." and every later message to that model fails on the
rejected promise (``AnyModel._handle_comm_msg`` awaits it). Each figure imports plotly's bundle from a blob of its own:
3.4 s for one and 9.5 s for three at once in headless Chromium on the project's 2-core machine, so the SmolLM2 lens,
sink and attribution explorers logged three such errors in JupyterLab. Opened with this module the model is ready at
once; the bundle follows only then (not on a timer: while another figure's bundle is being parsed, the page's one thread
is busy for seconds, and a model opened meanwhile would miss its 2 s again), as an ``_esm`` change, which anywidget
loads as a hot update with no deadline and then draws the view with (from ``_widget_data`` / ``_widget_layout``, kept
current by ``show_figure``: deltas sent while the bundle loads reach no listener). The kernel reads the message when it
is idle, so during a "Run All" the figures draw once the queued cells have run."""


class Figure(_OpensWhenShown, go.FigureWidget):
    """The widgets' figure: a ``go.FigureWidget`` whose comm opens when it is first shown, with its traces and layout
    in the opening message. Update it in place (``show_figure``, ``fig.data[i].y = ...``); never replace the widget.

    Why: since plotly 6 a FigureWidget is an anywidget. A plain one opens its comm with empty data and sends its
    traces in later messages; anywidget (``AnyModel._handle_comm_msg`` awaits the model's runtime) delivers no
    message before plotly's ~5 MB script has loaded in the page, and a view draws what the model held by then, so a
    figure filled before display showed an empty graph (https://github.com/plotly/plotly.py/issues/4998: a
    FigureWidget inside a Box stays empty; plotly's fix, https://github.com/plotly/plotly.py/pull/4956, re-syncs the
    state in ``_repr_mimebundle_``, which runs only for a figure displayed on its own; early messages lost:
    https://github.com/manzt/anywidget/issues/803). Opening late, with the state complete, needs no second model
    (the old ``reannounce`` opened one per figure and left the first in the page).
    """

    def open(self) -> None:
        if self._shown and self.comm is None:
            self.sync_state()
            # open with a module that loads at once; plotly's follows when the page says the model is up (_LOADING_ESM)
            self._plotly_esm, self._esm = self._esm, _LOADING_ESM
            self.on_msg(self._on_ready)
            super().open()
            return
        super().open()

    def _on_ready(self, _widget, content, _buffers) -> None:
        if isinstance(content, dict) and content.get("event") == _READY and self._esm == _LOADING_ESM:
            self._esm = self._plotly_esm

    def sync_state(self) -> None:
        """Set the traits the browser draws a new view from (``_widget_data``, ``_widget_layout``) to the figure's
        current traces and layout, as plotly's own ``_repr_mimebundle_`` does before a display. (The browser redraws
        from the update messages, not from these; they matter to a view that starts later.)"""
        self._widget_data = deepcopy(self._data)
        self._widget_layout = deepcopy(self._layout_obj._props)


class _FigureBox(_OpensWhenShown, W.VBox):
    """The box an explorer holds a figure in; it opens when shown, as its figure does (a box opened earlier would name
    the figure in its state and so open the figure's comm before the figure has its traces)."""


def show_figure(target: Figure, fig: go.Figure) -> None:
    """Replace the traces and layout of ``target`` by those of ``fig``, in place (one batched update)."""
    with target.batch_update():
        target.data = []
        target.add_traces(list(fig.data))
        target.layout = fig.layout
    target.sync_state()  # a view whose plotly module is still loading draws this state (see _LOADING_ESM)


def html_table(columns: Sequence[str] | None, rows: Iterable[Sequence[object]], *, escape: bool = True) -> str:
    """An HTML ``<table>``: a header row of ``columns`` (none when None) and one row per item of ``rows``.

    Cells are ``str()``-ed and escaped, unless ``escape=False`` (the caller built them as HTML)."""
    def cell(v: object, tag: str) -> str:
        text = html.escape(str(v)) if escape or tag == "th" else str(v)
        return f"<{tag} style='text-align:left;padding:0 6px'>{text}</{tag}>"

    head = "<tr>" + "".join(cell(c, "th") for c in columns) + "</tr>" if columns is not None else ""
    body = "".join("<tr>" + "".join(cell(v, "td") for v in r) + "</tr>" for r in rows)
    return f"<table style='border-collapse:collapse'>{head}{body}</table>"


def _figures(widgets: Iterable[W.Widget]) -> Iterator[go.FigureWidget]:
    """Every ``go.FigureWidget`` in ``widgets`` and inside their boxes (depth first)."""
    for w in widgets:
        if isinstance(w, go.FigureWidget):
            yield w
        elif isinstance(w, W.Box):
            yield from _figures(w.children)


class Explorer(_OpensWhenShown, W.VBox):
    """Base class: subclasses build ``self.controls`` (list of widgets) and implement ``render()``.

    ``render()`` computes and updates the view; it may call ``self.progress(i, n)``. ``run()`` wraps it:
    controls are disabled and the bar shown while it runs, and an exception is shown in the widget
    (the notebook keeps working). ``export_report()`` returns the ``Report`` the Export button saves;
    subclasses add their current figures and tables to it in ``add_to_report``. Figures in ``view`` must be
    ``Figure``s; the explorer (and so its figures) opens its comm when first displayed.
    """

    title = "Explorer"

    def __init__(self, controls: list[W.Widget], view: list[W.Widget], export_path: str = "explorer.html"):
        plain = [type(f).__name__ for f in _figures(view) if not isinstance(f, Figure)]
        if plain:
            raise InterpError(f"{self.title}: the view holds a plain {plain[0]}; build every figure as widgets.base.Figure() "
                              "(it reaches JupyterLab with its data) and update it in place with show_figure")
        self.controls = controls
        self.bar = W.IntProgress(value=0, min=0, max=1, description="", layout=W.Layout(width="200px", visibility="hidden"))
        self.cancel_button = W.Button(description="Cancel", icon="stop", tooltip="stop the computation at its next step",
                                      layout=W.Layout(display="none"))
        self.cancel_button.on_click(lambda _: self.cancel())
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.status = W.HTML("")
        self.error = W.HTML("", layout=W.Layout(display="none"))
        # each figure of the view in a box that scrolls it beyond MAX_FIGURE_HEIGHT (and the page's width); a box whose
        # figure has no traces is hidden after each run (an empty plotly figure still draws axes and takes 450 px)
        self._boxes = [(w, self._scroll_box(w)) for w in view if isinstance(w, Figure)]
        boxed = {id(w): b for w, b in self._boxes}
        view = [boxed.get(id(w), w) for w in view]
        self.export_path = W.Text(value=export_path, description="file", layout=W.Layout(width="260px"))
        self.export_button = W.Button(description="Export HTML", icon="download", tooltip="write this view as a report")
        self.export_button.on_click(lambda _: self.export())
        header = W.HTML(f"<b>{html.escape(self.title)}</b>")
        footer = W.HBox([self.export_button, self.export_path, self.bar, self.cancel_button, self.status])
        super().__init__([header, W.HBox(controls, layout=W.Layout(flex_flow="row wrap")), *view, self.error, footer])
        # CSS classes the browser tests (tests/browser/) use to find every view and its error box
        self.add_class("interp-explorer")
        self.error.add_class("interp-error")

    # ---- building -----------------------------------------------------------------------------
    @staticmethod
    def _scroll_box(fig: Figure) -> W.VBox:
        box = _FigureBox([fig], layout=W.Layout(max_height=f"{MAX_FIGURE_HEIGHT}px", overflow="auto", width="100%",
                                            display="none" if not fig.data else ""))
        box.add_class("interp-figure-box")
        return box

    def _show_boxes(self) -> None:
        """Show the box of each figure that has traces, hide the others."""
        for fig, box in self._boxes:
            box.layout.display = "" if fig.data else "none"

    @staticmethod
    def prompt_box(model, prompt: str | None, width: str = "480px") -> W.Text:
        """The prompt text box, holding ``prompt`` or, when None, the model's ``interp.prompts.default_prompt``."""
        value = prompt if prompt is not None else default_prompt(model)
        return W.Text(value=value, description="prompt", layout=W.Layout(width=width))

    def button(self, description: str = "Run", fn: Callable[[], None] | None = None, *, icon: str = "play",
               tooltip: str = "", primary: bool = False, background: bool = False) -> W.Button:
        """A button whose click runs ``fn`` (default ``render``) through ``run()``; returns the button.

        ``background=True``: the click runs it in a thread with a Cancel button (for work that takes seconds or more;
        the kernel stays free to receive the Cancel click)."""
        b = W.Button(description=description, icon=icon, tooltip=tooltip, button_style="primary" if primary else "")
        b.on_click(lambda _: self.run(fn, background=background))
        return b

    def rerun_on(self, controls: Iterable[W.Widget], fn: Callable[[], None] | None = None) -> None:
        """Run ``fn`` (default ``render``) through ``run()`` whenever one of ``controls`` changes value."""
        for c in controls:
            c.observe(lambda _: self.run(fn), names="value")

    # ---- running ----------------------------------------------------------------------------
    def progress(self, i: int, n: int) -> None:
        """Show step ``i`` of ``n`` on the bar; raises ``Cancelled`` once Cancel was pressed (computations pass this
        as their ``progress`` callback, so they stop at their next step)."""
        if self._cancel.is_set():
            raise Cancelled("cancelled")
        self.bar.max, self.bar.value = max(1, n), min(i, n)

    def cancel(self) -> None:
        """Ask the running computation to stop at its next ``progress`` call (the view keeps its last result)."""
        self._cancel.set()

    @property
    def busy(self) -> bool:
        """True while a background run is going."""
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the background run (if any) has finished."""
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self, fn: Callable[[], None] | None = None, *, background: bool = False) -> bool:
        """Run ``fn`` (default ``self.render``) with the controls disabled; returns False on error or cancel.

        ``background=True``: start it in a thread, show Cancel, and return True at once (``wait()`` joins it)."""
        if self.busy:
            self.status.value = "still computing: press Cancel first"
            return False
        if background:
            self._thread = threading.Thread(target=self._run, args=(fn, True), daemon=True)
            self._thread.start()
            return True
        return self._run(fn, False)

    def _run(self, fn: Callable[[], None] | None, cancellable: bool) -> bool:
        self._cancel.clear()
        for c in self.controls:
            c.disabled = True
        self.bar.layout.visibility, self.bar.value = "visible", 0
        self.cancel_button.layout.display = "" if cancellable else "none"
        self.status.value = "computing…"
        try:
            (fn or self.render)()
        except Cancelled:
            self.status.value = "cancelled: the view shows the previous result"
            return False
        except Exception as e:  # shown in the widget, never raised into the notebook
            self.show_error(e)
            return False
        else:
            self.error.layout.display, self.error.value = "none", ""
            self.status.value = ""
            return True
        finally:
            self._show_boxes()
            for c in self.controls:
                c.disabled = False
            self.bar.layout.visibility = "hidden"
            self.cancel_button.layout.display = "none"

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

    @staticmethod
    def add_figures(report: Report, title: str, figures: Iterable[go.Figure | go.FigureWidget], caption: str = "") -> None:
        """Add each of ``figures`` (a widget's current content is copied) to the section ``title`` of ``report``."""
        for fig in figures:
            report.add_figure(title, go.Figure(fig), caption=caption)

    def export_report(self) -> Report:
        """A new ``Report`` titled like the explorer, holding its current view (``add_to_report``)."""
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
