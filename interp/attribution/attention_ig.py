"""Integrated Gradients over attention gates: how much the target depends on each position being *read*.

Each source position t gets a gate g_t that multiplies every attention weight onto it (all layers, all heads, all
queries; ``blocks.{l}.attn.hook_pattern[..., t]``, not renormalised, as in Hao et al. 2021, "Self-attention
attribution"). The path runs from g = 0 (no position is read by attention; the first position stays at 1 when the
model prepends BOS, the attention sink every row leans on) to g = 1 (the model as it is), and the attribution of t is
∫ ∂f/∂g_t dα along it, integrated by the same adaptive, completeness-checked rule as embedding IG
(``quadrature.adaptive_simpson``). The scores sum to f(x) − f(nothing read), up to the stored completeness error.

What it measures: the positions whose being read by attention the target depends on. It helps where embedding IG's
path (embeddings scaled up from 0) leaves the target's probability near 0 until late and so misses a copied source
(induction), and it credits template words that every position reads alongside a fact's subject; how often it finds
the deciding tokens on real models is measured in bench/results/attribution_real.md (4b, 4d) and
attribution_grid.md. It does not see a position's effect on its own residual stream, so the last prompt token is
credited only through its self-attention.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from interp.attribution.ig import IGOutput, adaptive_path_ig, check_ig_input, in_float32, points_budget
from interp.attribution.settings import AttentionIGSettings
from interp.errors import InterpError
from interp.models import model_device

__all__ = ["attention_gate_ig", "pattern_hooks"]


def pattern_hooks(model) -> list[str]:
    """The attention-pattern hooks ``blocks.{l}.attn.hook_pattern`` [batch, head, query, key], one per layer."""
    names = [f"blocks.{layer}.attn.hook_pattern" for layer in range(model.cfg.n_layers)]
    missing = [n for n in names if n not in model.hook_dict]
    if missing:
        raise InterpError(f"attention-gate IG needs the hook {missing[0]}, which this model does not have")
    return names


def attention_gate_ig(model, tokens: torch.Tensor, objective: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                      settings: AttentionIGSettings | None = None, *,
                      progress: Callable[[int, int], None] | None = None, **changes) -> IGOutput:
    """IG over the attention gates of ``tokens`` [batch, pos] (module docstring).

    ``objective(logits, tokens) -> [rows]`` as for ``ig.embedding_ig`` (step-major rows; an int ``keep`` attribute
    limits the logits computed). ``settings`` (default ``AttentionIGSettings()``) with ``changes`` (its fields, each
    checked): ``keep_bos``: position 0's gate stays 1 (its attribution is then exactly 0; the caller decides whether
    position 0 is a BOS, as ``methods.attention_ig`` does), otherwise every position starts at 0; ``max_points``: the
    most path points (each one forward and backward pass per row), the rule stopping earlier when the completeness
    error is below ``tolerance``; ``internal_batch_size``: sequences per pass (None: by activation memory,
    ``ig.auto_batch_size``), the result does not depend on it; ``upcast``: a 16-bit model runs this call in float32.
    ``progress(points so far, budget)`` after each pass.
    Returns ``IGOutput``: ``attributions`` [batch, pos] (float32), f at the input and at all gates 0, the points used
    (``n_steps``), and ``baseline`` "attention_off" (or "attention_off_keep_first").
    """
    s = (settings or AttentionIGSettings()).replace(**changes) if changes else (settings or AttentionIGSettings())
    if s.max_steps is not None:
        s = s.replace(max_points=points_budget(s.max_points, None, s.max_steps, "attention_gate_ig"), max_steps=None)
    keep_first = s.keep_bos
    check_ig_input(tokens, s.internal_batch_size)
    names = pattern_hooks(model)
    with in_float32(model) if s.upcast else contextlib.nullcontext():
        device = model_device(model)
        tokens = tokens.to(device)
        n, t = tokens.shape
        moving = torch.ones(t, dtype=torch.float64)  # d gate / d alpha
        if keep_first:
            moving[0] = 0.0

        def point(a: torch.Tensor):
            k = a.shape[0]
            gate = (1 - moving + a[:, None] * moving).repeat_interleave(n, 0)  # [k * n, t], step-major rows
            gate = gate.to(device=device, dtype=torch.float32).requires_grad_(True)

            def scale(pattern, hook):  # noqa: ARG001
                return pattern * gate[:, None, None, : pattern.shape[-1]].to(pattern.dtype)

            return [(name, scale) for name in names], gate, lambda grad: (grad.double().cpu() * moving).view(k, n, t)

        kind = "attention_off_keep_first" if keep_first else "attention_off"
        return adaptive_path_ig(model, tokens, objective, point, s, baseline=kind, progress=progress)
