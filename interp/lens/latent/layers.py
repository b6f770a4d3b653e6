"""Which hidden states LatentLens stores: layer numbering, the hook of a layer, and the states of a batch.

Layer numbering follows Hugging Face ``hidden_states``: layer ``l < n_layers`` is ``blocks.{l}.hook_resid_pre``
(the output of block ``l - 1``) and layer ``n_layers`` is ``blocks.{n_layers-1}.hook_resid_post`` (before
the final norm).
"""

from __future__ import annotations

import torch

from interp.errors import InterpError
from interp.validate import check_int

__all__ = ["default_layers", "layer_hook", "layer_states", "layer_label", "prefix_hashes"]

_HASH_MUL = 0x100000001B3  # FNV-64 prime; int64 products wrap, which is what a hash wants


def default_layers(n_layers: int) -> list[int]:
    """LatentLens' stored layers: {1, 2, 4, 8, 16, 24, n-2, n-1} within 1..n-1 (``[n_layers]`` for a 1-layer model)."""
    layers = sorted({x for x in (1, 2, 4, 8, 16, 24, n_layers - 2, n_layers - 1) if 1 <= x < n_layers})
    return layers or [n_layers]


def layer_hook(model, layer: int) -> str:
    """Hook name of model layer ``layer`` in 0..n_layers (see the module docstring): ``blocks.0.hook_resid_pre`` for 0,
    else ``blocks.{layer-1}.hook_resid_post`` (the same tensor as ``blocks.{layer}.hook_resid_pre``)."""
    n = model.cfg.n_layers
    layer = check_int("layer", layer)  # 1.5 or "2" is an InterpError here, not a KeyError from a hook name
    if not 0 <= layer <= n:
        raise InterpError(f"layer {layer} is out of range: this model has layers 0..{n} (0 = embeddings, {n} = last block's output)")
    return "blocks.0.hook_resid_pre" if layer == 0 else f"blocks.{layer - 1}.hook_resid_post"


@torch.no_grad()
def layer_states(model, ids: torch.Tensor, layers: list[int], **forward) -> dict[int, torch.Tensor]:
    """Residual states {layer: [batch, pos, d_model]} of ids [batch, pos] (``forward``: extra model inputs, e.g. a VLM's
    ``pixel_values``, moved to the model's device); blocks above the highest layer are not run."""
    names = {layer: layer_hook(model, layer) for layer in layers}
    want = set(names.values())
    top = max(layers)
    stop = max(1, top) if top < model.cfg.n_layers else None
    dev = model.cfg.device
    _, cache = model.run_with_cache(ids.to(dev), names_filter=lambda n: n in want, stop_at_layer=stop,
                                    **{k: v.to(dev) for k, v in forward.items()})
    return {layer: cache[name] for layer, name in names.items()}


def layer_label(layer: int, n_layers: int) -> str:
    """The logit-lens row label of a model layer: "3_pre" or "final_post"."""
    return f"{layer}_pre" if layer < n_layers else "final_post"


def prefix_hashes(ids: torch.Tensor) -> torch.Tensor:
    """[batch, pos] int64 hash of each prefix ``ids[b, :pos+1]`` (polynomial, wrapping), equal for equal prefixes."""
    h = torch.empty_like(ids, dtype=torch.int64)
    acc = torch.zeros(ids.shape[0], dtype=torch.int64)
    for t in range(ids.shape[1]):  # a loop over positions, vectorised over the batch
        acc = acc * _HASH_MUL + ids[:, t].long() + 1
        h[:, t] = acc
    return h
