"""Figures for ``interp.extreme``: sink heat-map, value/residual norms by position, massive activations,
attention pattern of one head, head activity per domain, per-token probe."""

from __future__ import annotations

import math

import plotly.graph_objects as go
import torch
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from interp.viz.common import MIN_FONT, SEQUENTIAL, base_layout, escape, heatmap_cells, label, labels, visible
from interp.viz.heads import head_set_text, layer_ranges, top_heads

TOKEN_PX = 16
"""Space (px) per token on a token axis: its labels stand vertical at ``MIN_FONT``, so each gets its own label."""


def _token_axis(upright: bool = True) -> dict:
    """Options of a category axis of token labels (placed ``TOKEN_PX`` apart): every label drawn (plotly would thin
    them), at ``MIN_FONT``, upright (read bottom to top) unless ``upright=False``."""
    return dict(tickmode="linear", tick0=0, dtick=1, tickfont=dict(size=MIN_FONT), **({"tickangle": -90} if upright else {}))


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
        hovertemplate="%{y} %{x}: %{z:.4f}<extra></extra>", colorbar=dict(title=dict(text=metric, side="right")),
    ))
    fig.update_yaxes(autorange="reversed")
    t = report.thresholds
    sub = f"★ = sink head (score ≥ {t['sink']})" if metric != "drain_ratio" else f"★ = drain head (ratio ≤ {t['drain']})"
    base_layout(fig, f"{_METRICS[metric]} ({report.n_texts} texts; {sub})")
    # every layer and head labelled: rows 22 px, columns as wide as their "0.93 ★" text
    fig.update_layout(**heatmap_cells(n_l, n_h, [t for row in text for t in row], min_col_px=40, extra=(320, 170)))
    return fig


def summary_rows(report) -> list[list[str]]:
    """[finding, value] rows of an ``ExtremeTokenReport`` that stay short at any model size: head sets as counts
    with the layers they avoid or fill (names only for a dozen or fewer), peak layers as ranges."""
    n_l, n_h = report.sink_score.shape
    t = report.thresholds
    return [
        ["texts", f"{report.n_texts} ({report.n_tokens} tokens)"],
        ["sink heads", f"{head_set_text(report.sink_heads, n_l, n_h)} (score ≥ {t['sink']} and ≥ {t['sink_over_uniform']}× "
                       f"uniform {report.uniform_sink:.3f})"],
        ["drain heads", f"{head_set_text(report.drain_heads, n_l, n_h)} (value ratio ≤ {t['drain']})"],
        ["residual peak layers", f"{len(report.peak_layers)} of {n_l}: {layer_ranges(report.peak_layers)} (ratio ≥ {t['peak']})"],
        ["massive activations", f"{report.n_massive} (|a| > {t['massive_abs']:g} and > {t['massive_ratio']:g}× median)"],
        ["other sink tokens", ", ".join(f"{visible(s[0])} ({s[1]}×)" for s in report.other_sinks[:5]) or "none"],
    ]


def top_head_rows(report, n: int = 10) -> list[list]:
    """Rows [rank, sink head, sink score, drain head, drain ratio]: the ``n`` highest sink scores and the ``n``
    lowest drain ratios of an ``ExtremeTokenReport`` side by side."""
    sinks, drains = top_heads(report.sink_score, n), top_heads(report.drain_ratio, n, largest=False)
    return [[i + 1, *(sinks[i][1:] if i < len(sinks) else ["", ""]), *(drains[i][1:] if i < len(drains) else ["", ""])]
            for i in range(max(len(sinks), len(drains)))]


def norms_by_position(view, layer: int, head: int) -> go.Figure:
    """Two panels for a ``PromptView``: ||W_O v_i|| of (layer, head), and ||resid_post_i|| of every layer, by position
    (log scale, lines coloured from first to last layer, about ten of them named in the legend)."""
    x = labels(view.tokens)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=(f"value norm ||W_O v|| of L{layer}H{head}", "residual norm after each layer"))
    fig.add_trace(go.Bar(x=x, y=view.value_norms[layer, head].tolist(), name=f"L{layer}H{head} value", marker_color="#1f77b4"), 1, 1)
    n = view.resid_norms.shape[0]
    colours = sample_colorscale(SEQUENTIAL, [i / max(1, n - 1) for i in range(n)])
    step = max(1, math.ceil(n / 10))  # at most ~10 legend entries; every line keeps its hover
    for i in range(n):
        fig.add_trace(go.Scatter(x=x, y=view.resid_norms[i].tolist(), mode="lines+markers", name=f"resid L{i}",
                                 line=dict(color=colours[i]), marker=dict(size=4), showlegend=i % step == 0 or i == n - 1,
                                 hovertemplate=f"after L{i}, %{{x}}: %{{y:.4g}}<extra></extra>"), 2, 1)
    fig.update_xaxes(**_token_axis(), row=2, col=1)
    # the first token's peak is 10-100x the rest; ticks at powers of ten only (plotly draws the 2 and 5 between them at
    # 3/4 of the tick font: 9 px)
    span = view.resid_norms.clamp_min(1e-12)
    decades = float(span.max().log10() - span.min().log10()) if span.numel() else 0.0
    fig.update_yaxes(type="log", title_text="norm (log)", row=2, col=1, **({"dtick": 1} if decades >= 1 else {}))
    base_layout(fig, "Value drain and residual peak by position", height=620)
    fig.update_layout(width=max(700, TOKEN_PX * len(x) + 330))
    return fig


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
    fig.update_xaxes(title="position", tickmode="array", tickvals=list(range(n_pos)), ticktext=labels(view.tokens), tickangle=-90,
                     tickfont=dict(size=MIN_FONT), range=[-0.7, n_pos - 0.3])
    fig.update_yaxes(title="layer", range=[n_l - 0.5, -0.7], dtick=1, tickfont=dict(size=MIN_FONT))
    title = "Largest activation per layer and position"
    if report is not None:
        t = report.thresholds
        title += f" (massive: |a| > {t['massive_abs']:g} and > {t['massive_ratio']:g} x median; {report.n_massive} found)"
    base_layout(fig, title, height=260 + 18 * n_l)
    fig.update_layout(width=max(700, TOKEN_PX * n_pos + 300))
    return fig


