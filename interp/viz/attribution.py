"""Figures of token attributions: coloured tokens, the [target, source] matrix, method comparisons."""

from __future__ import annotations

import math

import plotly.graph_objects as go

from interp.attribution.compare import Comparison
from interp.attribution.reduction import reduction_label
from interp.attribution.result import TokenAttribution
from interp.viz.common import DIVERGING, base_layout, label, labels

__all__ = ["token_figure", "matrix_figure", "comparison_figure"]


def _hover(attr: TokenAttribution, i: int, j: int, value: float) -> str:
    marks = [name for name, idx in attr.marks.items() if j in idx]
    extra = f"<br>{', '.join(marks)}" if marks else ""
    how = f" ({reduction_label(attr.reduction)})" if attr.reduction else ""
    return f"{j}: {label(attr.source_tokens[j])}<br>score{how} {value:+.4g}<br>target {label(attr.target_tokens[i])}{extra}"


def _method(attr: TokenAttribution) -> str:
    """The method's name for a title, with its per-token reduction when it has one ("integrated_gradients, L2 norm")."""
    return f"{attr.method}, {reduction_label(attr.reduction)}" if attr.reduction else attr.method


def token_figure(attr: TokenAttribution, target: int = -1, *, width: int = 12, title: str | None = None) -> go.Figure:
    """The sources of one target as coloured tokens (diverging around 0, ``width`` tokens per line), hover = score.

    Marked positions (``attr.marks``) are outlined. Returns a ``go.Figure``.
    """
    i = range(attr.n_targets)[target]
    row = attr.row(i).tolist()
    n = len(row)
    lines = max(1, math.ceil(n / width))
    z = [[None] * width for _ in range(lines)]
    text = [[""] * width for _ in range(lines)]
    hover = [[""] * width for _ in range(lines)]
    for j, v in enumerate(row):
        r, c = divmod(j, width)
        z[r][c], text[r][c], hover[r][c] = v, label(attr.source_tokens[j]), _hover(attr, i, j, v)
    top = max((abs(v) for v in row), default=1.0) or 1.0
    fig = go.Figure(go.Heatmap(
        z=z, text=text, texttemplate="%{text}", hovertext=hover, hoverinfo="text", colorscale=DIVERGING, zmid=0,
        zmin=-top, zmax=top, xgap=2, ygap=2, colorbar=dict(title="score"),
    ))
    for name, idx in attr.marks.items():
        for j in idx:
            if j < n:
                r, c = divmod(j, width)
                neg = "neg" in name
                fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5,
                              line=dict(color="#555" if neg else "black", width=2, dash="dot" if neg else "solid"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    title = title or f"{_method(attr)}: attribution of {label(attr.target_tokens[i])!s}"
    return base_layout(fig, title, height=90 + 45 * lines)


def matrix_figure(attr: TokenAttribution, title: str | None = None) -> go.Figure:
    """Heatmap [target, source] of a multi-token attribution; blank where a source comes at or after its target."""
    z = [[None if math.isnan(v) else v for v in r] for r in attr.scores.tolist()]
    finite = [abs(v) for r in z for v in r if v is not None]
    top = max(finite, default=1.0) or 1.0
    ylab = [f"{p}: {label(t)}" for p, t in zip(attr.target_positions, attr.target_tokens)]
    hover = [[_hover(attr, i, j, v) if v is not None else "" for j, v in enumerate(r)] for i, r in enumerate(z)]
    fig = go.Figure(go.Heatmap(z=z, x=labels(attr.source_tokens), y=ylab, hovertext=hover, hoverinfo="text",
                               colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top, colorbar=dict(title="score")))
    fig.update_xaxes(title="source token", tickangle=-45)
    fig.update_yaxes(title="target token", autorange="reversed")
    return base_layout(fig, title or f"{_method(attr)}: target × source", height=160 + 28 * attr.n_targets)


def comparison_figure(comp: Comparison, metric: str | None = None) -> go.Figure:
    """Bar chart of one metric of a ``Comparison`` (default: its ranking metric), methods best first."""
    metric = metric or ("top1_rate" if "top1_rate" in comp.metrics else "soft_nc_vs_random")
    col = comp.column(metric)
    order = comp.ranking(metric)
    fig = go.Figure(go.Bar(x=[label(m) for m in order], y=[col[m] for m in order],
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(title=metric)
    return base_layout(fig, f"{metric} on {comp.n_prompts} prompts ({label(comp.model)})", height=360)
