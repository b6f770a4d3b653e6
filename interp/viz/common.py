"""Helpers shared by every figure module: safe token labels, colour scales, layout defaults."""

from __future__ import annotations

import html

import plotly.graph_objects as go

DIVERGING = "RdBu_r"
SEQUENTIAL = "Viridis"


def label(token: str) -> str:
    """A token as figure text: HTML-escaped (plotly renders a subset of HTML), spaces and newlines visible."""
    return html.escape(token.replace("\n", "\\n").replace(" ", "␣") if token.strip() == "" else token.replace("\n", "\\n"))


def labels(tokens: list[str], numbered: bool = True) -> list[str]:
    """Unique axis labels for a token list: "3: ␣paris" (plotly merges identical category labels)."""
    return [f"{i}: {label(t)}" if numbered else label(t) for i, t in enumerate(tokens)]


def base_layout(fig: go.Figure, title: str, height: int | None = None) -> go.Figure:
    """Apply the workbench's common layout (title, margins, white template)."""
    fig.update_layout(
        title=html.escape(title), template="plotly_white", margin=dict(l=60, r=20, t=50, b=60),
        **({"height": height} if height else {}),
    )
    return fig
