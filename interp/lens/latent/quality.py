"""How good a LatentLens match is: a top-1 cosine placed in the distribution of the corpus's own top-1 cosines.

A cosine alone does not say whether a neighbour is a good description: 0.73 is a close match at one layer and a poor
one at another, and an index always returns *some* neighbour, even for a token its corpus never covers. So each
query layer gets a reference, measured the way the prompt is searched: a fixed, seeded sample of up to ``SAMPLE``
stored corpus tokens (positions below ``MAX_POS``) is run through the model again, each one's state at the query
layer is searched over the same stored layers, and the cosine of its nearest neighbour that is *not the token itself*
(another document or position) is kept. A query's **match percentile** is the share of that reference at or below the
query's top-1 cosine, in percent: about 50 means the prompt's state is as close to its neighbour as a typical corpus
token is to its nearest other corpus token; below ``WEAK`` (5) it is farther than 95% of them, a sign that the corpus
holds nothing like this state and the neighbours should not be read as a description.

An index without its corpus tokens (``LatentIndex.from_vectors``) has no texts to re-run: its reference is the stored
rows of the top-1's stored layer against their nearest other row (``stored_reference``), which fits queries taken at a
stored layer. References are cached on the index object, per (query layer, stored layers searched, row count, model).
"""

from __future__ import annotations

import torch

from interp.lens.latent.layers import layer_states
from interp.models import model_name, pad_right

__all__ = ["SAMPLE", "MAX_POS", "WEAK", "query_reference", "stored_reference", "match_percentile"]

SAMPLE = 256
"""Corpus tokens whose top-1 cosines form a reference (a fixed, seeded sample of the stored rows)."""
MAX_POS = 128
"""Only stored rows at positions below this are sampled, so re-running their texts stays cheap on long documents."""
PER_DOC = 16
"""At most this many sampled rows come from one document: at least 16 documents, at most 16 x 128 tokens to re-run."""
WEAK = 5.0
"""A match percentile below this is shown as a weak match."""
_SEED = 0
_BATCH = 16


def _cache(index) -> dict:
    return index.__dict__.setdefault("_match_reference", {})


def _row_docs(index) -> tuple[torch.Tensor, torch.Tensor]:
    """(doc ids [rows], positions [rows]) of every stored row, int64 (in-memory or sharded index)."""
    if hasattr(index, "doc_ids"):  # LatentIndex
        return index.doc_ids.long().cpu(), index.positions.long().cpu()
    shards = [s for s in index.shards if s.rows]
    return (torch.cat([s.get("doc_ids").long() for s in shards]), torch.cat([s.get("positions").long() for s in shards]))


def _sample_rows(index) -> torch.Tensor:
    """Up to ``SAMPLE`` stored rows (sorted), at most ``PER_DOC`` from each document and all at positions below
    ``MAX_POS``, from documents in a seeded random order: the same rows on every call, and few texts to re-run."""
    docs, pos = _row_docs(index)
    ok = (docs >= 0) & (pos < MAX_POS)
    if int(ok.sum()) < 2:
        return torch.empty(0, dtype=torch.long)
    gen = torch.Generator().manual_seed(_SEED)
    cand = torch.unique(docs[ok])
    picked: list[torch.Tensor] = []
    total = 0
    for d in cand[torch.randperm(len(cand), generator=gen)].tolist():
        rows = (ok & (docs == d)).nonzero()[:, 0]
        rows = rows[torch.randperm(len(rows), generator=gen)[:PER_DOC]]
        picked.append(rows)
        total += len(rows)
        if total >= SAMPLE:
            break
    return torch.cat(picked)[:SAMPLE].sort().values


@torch.no_grad()
def query_reference(model, index, layers: list[int], search_layers: list[int] | None) -> dict[int, torch.Tensor] | None:
    """{query layer: [n] float32 sorted top-1 cosines of sampled corpus tokens}, each token's state at that model layer
    searched over ``search_layers`` (default: all stored) with the token itself left out. None when the index holds no
    corpus tokens to re-run (built from vectors) or they do not fit ``model``'s vocabulary and context.

    Cost, once per index and model: one forward pass over the sampled texts (``SAMPLE`` rows from at least
    ``SAMPLE / PER_DOC`` texts, each cut after its last sampled position, so at most 16 x ``MAX_POS`` tokens); then
    one search of ``SAMPLE`` queries per query layer not asked before."""
    stored = list(index.layers) if search_layers is None else list(search_layers)
    key = lambda layer: ("query", int(layer), tuple(stored), len(index), model_name(model))  # noqa: E731
    cache = _cache(index)
    todo = [x for x in layers if key(x) not in cache]
    if todo:
        sample = _corpus_states(model, index)
        if sample is None:
            return None
        docs, pos, states = sample
        k = len(stored) + 1  # the token itself can come back once per stored layer
        for x in todo:
            nb = index.search(states[x], k, stored)
            _, nd, npos = index._meta(nb.rows)
            other = (nd != docs[:, None]) | (npos != pos[:, None])
            first = other.float().argmax(1)
            cache[key(x)] = nb.sims.gather(1, first[:, None])[:, 0].float()[other.any(1)].sort().values
    return {x: cache[key(x)] for x in layers}


