"""``Report``: titled sections (figures, tables, colored tokens, text) saved as ONE offline HTML file.

plotly.js is inlined once; every string goes through Jinja2 autoescaping, and figure JSON is embedded
with ``<``, ``>`` and ``&`` written as unicode escapes, so no prompt text can close a tag or a script.
The page loads nothing from the network (no CDN, no fonts, no images from elsewhere).
"""

from __future__ import annotations

import datetime as _dt
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from interp.io import atomic_write_text
from interp.viz.tokens import TokenView

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _clean(value: Any) -> Any:
    """Jinja ``finalize``: control characters (NUL, ESC, ...; not tab or newline) in any printed value become
    U+FFFD, so the page holds only characters HTML allows. Markup (plotly.js, figure JSON) passes untouched:
    JSON already writes control characters as ``\\u`` escapes."""
    if isinstance(value, Markup):
        return value
    if isinstance(value, str):
        return _CONTROL.sub("\ufffd", value)
    return value


def _script_json(obj: Any) -> Markup:
    """JSON safe to place inside a <script> element."""
    text = obj if isinstance(obj, str) else json.dumps(obj)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


@dataclass
class Section:
    """One titled block of the report; ``items`` are figures, tables, token views or paragraphs."""

    title: str
    items: list[tuple[str, Any]] = field(default_factory=list)
    note: str = ""


class Report:
    """Collect sections, then ``save(path)`` one self-contained HTML file.

    >>> r = Report("My model")
    >>> r.add_text("Prompt", "Mia lives in")
    >>> r.add_table("Top tokens", ["token", "p"], [[" paris", 0.9]])
    >>> path = r.save("report.html")  # doctest: +SKIP
    """

    def __init__(self, title: str = "Interpretability report", subtitle: str = ""):
        self.title, self.subtitle = title, subtitle
        self.sections: list[Section] = []

    def section(self, title: str, note: str = "") -> Section:
        """Start (or return the existing) section called ``title``."""
        for s in self.sections:
            if s.title == title:
                return s
        s = Section(title, note=note)
        self.sections.append(s)
        return s

    def add_figure(self, title: str, fig: go.Figure, caption: str = "") -> None:
        """Add a plotly figure to section ``title``."""
        self.section(title).items.append(("figure", (fig, caption)))

    def add_table(self, title: str, columns: list[str], rows: list[list[Any]], caption: str = "") -> None:
        """Add a table; floats are shown with 4 significant digits."""
        fmt = [[f"{v:.4g}" if isinstance(v, float) else str(v) for v in row] for row in rows]
        self.section(title).items.append(("table", ([str(c) for c in columns], fmt, caption)))

    def add_tokens(self, title: str, view: TokenView) -> None:
        """Add a colored-token view."""
        self.section(title).items.append(("tokens", view))

    def add_text(self, title: str, text: str) -> None:
        """Add a paragraph of plain text (escaped, never interpreted as HTML)."""
        self.section(title).items.append(("text", str(text)))

    def add_error(self, title: str, message: str) -> None:
        """Record that a section could not be computed (shown, not hidden)."""
        self.section(title).items.append(("error", str(message)))

    def to_html(self) -> str:
        """The whole report as one HTML string."""
        from plotly.offline import get_plotlyjs

        env = Environment(loader=PackageLoader("interp.report", "templates"), autoescape=select_autoescape(default=True),
                          finalize=_clean)
        blocks = []
        n_fig = 0
        for s in self.sections:
            items = []
            for kind, value in s.items:
                if kind == "figure":
                    fig, caption = value
                    n_fig += 1
                    items.append({"kind": kind, "id": f"fig{n_fig}", "json": _script_json(fig.to_json()), "caption": caption})
                elif kind == "table":
                    items.append({"kind": kind, "columns": value[0], "rows": value[1], "caption": value[2]})
                elif kind == "tokens":
                    items.append({"kind": kind, "spans": value.spans(), "caption": value.caption})
                else:
                    items.append({"kind": kind, "text": value})
            blocks.append({"title": s.title, "note": s.note, "entries": items})
        return env.get_template("report.html.j2").render(
            title=self.title, subtitle=self.subtitle, sections=blocks, has_figures=n_fig > 0,
            plotlyjs=Markup(get_plotlyjs()) if n_fig else "",
            generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        )

    def save(self, path: str | Path) -> Path:
        """Write the report to ``path`` atomically (no partial file on error); returns the path."""
        return atomic_write_text(path, self.to_html())

    def _repr_html_(self) -> str:
        return f"<b>Report</b> {len(self.sections)} sections: " + ", ".join(
            Markup.escape(s.title) for s in self.sections
        )
