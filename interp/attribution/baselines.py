"""IG baselines over the token embeddings: where the straight-line path starts.

Baselines (see ../shared/research/grains.md section 4, gotcha 2):

- ``"zero"``: every token embedding is zero (the official GrAInS choice). On models with learned position
  embeddings (GPT-2) the residual stream at the baseline is the position embedding and completeness holds.
  On rotary, pre-norm, bias-free models (Llama) the residual stream is exactly 0 at the baseline and the
  normalisation makes f jump there, so completeness fails badly; the error is reported, never hidden.
- ``"zero_keep_bos"``: position 0 keeps its embedding (the BOS token when the model prepends one), every
  other position is zero. Position 0 then gets exactly zero attribution.
- ``"pad"``: every position after 0 gets the embedding of the tokenizer's pad token (eos when there is no
  pad token); position 0 keeps its own embedding.
- ``"auto"``: ``"zero"`` for models with learned position embeddings, else ``"zero_keep_bos"``.
"""

from __future__ import annotations

import torch

from interp.errors import InterpError
from interp.models import special_token_id

__all__ = ["BASELINES", "baseline_embeddings", "embed_hook_name", "embeddings", "has_learned_positions", "pad_id",
           "resolve_baseline"]

BASELINES = ("auto", "zero", "zero_keep_bos", "pad")


def embed_hook_name(model) -> str:
    """The hook of the raw token embedding: ``embed.hook_out`` (``hook_embed`` may sit after an embedding LayerNorm)."""
    return "embed.hook_out" if "embed.hook_out" in model.hook_dict else "hook_embed"


def has_learned_positions(model) -> bool:
    """True when the model adds learned (absolute) position embeddings to the token embeddings (GPT-2 style)."""
    kind = getattr(model.cfg, "positional_embedding_type", None)
    if kind is not None:
        return kind == "standard"
    return "pos_embed.hook_out" in model.hook_dict


def resolve_baseline(model, baseline: str) -> str:
    """Map ``"auto"`` to ``"zero"`` (learned position embeddings) or ``"zero_keep_bos"``; check the name."""
    if baseline not in BASELINES:
        raise InterpError(f"unknown IG baseline {baseline!r}; choose one of {', '.join(BASELINES)}")
    if baseline == "auto":
        return "zero" if has_learned_positions(model) else "zero_keep_bos"
    return baseline


def pad_id(model) -> int:
    """The token id of the "pad" baseline: the pad token, else eos; ``InterpError`` when there is neither."""
    value = special_token_id(model, ("pad_token_id", "eos_token_id"))
    if value is not None:
        return value
    raise InterpError("the 'pad' IG baseline needs a tokenizer with a pad or eos token; use baseline='zero_keep_bos'")


@torch.no_grad()
def embeddings(model, tokens: torch.Tensor, hook: str) -> torch.Tensor:
    """[batch, pos, d_model] raw token embeddings of ``tokens`` (one forward, only this hook cached)."""
    store: dict[str, torch.Tensor] = {}

    def grab(act, hook):  # noqa: ARG001
        store["e"] = act.detach().clone()
        raise _Stop

    try:
        model.run_with_hooks(tokens, fwd_hooks=[(hook, grab)])
    except _Stop:
        pass
    return store["e"]


class _Stop(Exception):
    pass


def baseline_embeddings(model, tokens: torch.Tensor, emb: torch.Tensor, kind: str, hook: str) -> torch.Tensor:
    """[batch, pos, d_model] the embeddings of baseline ``kind`` (a resolved name) for ``tokens`` and their ``emb``."""
    base = torch.zeros_like(emb)
    if kind in ("zero_keep_bos", "pad"):
        base[:, 0] = emb[:, 0]
    if kind == "pad":
        pad = torch.full_like(tokens[:, :1], pad_id(model))
        base[:, 1:] = embeddings(model, pad, hook)[:, :1]
    return base
