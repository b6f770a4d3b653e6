"""Figures of lens results: the layer x position heat-map, target probability by layer, KL by layer,
the LatentLens grid and its neighbour table."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from interp.lens.latent import LatentLensResult, Neighbors
from interp.lens.latent.quality import WEAK
from interp.lens.logit import STATISTICS, LensResult, layer_stride
from interp.viz.common import MIN_FONT, SEQUENTIAL, base_layout, escape, heatmap_cells, label, labels, shorten

__all__ = ["lens_heatmap", "target_line", "kl_by_layer", "latent_heatmap", "neighbour_table", "topk_table"]


CELL_CHARS = 8
"""Cell text of the lens grids shows at most this many characters of the token (hover has it whole)."""

GRID_EXTRA = (300, 210)
"""Width and height (px) around a lens grid's cells: axis titles and labels, title, colour bar."""


def _grid_layout(fig: go.Figure, text: list[list[str]], n_rows: int, n_cols: int) -> None:
    """Size a lens grid so that every column fits its widest cell text and every column gets its label (a wide grid is
    wider than the page: the widget scrolls it, the report page too)."""
    size = heatmap_cells(n_rows, n_cols, [t for row in text for t in row], min_col_px=24, extra=GRID_EXTRA)
    fig.update_layout(**size)
    fig.update_xaxes(tickangle=-45, tickfont=dict(size=max(MIN_FONT, 11)))


CLIP_QUANTILE = 0.9
"""KL / entropy colour scales end at this quantile of the cells when the maximum is over twice it (hover keeps the value)."""


def _colour(stat: str, grid: np.ndarray) -> tuple[np.ndarray, dict]:
    """Colour values and colour-axis options for a statistic (rank on a log10 scale; nats clipped at
    ``CLIP_QUANTILE`` when one extreme row would swamp the scale, said in the colour bar)."""
    if stat == "target_rank":
        vals = np.log10(np.clip(grid, 1, None))
        ticks = [v for v in (1, 10, 100, 1000, 10000, 100000) if v <= max(10, grid.max() * 10)]
        return vals, dict(colorscale=SEQUENTIAL + "_r", zmin=0, zmax=max(np.log10(2000), vals.max()),
                          colorbar=dict(title="rank", tickvals=np.log10(ticks).tolist(), ticktext=[str(t) for t in ticks]))
    if stat in ("final_prob", "target_prob"):
        return grid, dict(colorscale=SEQUENTIAL, zmin=0, zmax=1, colorbar=dict(title="p"))
    scale = SEQUENTIAL + "_r" if stat in ("entropy", "kl") else SEQUENTIAL
    top, q = float(grid.max()) if grid.size else 0.0, float(np.quantile(grid, CLIP_QUANTILE)) if grid.size else 0.0
    if q > 0 and top > 2 * q:  # one extreme row (e.g. the embedding's KL of 100+ nats) would flatten the rest
        return grid, dict(colorscale=scale, zmin=0, zmax=q, colorbar=dict(
            title=f"nats<br>clipped at<br>p{round(100 * CLIP_QUANTILE)} = {q:.3g}<br>(max {top:.3g})"))
    return grid, dict(colorscale=scale, zmin=0, colorbar=dict(title="nats"))


def lens_heatmap(result: LensResult, stat: str = "final_prob", *, stride: int = 1, title: str | None = None) -> go.Figure:
    """Layer x position heat-map: cell text = top-1 token, hover = top-k with probabilities and the statistic,
    colour = ``stat`` (final_prob, entropy, kl, target_rank on a log scale, target_prob).

    ``stride`` keeps every stride-th row and always the last (final) one. Rows are drawn bottom-up (final on top).
    """
    grid = result.stat(stat).float().numpy()
    rows = layer_stride(len(result.layers), stride)
    z, opts = _colour(stat, grid[rows])
    x = labels(result.tokens)
    y = [result.layers[r] for r in rows]
    text = [[label(shorten(result.top_tokens[r][p][0], CELL_CHARS)) for p in range(len(result.tokens))] for r in rows]
    hover = []
    for r in rows:
        line = []
        for p in range(len(result.tokens)):
            top = "<br>".join(f"{label(t)}: {pr:.3f}" for t, pr in zip(result.top_tokens[r][p], result.top_probs[r, p].tolist()))
            line.append(f"layer {escape(result.layers[r])}, pos {p} ({label(result.tokens[p])})<br>{STATISTICS[stat][1]}: "
                        f"{grid[r, p]:.4g}<br><b>top-{len(result.top_tokens[r][p])}</b><br>{top}")
        hover.append(line)
    fig = go.Figure(go.Heatmap(z=z, x=x, y=y, text=text, texttemplate="%{text}", customdata=hover,
                               hovertemplate="%{customdata}<extra></extra>", **opts))
    what = "tuned lens" if result.lens == "tuned" else "logit lens"
    target = f", target {result.target!r}" if result.target is not None and stat.startswith("target") else ""
    base_layout(fig, title or f"{what}: {STATISTICS[stat][1]}{target}")
    _grid_layout(fig, text, len(rows), len(x))
    fig.update_xaxes(title="position (input token)")
    fig.update_yaxes(title="residual stream", type="category")
    return fig


