"""What a ``head_activity`` sweep costs: counted before it starts, estimated from its first timed step.

``plan_cost`` counts the forward passes and tokens of a sweep from its batch sizes alone (exact: the same rule the
sweep stacks its interventions by). ``SweepMeter`` carries the sweep's progress bar, says the counts in the bar's
description before the first pass, and after the first timed step prints (and logs) one line with the estimated time
of the whole sweep; ``cost()`` is the dict ``HeadActivity.cost`` records.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence

from tqdm.auto import tqdm

__all__ = ["plan_cost", "SweepMeter", "seconds_text"]

log = logging.getLogger("interp.extreme.activity")


def plan_cost(numels: Sequence[int], n_jobs: int, max_batch_tokens: int) -> dict[str, int]:
    """Counts of an intervention sweep over batches of ``numels`` tokens each (padded ``b * pos``), ``n_jobs``
    interventions per batch, stacked ``max(1, min(n_jobs, max_batch_tokens // numel))`` copies per forward pass:
    ``{"clean_passes", "intervention_passes", "intervention_tokens"}`` (one clean pass per batch)."""
    passes = 0
    for n in numels:
        k = max(1, min(n_jobs, max_batch_tokens // max(1, n)))
        passes += -(-n_jobs // k)
    return {"clean_passes": len(numels), "intervention_passes": passes, "intervention_tokens": n_jobs * int(sum(numels))}


def seconds_text(s: float) -> str:
    """``s`` seconds as "42 s", "3.5 min" or "1.2 h"."""
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.1f} min" if s < 5400 else f"{s / 3600:.1f} h"


class SweepMeter:
    """Progress and cost of one sweep: ``total`` bar units (``unit``), ``work`` units (tokens) in all, and the counts
    ``plan`` (shown in the bar's description before the first step, and recorded by ``cost``).

    ``step(units, work)`` after each step: the first one's time, scaled by ``work`` done over ``work`` in all (and
    divided by ``parallel``, the workers running steps side by side), is the estimate, shown once (``tqdm.write`` to
    stderr when ``progress``; always logged at INFO on ``interp.extreme.activity``) and kept in ``cost()``.
    """

    def __init__(self, what: str, plan: dict, *, total: int, work: int, progress: bool, unit: str = "it",
                 parallel: int = 1) -> None:
        self.what, self.plan, self.work, self.progress = what, dict(plan), max(int(work), 1), progress
        self.parallel = max(int(parallel), 1)
        self.said = self.describe()
        self.bar = tqdm(total=total, desc=f"{what} ({self.said})", unit=unit, disable=not progress)
        self.t0 = time.perf_counter()
        self.first_s: float | None = None
        self.estimate_s: float | None = None
        self.elapsed_s: float | None = None

    def describe(self) -> str:
        """The counts in words, e.g. "288 head ablations, 36 forward passes"."""
        p = self.plan
        parts = [f"{p['head_ablations']:,} head ablations"] if p.get("head_ablations") else []
        passes = p.get("forward_passes", p.get("intervention_passes"))  # a sharded run counts its clean passes too
        if passes is not None:
            parts.append(f"{passes:,} forward passes")
        if "shards" in p:
            parts.append(f"{p['shards']:,} shards")
        return ", ".join(parts)

    def step(self, units: int, work: int) -> None:
        """Advance the bar by ``units`` after a step that did ``work`` (tokens); the first step sets the estimate."""
        self.bar.update(units)
        if self.first_s is not None:
            return
        self.first_s = time.perf_counter() - self.t0
        self.estimate_s = self.first_s * self.work / max(int(work), 1) / self.parallel
        line = (f"{self.what}: {self.said}; the first step took {self.first_s:.2f} s, so the whole sweep takes about "
                f"{seconds_text(self.estimate_s)}")
        log.info(line)
        if self.progress:
            tqdm.write(line, file=sys.stderr)
            self.bar.set_postfix_str(f"about {seconds_text(self.estimate_s)} in all", refresh=True)

    def close(self) -> None:
        """Close the bar and record the elapsed time."""
        self.elapsed_s = time.perf_counter() - self.t0
        self.bar.close()

    def cost(self) -> dict:
        """The plan's counts plus ``first_step_s``, ``estimate_s`` and ``elapsed_s`` (seconds, 3 decimals; None when
        not measured): what ``HeadActivity.cost`` records."""
        r = lambda x: None if x is None else round(float(x), 3)
        return {**self.plan, "first_step_s": r(self.first_s), "estimate_s": r(self.estimate_s), "elapsed_s": r(self.elapsed_s)}
