"""Bigram-Backcopy inputs for the extreme-token analyses (Guo et al. 2024, task in ``interp.zoo.bb``).

``bb_domains(task)`` gives the two query domains of the paper (non-trigger and trigger positions of fresh
sequences) for ``head_activity``; ``bb_probe_context(task)`` the per-token probe context
([BOS] + every non-trigger symbol).
"""

from __future__ import annotations

import torch

from interp.zoo import bb as bbtask


def bb_sequences(task: bbtask.BBTask, n: int = 64, length: int = 64, seed: int = 1234) -> torch.Tensor:
    """[n, length] fresh held-out BB sequences starting with BOS."""
    return task.sample(n, length, torch.Generator().manual_seed(seed))


def bb_domains(task: bbtask.BBTask, n: int = 64, length: int = 64, seed: int = 1234) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{"non-trigger": (ids, mask), "trigger": (ids, mask)}: the same sequences, queries split by token type."""
    x = bb_sequences(task, n, length, seed)
    trig = task.trigger_mask(x)
    non = ~trig
    non[:, 0] = False
    return {"non-trigger": (x, non), "trigger": (x, trig)}


def bb_probe_context(task: bbtask.BBTask) -> torch.Tensor:
    """[1 + non-trigger symbols] ids: BOS followed by every non-trigger symbol (the reference probe context)."""
    non = [i for i in range(len(bbtask.SYMBOLS)) if i not in task.triggers]
    return torch.tensor([task.bos_id, *non])
