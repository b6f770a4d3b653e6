"""Unit tests of the shared widget frame ``widgets.base.Explorer`` (kernel side, no browser).

A render that raises shows the error inside the widget (escaped), re-enables the controls and leaves
the widget usable; controls are disabled and the bar visible while render runs; Export HTML writes
one self-contained file, or shows why it could not. Figures are ``widgets.base.Figure``s: their comm opens once,
when the explorer is first shown, with the traces in the opening message (no second front-end model per figure).
"""

from __future__ import annotations

import re

import ipywidgets as W
import plotly.graph_objects as go
import pytest
from ipywidgets.widgets import widget as ipw

from interp.errors import InterpError
from widgets.base import Explorer, Figure, html_table, show_figure


class Toy(Explorer):
    """A slider-driven line; ``fail`` makes render raise with a message containing HTML."""

    title = "Toy <explorer>"

    def __init__(self):
        self.k = W.IntSlider(value=1, min=0, max=5)
        self.fail = False
        self.seen_during_render: list[tuple[bool, str]] = []
        self.fig = Figure(go.Scatter(y=[0, 0, 0]))
        super().__init__([self.k], [self.fig], export_path="toy.html")
        self.k.observe(lambda _: self.run(), "value")

    def render(self) -> None:
        self.seen_during_render.append((self.k.disabled, self.bar.layout.visibility))
        if self.fail:
            raise ValueError("bad <b>input</b> & more")
        self.progress(1, 2)
        self.fig.data[0].y = [self.k.value * i for i in range(3)]
        self.progress(2, 2)

    def add_to_report(self, report) -> None:
        report.add_figure("Toy figure", go.Figure(self.fig))
        report.add_table("Toy table", ["k"], [[self.k.value]])


def test_render_runs_with_controls_disabled_and_bar_shown():
    t = Toy()
    assert t.run() is True
    assert t.seen_during_render == [(True, "visible")]
    assert t.k.disabled is False and t.bar.layout.visibility == "hidden"
    assert t.bar.value == t.bar.max == 2
    assert list(t.fig.data[0].y) == [0, 1, 2]
    assert "interp-explorer" in t._dom_classes and "interp-error" in t.error._dom_classes


def test_error_is_shown_in_the_widget_and_the_widget_keeps_working():
    t = Toy()
    t.fail = True
    t.k.value = 2  # the observer calls run(): the exception must not escape into the notebook
    assert t.error.layout.display == "block"
    assert "ValueError" in t.error.value and "bad &lt;b&gt;input&lt;/b&gt; &amp; more" in t.error.value
    assert "<b>input</b>" not in t.error.value  # the message is escaped, not interpreted
    assert t.status.value == "error"
    assert t.k.disabled is False and t.bar.layout.visibility == "hidden"
    # fixing the cause and moving the control again clears the error and updates the figure
    t.fail = False
    t.k.value = 3
    assert t.error.layout.display == "none" and t.error.value == ""
    assert t.status.value == ""
    assert list(t.fig.data[0].y) == [0, 3, 6]


def test_export_writes_one_self_contained_file(tmp_path):
    t = Toy()
    t.run()
    out = t.export(tmp_path / "toy.html")
    assert out == tmp_path / "toy.html" and out.exists()
    text = out.read_text()
    assert "Toy figure" in text and "Toy table" in text and "Toy &lt;explorer&gt;" in text
    assert "Plotly" in text  # plotly.js is inlined ...
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?(https?:)?//", text)  # ... and nothing is fetched
    assert "wrote" in t.status.value and t.error.layout.display == "none"
    # the file box is the default target
    t.export_path.value = str(tmp_path / "from_box.html")
    t.export_button.click()
    assert (tmp_path / "from_box.html").exists()


def test_export_to_a_missing_folder_shows_the_error_and_writes_nothing(tmp_path):
    t = Toy()
    t.run()
    target = tmp_path / "no" / "such" / "dir" / "toy.html"
    assert t.export(target) is None
    assert t.error.layout.display == "block" and "does not exist" in t.error.value
    assert not target.exists() and list(tmp_path.iterdir()) == []
    assert t.k.disabled is False


@pytest.fixture
def comm_opens(monkeypatch):
    """Every comm the widgets open from now on, as (model name, opening state)."""
    opened: list[tuple[str, dict]] = []
    create = ipw.comm.create_comm

    def record(**kwargs):
        state = kwargs["data"]["state"]
        opened.append((state.get("_model_name"), state))
        return create(**kwargs)

    monkeypatch.setattr(ipw.comm, "create_comm", record)
    return opened


