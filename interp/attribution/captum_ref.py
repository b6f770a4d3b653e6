"""The peer reference for embedding IG: captum's ``LayerIntegratedGradients`` on the raw token embedding.

``captum_layer_ig`` runs captum's own layer IG (its interpolation, its quadrature, its gradient plumbing) on the
output of the model's token embedding (``embed.hook_out``, the layer ``interp.attribution.ig`` integrates over), for
the same objective and baseline as ``attribute(..., method="integrated_gradients")``, so the two can be compared
number for number (``tests/unit/test_attribution_captum.py``, ``tests/real/test_attribution_captum_real.py``).

Captum builds a layer baseline by running the model on baseline *token ids*. The zero baselines are not the embedding
of any token, so the baseline ids put an unused token id at every position that should be zero and a forward hook,
registered on the layer before captum's own, zeroes the embedding there (captum then records the zeros as the
layer's baseline). The "pad" baseline needs no hook: its ids are BOS (kept) then the pad token.
"""

from __future__ import annotations

import torch

from interp.attribution.answers import answer_logprob_objective
from interp.attribution.baselines import embed_hook_name, pad_id, resolve_baseline
from interp.attribution.methods import TargetObjective
from interp.attribution.reduction import reduce_tokens
from interp.errors import InterpError
from interp.models import model_device

__all__ = ["captum_layer_ig"]


def captum_layer_ig(model, tokens: torch.Tensor, target: int | list[int], *, n_steps: int = 50, baseline: str = "auto",
                    objective: str = "prob", reduction: str | None = "sum", method: str = "gausslegendre") -> torch.Tensor:
    """captum ``LayerIntegratedGradients`` of the ``objective`` ("prob", "logprob", "logit") of token ``target``
    after ``tokens`` [L] (the prompt, BOS included when the model uses one), over the token embeddings, from
    ``baseline`` ("auto", "zero", "zero_keep_bos", "pad": as ``ig.resolve_baseline``) with captum's rule ``method``
    and ``n_steps`` points. ``objective="answer"``: ``target`` is an answer's ids [A] and the objective its summed
    log-probability after ``tokens`` (``objectives.Answer``), integrated over prompt and answer. Returns [L] ([L + A]
    for an answer) float32 per-token scores reduced by ``reduction`` ("sum", "l2", "abs_sum"), or with
    ``reduction=None`` the per-dimension attributions [L, d_model]."""
    from captum.attr import LayerIntegratedGradients

    if tokens.ndim != 1 or tokens.numel() == 0:
        raise InterpError(f"captum_layer_ig needs one non-empty sequence of token ids [L], got shape {tuple(tokens.shape)}")
    kind = resolve_baseline(model, baseline)
    layer = model.hook_dict[embed_hook_name(model)]
    if objective == "answer":
        answer = torch.tensor([int(t) for t in (target if isinstance(target, (list, tuple)) else [target])])
        ids = torch.cat([tokens.cpu(), answer.to(tokens.dtype)]).to(model_device(model))[None]
        fn = answer_logprob_objective(tokens.numel())
    else:
        ids = tokens.to(model_device(model))[None]
        fn = TargetObjective([ids.shape[1]], [int(target)], objective)
    used = set(ids[0].tolist())
    zero_id = next((i for i in range(int(model.cfg.d_vocab) - 1, -1, -1) if i not in used), None)
    if zero_id is None:
        raise InterpError("captum_layer_ig needs a token id the prompt does not use, to mark the zero baseline")
    base = ids.clone()
    first = 0 if kind == "zero" else 1  # "zero_keep_bos" and "pad" keep position 0
    base[:, first:] = pad_id(model) if kind == "pad" else zero_id
    current: dict[str, torch.Tensor] = {}

    def zero_marked(module, inputs, out):  # noqa: ARG001
        if kind == "pad":
            return out
        return out.masked_fill((current["ids"] == zero_id)[..., None].to(out.device), 0.0)

    def forward(x: torch.Tensor) -> torch.Tensor:
        current["ids"] = x
        return fn(model(x), x)

    handle = layer.register_forward_hook(zero_marked)  # before captum's hook, so captum records the zeroed output
    grads_were = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        attr = LayerIntegratedGradients(forward, layer).attribute(ids, baselines=base, n_steps=n_steps, method=method)
    finally:
        handle.remove()
        for p, g in zip(model.parameters(), grads_were):
            p.requires_grad_(g)
    attr = attr[0].detach().float().cpu()
    return attr if reduction is None else reduce_tokens(attr, reduction)
