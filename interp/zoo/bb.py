"""Bigram-Backcopy (BB) task of Guo et al. 2024, with a seeded random bigram table.

Tiny Shakespeare cannot be downloaded here, so the bigram is a Dirichlet(0.5) table over 64 symbols
(the CPU reproduction in the research spec, section C). The ``n_triggers`` most frequent symbols under
the stationary unigram are triggers: after a trigger the next token copies the token before the
trigger; after any other token it is drawn from the bigram. ``x0`` is BOS, ``x1`` is never a trigger,
and two triggers are never adjacent (a trigger's successor is drawn from the non-trigger bigram).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SYMBOLS = list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'-")[:64]
BOS = "<bos>"


@dataclass(frozen=True)
class BBTask:
    """Ground truth of the task.

    ``bigram``: [vocab, vocab] transition table over the 64 symbols (rows sum to 1).
    ``unigram``: [vocab] start distribution (triggers removed). ``triggers``: the trigger symbol ids.
    The BOS id is ``len(SYMBOLS)``.
    """

    bigram: torch.Tensor
    unigram: torch.Tensor
    triggers: tuple[int, ...]

    @property
    def bos_id(self) -> int:
        return len(SYMBOLS)

    @classmethod
    def from_seed(cls, seed: int = 0, n_triggers: int = 3) -> BBTask:
        g = torch.Generator().manual_seed(seed)
        v = len(SYMBOLS)
        table = _dirichlet(v, g)
        # Stationary distribution of the raw table decides which symbols are the most frequent.
        stat = torch.full((v,), 1.0 / v)
        for _ in range(200):
            stat = stat @ table
        triggers = tuple(sorted(torch.topk(stat, n_triggers).indices.tolist()))
        uni = stat.clone()
        uni[list(triggers)] = 0.0
        return cls(table, uni / uni.sum(), triggers)

    def sample(self, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """[batch, length] token ids starting with BOS, drawn with the backcopy rule (vectorised)."""
        v = len(SYMBOLS)
        is_trig = torch.zeros(v + 1, dtype=torch.bool)
        is_trig[list(self.triggers)] = True
        cum = torch.cumsum(self.bigram, -1)
        x = torch.empty(batch, length, dtype=torch.long)
        x[:, 0] = self.bos_id
        u = torch.rand(batch, length, generator=generator)
        x[:, 1] = torch.searchsorted(torch.cumsum(self.unigram, 0), u[:, 1].contiguous()).clamp(max=v - 1)
        for n in range(1, length - 1):
            cur = x[:, n]
            drawn = torch.searchsorted(cum[cur.clamp(max=v - 1)], u[:, n + 1 : n + 2].contiguous()).squeeze(1).clamp(max=v - 1)
            x[:, n + 1] = torch.where(is_trig[cur], x[:, n - 1], drawn)
        return x

    def trigger_mask(self, x: torch.Tensor) -> torch.Tensor:
        """[batch, length] bool, True where the token is a trigger (the next token is a backcopy)."""
        return torch.isin(x, torch.tensor(self.triggers))


def _dirichlet(v: int, g: torch.Generator) -> torch.Tensor:
    """A [v, v] Dirichlet(0.5) table drawn with ``g`` (Gamma(0.5) via torch._standard_gamma is not seedable)."""
    # Gamma(0.5, 1) = Normal(0,1)^2 / 2, exactly.
    z = torch.randn(v, v, generator=g) ** 2 / 2
    return z / z.sum(-1, keepdim=True)
