"""The LatentLens readout of a prompt: each position's state at chosen layers, described by its corpus neighbours."""

from __future__ import annotations

import html
from dataclasses import dataclass

import torch

from interp.batch import BatchResult, is_batch, run_batch
from interp.errors import InterpError
from interp.lens.latent.layers import layer_hook, layer_label, layer_states
from interp.lens.latent.quality import WEAK, match_percentile
from interp.lens.latent.search import check_k
from interp.models import model_name, str_tokens
from interp.results import Result
from interp.validate import prompt_tokens

__all__ = ["LatentLensResult", "latent_lens"]


@dataclass(frozen=True)
class LatentLensResult(Result):
    """LatentLens readout of a prompt: [layer, pos, k] neighbours of each position's state at each model layer."""

    model: str
    "name of the model"
    tokens: list[str]
    "[pos] the prompt's token strings"
    layers: list[int]
    "[layer] the model layers queried"
    labels: list[str]
    "[layer] their lens-row names"
    sims: torch.Tensor
    "[layer, pos, k] cosine similarity of each neighbour"
    rows: torch.Tensor
    "[layer, pos, k] its row in the index"
    source_layers: torch.Tensor
    "[layer, pos, k] the stored layer each neighbour came from"
    neighbours: list
    "[layer, pos, k] neighbour token strings (nested lists)"
    snippets: list
    "[layer, pos, k] their corpus contexts (the token in ⟨ ⟩)"
    match_percentile: torch.Tensor
    """[layer, pos] float32 in 0..100: the percentage of corpus tokens, read at the same model layer and searched the
    same way, whose nearest other corpus token is at most as close as this top-1 (``interp.lens.latent.quality``).
    About 50: as good a match as a typical corpus token gets; below 5 (``quality.WEAK``): the corpus holds nothing like
    this state, so the neighbours are not a description. NaN when the index has fewer than 2 rows."""
    _shapes = {"sims": "layer pos k", "rows": "layer pos k", "source_layers": "layer pos k", "match_percentile": "layer pos",
               "tokens": "pos", "layers": "layer", "labels": "layer", "neighbours": "layer pos k",
               "snippets": "layer pos k"}

    def weak(self) -> torch.Tensor:
        """[layer, pos] bool: True where the top-1 match percentile is below ``WEAK`` (a match not to be read)."""
        return self.match_percentile < WEAK

    def _repr_html_(self) -> str:
        """The summary table, then a grid (up to 8 query layers x positions) of top-1 neighbours with their match
        percentiles; weak matches (below ``WEAK``) are greyed and struck through."""
        rows = sorted({round(i * (len(self.layers) - 1) / 7) for i in range(8)}) if len(self.layers) > 8 else range(len(self.layers))
        esc = html.escape
        head = "".join(f"<th>{esc(repr(t))}</th>" for t in self.tokens)
        body = []
        for r in rows:
            cells = []
            for p in range(len(self.tokens)):
                pct = float(self.match_percentile[r, p])
                text = f"{esc(repr(self.neighbours[r][p][0]))} {float(self.sims[r, p, 0]):.2f} <small>p{pct:.0f}</small>"
                style = ' style="color:#999;text-decoration:line-through"' if pct < WEAK else ""
                cells.append(f"<td{style}>{text}</td>")
            body.append(f"<tr><th>{esc(self.labels[r])}</th>{''.join(cells)}</tr>")
        grid = (f"<div><small>top-1 neighbour, cosine, match percentile (p: share of the index's own nearest-neighbour "
                f"cosines at or below it; struck through below {WEAK:g})</small><table><tr><th></th>{head}</tr>"
                f"{''.join(body)}</table></div>")
        return super()._repr_html_() + grid


@torch.no_grad()
def latent_lens(model, prompt: str | torch.Tensor, index, *, layer: int | list[int] | None = None, k: int = 5,
                search_layers: list[int] | None = None, allow_other_model: bool = False) -> LatentLensResult | BatchResult:
    """Describe each position of ``prompt`` at model ``layer`` (an int, a list, or ``None`` for 0..n_layers)
    by its top-``k`` LatentLens neighbours over the index's stored layers (or ``search_layers``).

    ``index``: a ``LatentIndex`` or a ``ShardedIndex`` (``LatentIndex.open``). Returns a ``LatentLensResult``
    ([layer, pos, k], with a [layer, pos] match percentile of each top-1). The index must come from the same model
    unless ``allow_other_model`` (then only d_model must match). A list of prompts (``interp.batch.is_batch``) returns a
    ``BatchResult`` of one ``LatentLensResult`` per prompt.
    """
    if is_batch(prompt):  # a list of prompts: each run alone, one bar (interp.batch)
        return run_batch(latent_lens, model, prompt, index=index, layer=layer, k=k, search_layers=search_layers,
                         allow_other_model=allow_other_model)
    check_k(k)
    index._check_model(model, strict=not allow_other_model)
    n = model.cfg.n_layers
    if layer is None:
        layers = list(range(n + 1))
    elif isinstance(layer, (list, tuple)):
        layers = list(layer)
    else:
        layers = [layer]
    if not layers:
        raise InterpError("layer is an empty list: give a layer number, a list of them, or None for every layer")
    for x in layers:
        layer_hook(model, x)  # a whole number in range, else InterpError
    layers = [int(x) for x in layers]
    tokens = prompt_tokens(model, prompt)
    states = layer_states(model, tokens, layers)
    q = torch.cat([states[x][0] for x in layers])  # [layer * pos, d]
    nb = index.search(q, k, search_layers)
    n_l, n_p = len(layers), tokens.shape[1]
    kk = nb.sims.shape[1]
    fold = lambda xs: [xs[i * n_p : (i + 1) * n_p] for i in range(n_l)]
    return LatentLensResult(
        model=model_name(model), tokens=str_tokens(model, tokens), layers=layers, labels=[layer_label(x, n) for x in layers],
        sims=nb.sims.reshape(n_l, n_p, kk), rows=nb.rows.reshape(n_l, n_p, kk), source_layers=nb.layers.reshape(n_l, n_p, kk),
        neighbours=fold(nb.tokens), snippets=fold(nb.snippets),
        match_percentile=match_percentile(model, index, layers, nb.sims[:, 0].reshape(n_l, n_p),
                                          nb.layers[:, 0].reshape(n_l, n_p), search_layers),
    )
