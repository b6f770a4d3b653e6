"""ReAGent (Zhao & Shan 2024) as the reference code runs it, batched (spec: ../shared/research/reagent.md).

For a prefix ``x`` [T] and target ``y``, each of ``B`` probes keeps logit-scale scores ``s`` [T], initialised
``U[0, 1)``. One *update step* replaces each position with probability ``r`` (Bernoulli mask ``M``) by a
sampled token, measures ``D = p(y|x) - p(y|x~)`` (clamped to ``[-1+eps, 1-eps]`` so a certain model never
gives an infinite logit), and adds ``logit((d+1)/2)`` with ``d = +D`` on replaced and ``-D`` on kept
positions. The *stop check* keeps the probe's top-``n`` positions, replaces all others, and stops the probe
(for good) once ``y`` is in the model's top-``k``. The attribution is ``softmax(s)`` averaged over the probes
that stopped (over all probes, with ``converged=False``, when none did within ``max_steps``).

Batching: the masks and replacement tokens never depend on the scores, so ``C`` update steps of every live
probe run in one forward pass, their cumulative sums give the scores after each of those steps, and the
``C`` stop checks run in a second forward pass; each probe stops at its first hit. All randomness is drawn
per step from a generator seeded by ``(seed, step)``, so the batched run equals ``batched=False`` (the
step-by-step loop of the reference code) number for number.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from interp.attribution.samplers import TokenSampler

__all__ = ["ReagentRun", "reagent_scores"]


@dataclass
class ReagentRun:
    """Output of ``reagent_scores`` for one target.

    ``scores`` [T]: the attribution (each > 0, sum 1). ``probe_scores`` [B, T]: each probe's softmax(s).
    ``stopped_at`` [B]: step (1-based) at which each probe stopped, 0 if it never did. ``converged``: every
    probe stopped. ``forward_calls`` / ``forward_sequences``: model calls and sequences run (the original
    forward included). ``steps``: update steps run (the last probe's stop step, or ``max_steps``).
    """

    scores: torch.Tensor
    probe_scores: torch.Tensor
    stopped_at: torch.Tensor
    converged: bool
    forward_calls: int
    forward_sequences: int
    steps: int
    notes: list[str] = field(default_factory=list)


def _gen(seed: int, step: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed) * 10_000_019 + int(step) + 1)
    return g


def _draws(x: torch.Tensor, sampler: TokenSampler, seed: int, step: int, B: int, r: float, fixed: torch.Tensor):
    """Step ``step``'s randomness for all B probes: mask [B,T], update replacements [B,T], stop replacements [B,T]."""
    g = _gen(seed, step)
    mask = (torch.rand(B, x.shape[0], generator=g) < r) & ~fixed
    repl = sampler.sample(x, B, g).to(x.device)
    stop = sampler.sample(x, B, g).to(x.device)
    return mask.to(x.device), repl, stop


def _update(p_o: float, p_r: torch.Tensor, mask: torch.Tensor, eps: float) -> torch.Tensor:
    """[..., T] score increments logit((d+1)/2) = log((1+d)/(1-d)) with d = +-clamp(p_o - p_r)."""
    D = (p_o - p_r.double()).clamp(-1 + eps, 1 - eps)
    d = torch.where(mask, D[..., None], -D[..., None])
    return torch.log1p(d) - torch.log1p(-d)


def _stop_inputs(x: torch.Tensor, s: torch.Tensor, stop_repl: torch.Tensor, n: int, fixed: torch.Tensor) -> torch.Tensor:
    """[..., T] stop-check inputs: the top-n positions of ``s`` (and fixed ones) keep x, all others are replaced."""
    s = s.masked_fill(fixed, -math.inf)
    keep = torch.zeros_like(s, dtype=torch.bool).scatter_(-1, s.topk(n, dim=-1).indices, True) | fixed
    return torch.where(keep, x, stop_repl)


def reagent_scores(
    forward_last: Callable[[torch.Tensor], torch.Tensor],
    tokens: torch.Tensor,
    target: int,
    sampler: TokenSampler,
    *,
    replace_ratio: float = 0.3,
    keep_top_n: int = 5,
    stop_top_k: int = 3,
    num_probes: int = 16,
    max_steps: int = 3000,
    seed: int = 0,
    fixed: torch.Tensor | None = None,
    batched: bool = True,
    chunk: int | None = None,
    max_chunk: int = 64,
    eps: float = 1e-6,
    counter=None,
    progress: Callable[[int, int], None] | None = None,
) -> ReagentRun:
    """Run ReAGent on one prefix ``tokens`` [T] for target id ``target``; returns a ``ReagentRun``.

    ``forward_last(tokens [N, T]) -> logits [N, vocab]`` at the last position (``LastLogits``; its
    ``calls``/``sequences`` counters are read when passed as ``counter``). ``fixed`` [T] bool: positions
    never replaced (e.g. BOS). ``batched=False`` runs the reference step-by-step loop; ``chunk`` fixes the
    steps per batch (default: adaptive, 2, 4, ... up to ``max_chunk``). A prefix with ``T <= keep_top_n``
    would make the stop check replace nothing: ``keep_top_n`` is lowered to ``T - 1`` with a note and a
    warning; a single-token prefix gets score 1.
    """
    if not 0 < replace_ratio <= 1:
        raise ValueError(f"replace_ratio must be in (0, 1], got {replace_ratio}")
    if keep_top_n < 1 or stop_top_k < 1 or num_probes < 1 or max_steps < 1:
        raise ValueError("keep_top_n, stop_top_k, num_probes and max_steps must be positive")
    counter = counter if counter is not None else forward_last
    calls0, seqs0 = getattr(counter, "calls", 0), getattr(counter, "sequences", 0)
    x = tokens.reshape(-1)
    T, B = x.shape[0], num_probes
    fixed = torch.zeros(T, dtype=torch.bool, device=x.device) if fixed is None else fixed.to(x.device).bool()
    free = int((~fixed).sum())
    notes: list[str] = []
    if T == 1 or free == 0:
        one = torch.full((T,), 1.0 / T, dtype=torch.float64)
        return ReagentRun(one, one.expand(B, -1).clone(), torch.ones(B, dtype=torch.long), True, 0, 0, 0,
                          ["nothing to perturb: uniform scores"])
    n = keep_top_n
    if free <= n:
        n = free - 1 if free > 1 else 1
        msg = f"the prefix has {free} replaceable tokens, not more than keep_top_n={keep_top_n}: keep_top_n lowered to {n}"
        notes.append(msg)
        warnings.warn(f"ReAGent: {msg}", stacklevel=3)
    sampler.prepare(x)

    p_o = float(torch.softmax(forward_last(x[None]), -1)[0, target])
    s = torch.rand(B, T, generator=_gen(seed, 0), dtype=torch.float64).to(x.device)
    stopped_at = torch.zeros(B, dtype=torch.long)
    live = torch.arange(B)
    step = 0

    def p_of(rows: torch.Tensor) -> torch.Tensor:
        return torch.softmax(forward_last(rows.reshape(-1, T)), -1)[:, target].reshape(rows.shape[:-1])

    def hits(rows: torch.Tensor) -> torch.Tensor:
        logits = forward_last(rows.reshape(-1, T))
        return (logits.topk(min(stop_top_k, logits.shape[-1]), -1).indices == target).any(-1).reshape(rows.shape[:-1])

    size = chunk or 2
    while step < max_steps and live.numel() > 0:
        C = 1 if not batched else min(size, max_steps - step)
        draws = [_draws(x, sampler, seed, step + c + 1, B, replace_ratio, fixed) for c in range(C)]
        mask = torch.stack([d[0][live] for d in draws])  # [C, A, T]
        repl = torch.stack([d[1][live] for d in draws])
        stop_repl = torch.stack([d[2][live] for d in draws])
        p_r = p_of(torch.where(mask, repl, x))  # [C, A]
        # scores after each of the C steps, summed in the same order as the step-by-step loop
        cum = torch.cat([s[live][None], _update(p_o, p_r, mask, eps)]).cumsum(0)[1:]  # [C, A, T]
        hit = hits(_stop_inputs(x, cum, stop_repl, n, fixed)).cpu()  # [C, A]
        any_hit = hit.any(0)
        first = torch.where(any_hit, hit.float().argmax(0), torch.full_like(any_hit, C - 1, dtype=torch.long))
        s[live] = cum[first.to(cum.device), torch.arange(live.numel(), device=cum.device)]
        stopped_at[live[any_hit]] = step + 1 + first[any_hit]
        live = live[~any_hit]
        step += C
        if progress is not None:
            progress(B - live.numel(), B)
        if chunk is None:
            size = min(2 * size, max_chunk)

    probe = torch.softmax(s, -1).cpu()
    done = stopped_at > 0
    converged = bool(done.all())
    if done.any():
        scores = probe[done].mean(0)
    else:
        scores = probe.mean(0)
        msg = f"no probe reached the stop condition in {max_steps} steps: scores are the mean over all probes"
        notes.append(msg)
        warnings.warn(f"ReAGent: {msg}", stacklevel=3)
    if done.any() and not converged:
        notes.append(f"{int((~done).sum())} of {B} probes did not stop in {max_steps} steps; they are left out")
    steps_run = int(stopped_at.max()) if converged else max_steps
    return ReagentRun(
        scores=scores, probe_scores=probe, stopped_at=stopped_at, converged=converged,
        forward_calls=getattr(counter, "calls", 0) - calls0, forward_sequences=getattr(counter, "sequences", 0) - seqs0,
        steps=steps_run, notes=notes,
    )
