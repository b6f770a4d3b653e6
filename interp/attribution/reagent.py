"""ReAGent (Zhao & Shan 2024) as the reference code runs it, batched (spec: ../shared/research/reagent.md).

For a prefix ``x`` [T] and target ``y``, each of ``B`` probes keeps logit-scale scores ``s`` [T], initialised
``U[0, 1)``. One *update step* replaces each position with probability ``r`` (Bernoulli mask ``M``) by a
sampled token, measures ``D = p(y|x) - p(y|x~)`` (clamped to ``[-1+eps, 1-eps]`` so a certain model never
gives an infinite logit), and adds ``logit((d+1)/2)`` with ``d = +D`` on replaced and ``-D`` on kept
positions. The *stop check* keeps the probe's top-``n`` positions, replaces all others, and stops the probe
(for good) once ``y`` is in the model's top-``k``. The attribution is ``softmax(s)`` averaged over the probes
that stopped (over all probes, with ``converged=False``, when none did within ``max_steps``).

Scheduling: the masks and replacement tokens never depend on the scores, so the updates of later steps can
run before the stop checks of earlier ones. Each model call (after the first, which also computes ``p(y|x)``)
runs the stop checks of every update step already computed and the updates of the next window of steps; the
cumulative sums of the updates give the scores after each step, and each probe stops at its first hit. The
window is chosen per call to balance the cost of a call against the rows wasted past a probe's stop (1 step
on a CPU with a small model, tens of steps on a GPU). All randomness is drawn per step from a generator seeded
by ``(seed, step)``, so every schedule, and ``batched=False`` (the step-by-step loop of the reference code),
gives the same numbers.
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


def _cost_ratio(counter, device: torch.device) -> float:
    """Cost of one model call in rows: ``counter.cost_ratio()`` when it has one (``LastLogits``), else a prior
    (CPU 2 rows, GPU 256 rows)."""
    fit = getattr(counter, "cost_ratio", None)
    if fit is not None:
        return float(fit())
    return 256.0 if device.type == "cuda" else 2.0


def _window(live: int, hazard: float, ratio: float, cap: int) -> int:
    """Steps to run ahead for ``live`` probes: minimises the per-step cost ``ratio / C + 1.5 * live * hazard * C``
    (a call costs ``ratio`` rows; a probe that stops inside a window of C steps wastes about 1.5 C rows)."""
    return max(1, min(cap, round(math.sqrt(ratio / (1.5 * max(live, 1) * hazard)))))


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
    ``calls``/``sequences``/``timings`` are read when passed as ``counter``). ``fixed`` [T] bool: positions
    never replaced (e.g. BOS). ``batched=False`` runs the reference step-by-step loop (two calls per step);
    ``chunk`` fixes the steps run ahead per call (default: chosen each call from the measured cost of a call
    and the rate at which probes stop, at most ``max_chunk``). A prefix with ``T <= keep_top_n`` would make
    the stop check replace nothing: ``keep_top_n`` is lowered to ``T - 1`` with a note and a warning; a
    single-token prefix gets score 1.
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
    s = torch.rand(B, T, generator=_gen(seed, 0), dtype=torch.float64).to(x.device)
    stopped_at = torch.zeros(B, dtype=torch.long)
    k = stop_top_k
    draws: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def draw(step: int):
        if step not in draws:
            draws[step] = _draws(x, sampler, seed, step, B, replace_ratio, fixed)
        return draws[step]

    def run(rows: torch.Tensor) -> torch.Tensor:
        return forward_last(rows.reshape(-1, T))

    def hits(logits: torch.Tensor) -> torch.Tensor:
        return (logits.topk(min(k, logits.shape[-1]), -1).indices == target).any(-1).cpu()

    def update_rows(steps: range, live: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = torch.stack([draw(t)[0][live] for t in steps]) if len(steps) else torch.zeros(0, live.numel(), T, dtype=torch.bool)
        repl = torch.stack([draw(t)[1][live] for t in steps]) if len(steps) else mask.long()
        return mask, torch.where(mask, repl, x)

    def stop_rows(cum: torch.Tensor, steps: range, live: torch.Tensor) -> torch.Tensor:
        repl = torch.stack([draw(t)[2][live] for t in steps])
        return _stop_inputs(x, cum, repl, n, fixed)

    if not batched:  # the reference loop: one update call and one stop-check call per step
        p_o = float(torch.softmax(run(x[None]), -1)[0, target])
        live, step = torch.arange(B), 0
        while step < max_steps and live.numel() > 0:
            step += 1
            mask, rows = update_rows(range(step, step + 1), live)
            cum = s[live][None] + _update(p_o, torch.softmax(run(rows), -1)[:, target][None], mask, eps)
            hit = hits(run(stop_rows(cum, range(step, step + 1), live)))
            s[live] = cum[0]
            stopped_at[live[hit]] = step
            live = live[~hit]
            draws.clear()
            if progress is not None:
                progress(B - live.numel(), B)
    else:
        s, stopped_at = _pipelined(run, hits, update_rows, stop_rows, x, target, s, stopped_at, max_steps, eps,
                                   chunk, max_chunk, counter, draws, progress)
    return _finish(s, stopped_at, max_steps, notes, counter, calls0, seqs0)


def _pipelined(run, hits, update_rows, stop_rows, x, target, s, stopped_at, max_steps, eps, chunk, max_chunk,
               counter, draws, progress):
    """Each call runs the stop checks of the update steps already computed and the next window's updates.

    The first call also computes p(y|x). A window's size comes from ``_window`` (or ``chunk``). Returns the
    final logit-scale scores [B, T] and the stop steps [B].
    """
    B, T = s.shape
    live = torch.arange(B)
    t, stops, probe_steps = 0, 0, 0

    def plan(after: int, n_live: int) -> int:
        if chunk is not None:
            C = chunk
        else:
            C = _window(n_live, (stops + 1) / (probe_steps + 10), _cost_ratio(counter, x.device), max_chunk)
        return max(0, min(C, max_steps - after))

    # first call: the original prefix + the first window of updates for every probe
    Q = plan(0, B)
    mask, rows = update_rows(range(1, Q + 1), live)
    logits = run(torch.cat([x[None], rows.reshape(-1, T)]))
    p_o = float(torch.softmax(logits[:1], -1)[0, target])
    pend = _update(p_o, torch.softmax(logits[1:], -1)[:, target].reshape(Q, B), mask, eps)  # [P, A, T]
    while live.numel() > 0 and t < max_steps:
        P, A = pend.shape[0], live.numel()
        cum = torch.cat([s[live][None], pend]).cumsum(0)[1:]  # scores after each pending step, loop order
        checks = stop_rows(cum, range(t + 1, t + P + 1), live)
        Q = plan(t + P, A)
        mask, rows = update_rows(range(t + P + 1, t + P + Q + 1), live)
        logits = run(torch.cat([checks.reshape(-1, T), rows.reshape(-1, T)]))
        hit = hits(logits[: P * A]).reshape(P, A)
        any_hit = hit.any(0)
        first = torch.where(any_hit, hit.float().argmax(0), torch.full_like(any_hit, P - 1, dtype=torch.long))
        s[live] = cum[first.to(cum.device), torch.arange(A, device=cum.device)]
        stopped_at[live[any_hit]] = t + 1 + first[any_hit]
        stops += int(any_hit.sum())
        probe_steps += int(torch.where(any_hit, first + 1, torch.full_like(first, P)).sum())
        p_r = torch.softmax(logits[P * A :], -1)[:, target].reshape(Q, A) if Q else logits.new_zeros(0, A)
        pend = _update(p_o, p_r, mask, eps)[:, ~any_hit.to(mask.device)]
        live = live[~any_hit]
        for step in range(t + 1, t + P + 1):
            draws.pop(step, None)
        t += P
        if progress is not None:
            progress(B - live.numel(), B)
        if Q == 0:
            break
    return s, stopped_at


def _finish(s, stopped_at, max_steps, notes, counter, calls0, seqs0) -> ReagentRun:
    B = s.shape[0]
    probe = torch.softmax(s, -1).cpu()
    done = stopped_at > 0
    converged = bool(done.all())
    if done.any():
        scores = probe[done].mean(0)
    else:
        scores = probe.mean(0)
        msg = f"no probe reached the stop condition in {max_steps} steps: scores are the mean over all probes"
        notes.append(msg)
        warnings.warn(f"ReAGent: {msg}", stacklevel=4)
    if done.any() and not converged:
        notes.append(f"{int((~done).sum())} of {B} probes did not stop in {max_steps} steps; they are left out")
    steps_run = int(stopped_at.max()) if converged else max_steps
    return ReagentRun(
        scores=scores, probe_scores=probe, stopped_at=stopped_at, converged=converged,
        forward_calls=getattr(counter, "calls", 0) - calls0, forward_sequences=getattr(counter, "sequences", 0) - seqs0,
        steps=steps_run, notes=notes,
    )
