"""Figures for ``interp.extreme``: sink heat-map, value/residual norms by position, massive activations,
attention pattern of one head, head activity per domain, per-token probe."""

from __future__ import annotations

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from interp.viz.common import SEQUENTIAL, base_layout, label, labels

_METRICS = {
    "sink_score": "mean attention on the first token",
    "gu_share": "share of texts with alpha_0 > epsilon",
    "drain_ratio": "value norm, first token / median of others",
}


def sink_heatmap(report, metric: str = "sink_score") -> go.Figure:
    """Layer x head heat-map of ``metric`` ("sink_score", "gu_share" or "drain_ratio") of an ``ExtremeTokenReport``.

    Named heads (sink heads, or drain heads for "drain_ratio") are outlined with their value printed.
    """
    if metric not in _METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {sorted(_METRICS)}")
    z = getattr(report, metric).float()
    n_l, n_h = z.shape
    named = set(report.drain_heads if metric == "drain_ratio" else report.sink_heads)
    text = [[f"{z[i, j]:.2f}{' ★' if (i, j) in named else ''}" for j in range(n_h)] for i in range(n_l)]
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), x=[f"H{j}" for j in range(n_h)], y=[f"L{i}" for i in range(n_l)], text=text, texttemplate="%{text}",
        colorscale=SEQUENTIAL if metric != "drain_ratio" else "Viridis_r", zmin=0, zmax=1 if metric != "drain_ratio" else None,
        hovertemplate="%{y} %{x}: %{z:.4f}<extra></extra>", colorbar=dict(title=metric),
    ))
    fig.update_yaxes(autorange="reversed")
    t = report.thresholds
    sub = f"★ = sink head (score ≥ {t['sink']})" if metric != "drain_ratio" else f"★ = drain head (ratio ≤ {t['drain']})"
    return base_layout(fig, f"{_METRICS[metric]} ({report.n_texts} texts; {sub})", height=120 + 40 * n_l)


def norms_by_position(view, layer: int, head: int) -> go.Figure:
    """Two panels for a ``PromptView``: ||W_O v_i|| of (layer, head), and ||resid_post_i|| of every layer, by position."""
    x = labels(view.tokens)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=(f"value norm ||W_O v|| of L{layer}H{head}", "residual norm after each layer"))
    fig.add_trace(go.Bar(x=x, y=view.value_norms[layer, head].tolist(), name=f"L{layer}H{head} value", marker_color="#1f77b4"), 1, 1)
    for i in range(view.resid_norms.shape[0]):
        fig.add_trace(go.Scatter(x=x, y=view.resid_norms[i].tolist(), mode="lines+markers", name=f"resid L{i}"), 2, 1)
    fig.update_xaxes(tickangle=-60, row=2, col=1)
    return base_layout(fig, "Value drain and residual peak by position", height=520)


def massive_scatter(view, report=None) -> go.Figure:
    """Largest |activation| per (layer, position) of a ``PromptView`` (marker size and colour = log10 |a|).

    With a ``report``, its thresholds draw the massive-activation rule and its events are listed in the title.
    """
    n_l, n_pos = view.absmax.shape
    xs, ys, vals, hover = [], [], [], []
    for i in range(n_l):
        for p in range(n_pos):
            a = float(view.absmax[i, p])
            xs.append(p), ys.append(i), vals.append(a)
            hover.append(f"L{i} pos {p} {label(view.tokens[p])}: |a| = {a:.3g} (dim {int(view.argmax_dim[i, p])}), "
                         f"median {float(view.median_abs[i]):.3g}")
    logv = torch.tensor(vals).clamp_min(1e-6).log10()
    size = (6 + 6 * (logv - logv.min())).tolist()
    fig = go.Figure(go.Scatter(
        x=xs, y=ys, mode="markers", marker=dict(size=size, color=logv.tolist(), colorscale="Inferno", colorbar=dict(title="log10 |a|")),
        text=hover, hovertemplate="%{text}<extra></extra>",
    ))
    fig.update_xaxes(title="position", tickmode="array", tickvals=list(range(n_pos)), ticktext=labels(view.tokens), tickangle=-60)
    fig.update_yaxes(title="layer", autorange="reversed", dtick=1)
    title = "Largest activation per layer and position"
    if report is not None:
        t = report.thresholds
        title += f" (massive: |a| > {t['massive_abs']:g} and > {t['massive_ratio']:g} x median; {report.n_massive} found)"
    return base_layout(fig, title, height=160 + 35 * n_l)


def attention_pattern(view, layer: int, head: int) -> go.Figure:
    """Heat-map of the attention pattern of (layer, head) on the prompt of a ``PromptView`` (query rows, key columns)."""
    p = view.patterns[layer, head]
    ticks = labels(view.tokens)
    fig = go.Figure(go.Heatmap(z=p.tolist(), x=ticks, y=ticks, colorscale="Blues", zmin=0, zmax=max(1.0, float(p.max())),
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.4f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="query")
    fig.update_xaxes(title="key", tickangle=-60)
    first = float(p[1:, 0].mean()) if p.shape[0] > 1 else float("nan")
    return base_layout(fig, f"Attention of L{layer}H{head} (mean on first token from later queries: {first:.3f})", height=520)


def activity_bars(activity) -> go.Figure:
    """Grouped bars for a ``HeadActivity``: sink score and loss change on zeroing, per head, one colour per domain."""
    n_d, n_l, n_h = activity.sink.shape
    heads = [f"L{i}H{j}" for i in range(n_l) for j in range(n_h)]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("mean attention on the first token",
                                                                           "loss change when the head is zeroed (nats)"))
    for d, name in enumerate(activity.domains):
        dorm = activity.dormant[d].flatten().tolist()
        fig.add_trace(go.Bar(x=heads, y=activity.sink[d].flatten().tolist(), name=str(name), legendgroup=str(name),
                             text=["dormant" if x else "" for x in dorm], hovertemplate="%{x}: %{y:.3f} %{text}<extra></extra>"), 1, 1)
        fig.add_trace(go.Bar(x=heads, y=activity.dloss_zero[d].flatten().tolist(), name=str(name), legendgroup=str(name),
                             showlegend=False), 2, 1)
    fig.update_layout(barmode="group")
    return base_layout(fig, f"Active/dormant heads by domain (dormant: sink ≥ {activity.sink_threshold}, |Δloss| < {activity.tolerance})",
                       height=520)


def probe_bars(probe, highlight: list[int] | None = None) -> go.Figure:
    """Bar per candidate token of a ``TokenProbe``: attention on the first token; ``highlight`` ids drawn in red."""
    hi = set(highlight or [])
    colors = ["#d62728" if int(c) in hi else "#1f77b4" for c in probe.candidates.tolist()]
    fig = go.Figure(go.Bar(x=[label(t) for t in probe.tokens], y=probe.first_attention.tolist(), marker_color=colors,
                           hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    fig.add_hline(y=probe.threshold, line_dash="dash", annotation_text=f"active below {probe.threshold}")
    fig.update_xaxes(title="current token", type="category")
    fig.update_yaxes(title="attention on the first token", range=[0, 1.05])
    return base_layout(fig, f"Per-token probe of L{probe.layer}H{probe.head}", height=380)
