"""Helpers shared by every figure module: safe token labels, colour scales, layout defaults."""

from __future__ import annotations

import html

import plotly.graph_objects as go

DIVERGING = "RdBu_r"
SEQUENTIAL = "Viridis"


_MARKS = {"\n": "↵", "\t": "⇥", "\r": "␍"}


def visible(token: str) -> str:
    """A token with its whitespace drawn (not escaped): newline ↵, tab ⇥, carriage return ␍ always; in a token that is
    only whitespace, a space is ␣ and any other space character (e.g. the no-break space) ⍽ (a word's leading space stays
    a space so words read normally); a token with nothing printable left (zero-width characters) is shown escaped
    ("\\u200b"); "" is "∅"."""
    if token == "":
        return "∅"
    out = "".join(_MARKS.get(c, c) for c in token)
    if token.strip() == "":
        out = "".join("␣" if c == " " else "⍽" if c.isspace() else c for c in out)
    if not any(c.isprintable() and not c.isspace() for c in out):
        out = token.encode("unicode_escape").decode("ascii")
    return out


def escape(text: str) -> str:
    """``text`` safe as plotly figure text (titles, cells, hover, legend): <, > and & escaped, quotes as numeric
    entities (plotly decodes &#34; but shows a named &quot; literally)."""
    return html.escape(str(text), quote=False).replace('"', "&#34;").replace("'", "&#39;")


def label(token: str) -> str:
    """A token as figure text: ``visible`` whitespace, escaped for plotly (``escape``)."""
    return escape(visible(token))


def labels(tokens: list[str], numbered: bool = True) -> list[str]:
    """Unique axis labels for a token list: "3: ␣paris" (plotly merges identical category labels)."""
    return [f"{i}: {label(t)}" if numbered else label(t) for i, t in enumerate(tokens)]


MIN_FONT = 10
"""The smallest font size (px) of any figure text: tick labels of dense axes, heat-map cell text. The browser tier
(tests/browser/test_widget_legibility.py) measures every drawn label against it."""

CELL_FONT = 11
"""Font size (px) of heat-map cell text (plotly shrinks unsized cell text to fit its cell: 6 px on a real model)."""

CHAR_EM = 0.62
"""Width of one character of plotly's default font, in font sizes (a little over the average, so estimates fit)."""


def text_px(texts: list[str], size: float = CELL_FONT) -> float:
    """Estimated drawn width (px) of the longest of ``texts`` at font ``size`` (0 for no texts)."""
    return max((len(html.unescape(t)) for t in texts), default=0) * CHAR_EM * size


def shorten(text: str, n: int) -> str:
    """``text`` cut to at most ``n`` characters, the last one "…" when cut (cut before escaping: ``label(shorten(t, n))``)."""
    return text if len(text) <= n else text[: max(0, n - 1)] + "…"


def heatmap_cells(n_rows: int, n_cols: int, texts: list[str] | None = None, *, row_px: int = 22, min_col_px: int = 16,
                  size: float = CELL_FONT, extra: tuple[int, int] = (0, 0)) -> dict:
    """Width and height (px) for a heat-map whose ``n_cols`` columns each fit the widest of ``texts`` at font ``size``
    (and are at least ``min_col_px`` wide) and whose rows are ``row_px`` tall; ``extra`` = (width, height) of what
    surrounds the cells (axis labels, title, colour bar). Returns ``{"width": w, "height": h}`` for ``update_layout``."""
    col = max(min_col_px, int(text_px(texts or [], size)) + 8)
    return {"width": n_cols * col + extra[0], "height": n_rows * row_px + extra[1]}


def base_layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    """Apply the workbench's common layout (title, margins, white template: its axes grow their margins to fit labels).

    Heat-map cell text without a font size gets ``CELL_FONT`` (plotly would shrink it to fit its cell)."""
    fig.update_layout(
        title=escape(title), template="plotly_white", margin=dict(l=60, r=20, t=50, b=60),
        **({"height": height} if height else {}),
    )
    for trace in fig.data:
        if trace.type == "heatmap" and trace.texttemplate and trace.textfont.size is None:
            trace.textfont.size = CELL_FONT
    return fig
