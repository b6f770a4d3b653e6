"""How good a LatentLens match is: a top-1 cosine placed in the index's own distribution of nearest-neighbour cosines.

A cosine alone does not say whether a neighbour is a good description: 0.73 can be a close match at one layer and a
poor one at another, and an index always returns *some* neighbour, even for a token its corpus never covers. So each
stored layer gets a reference: a fixed sample of up to ``SAMPLE`` of its stored rows is searched against that layer,
and the cosine of each one's nearest *other* row is kept (sorted; computed once per index, layer and row count and
cached on the index object). A query's **match percentile** is the share of that reference at or below the query's
top-1 cosine, in percent: 50 means the prompt's state is as close to its neighbour as a typical corpus token is to
its nearest corpus neighbour; below ``WEAK`` (5) it is farther than 95% of them, a sign that the corpus holds nothing
like this state and the neighbours should not be read as a description.
"""

from __future__ import annotations

import torch

__all__ = ["SAMPLE", "WEAK", "reference_similarities", "match_percentile"]

SAMPLE = 256
"""Stored rows per layer whose nearest-neighbour cosines form the reference (a fixed, seeded sample)."""
WEAK = 5.0
"""A match percentile below this is shown as a weak match."""
_SEED = 0


def _stored_vectors(index, layer: int, rows: torch.Tensor) -> torch.Tensor:
    """[len(rows), d_model] float32 stored vectors of ``rows`` at ``layer`` (in-memory or sharded index)."""
    if hasattr(index, "vectors"):  # LatentIndex
        return index.vectors[layer][rows.to(index.vectors[layer].device)].float().cpu()
    out = torch.empty(len(rows), index.d_model)
    where = index._locate(rows)
    for si in where.unique().tolist():
        sel = where == si
        shard = index.shards[si]
        out[sel] = shard.get(f"vectors.{layer}")[rows[sel] - shard.first_row].float()
    return out


@torch.no_grad()
def reference_similarities(index, layer: int) -> torch.Tensor:
    """[n] float32, sorted ascending: the cosine of each of up to ``SAMPLE`` sampled stored rows of ``layer`` to its
    nearest other stored row of that layer (n = 0 when the index has fewer than 2 rows). Cached on ``index`` per
    (layer, number of rows), so adding rows to an in-memory index recomputes it."""
    n = len(index)
    key = (int(layer), n)
    cache = index.__dict__.setdefault("_match_reference", {})
    if key in cache:
        return cache[key]
    if n < 2:
        ref = torch.empty(0)
    else:
        gen = torch.Generator().manual_seed(_SEED)
        rows = torch.randperm(n, generator=gen)[: min(SAMPLE, n)].sort().values
        hit = index.search(_stored_vectors(index, layer, rows), k=2, layers=[int(layer)])
        other = hit.rows[:, 0] == rows  # the row itself is usually its own top-1: take the next one then
        ref = torch.where(other, hit.sims[:, 1], hit.sims[:, 0]).float().sort().values
    cache[key] = ref
    return ref


def match_percentile(index, sims: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
    """Match percentile (0..100, float32) of each top-1 cosine ``sims`` [...] found at stored layer ``layers`` [...] (same
    shape): the percentage of that layer's ``reference_similarities`` at or below it. NaN where the index has fewer
    than 2 rows (no reference). Returns a tensor of the shape of ``sims``."""
    sims, layers = sims.float().cpu(), layers.cpu()
    out = torch.full(sims.shape, float("nan"))
    for layer in layers.unique().tolist():
        ref = reference_similarities(index, int(layer))
        if ref.numel():
            sel = layers == layer
            out[sel] = 100.0 * torch.searchsorted(ref, sims[sel].contiguous(), right=True).float() / ref.numel()
    return out