def test_figure_opens_when_shown_with_its_traces_and_only_once(comm_opens):
    t = Toy()
    t.k.value = 2  # renders before display: nothing reaches the browser yet
    assert t.fig.comm is None and t.comm is None
    assert not [name for name, _ in comm_opens if name in ("AnyModel", "VBoxModel")]
    bundle = t._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == t.model_id
    names = [name for name, _ in comm_opens]
    assert names.index("AnyModel") < names.index("VBoxModel")  # the figure's model exists before the box names it
    (fig_state,) = [state for name, state in comm_opens if name == "AnyModel"]
    assert [list(trace["y"]) for trace in fig_state["_widget_data"]] == [[0, 2, 4]]  # the opening message holds the data
    (box,) = [b for f, b in t._boxes if f is t.fig]  # the explorer holds each figure in a scroll box
    assert f"IPY_MODEL_{box.model_id}" in t.get_state()["children"] and f"IPY_MODEL_{t.fig.model_id}" in box.get_state()["children"]
    t.k.value = 3  # later changes update the same model in place
    t._repr_mimebundle_()
    assert names.count("AnyModel") == 1 and [n for n, _ in comm_opens].count("AnyModel") == 1
    assert sum(isinstance(w, Figure) for w in ipw._instances.values() if w is t.fig) == 1


def test_an_explorer_inside_a_box_opens_with_it(comm_opens):
    t = Toy()
    box = W.HBox([t])  # a parent box naming the explorer opens it, and the explorer its figure
    assert box.comm is not None and t.comm is not None and t.fig.comm is not None
    names = [name for name, _ in comm_opens]
    assert names.index("AnyModel") < names.index("VBoxModel") and names[-1] == "HBoxModel"  # the outer box opens last


def test_a_plain_figure_widget_is_refused():
    class Plain(Toy):
        def __init__(self):
            self.fig = go.FigureWidget()
            Explorer.__init__(self, [], [W.VBox([self.fig])])

    with pytest.raises(InterpError, match="widgets.base.Figure"):
        Plain()


def test_show_figure_and_html_table():
    fig = Figure(go.Bar(y=[1]))
    show_figure(fig, go.Figure([go.Scatter(y=[1, 2]), go.Scatter(y=[3])], layout=dict(title="new")))
    assert [type(t).__name__ for t in fig.data] == ["Scatter", "Scatter"] and fig.layout.title.text == "new"
    table = html_table(["a<b", "c"], [[1, "<i>x</i>"]])
    assert "a&lt;b" in table and "&lt;i&gt;x&lt;/i&gt;" in table and table.count("<tr>") == 2
    assert "<i>x</i>" in html_table(None, [[1, "<i>x</i>"]], escape=False) and "<th" not in html_table(None, [[1]])


def test_figure_opens_with_a_loader_then_gets_plotly_once_the_page_says_ready(comm_opens):
    """anywidget gives a model 2 s to import its module; plotly's 5 MB bundle takes longer in a busy browser, so a
    ``Figure`` opens with a one-line module that reports ready, and plotly's follows on that report (once)."""
    from widgets.base import _LOADING_ESM, _READY

    plotly_esm = go.FigureWidget()._esm  # (a plain FigureWidget opens at once, with it)
    comm_opens.clear()
    t = Toy()
    t._repr_mimebundle_()
    (fig_state,) = [state for name, state in comm_opens if name == "AnyModel"]
    assert fig_state["_esm"] == _LOADING_ESM and len(fig_state["_esm"]) < 200 and len(plotly_esm) > 1_000_000
    t.fig._on_ready(t.fig, {"event": "something else"}, [])
    assert t.fig._esm == _LOADING_ESM
    t.fig._on_ready(t.fig, {"event": _READY}, [])
    assert t.fig._esm == plotly_esm
    # the state a view draws from when it starts later follows show_figure
    show_figure(t.fig, go.Figure(go.Bar(y=[4, 5]), layout=dict(title="new")))
    assert [list(d["y"]) for d in t.fig._widget_data] == [[4, 5]] and t.fig._widget_layout["title"]["text"] == "new"


def test_an_empty_figure_is_hidden_and_tall_ones_scroll():
    t = Toy()
    (box,) = [b for f, b in t._boxes if f is t.fig]
    assert box.layout.overflow == "auto" and box.layout.max_height.endswith("px")
    t.run(lambda: setattr(t.fig, "data", []))
    assert box.layout.display == "none"
    t.run(lambda: show_figure(t.fig, go.Figure(go.Scatter(y=[1]))))
    assert box.layout.display == ""
