"""The image heatmap of a token attribution over an image prompt: each patch coloured by its visual token's score.

``patch_grid`` lays one target's visual-token scores out as the image's [rows, cols] patch grid
(``TokenAttribution.patch_scores``); ``patch_heatmap`` draws it over the image (embedded as a PNG data-URI by
``interp.viz.vision.image_uri``, so it shows offline), diverging around 0 for signed scores, sequential for scores
that are never negative (gradient norm, L2), with each patch's score and rank among the visual tokens on hover and
an optional outline on a patch known to decide the answer (planted truth).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from interp.attribution.result import TokenAttribution
from interp.errors import InterpError
from interp.models.vision import to_image
from interp.viz.attribution import _method
from interp.viz.common import DIVERGING, SEQUENTIAL, base_layout, label
from interp.viz.vision import image_uri

__all__ = ["patch_grid", "patch_heatmap"]


def patch_grid(attr: TokenAttribution, target: int = -1, image: int = 0) -> torch.Tensor:
    """[rows, cols] float32 scores of the visual tokens of image ``image`` for target ``target`` (NaN for a patch with
    no visual token before the target). ``InterpError`` for a result without images or an image it does not hold."""
    try:
        grids = attr.patch_scores(target)
    except ValueError as e:
        raise InterpError(f"no image heatmap: {e}; attribute an image prompt of a vision-language model") from None
    if not 0 <= image < grids.shape[0]:
        raise InterpError(f"image {image} is not in this attribution: it holds {grids.shape[0]} image(s), numbered from 0")
    return grids[image]


def patch_heatmap(attr: TokenAttribution, image, *, target: int = -1, image_index: int = 0,
                  truth: tuple[int, int] | None = None, opacity: float = 0.55, title: str | None = None) -> go.Figure:
    """The image ``image`` (PIL, array or path: the picture of image ``image_index`` of the prompt) with its patch grid,
    each patch coloured by its visual token's score for target ``target``; hover: patch, score, rank among the image's
    visual tokens. ``truth``: (row, col) of a deciding patch, outlined. Returns the figure."""
    grid = patch_grid(attr, target, image_index)
    pixels = to_image(image, where="patch_heatmap image")
    h, w = pixels.shape[:2]
    n_rows, n_cols = grid.shape
    ch, cw = h / n_rows, w / n_cols
    z = grid.numpy().astype(float)
    finite = z[np.isfinite(z)]
    order = np.argsort(-np.where(np.isfinite(z), z, -np.inf), axis=None)
    rank = np.empty(z.size, dtype=int)
    rank[order] = np.arange(1, z.size + 1)
    rank = rank.reshape(z.shape)
    hover = [[f"patch (row {r}, col {c})<br>score {z[r, c]:+.4g}<br>rank {rank[r, c]} of {finite.size}"
              if np.isfinite(z[r, c]) else f"patch (row {r}, col {c})<br>after the target" for c in range(n_cols)]
             for r in range(n_rows)]
    text = [[str(rank[r, c]) if np.isfinite(z[r, c]) and rank[r, c] <= 3 else "" for c in range(n_cols)] for r in range(n_rows)]
    if finite.size and finite.min() < 0:
        top = float(np.abs(finite).max()) or 1.0
        colour = dict(colorscale=DIVERGING, zmid=0, zmin=-top, zmax=top)
    else:
        hi = float(finite.max()) if finite.size else 1.0
        colour = dict(colorscale=SEQUENTIAL, zmin=0.0, zmax=hi if hi > 0 else 1.0)
    cells = [[None if not np.isfinite(x) else float(x) for x in line] for line in z]  # None, not NaN: strict JSON
    fig = go.Figure()
    fig.add_trace(go.Image(source=image_uri(pixels), x0=0.5, y0=0.5, dx=1, dy=1, hoverinfo="skip", name="image"))
    fig.add_trace(go.Heatmap(z=cells, x=[(c + 0.5) * cw for c in range(n_cols)], y=[(r + 0.5) * ch for r in range(n_rows)],
                             text=text, texttemplate="%{text}", textfont=dict(size=12, color="white"), customdata=hover,
                             hovertemplate="%{customdata}<extra></extra>", opacity=opacity, xgap=1, ygap=1,
                             colorbar=dict(title="score"), name="patches", **colour))
    for r in range(1, n_rows):
        fig.add_shape(type="line", x0=0, x1=w, y0=r * ch, y1=r * ch, line=dict(color="white", width=1))
    for c in range(1, n_cols):
        fig.add_shape(type="line", x0=c * cw, x1=c * cw, y0=0, y1=h, line=dict(color="white", width=1))
    if truth is not None:
        r, c = truth
        if not (0 <= r < n_rows and 0 <= c < n_cols):
            raise InterpError(f"truth patch {truth} is outside the {n_rows} x {n_cols} grid")
        fig.add_shape(type="rect", x0=c * cw, x1=(c + 1) * cw, y0=r * ch, y1=(r + 1) * ch, line=dict(color="black", width=3))
    i = range(attr.n_targets)[target]
    base_layout(fig, title or f"{_method(attr)}: patches for {label(attr.target_tokens[i])} (top 3 numbered)", height=480)
    fig.update_xaxes(range=[0, w], showgrid=False, zeroline=False, showticklabels=False, constrain="domain")
    fig.update_yaxes(range=[h, 0], showgrid=False, zeroline=False, showticklabels=False, scaleanchor="x", constrain="domain")
    return fig