def target_line(results: LensResult | dict[str, LensResult], *, pos: int = -1, title: str | None = None) -> go.Figure:
    """Probability of the target token by layer at position ``pos`` (default: the last), one line per lens."""
    if isinstance(results, LensResult):
        results = {results.lens: results}
    fig = go.Figure()
    target = None
    for name, r in results.items():
        if r.target_prob is None:
            raise ValueError(f"result {name!r} has no target: compute it with target='word'")
        target = r.target
        hover = [f"rank {int(k)}" for k in r.target_rank[:, pos].tolist()]
        fig.add_trace(go.Scatter(x=r.layers, y=r.target_prob[:, pos].tolist(), mode="lines+markers", name=escape(name),
                                 text=hover, hovertemplate="%{x}: p=%{y:.4f}, %{text}<extra></extra>"))
    tok = next(iter(results.values())).tokens[pos]
    base_layout(fig, title or f"p({target!r}) by layer after {tok!r}", height=340)
    fig.update_xaxes(title="residual stream", type="category")
    fig.update_yaxes(title="probability", range=[0, 1.02])
    return fig


def kl_by_layer(curves: dict[str, list[float]], layers: list[str], *, title: str = "KL(final || lens) by layer") -> go.Figure:
    """Mean KL to the final distribution per layer, one line per lens (e.g. {"logit": [...], "tuned": [...]})."""
    fig = go.Figure()
    for name, ys in curves.items():
        fig.add_trace(go.Scatter(x=layers, y=list(ys), mode="lines+markers", name=escape(name)))
    base_layout(fig, title, height=340)
    fig.update_xaxes(title="residual stream", type="category")
    fig.update_yaxes(title="nats", rangemode="tozero")
    return fig


def latent_heatmap(result: LatentLensResult, *, stride: int = 1, title: str | None = None) -> go.Figure:
    """LatentLens grid: cell text = top-1 neighbour token, colour = its cosine, hover = top-k with context and source layer."""
    rows = layer_stride(len(result.layers), stride)
    z = result.sims[rows, :, 0].float().numpy()
    text = [[label(shorten(result.neighbours[r][p][0], CELL_CHARS)) for p in range(len(result.tokens))] for r in rows]
    hover = []
    for r in rows:
        line = []
        for p in range(len(result.tokens)):
            items = [f"{label(t)} ({s:.3f}, L{int(sl)}): {escape(snip)}" for t, s, sl, snip in
                     zip(result.neighbours[r][p], result.sims[r, p].tolist(), result.source_layers[r, p].tolist(), result.snippets[r][p])]
            pct = float(result.match_percentile[r, p])
            quality = f"match percentile {pct:.0f}{' (weak: the corpus has nothing like it)' if pct < WEAK else ''}"
            line.append(f"layer {escape(result.labels[r])}, pos {p} ({label(result.tokens[p])}), {quality}<br>" + "<br>".join(items))
        hover.append(line)
    fig = go.Figure(go.Heatmap(z=z, x=labels(result.tokens), y=[result.labels[r] for r in rows], text=text, texttemplate="%{text}",
                               customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                               colorscale=SEQUENTIAL, zmin=max(0.0, float(z.min())), zmax=1, colorbar=dict(title="cosine")))
    base_layout(fig, title or "LatentLens: nearest corpus token (cosine)")
    _grid_layout(fig, text, len(rows), len(result.tokens))
    fig.update_xaxes(title="position (input token)")
    fig.update_yaxes(title="query layer", type="category")
    return fig


def neighbour_table(neighbours: Neighbors | LatentLensResult, query: int = 0, pos: int | None = None, *, title: str = "") -> go.Figure:
    """Table of the neighbours of one query: rank, token, cosine, stored layer, context snippet.

    For a ``Neighbors`` give ``query``; for a ``LatentLensResult`` give the layer row ``query`` and position ``pos``.
    """
    if isinstance(neighbours, LatentLensResult):
        p = -1 if pos is None else pos
        toks, sims = neighbours.neighbours[query][p], neighbours.sims[query, p].tolist()
        lays, snips = neighbours.source_layers[query, p].tolist(), neighbours.snippets[query][p]
        title = title or f"LatentLens neighbours at {neighbours.labels[query]}, pos {p % len(neighbours.tokens)} ({neighbours.tokens[p]!r})"
    else:
        toks, sims = neighbours.tokens[query], neighbours.sims[query].tolist()
        lays, snips = neighbours.layers[query].tolist(), neighbours.snippets[query]
        title = title or f"LatentLens neighbours of query {query}"
    cells = [list(range(1, len(toks) + 1)), [label(t) for t in toks], [f"{s:.3f}" for s in sims], [int(x) for x in lays],
             [escape(s) for s in snips]]
    fig = go.Figure(go.Table(columnwidth=[30, 80, 60, 50, 320], header=dict(values=["#", "token", "cosine", "layer", "context"]),
                             cells=dict(values=cells, align="left")))
    return base_layout(fig, title, height=80 + 30 * len(toks))


def topk_table(result: LensResult, row: int, pos: int) -> go.Figure:
    """Table of the top-k tokens at one lens cell (row ``row`` of ``result.layers``, position ``pos``)."""
    toks = result.top_tokens[row][pos]
    cells = [list(range(1, len(toks) + 1)), [label(t) for t in toks], [f"{p:.4f}" for p in result.top_probs[row, pos].tolist()]]
    fig = go.Figure(go.Table(columnwidth=[30, 100, 80], header=dict(values=["#", "token", "probability"]),
                             cells=dict(values=cells, align="left")))
    return base_layout(fig, f"{result.lens} lens top-{len(toks)} at {result.layers[row]}, pos {pos} ({result.tokens[pos]!r})",
                       height=80 + 30 * len(toks))
