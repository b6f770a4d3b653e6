"""Measurements of lens quality on held-out text: LatentLens same-token hit rate, and the same question
asked of the logit lens (does a layer's top-k contain the current input token?)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from interp.lens.data import encode_texts, pad_batches
from interp.lens.latent import LatentIndex, layer_states
from interp.lens.logit import decode
from interp.results import Result

__all__ = ["HitRate", "token_hit_rate"]


@dataclass(frozen=True)
class HitRate(Result):
    """Share of queried words whose top-k contains their own token."""

    layer: int
    "the model layer queried"
    k: int
    "neighbours / next tokens considered"
    latent: float
    "LatentLens hit rate"
    logit: float
    "logit-lens rate on the same occurrences (top-k of the layer's next-token distribution contains the current token)"
    words: list[str]
    "[word] the token strings queried, in order"
    latent_hits: list[bool]
    "[word] LatentLens hit of each word"
    logit_hits: list[bool]
    "[word] logit-lens hit of each word"
    _shapes = {"words": "word", "latent_hits": "word", "logit_hits": "word"}

@torch.no_grad()
def token_hit_rate(model, index: LatentIndex, texts: list[str], *, layer: int, k: int = 5, min_pos: int = 2,
                   max_words: int | None = None) -> HitRate:
    """For each distinct token in ``texts`` (first occurrence at position >= ``min_pos``), query its state at model
    ``layer`` against ``index`` (all stored layers) and count a hit when a top-``k`` neighbour is the same token.
    The logit lens at that layer is scored on the same occurrences. Returns a ``HitRate``."""
    seqs = encode_texts(model, texts)
    first: dict[int, tuple[int, int]] = {}
    for d, s in enumerate(seqs):
        for p, t in enumerate(s.tolist()):
            if p >= min_pos and t not in first:
                first[t] = (d, p)
    picks = list(first.items())[:max_words]
    by_doc: dict[int, list[tuple[int, int]]] = {}
    for t, (d, p) in picks:
        by_doc.setdefault(d, []).append((t, p))
    docs = sorted(by_doc)
    states, toks = [], []
    for idx, ids, _ in pad_batches([seqs[d] for d in docs], 16):
        h = layer_states(model, ids, [layer])[layer]
        for row, i in enumerate(idx):
            for t, p in by_doc[docs[i]]:
                states.append(h[row, p])
                toks.append(t)
    q = torch.stack(states)
    tok = torch.tensor(toks)
    nb = index.search(q, k)
    latent_hits = (nb.token_ids == tok[:, None]).any(1)
    logit_top = decode(model, q).topk(k, dim=-1).indices.cpu()
    logit_hits = (logit_top == tok[:, None]).any(1)
    words = [model.tokenizer.decode([t]) for t in toks]
    return HitRate(layer, k, float(latent_hits.float().mean()), float(logit_hits.float().mean()), words,
                   latent_hits.tolist(), logit_hits.tolist())