def attention_pattern(view, layer: int, head: int) -> go.Figure:
    """Heat-map of the attention pattern of (layer, head) on the prompt of a ``PromptView`` (query rows, key columns)."""
    p = view.patterns[layer, head]
    ticks = labels(view.tokens)
    fig = go.Figure(go.Heatmap(z=p.tolist(), x=ticks, y=ticks, colorscale="Blues", zmin=0, zmax=max(1.0, float(p.max())),
                               hovertemplate="query %{y}<br>key %{x}<br>%{z:.4f}<extra></extra>"))
    n = len(ticks)
    fig.update_yaxes(autorange="reversed", title="query", **_token_axis(upright=False))
    fig.update_xaxes(title="key", **_token_axis())
    first = float(p[1:, 0].mean()) if p.shape[0] > 1 else float("nan")
    base_layout(fig, f"Attention of L{layer}H{head} (mean on first token from later queries: {first:.3f})")
    fig.update_layout(width=max(600, TOKEN_PX * n + 330), height=max(420, TOKEN_PX * n + 250))  # a label per token
    return fig


_DOMAIN_COLOURS = ["#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"]


def activity_bars(activity, max_heads: int = 40) -> go.Figure:
    """Grouped bars for a ``HeadActivity``: sink score and loss change on zeroing, per head, one colour per domain.

    With more than ``max_heads`` heads only ``max_heads`` are drawn, in layer order, and the title says which: the
    measured heads when the interventions ran on some heads only (``head_activity(heads=...)``), else those whose sink
    score differs most across the domains (one domain: the highest sink scores).
    """
    n_d, n_l, n_h = activity.sink.shape
    spread = (activity.sink.amax(0) - activity.sink.amin(0) if n_d > 1 else activity.sink[0]).flatten()
    measured = activity.measured.any(0).flatten()
    some = bool(measured.any()) and not bool(measured.all())
    pool = [i for i in range(n_l * n_h) if measured[i]] if some else list(range(n_l * n_h))
    keep = sorted(sorted(pool, key=lambda i: (-float(spread[i]), i))[:max_heads])
    heads = [f"L{i // n_h}H{i % n_h}" for i in keep]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, subplot_titles=("mean attention on the first token",
                                                                           "loss change when the head is zeroed (nats)"))
    for d, name in enumerate(activity.domains):
        colour = _DOMAIN_COLOURS[d % len(_DOMAIN_COLOURS)]
        dorm = activity.dormant[d].flatten()[keep].tolist()
        fig.add_trace(go.Bar(x=heads, y=activity.sink[d].flatten()[keep].tolist(), name=label(str(name)), legendgroup=str(name),
                             marker_color=colour, text=["dormant" if x else "" for x in dorm], textposition="none",
                             hovertemplate="%{x}: %{y:.3f} %{text}<extra></extra>"), 1, 1)
        fig.add_trace(go.Bar(x=heads, y=activity.dloss_zero[d].flatten()[keep].tolist(), name=label(str(name)),
                             legendgroup=str(name), marker_color=colour, showlegend=False,
                             hovertemplate="%{x}: %{y:+.4f} nats<extra></extra>"), 2, 1)
    fig.update_layout(barmode="group")
    total = n_l * n_h
    if some:
        shown = f"; the {len(keep)} measured of {total} heads"
    elif len(keep) < total:
        shown = (f"; {len(keep)} of {total} heads, largest sink difference across domains" if n_d > 1
                 else f"; the {len(keep)} of {total} heads that sink most")
    else:
        shown = ""
    base_layout(fig, "Active/dormant heads by domain", height=560)
    detail = escape(f"dormant: sink ≥ {activity.sink_threshold}, |Δloss| < {activity.tolerance}{shown}")
    # two title lines (one would run past a narrow figure's edge), above the panel titles; a width for every bar group
    fig.update_layout(title_text=f"{fig.layout.title.text}<br><span style='font-size:12px'>{detail}</span>", margin=dict(t=110),
                      width=max(700, 300 + len(keep) * (12 * n_d + 14)))
    return fig


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
