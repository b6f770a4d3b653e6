"""Figures of visual-token lens results: the image with its patch grid, each patch coloured by a score or a verdict,
its top words on hover; the layers x words table of one patch; the planted-truth rate by layer.

The image travels inside the figure as a PNG data-URI (``image_uri``): the figure, a widget and a saved report show
it with no network access. Every word, title and hover line goes through ``interp.viz.common.escape``.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import torch

from interp.errors import InterpError
from interp.lens.visual import VisualLensResult
from interp.models.vision import to_image
from interp.viz.common import SEQUENTIAL, base_layout, escape, label, visible

__all__ = ["image_uri", "patch_figure", "patch_table", "patch_rows", "rate_by_layer", "VERDICT_COLOURS"]

VERDICT_COLOURS = {"hit": "#2ca02c", "miss": "#d62728"}
"""Patch colours of a verdict: a top word names what the patch shows (hit), or none does (miss)."""
_SCORE_NAME = {"logit": "probability", "embedding": "cosine", "latent": "cosine"}


def image_uri(image) -> str:
    """``data:image/png;base64,...`` of ``image`` (a PIL image, an [H, W, 3] / [H, W] array or a ``pathlib.Path``)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_image(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _row(result: VisualLensResult, layer: int | None) -> int:
    """Index into ``result.layers`` of model layer ``layer`` (None: the last layer read)."""
    if layer is None:
        return len(result.layers) - 1
    if layer not in result.layers:
        raise InterpError(f"layer {layer} was not read; this result holds layers {result.layers}")
    return result.layers.index(layer)


def _tokens_of(result: VisualLensResult, image: int) -> list[int]:
    """Indices (into the visual tokens) of the tokens of ``image``."""
    picked = (result.patches[:, 0] == image).nonzero().flatten().tolist()
    if not picked:
        n = int(result.patches[:, 0].max()) + 1 if result.patches.numel() else 0
        raise InterpError(f"image {image} is not in this result: it holds {n} image(s), numbered from 0")
    return picked


def _per_token(values, result: VisualLensResult, row: int, what: str) -> torch.Tensor:
    """``values`` ([vis] or [layer, vis]) as a [vis] tensor at layer row ``row``."""
    t = torch.as_tensor(values)
    n = result.visual.numel()
    if t.ndim == 2 and t.shape == (len(result.layers), n):
        t = t[row]
    if t.shape != (n,):
        raise InterpError(f"{what} must be [vis] or [layer, vis] = [{len(result.layers)}, {n}], got {list(t.shape)}")
    return t


def patch_figure(result: VisualLensResult, image, *, layer: int | None = None, values=None, verdict=None, keep=None,
                 shows: list[str] | None = None, image_index: int = 0, opacity: float = 0.45, title: str | None = None) -> go.Figure:
    """The image with its patch grid, one coloured cell per patch of image ``image_index``, at model layer ``layer``
    (default: the last read). Colour: ``verdict`` ([vis] or [layer, vis] bool, e.g. ``patch_hits``) as hit / miss,
    patches outside ``keep`` ([vis] bool, e.g. ``shown``) left clear; else ``values`` ([vis] or [layer, vis] scores);
    else the top-1 score. Cell text: the top-1 word; hover: the patch, its top words with scores and ``shows[v]``
    (what token ``v``'s patch shows, when known). ``image``: the picture shown (PIL, array or path), embedded as a PNG
    data-URI; the grid is stretched over it. Returns the figure."""
    row = _row(result, layer)
    vis = _tokens_of(result, image_index)
    pixels = to_image(image, where="patch_figure image")
    h, w = pixels.shape[:2]
    n_rows, n_cols = result.grid
    ch, cw = h / n_rows, w / n_cols
    grid_words = [[""] * n_cols for _ in range(n_rows)]
    hover = [[""] * n_cols for _ in range(n_rows)]
    z = np.full((n_rows, n_cols), np.nan)
    if verdict is not None:
        judged = _per_token(verdict, result, row, "verdict").bool()
        kept = torch.ones_like(judged) if keep is None else _per_token(keep, result, row, "keep").bool()
    else:
        scores = result.scores[row, :, 0] if values is None else _per_token(values, result, row, "values").float()
    what = _SCORE_NAME.get(result.lens, "score")
    for v in vis:
        _, r, c = result.patches[v].tolist()
        words = result.words[row][v]
        grid_words[r][c] = label(words[0]) if words else ""
        top = "<br>".join(f"{i + 1}. {label(t)} ({s:.3f})" for i, (t, s) in enumerate(zip(words, result.scores[row, v].tolist())))
        lines = [f"patch (row {r}, col {c}), token {int(result.visual[v])}", f"{escape(result.lens)} lens, layer {result.layers[row]}"]
        if shows is not None:
            lines.append(f"shows: {escape(shows[v])}")
        if verdict is not None:
            z[r, c] = float(judged[v]) if kept[v] else np.nan
            lines.append("verdict: " + (("hit" if judged[v] else "miss") if kept[v] else "not judged"))
        else:
            z[r, c] = float(scores[v])
            lines.append(f"colour: {float(scores[v]):.4g}")
        hover[r][c] = "<br>".join(lines) + f"<br><b>top-{len(words)} ({what})</b><br>{top}"
    xs = [(c + 0.5) * cw for c in range(n_cols)]
    ys = [(r + 0.5) * ch for r in range(n_rows)]
    if verdict is not None:
        colour = dict(colorscale=[[0, VERDICT_COLOURS["miss"]], [0.5, VERDICT_COLOURS["miss"]], [0.5, VERDICT_COLOURS["hit"]],
                                  [1, VERDICT_COLOURS["hit"]]], zmin=0, zmax=1,
                      colorbar=dict(title="verdict", tickvals=[0.25, 0.75], ticktext=["miss", "hit"]))
    else:
        finite = z[np.isfinite(z)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        colour = dict(colorscale=SEQUENTIAL, zmin=lo, zmax=hi if hi > lo else lo + 1e-6,
                      colorbar=dict(title=escape("top-1 " + what if values is None else "score")))
    fig = go.Figure()
    fig.add_trace(go.Image(source=image_uri(pixels), x0=0.5, y0=0.5, dx=1, dy=1, hoverinfo="skip", name="image"))
    cells = [[None if np.isnan(x) else float(x) for x in line] for line in z]  # None, not NaN: widget messages are strict JSON
    fig.add_trace(go.Heatmap(z=cells, x=xs, y=ys, text=grid_words, texttemplate="%{text}", textfont=dict(size=11, color="white"),
                             customdata=hover, hovertemplate="%{customdata}<extra></extra>", opacity=opacity, xgap=1, ygap=1,
                             name="patches", **colour))
    for r in range(1, n_rows):
        fig.add_shape(type="line", x0=0, x1=w, y0=r * ch, y1=r * ch, line=dict(color="white", width=1))
    for c in range(1, n_cols):
        fig.add_shape(type="line", x0=c * cw, x1=c * cw, y0=0, y1=h, line=dict(color="white", width=1))
    how = "verdict" if verdict is not None else ("score" if values is not None else f"top-1 {what}")
    base_layout(fig, title or f"{result.lens} lens at layer {result.layers[row]}: patches coloured by {how}", height=480)
    fig.update_xaxes(range=[0, w], showgrid=False, zeroline=False, showticklabels=False, constrain="domain")
    fig.update_yaxes(range=[h, 0], showgrid=False, zeroline=False, showticklabels=False, scaleanchor="x", constrain="domain")
    return fig


def patch_rows(result: VisualLensResult, row: int, col: int, image: int = 0, *, mark=None) -> list[list[str]]:
    """One row per layer read: ``[layer, "word (score)", ...]`` for the top words of patch (``row``, ``col``) of
    ``image`` (plain text, not escaped: for tables that escape). ``mark(word) -> bool``: words it accepts get a "✓"."""
    hit = ((result.patches[:, 0] == image) & (result.patches[:, 1] == row) & (result.patches[:, 2] == col)).nonzero()
    if len(hit) == 0:
        raise InterpError(f"no visual token shows patch ({row}, {col}) of image {image}; the grid is {result.grid}")
    v = int(hit[0])
    out = []
    for li, layer in enumerate(result.layers):
        cells = [f"{visible(t)}{' ✓' if mark is not None and mark(t) else ''} ({s:.3f})"
                 for t, s in zip(result.words[li][v], result.scores[li, v].tolist())]
        out.append([str(layer), *cells])
    return out


def patch_table(result: VisualLensResult, row: int, col: int, image: int = 0, *, mark=None, title: str = "") -> go.Figure:
    """Table of patch (``row``, ``col``)'s top words at every layer read: one row per layer, one column per rank."""
    rows = patch_rows(result, row, col, image, mark=mark)
    k = len(rows[0]) - 1 if rows else 0
    columns = list(zip(*rows)) if rows else [[] for _ in range(k + 1)]
    cells = [list(columns[0])] + [[escape(x) for x in colm] for colm in columns[1:]]
    fig = go.Figure(go.Table(columnwidth=[50] + [110] * k, header=dict(values=["layer"] + [f"#{i + 1}" for i in range(k)]),
                             cells=dict(values=cells, align="left")))
    return base_layout(fig, title or f"{result.lens} lens: top words of patch (row {row}, col {col}) by layer",
                       height=90 + 28 * len(rows))


def rate_by_layer(rates: dict[str, tuple[list[int], list[float], list[float]]], *, floor: float | None = None,
                  title: str = "Planted-truth rate by layer") -> go.Figure:
    """Share of object patches whose top words name what they show, by layer, one line per lens. ``rates``:
    {lens: (layers, rates, standard errors)}; ``floor``: the random-word rate, drawn as a dashed line."""
    fig = go.Figure()
    for name, (layers, ys, ses) in rates.items():
        fig.add_trace(go.Scatter(x=list(layers), y=list(ys), error_y=dict(type="data", array=list(ses), visible=True),
                                 mode="lines+markers", name=escape(name)))
    if floor is not None:
        fig.add_hline(y=floor, line_dash="dash", line_color="grey", annotation_text="random words")
    base_layout(fig, title, height=360)
    fig.update_xaxes(title="layer (0 = connector output)", dtick=1)
    fig.update_yaxes(title="share of object patches", range=[0, 1.02])
    return fig