def _corpus_states(model, index) -> tuple[torch.Tensor, torch.Tensor, dict[int, torch.Tensor]] | None:
    """(doc ids [n], positions [n], {model layer 0..n_layers: [n, d_model] float32 states}) of the sampled stored rows,
    re-run through ``model`` (cached on the index); None when there is nothing to re-run (see ``query_reference``)."""
    key = ("states", len(index), model_name(model))
    cache = _cache(index)
    if key in cache:
        return cache[key]
    rows = _sample_rows(index)
    out = None
    if len(rows) >= 2:
        _, docs, pos = index._meta(rows)
        texts = {d: index._doc(d) for d in sorted(set(docs.tolist()))}
        n_ctx = int(getattr(model.cfg, "n_ctx", 0) or 0) or MAX_POS
        fits = all(t is not None and max(t, default=0) < model.cfg.d_vocab for t in texts.values()) and int(pos.max()) < n_ctx
        if fits:
            out = (docs, pos, _states(model, texts, docs, pos))
    cache[key] = out
    return out


def _states(model, texts: dict[int, list[int]], docs: torch.Tensor, pos: torch.Tensor) -> dict[int, torch.Tensor]:
    """{layer 0..n_layers: [n, d_model] float32} states of the tokens at (``docs``, ``pos``) [n], run in batches of texts."""
    layers = list(range(model.cfg.n_layers + 1))
    order = sorted(texts)
    where = {d: i for i, d in enumerate(order)}
    prefix = {d: texts[d][: 1 + int(pos[docs == d].max())] for d in order}  # causal: a state needs only its prefix
    out = {x: torch.empty(len(docs), model.cfg.d_model) for x in layers}
    doc_of, pos_of = docs.tolist(), pos.tolist()
    for b in range(0, len(order), _BATCH):
        ids, _ = pad_right([prefix[d] for d in order[b : b + _BATCH]], 0)
        h = layer_states(model, ids, layers)
        for i, (d, p) in enumerate(zip(doc_of, pos_of, strict=True)):
            if b <= where[d] < b + _BATCH:
                for x in layers:
                    out[x][i] = h[x][where[d] - b, p].float().cpu()
    return out


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
def stored_reference(index, layer: int) -> torch.Tensor:
    """[n] float32, sorted: the cosine of each of up to ``SAMPLE`` sampled stored rows of ``layer`` to its nearest other
    stored row of that layer (n = 0 when the index has fewer than 2 rows); cached on ``index``."""
    key = ("stored", int(layer), len(index))
    cache = _cache(index)
    if key not in cache:
        n = len(index)
        if n < 2:
            cache[key] = torch.empty(0)
        else:
            rows = torch.randperm(n, generator=torch.Generator().manual_seed(_SEED))[: min(SAMPLE, n)].sort().values
            hit = index.search(_stored_vectors(index, layer, rows), k=2, layers=[int(layer)])
            cache[key] = torch.where(hit.rows[:, 0] == rows, hit.sims[:, 1], hit.sims[:, 0]).float().sort().values
    return cache[key]


def match_percentile(model, index, layers: list[int], sims: torch.Tensor, source_layers: torch.Tensor,
                     search_layers: list[int] | None = None) -> torch.Tensor:
    """[layer, pos] float32 match percentiles (0..100) of the top-1 cosines ``sims`` [layer, pos] of queries taken at
    model ``layers`` [layer], whose top-1 came from stored layers ``source_layers`` [layer, pos]: the percentage of the
    query layer's reference (``query_reference``; ``stored_reference`` of the source layer for an index without its
    corpus, or ``model=None``) at or below each cosine. NaN where there is no reference (an index of fewer than 2 rows)."""
    sims, source_layers = sims.float().cpu(), source_layers.cpu()
    out = torch.full(sims.shape, float("nan"))
    refs = query_reference(model, index, layers, search_layers) if model is not None else None
    for li, x in enumerate(layers):
        if refs is not None:
            out[li] = _percent(refs[x], sims[li])
            continue
        for layer in source_layers[li].unique().tolist():
            sel = source_layers[li] == layer
            out[li, sel] = _percent(stored_reference(index, int(layer)), sims[li, sel])
    return out


def _percent(ref: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Percentage of sorted ``ref`` at or below each of ``values`` (NaN when ``ref`` is empty)."""
    if ref.numel() == 0:
        return torch.full(values.shape, float("nan"))
    return 100.0 * torch.searchsorted(ref, values.contiguous(), right=True).float() / ref.numel()
