"""``overlap(a, b)``: how much two subnetworks of the same model share, against a shuffled-within-matrix null.

Observed statistic: ``|A and B| / N`` (N = maskable entries), as in Chang & Bergen's comparison of bigram
and optimally pruned subnetworks; ``|A and B| / |A|`` is reported too. Null: the kept entries of both masks
shuffled independently within each matrix, which keeps every matrix's kept counts. Under that null the
overlap count of one matrix is hypergeometric (|A_m| successes among n_m entries, |B_m| draws), so the null
is sampled exactly and fast as a sum of independent hypergeometric draws; its mean is
sum_m n_m * rho_A,m * rho_B,m / N. The p-value is (1 + #null >= observed) / (1 + n_null).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from interp.errors import InterpError
from interp.results import Result
from interp.subnetworks.subnetwork import Subnetwork

__all__ = ["Overlap", "overlap"]


@dataclass(frozen=True)
class Overlap(Result):
    """Overlap of subnetworks A and B (N: maskable entries)."""

    observed: float
    "|A and B| / N"
    of_a: float
    "|A and B| / |A|"
    null_mean: float
    "mean of the shuffled null (a fraction of N)"
    null_std: float
    "standard deviation of the shuffled null (a fraction of N)"
    expected: float
    "the exact null mean sum_m n_m rho_A,m rho_B,m / N"
    p_value: float
    "one-sided, P(null >= observed)"
    null: torch.Tensor
    "[sample] the null draws (fractions of N)"
    _shapes = {"null": "sample"}


def overlap(a: Subnetwork, b: Subnetwork, *, n_null: int = 10000, seed: int = 0) -> Overlap:
    """Overlap of ``a`` and ``b`` (same model) with a shuffled-within-matrix null; returns an ``Overlap``."""
    if [w.name for w in a.weights] != [w.name for w in b.weights]:
        raise InterpError("the two subnetworks cover different matrices: find both on the same model and components")
    rng = np.random.default_rng(seed)
    n_tot = a.n_maskable
    both = 0
    null = np.zeros(n_null, dtype=np.int64)
    expected = 0.0
    for w in a.weights:
        ma, mb = a.masks[w.name], b.masks[w.name]
        ka, kb, n = int(ma.sum()), int(mb.sum()), w.numel
        both += int((ma & mb).sum())
        expected += ka * kb / n
        if ka and kb:
            null += rng.hypergeometric(ka, n - ka, kb, size=n_null)
    obs = both / n_tot
    p = (1 + int((null >= both).sum())) / (1 + n_null)
    nullf = torch.from_numpy(null / n_tot).float()
    return Overlap(obs, both / max(1, a.n_kept), float(nullf.double().mean()), float(nullf.double().std()), expected / n_tot, p, nullf)
