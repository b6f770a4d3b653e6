"""Unit tests of the shared widget frame ``widgets.base.Explorer`` (kernel side, no browser).

A render that raises shows the error inside the widget (escaped), re-enables the controls and leaves
the widget usable; controls are disabled and the bar visible while render runs; Export HTML writes
one self-contained file, or shows why it could not.
"""

from __future__ import annotations

import re

import ipywidgets as W
import plotly.graph_objects as go

from widgets.base import Explorer


class Toy(Explorer):
    """A slider-driven line; ``fail`` makes render raise with a message containing HTML."""

    title = "Toy <explorer>"

    def __init__(self):
        self.k = W.IntSlider(value=1, min=0, max=5)
        self.fail = False
        self.seen_during_render: list[tuple[bool, str]] = []
        self.fig = go.FigureWidget(go.Scatter(y=[0, 0, 0]))
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
