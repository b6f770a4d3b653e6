"""Per-position view of one prompt: attention patterns, value norms, residual norms and largest activations.

This is the single-prompt companion of ``scan`` (which only keeps corpus statistics): it is what the figures
of ``interp.viz.extreme`` and the ``SinkExplorer`` widget draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.batch import BatchResult, is_batch, run_batch
from interp.extreme.scan import _kv_index, head_w_o
from interp.models import model_name, str_tokens, to_tokens
from interp.results import Result


@dataclass(frozen=True)
class PromptView(Result):
    """Everything extreme-token related about one prompt, per position."""

    model: str
    "name of the model"
    tokens: list
    "[pos] token strings (first token included)"
    patterns: torch.Tensor
    "[layer, head, pos, pos] attention patterns (query, key)"
    value_norms: torch.Tensor
    "[layer, head, pos] ||W_O^h v_i||"
    resid_norms: torch.Tensor
    "[layer, pos] ||resid_post_i||"
    absmax: torch.Tensor
    "[layer, pos] largest |activation| of resid_post over dimensions"
    argmax_dim: torch.Tensor
    "[layer, pos] the dimension where it occurs"
    median_abs: torch.Tensor
    "[layer] median |activation| of resid_post over all positions and dimensions"
    _shapes = {"patterns": "layer head pos pos", "value_norms": "layer head pos", "resid_norms": "layer pos",
               "absmax": "layer pos", "argmax_dim": "layer pos", "median_abs": "layer", "tokens": "pos"}


@torch.no_grad()
def inspect_prompt(model, prompt: str | torch.Tensor | list) -> PromptView | BatchResult:
    """Run ``prompt`` once and return its ``PromptView``. ``prompt``: a string (BOS prepended), 1-D ids, or for a
    vision-language model a list of text and image parts (``interp.models.vision``); visual tokens are labelled
    ``<img R,C>`` by the patch (row, column) they show (``<img I:R,C>`` for image I > 0). A list of prompts
    (``interp.batch.is_batch``) returns a ``BatchResult`` of one ``PromptView`` per prompt."""
    if is_batch(prompt):  # a list of prompts: each run alone, one bar (interp.batch)
        return run_batch(inspect_prompt, model, prompt)
    from interp.models.vision import prompt_inputs

    ids, kw, labels = prompt_inputs(model, prompt, lambda p: to_tokens(model, p) if isinstance(p, str) else
                                    torch.as_tensor(p).reshape(1, -1).to(model.cfg.device))
    n_l = model.cfg.n_layers
    names = lambda n: n.endswith(("hook_pattern", "attn.hook_v", "hook_resid_post"))  # noqa: E731
    _, cache = model.run_with_cache(ids, names_filter=names, **kw)
    kv = _kv_index(model)
    pats, vals, res = [], [], []
    for layer in range(n_l):
        pats.append(cache[f"blocks.{layer}.attn.hook_pattern"][0].float().cpu())
        key = f"blocks.{layer}.attn.hook_v"
        if key in cache:
            v = cache[key][0][:, kv.to(ids.device)]  # [pos, head, d_head]
            vals.append(torch.einsum("phd,hdm->hpm", v, head_w_o(model, layer).to(v)).norm(dim=-1).float().cpu())
        else:
            vals.append(torch.full(pats[-1].shape[:2], float("nan")))
        res.append(cache[f"blocks.{layer}.hook_resid_post"][0].float().cpu())
    h = torch.stack(res)  # [layer, pos, d]
    absmax, argmax = h.abs().max(-1)
    return PromptView(
        model=model_name(model), tokens=[labels.get(i, t) for i, t in enumerate(str_tokens(model, ids))],
        patterns=torch.stack(pats), value_norms=torch.stack(vals),
        resid_norms=h.norm(dim=-1), absmax=absmax, argmax_dim=argmax, median_abs=h.abs().flatten(1).median(-1).values,
    )
