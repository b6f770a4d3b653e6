"""Figure of a two-model comparison (``interp.compare.ModelComparison``): lens trajectories side by side, each model's
sink map, and, when the two read the same tokens with the same number of lens rows, the [row, pos] difference."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.compare import ModelComparison
from interp.viz.common import DIVERGING, SEQUENTIAL, base_layout, escape, label, labels

__all__ = ["comparison_figure"]

_COLOURS = ("#1f77b4", "#d62728")


def _depth(rows: list[str], aligned: bool) -> list:
    """x values of a trajectory: the row labels when both models have the same rows, else relative depth 0..1."""
    if aligned:
        return list(rows)
    n = max(len(rows) - 1, 1)
    return [i / n for i in range(len(rows))]


def comparison_figure(comp: ModelComparison, *, pos: int = -1, title: str | None = None) -> go.Figure:
    """The comparison in one figure: (1) the tracked token's probability by lens row at position ``pos`` (default:
    each model's last) for both models, the target's rank in the hover; (2) its probability at the output by position;
    (3, 4) the two [layer, head] sink maps on one colour scale; (5) with aligned tokens and rows, ``prob_b - prob_a``
    per [row, pos]. The note (position by position, or each model's own tokens) is printed under the title."""
    a, b = comp.models
    aligned_rows = comp.layers_a == comp.layers_b
    diff = comp.same_tokens and aligned_rows
    if comp.tracked != "target":
        what = "p(final top-1)"
    else:
        what = f"p({comp.target_a!r})" if comp.target_a == comp.target_b else f"p(target: a {comp.target_a!r}, b {comp.target_b!r})"
    titles = ["by layer, at the last position" if pos == -1 else f"by layer, at position {pos}",
              "at the output, by position", f"sink map of a: {a}", f"sink map of b: {b}"]
    if diff:
        titles.append(f"{what}: b minus a, per lens row and position")
    specs = [[{}, {}], [{}, {}]] + ([[{"colspan": 2}, None]] if diff else [])
    fig = make_subplots(rows=len(specs), cols=2, specs=specs, subplot_titles=[escape(t) for t in titles],
                        vertical_spacing=0.12 if diff else 0.18, horizontal_spacing=0.12)
    for (name, tokens, rows, prob, rank), colour in zip(
            ((f"a: {a}", comp.tokens_a, comp.layers_a, comp.prob_a, comp.rank_a),
             (f"b: {b}", comp.tokens_b, comp.layers_b, comp.prob_b, comp.rank_b)),
            _COLOURS):
        p = pos if pos < 0 else min(pos, len(tokens) - 1)
        hover = [f"{escape(r)}: p={v:.4f}" + (f", rank {int(k)}" if rank is not None else "")
                 for r, v, k in zip(rows, prob[:, p].tolist(), (rank[:, p].tolist() if rank is not None else [0] * len(rows)))]
        fig.add_trace(go.Scatter(x=_depth(rows, aligned_rows), y=prob[:, p].tolist(), mode="lines+markers", name=escape(name),
                                 legendgroup=name, line=dict(color=colour), text=hover,
                                 hovertemplate=f"{escape(name)} %{{text}}<extra></extra>"), row=1, col=1)
        x = labels(comp.tokens_a) if comp.same_tokens else list(range(len(tokens)))
        fig.add_trace(go.Scatter(x=x, y=prob[-1].tolist(), mode="lines+markers", name=escape(name), legendgroup=name,
                                 showlegend=False, line=dict(color=colour), text=[label(t) for t in tokens],
                                 hovertemplate=f"{escape(name)} %{{x}} %{{text}}: p=%{{y:.4f}}<extra></extra>"), row=1, col=2)
    for col, sink in ((1, comp.sink_a), (2, comp.sink_b)):
        n_l, n_h = sink.shape
        fig.add_trace(go.Heatmap(z=sink.tolist(), x=[f"H{h}" for h in range(n_h)], y=[f"L{i}" for i in range(n_l)],
                                 zmin=0, zmax=1, colorscale=SEQUENTIAL, showscale=col == 2,
                                 colorbar=dict(title="attn on first", len=0.3, y=0.5 if diff else 0.22),
                                 texttemplate="%{z:.2f}" if n_l <= 12 and n_h <= 16 else None,
                                 hovertemplate="%{y} %{x}: %{z:.4f}<extra></extra>"), row=2, col=col)
        fig.update_yaxes(autorange="reversed", row=2, col=col)
    if diff:
        fig.add_trace(go.Heatmap(z=comp.difference().tolist(), x=labels(comp.tokens_a), y=list(comp.layers_a), zmid=0,
                                 colorscale=DIVERGING, colorbar=dict(title="b - a", len=0.3, y=0.12),
                                 hovertemplate="%{y}, %{x}: %{z:+.4f}<extra></extra>"), row=3, col=1)
        fig.update_yaxes(type="category", row=3, col=1)
    fig.update_xaxes(title="lens row" if aligned_rows else "relative depth (0 = embeddings, 1 = output)", row=1, col=1)
    fig.update_xaxes(title="position (shared tokens)" if comp.same_tokens else "position (each model's own tokens)", row=1, col=2)
    fig.update_yaxes(title=escape(what), range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    base_layout(fig, title or f"{a} vs {b} on the same text: {what}", height=360 * len(specs))
    lines = _wrap(comp.note)  # the result's target_note says how each model resolved the target word
    fig.update_layout(title=dict(text=f"{fig.layout.title.text}<br><sup>{'<br>'.join(escape(x) for x in lines)}</sup>"),
                      margin=dict(t=100 + 22 * len(lines)))
    return fig


def _wrap(text: str, width: int = 110) -> list[str]:
    """``text`` cut into lines of at most about ``width`` characters at spaces."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines
