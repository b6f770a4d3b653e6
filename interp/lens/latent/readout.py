"""The LatentLens readout of a prompt: each position's state at chosen layers, described by its corpus neighbours."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.lens.latent.layers import layer_hook, layer_label, layer_states
from interp.lens.latent.search import check_k
from interp.models import model_name, str_tokens, to_tokens
from interp.results import Result

__all__ = ["LatentLensResult", "latent_lens"]


@dataclass(frozen=True)
class LatentLensResult(Result):
    """LatentLens readout of a prompt: [layer, pos, k] neighbours of each position's state at each model layer.

    ``tokens``: the prompt's token strings. ``layers``: the model layers queried, ``labels`` their lens-row names.
    ``sims``, ``rows``, ``source_layers`` (the stored layer each neighbour came from): [layer, pos, k].
    ``neighbours`` / ``snippets``: [layer][pos][k] neighbour token strings and their contexts.
    """

    model: str
    tokens: list[str]
    layers: list[int]
    labels: list[str]
    sims: torch.Tensor
    rows: torch.Tensor
    source_layers: torch.Tensor
    neighbours: list
    snippets: list
    _shapes = {"sims": "layer pos k", "rows": "layer pos k", "source_layers": "layer pos k"}


@torch.no_grad()
def latent_lens(model, prompt: str | torch.Tensor, index, *, layer: int | list[int] | None = None, k: int = 5,
                search_layers: list[int] | None = None, allow_other_model: bool = False) -> LatentLensResult:
    """Describe each position of ``prompt`` at model ``layer`` (an int, a list, or ``None`` for 0..n_layers)
    by its top-``k`` LatentLens neighbours over the index's stored layers (or ``search_layers``).

    ``index``: a ``LatentIndex`` or a ``ShardedIndex`` (``LatentIndex.open``). Returns a ``LatentLensResult``
    ([layer, pos, k]). The index must come from the same model unless ``allow_other_model`` (then only d_model must match).
    """
    check_k(k)
    index._check_model(model, strict=not allow_other_model)
    n = model.cfg.n_layers
    layers = list(range(n + 1)) if layer is None else ([layer] if isinstance(layer, int) else list(layer))
    for x in layers:
        layer_hook(model, x)  # range check
    tokens = to_tokens(model, prompt) if isinstance(prompt, str) else prompt.reshape(1, -1).to(model.cfg.device)
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
    )
