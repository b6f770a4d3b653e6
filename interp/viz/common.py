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


def base_layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    """Apply the workbench's common layout (title, margins, white template)."""
    fig.update_layout(
        title=escape(title), template="plotly_white", margin=dict(l=60, r=20, t=50, b=60),
        **({"height": height} if height else {}),
    )
    return fig
