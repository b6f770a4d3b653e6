"""Per-token reduction: how a method that scores each embedding dimension turns them into one score per token.

Gradient methods and Integrated Gradients produce a vector per source token (one entry per d_model dimension);
what the reader sees is one number per token. The choice decides rankings (a deciding token may get a large *negative*
signed sum, which the L2 norm ranks first; measured per method and reduction in bench/results/attribution_grid.md):

- ``"sum"``: the signed sum over d_model. For IG it is the share of f(x) - f(baseline) the token carries
  (completeness holds for it); the default of IG and input x gradient.
- ``"l2"``: the L2 norm over d_model (non-negative: how much, not which way); the default of gradient norm.
- ``"abs_sum"``: the sum of absolute values over d_model (non-negative, the L1 norm).

A method's completeness check always uses the signed sum, whatever the reduction shown.
"""

from __future__ import annotations

import torch

from interp.errors import InterpError

__all__ = ["REDUCTIONS", "check_reduction", "reduce_tokens", "reduction_label"]

REDUCTIONS = ("sum", "l2", "abs_sum")
_LABELS = {"sum": "signed sum", "l2": "L2 norm", "abs_sum": "sum of |.|"}


def check_reduction(reduction: object) -> str:
    """Return ``reduction`` when it is one of ``REDUCTIONS``; else raise ``InterpError`` naming it and the choices."""
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise InterpError(f"unknown per-token reduction {reduction!r:.60}; choose one of {', '.join(REDUCTIONS)}")
    return reduction


def reduce_tokens(x: torch.Tensor, reduction: str) -> torch.Tensor:
    """[..., d] -> [...]: ``x`` reduced over its last dimension by ``reduction`` (same dtype)."""
    check_reduction(reduction)
    if reduction == "sum":
        return x.sum(-1)
    if reduction == "l2":
        return x.norm(dim=-1)
    return x.abs().sum(-1)


def reduction_label(reduction: str | None) -> str:
    """Words for a view: "signed sum", "L2 norm", "sum of |.|"; "" for None (a method that scores whole tokens)."""
    return _LABELS.get(reduction, reduction or "")
