"""Figures for steering: accuracy and perplexity versus alpha per method, contrastive attributions as colored tokens."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.viz.common import DIVERGING, base_layout, label, labels
from interp.viz.tokens import TokenView

__all__ = ["steering_curves", "gap_per_example", "contrast_attribution_figure", "contrast_token_view"]

_COLORS = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def steering_curves(ev, *, max_ppl_increase: float = 0.10) -> go.Figure:
    """Two panels against alpha, one line per method: multiple-choice accuracy and perplexity on ordinary text.

    ``ev``: a ``SteeringEval``. The dashed line on the right panel marks the perplexity budget (+``max_ppl_increase``).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("multiple-choice accuracy", "perplexity on ordinary text"))
    for i, m in enumerate(ev.methods):
        c = _COLORS[i % len(_COLORS)]
        gaps = [f"mean gap {g:+.3f} nats" for g in ev.mean_gap[i].tolist()]
        fig.add_trace(go.Scatter(x=ev.alphas, y=ev.accuracy[i].tolist(), mode="lines+markers", name=label(m),
                                 legendgroup=m, line=dict(color=c), text=gaps,
                                 hovertemplate="alpha %{x}<br>accuracy %{y:.3f}<br>%{text}<extra>" + label(m) + "</extra>"),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=ev.alphas, y=ev.perplexity[i].tolist(), mode="lines+markers", name=label(m),
                                 legendgroup=m, showlegend=False, line=dict(color=c),
                                 hovertemplate="alpha %{x}<br>perplexity %{y:.3f}<extra>" + label(m) + "</extra>"),
                      row=1, col=2)
    base = ev.baseline_perplexity()
    if base == base:  # not NaN
        fig.add_hline(y=base * (1 + max_ppl_increase), line=dict(dash="dash", color="gray"), row=1, col=2,
                      annotation_text=f"+{max_ppl_increase:.0%}", annotation_position="top left")
    fig.add_hline(y=0.5, line=dict(dash="dot", color="gray"), row=1, col=1)
    fig.update_xaxes(title_text="alpha")
    fig.update_yaxes(range=[-0.02, 1.02], row=1, col=1)
    return base_layout(fig, f"Steering {ev.model}: {len(ev.prompts)} examples", height=380)


def gap_per_example(ev, method: str | None = None) -> go.Figure:
    """Heatmap [example, alpha] of log P(preferred) − log P(dispreferred) for one method (default: the first)."""
    i = ev.methods.index(method) if method else 0
    z = ev.gaps[i].T.tolist()
    top = max(1e-9, float(ev.gaps[i].abs().max()))
    fig = go.Figure(go.Heatmap(z=z, x=[str(a) for a in ev.alphas], y=labels(ev.prompts), colorscale=DIVERGING,
                               zmin=-top, zmax=top, colorbar=dict(title="gap (nats)"),
                               hovertemplate="alpha %{x}<br>%{y}<br>gap %{z:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="alpha", type="category")
    return base_layout(fig, f"Log-prob gap per example ({ev.methods[i]})", height=max(300, 22 * len(ev.prompts) + 120))


def contrast_attribution_figure(att) -> go.Figure:
    """Heatmap of a GrAInS ``TokenAttribution``: rows x⊕y⁺, x⊕y⁻ and their sum over the prompt tokens.

    Cells of the tokens GrAInS selected are marked ▲ (top positive) and ▼ (top negative) in the summed row.
    """
    rows = att.scores
    total = rows.sum(0)
    z = [rows[0].tolist(), rows[1].tolist(), total.tolist()]
    names = [f"+ {att.target_tokens[0]}", f"- {att.target_tokens[1]}", "sum (f)"]
    marks = [[""] * len(att.source_tokens) for _ in range(3)]
    for i in att.marks.get("top_positive", []):
        marks[2][i] = "▲"
    for i in att.marks.get("top_negative", []):
        marks[2][i] = (marks[2][i] + "▼") if marks[2][i] else "▼"
    top = max(1e-9, float(rows.abs().max()), float(total.abs().max()))
    fig = go.Figure(go.Heatmap(
        z=z, x=labels(att.source_tokens), y=[label(n) for n in names], text=marks, texttemplate="%{text}",
        colorscale=DIVERGING, zmin=-top, zmax=top, colorbar=dict(title="IG"),
        hovertemplate="%{y}<br>%{x}<br>attribution %{z:.4f}<extra></extra>",
    ))
    fig.update_xaxes(type="category", tickangle=-45)
    gap = att.info.get("logprob_gap")
    title = f"Contrastive attribution: {att.target_tokens[0]!r} vs {att.target_tokens[1]!r}"
    if gap is not None:
        title += f" (log-prob gap {gap:+.3f})"
    return base_layout(fig, title, height=300)


def contrast_token_view(att):
    """A ``TokenView`` of the summed attribution (hover: both rows and the selection marks)."""
    total = att.scores.sum(0).tolist()
    pos, neg = set(att.marks.get("top_positive", [])), set(att.marks.get("top_negative", []))
    hover = []
    for i in range(len(att.source_tokens)):
        tag = " [top +]" if i in pos else " [top -]" if i in neg else ""
        hover.append(f"f {total[i]:+.4f} (y+ row {float(att.scores[0, i]):+.4f}, y- row {float(att.scores[1, i]):+.4f}){tag}")
    caption = (f"Integrated Gradients of log P({att.target_tokens[0]!r}) - log P({att.target_tokens[1]!r}) per prompt token; "
               "red raises the preferred answer, blue the dispreferred one.")
    if att.info.get("completeness_note"):  # grains_attribution states its IG completeness error and why
        caption += " " + att.info["completeness_note"]
    return TokenView(list(att.source_tokens), total, hover, caption=caption)
