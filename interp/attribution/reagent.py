"""ReAGent (Zhao & Shan 2024) as the reference code runs it, batched (spec: ../shared/research/reagent.md).

For a prefix ``x`` [T] and target ``y``, each of ``B`` probes keeps logit-scale scores ``s`` [T], initialised
``U[0, 1)``. One *update step* replaces each position with probability ``r`` (mask ``M``, Bernoulli or cycle:
see ``masks``) by a sampled token, measures ``D = p(y|x) - p(y|x~)`` (clamped to ``[-1+eps, 1-eps]`` so a certain model never
gives an infinite logit), and adds ``logit((d+1)/2)`` with ``d = +D`` on replaced and ``-D`` on kept
positions. The *stop check* keeps the probe's top-``n`` positions, replaces all others, and stops the probe
(for good) once ``y`` is in the model's top-``k``. The attribution is ``softmax(s)`` averaged over the probes
that stopped (over all probes, with ``converged=False``, when none did within ``max_steps``).

``min_steps`` (0, the reference code, by default; 16 in ``REAGENT_REAL``): no stop check before that many update steps. On a real
vocabulary the stop check is close to a coin that ignores the scores: replacing all but ``n`` of 20 tokens by
uniform draws from 49,152 ids wrecks the context, so either ``n`` covers most of a short prompt and a probe stops
at step 1-2 with its random initial scores, or the prompt is longer and no probe ever stops, the scores random-walk
(``+-log((1+D)/(1-D))`` per step) for ``max_steps`` and their softmax ends one-hot (see bench/results/attribution_real.md).
The minimum gives every probe enough updates to rank the tokens before the stop rule may end it, and the stop
checks it skips are sequences saved.

``masks``: "bernoulli" (the reference code: each position replaced independently with probability ``r`` each step)
or "cycle" (the default of ``REAGENT_REAL``): the free positions are dealt in a random order per probe into cycles
of ``round(1/r)`` steps, so each is replaced exactly once per cycle, the same rate ``r``. With Bernoulli masks a
position is left untouched for 16 steps with probability 0.9^16 = 19% (r = 0.1); all such positions receive the
same updates, so their order is that of the random initial scores. The cycle removes this noise (its effect on
faithfulness, cost and seed-to-seed agreement on SmolLM2, and ``settings.REAGENT_FAST``'s against inseq's ReAGent:
bench/results/attribution_real.md, section 5c).

Scheduling: the masks and replacement tokens never depend on the scores, so the updates of later steps can
run before the stop checks of earlier ones. Each model call (after the first, which also computes ``p(y|x)``)
runs the stop checks of every update step already computed and the updates of the next window of steps; the
cumulative sums of the updates give the scores after each step, and each probe stops at its first hit. The
window is chosen per call to balance the cost of a call against the rows wasted past a probe's stop (1 step
on a CPU with a small model, tens of steps on a GPU). All randomness is drawn per step from a generator seeded
by ``(seed, step)`` (a cycle's orders by ``(seed, cycle)``), so every schedule, and ``batched=False`` (the
step-by-step loop of the reference code), gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from interp.attribution.forward import prior_cost_ratio
from interp.attribution.samplers import TokenSampler
from interp.attribution.settings import REAGENT_KEEP_TOP_N, ReagentSettings

__all__ = ["ReagentRun", "ReagentConfig", "reagent_scores", "REAGENT_REAL", "REAGENT_REFERENCE", "MASKS"]

MASKS = ("bernoulli", "cycle")  # the mask kinds of ``masks=`` (module docstring)

# Settings for a real vocabulary (SmolLM2; bench/results/attribution_real.md): the paper's token-level replace
# ratio 0.1 (at 0.3 nearly every perturbation of a 20-token prompt sends p(y) to ~0, so D carries no position
# information), BOS never replaced (replacing a Llama-style model's attention sink wrecks every prediction), and
# 16 update steps before the first stop check, cycle masks. The defaults of ``attribute(..., method="reagent")``
# (with fix_bos=True).
# Read off ``settings.ReagentSettings``, where they are set (one place).
REAGENT_REAL = {k: getattr(ReagentSettings(), k) for k in ("replace_ratio", "stop_top_k", "num_probes", "max_steps",
                                                           "min_steps", "masks")} | {"keep_top_n": REAGENT_KEEP_TOP_N}
# Fewer sequences for interactive use: ``interp.attribution.settings.REAGENT_FAST`` (a ``ReagentSettings``).
# The reference code's settings, inseq's defaults (pass them with fix_bos=False to compare with inseq); also the
# defaults of ``reagent_scores``, the algorithm itself.
REAGENT_REFERENCE = dict(replace_ratio=0.3, keep_top_n=5, stop_top_k=3, num_probes=16, max_steps=3000, min_steps=0,
                         masks="bernoulli")


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


def _cycle_mask(seed: int, step: int, B: int, r: float, fixed_cpu: torch.Tensor) -> torch.Tensor:
    """[B, T] masks of ``masks="cycle"``: the free positions are dealt, in a random order per probe, into the
    ``L = min(round(1/r), free)`` steps of a cycle, so each is replaced once per cycle (``r`` on average, as with
    Bernoulli masks, but none is left untouched for many steps). The order is drawn once per (seed, cycle)."""
    free = (~fixed_cpu).nonzero().squeeze(1)
    L = max(1, min(round(1 / r), free.numel()))
    cycle, j = divmod(step - 1, L)
    g = torch.Generator()
    g.manual_seed(int(seed) * 10_000_019 - int(cycle) - 1)  # never a step's seed (those are > seed * 10_000_019)
    rank = torch.rand(B, free.numel(), generator=g).argsort(1).argsort(1)
    mask = torch.zeros(B, fixed_cpu.shape[0], dtype=torch.bool)
    mask[:, free] = rank % L == j
    return mask


def _draws(x: torch.Tensor, sampler: TokenSampler, seed: int, step: int, B: int, r: float, fixed_cpu: torch.Tensor,
           masks: str = "bernoulli"):
    """Step ``step``'s randomness for all B probes: mask [B,T], update replacements [B,T], stop replacements [B,T]
    (on ``x``'s device). ``fixed_cpu`` [T] bool, on the CPU: positions never replaced."""
    g = _gen(seed, step)
    mask = (torch.rand(B, x.shape[0], generator=g) < r) & ~fixed_cpu  # drawn on the CPU: same bits on any device
    if masks == "cycle":  # the Bernoulli draw above is still made, so the replacement tokens are the same
        mask = _cycle_mask(seed, step, B, r, fixed_cpu)
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


def _window(live: int, hazard: float, ratio: float, cap: int) -> int:
    """Steps to run ahead for ``live`` probes: minimises the per-step cost ``ratio / C + 1.5 * live * hazard * C``
    (a call costs ``ratio`` rows; a probe that stops inside a window of C steps wastes about 1.5 C rows)."""
    return max(1, min(cap, round(math.sqrt(ratio / (1.5 * max(live, 1) * hazard)))))


@dataclass(frozen=True, kw_only=True)
class ReagentConfig:
    """The algorithm's settings; the defaults are the reference code's (``REAGENT_REFERENCE``: inseq's ReAGent). The
    method ``attribute(..., method="reagent")`` starts from ``settings.ReagentSettings`` instead (``REAGENT_REAL``)."""

    replace_ratio: float = REAGENT_REFERENCE["replace_ratio"]
    keep_top_n: int = REAGENT_REFERENCE["keep_top_n"]
    stop_top_k: int = REAGENT_REFERENCE["stop_top_k"]
    num_probes: int = REAGENT_REFERENCE["num_probes"]
    max_steps: int = REAGENT_REFERENCE["max_steps"]
    min_steps: int = REAGENT_REFERENCE["min_steps"]
    masks: str = REAGENT_REFERENCE["masks"]
    seed: int = 0
    batched: bool = True
    chunk: int | None = None
    max_chunk: int = 64
    eps: float = 1e-6
    cost_ratio: float | None = None


def reagent_scores(
    forward_last: Callable[[torch.Tensor], torch.Tensor],
    tokens: torch.Tensor,
    target: int,
    sampler: TokenSampler,
    config: ReagentConfig | None = None,
    *,
    fixed: torch.Tensor | None = None,
    progress: Callable[[int, int], None] | None = None,
    **changes,
) -> ReagentRun:
    """Run ReAGent on one prefix ``tokens`` [T] for target id ``target``; returns a ``ReagentRun``.

    ``config`` (default ``ReagentConfig()``, the reference code's settings) with ``changes`` (its fields, e.g.
    ``num_probes=4``; an unknown one is a ``TypeError``). ``forward_last(tokens [N, T]) -> logits [N, vocab]`` at the
    last position (``LastLogits``; its ``calls`` and ``sequences`` counters, when it has them, give the run's
    forward cost). ``fixed`` [T] bool: positions never replaced (e.g. BOS). ``batched=False`` runs the reference
    step-by-step loop (two calls per step); ``chunk`` fixes the steps run ahead per call (default: chosen each call from
    the measured cost of a call and the rate at which probes stop, at most ``max_chunk``). A prefix with
    ``T <= keep_top_n`` would make the stop check replace nothing: ``keep_top_n`` is lowered to ``T - 1`` with a note
    and a warning; a single-token prefix gets score 1. ``min_steps``: update steps before the first stop check (module
    docstring; clipped to ``max_steps``). The schedule never depends on wall time: the window comes from
    ``prior_cost_ratio(device)`` (set ``cost_ratio`` to change it), so a seed gives the same calls every run.
    """
    c = dataclasses.replace(config or ReagentConfig(), **changes)
    replace_ratio, keep_top_n, stop_top_k, num_probes = c.replace_ratio, c.keep_top_n, c.stop_top_k, c.num_probes
    max_steps, min_steps, seed, masks, eps = c.max_steps, c.min_steps, c.seed, c.masks, c.eps
    if not 0 < replace_ratio <= 1:
        raise ValueError(f"replace_ratio must be in (0, 1], got {replace_ratio}")
    if masks not in MASKS:
        raise ValueError(f"masks must be one of {MASKS}, got {masks!r}")
    if keep_top_n < 1 or stop_top_k < 1 or num_probes < 1 or max_steps < 1:
        raise ValueError("keep_top_n, stop_top_k, num_probes and max_steps must be positive")
    calls0, seqs0 = getattr(forward_last, "calls", 0), getattr(forward_last, "sequences", 0)
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
    probes = _Probes(forward_last, x, target, sampler, replace_ratio, n, stop_top_k, B, seed, fixed, eps,
                     min(max(int(min_steps), 1), max_steps), masks)
    if not c.batched:
        probes.loop(max_steps, progress)
    else:
        def window(live: int, hazard: float) -> int:
            ratio = c.cost_ratio if c.cost_ratio is not None else prior_cost_ratio(x.device)
            return c.chunk if c.chunk is not None else _window(live, hazard, ratio, c.max_chunk)

        probes.pipelined(max_steps, window, progress)
    return _finish(probes.s, probes.stopped_at, max_steps, notes, forward_last, calls0, seqs0)


class _Probes:
    """The ``B`` probes of one run on prefix ``x`` [T]: scores ``s`` [B, T] (logit scale), ``stopped_at`` [B],
    the randomness of each step (drawn once per (seed, step), whatever the schedule) and the model call."""

    def __init__(self, forward_last, x, target, sampler, r, n, k, B, seed, fixed, eps, first_check, masks):
        self.forward_last, self.x, self.target, self.sampler = forward_last, x, target, sampler
        self.r, self.n, self.k, self.B, self.seed, self.fixed, self.eps = r, n, k, B, seed, fixed, eps
        self.fixed_cpu = fixed.cpu()  # the draws are made on the CPU
        self.first_check = first_check  # the first step whose stop check runs
        self.masks = masks
        self.T = x.shape[0]
        self.s = torch.rand(B, self.T, generator=_gen(seed, 0), dtype=torch.float64).to(x.device)
        self.stopped_at = torch.zeros(B, dtype=torch.long)
        self._draws: dict[int, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def draw(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if step not in self._draws:
            self._draws[step] = _draws(self.x, self.sampler, self.seed, step, self.B, self.r, self.fixed_cpu,
                                         self.masks)
        return self._draws[step]

    def forget(self, steps: range) -> None:
        for step in steps:
            self._draws.pop(step, None)

    def run(self, rows: torch.Tensor) -> torch.Tensor:
        """Last-position logits [N, vocab] of rows [..., T] (one model call)."""
        return self.forward_last(rows.reshape(-1, self.T))

    def p_target(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.softmax(logits, -1)[:, self.target]

    def hits(self, logits: torch.Tensor) -> torch.Tensor:
        """[N] bool on the CPU: the target is among the top-k of each row."""
        return (logits.topk(min(self.k, logits.shape[-1]), -1).indices == self.target).any(-1).cpu()

    def update_rows(self, steps: range, live: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Masks and perturbed inputs [len(steps), live, T] of the update steps ``steps`` for probes ``live``."""
        if not len(steps):
            mask = torch.zeros(0, live.numel(), self.T, dtype=torch.bool, device=self.x.device)
            return mask, mask.long()
        mask = torch.stack([self.draw(t)[0][live] for t in steps])
        repl = torch.stack([self.draw(t)[1][live] for t in steps])
        return mask, torch.where(mask, repl, self.x)

    def stop_rows(self, cum: torch.Tensor, steps: range, live: torch.Tensor) -> torch.Tensor:
        """Stop-check inputs [len(steps), live, T] for the scores ``cum`` after each of ``steps``."""
        if not len(steps):
            return self.x.new_zeros(0, live.numel(), self.T)
        repl = torch.stack([self.draw(t)[2][live] for t in steps])
        return _stop_inputs(self.x, cum, repl, self.n, self.fixed)

    def loop(self, max_steps: int, progress) -> None:
        """The reference loop: one update call and one stop-check call per step."""
        p_o = float(self.p_target(self.run(self.x[None]))[0])
        live, step = torch.arange(self.B), 0
        while step < max_steps and live.numel() > 0:
            step += 1
            mask, rows = self.update_rows(range(step, step + 1), live)
            cum = self.s[live][None] + _update(p_o, self.p_target(self.run(rows))[None], mask, self.eps)
            if step >= self.first_check:
                hit = self.hits(self.run(self.stop_rows(cum, range(step, step + 1), live)))
            else:
                hit = torch.zeros(live.numel(), dtype=torch.bool)
            self.s[live] = cum[0]
            self.stopped_at[live[hit]] = step
            live = live[~hit]
            self.forget(range(step, step + 1))
            if progress is not None:
                progress(self.B - live.numel(), self.B)

    def pipelined(self, max_steps: int, window: Callable[[int, float], int], progress) -> None:
        """Each call runs the stop checks of the update steps already computed and the next window's updates
        (the first call: p(y|x) and the first window). ``window(live probes, stop rate per step)`` sizes it."""
        B, T, x = self.B, self.T, self.x
        live = torch.arange(B)
        t, stops, probe_steps = 0, 0, 0  # t: steps whose stop checks are done

        def plan(after: int, n_live: int) -> int:  # at least up to the first checked step
            ahead = max(window(n_live, (stops + 1) / (probe_steps + 10)), self.first_check - after)
            return max(0, min(ahead, max_steps - after))

        Q = plan(0, B)
        mask, rows = self.update_rows(range(1, Q + 1), live)
        logits = self.run(torch.cat([x[None], rows.reshape(-1, T)]))
        p_o = float(self.p_target(logits[:1])[0])
        pend = _update(p_o, self.p_target(logits[1:]).reshape(Q, B), mask, self.eps)  # [P, live, T] increments
        while live.numel() > 0 and t < max_steps:
            P, A = pend.shape[0], live.numel()
            cum = torch.cat([self.s[live][None], pend]).cumsum(0)[1:]  # scores after each pending step, loop order
            skip = max(0, min(self.first_check - 1 - t, P))  # pending steps before the first checked one
            checks = self.stop_rows(cum[skip:], range(t + skip + 1, t + P + 1), live)
            Q = plan(t + P, A)
            mask, rows = self.update_rows(range(t + P + 1, t + P + Q + 1), live)
            logits = self.run(torch.cat([checks.reshape(-1, T), rows.reshape(-1, T)]))
            C = (P - skip) * A
            hit = torch.cat([torch.zeros(skip, A, dtype=torch.bool), self.hits(logits[:C]).reshape(P - skip, A)])
            any_hit = hit.any(0)
            first = torch.where(any_hit, hit.float().argmax(0), torch.full_like(any_hit, P - 1, dtype=torch.long))
            self.s[live] = cum[first.to(cum.device), torch.arange(A, device=cum.device)]
            self.stopped_at[live[any_hit]] = t + 1 + first[any_hit]
            stops += int(any_hit.sum())
            probe_steps += int(torch.where(any_hit, first + 1, torch.full_like(first, P)).sum())
            p_r = self.p_target(logits[C:]).reshape(Q, A) if Q else logits.new_zeros(0, A)
            pend = _update(p_o, p_r, mask, self.eps)[:, ~any_hit.to(mask.device)]
            live = live[~any_hit]
            self.forget(range(t + 1, t + P + 1))
            t += P
            if progress is not None:
                progress(B - live.numel(), B)
            if Q == 0:
                break


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
