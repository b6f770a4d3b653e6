"""Figures of bigram subnetworks: kept fraction by layer and component, surprisal scatter, per-token predictions."""

from __future__ import annotations

import plotly.graph_objects as go

from interp.viz.common import base_layout, label, labels

__all__ = ["kept_fraction_figure", "surprisal_scatter", "token_predictions_figure", "ablation_figure"]

_ORDER = ("Q", "K", "V", "O", "QKV", "MLP in", "MLP out", "other")


def kept_fraction_figure(subnetwork, share: bool = False) -> go.Figure:
    """Heat map [component x layer] of the kept fraction of each (layer, component), or its share of all kept entries."""
    rows = subnetwork.share_of_kept() if share else subnetwork.kept_table()
    key = "share" if share else "fraction"
    layers = sorted({r["layer"] for r in rows})
    comps = [c for c in _ORDER if any(r["component"] == c for r in rows)]
    z = [[None] * len(layers) for _ in comps]
    text = [[""] * len(layers) for _ in comps]
    for r in rows:
        i, j = comps.index(r["component"]), layers.index(r["layer"])
        z[i][j] = 100 * r[key]
        text[i][j] = f"{100 * r[key]:.2f}%<br>{r['kept']:,}/{r['total']:,}"
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"layer {lay}" for lay in layers], y=list(comps), text=text, texttemplate="%{text}",
        colorscale="Blues", colorbar=dict(title="% of kept" if share else "% kept"),
        hovertemplate="%{y}, %{x}: %{text}<extra></extra>",
    ))
    title = (f"Share of the kept weights by layer and component (total kept {100 * subnetwork.kept_fraction:.3f}%)" if share
             else f"Kept fraction by layer and component (overall {100 * subnetwork.kept_fraction:.3f}%)")
    fig.update_yaxes(autorange="reversed")
    return base_layout(fig, title, height=120 + 40 * len(comps))


def surprisal_scatter(ev, variant: str = "subnetwork", compare: str | None = "full") -> go.Figure:
    """Scatter of a variant's surprisal (bits) against the bigram surprisal at sampled positions; r in the legend."""
    fig = go.Figure()
    zero = ev.zero_prob.numpy()
    for v in [x for x in (variant, compare) if x and x in ev.variants]:
        i = ev.variants.index(v)
        r = ev[v]
        fig.add_trace(go.Scattergl(
            x=ev.bigram_surprisal.numpy(), y=ev.surprisal[i].numpy(), mode="markers", name=f"{v} (r={r['r']:.3f}, "
            f"r without unseen pairs={r['r_dropinf']:.3f})", marker=dict(size=4, opacity=0.45),
            customdata=zero, hovertemplate="bigram %{x:.2f} bits<br>model %{y:.2f} bits<extra></extra>",
        ))
    top = float(max(ev.bigram_surprisal.max(), ev.surprisal.max()))
    fig.add_trace(go.Scatter(x=[0, top], y=[0, top], mode="lines", name="y = x", line=dict(dash="dot", color="gray")))
    fig.update_xaxes(title="bigram surprisal (bits)")
    fig.update_yaxes(title="model surprisal (bits)")
    fig.update_layout(legend=dict(orientation="h", y=-0.25))
    return base_layout(fig, f"Surprisal: {variant} vs the bigram table ({ev.model})", height=460)


def token_predictions_figure(preds) -> go.Figure:
    """Per-token table: at each prompt position, the top next token and its probability under full / subnetwork / bigram.

    ``preds`` is a ``TokenPredictions`` (see ``interp.subnetworks.predictions``).
    """
    sources = list(preds.sources)
    toks = labels(preds.tokens)
    z = preds.prob_actual.numpy()  # [source, pos] probability of the actual next token
    text = [[f"{label(preds.top[s][p])}<br>{preds.top_prob[s, p]:.2f}" for p in range(len(toks))] for s in range(len(sources))]
    hover = [[f"{sources[s]} after {toks[p]}: top {label(preds.top[s][p])} ({preds.top_prob[s, p]:.3f}); "
              f"actual next {label(preds.next_tokens[p])}: {z[s, p]:.3f}" for p in range(len(toks))] for s in range(len(sources))]
    fig = go.Figure(go.Heatmap(
        z=z, x=toks, y=sources, text=text, texttemplate="%{text}", customdata=hover, hovertemplate="%{customdata}<extra></extra>",
        colorscale="Greens", zmin=0, zmax=1, colorbar=dict(title="p(actual next)"),
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title="current token (cell: top next-token prediction and its probability)", tickangle=-45)
    return base_layout(fig, "Next-token predictions: full model, subnetwork only, bigram table", height=300)


def ablation_figure(ev) -> go.Figure:
    """Bars of the mean real-text loss (nats) of each evaluated variant."""
    fig = go.Figure(go.Bar(x=ev.variants, y=ev.loss.numpy(), text=[f"{v:.3f}" for v in ev.loss.tolist()], textposition="outside"))
    fig.update_yaxes(title="loss on real text (nats / token)")
    return base_layout(fig, f"Loss by variant (subnetwork keeps {100 * ev.kept_fraction:.3f}% of maskable weights)", height=380)
