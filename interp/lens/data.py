"""Corpus helpers shared by the tuned lens and LatentLens: tokenising texts (``interp.models.encode_texts``: BOS
prepended as the model does, cut to the context, blank texts skipped) and batching them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

from interp.models import encode_texts, pad_right

__all__ = ["encode_texts", "pad_batches", "decoder_hash"]


def pad_batches(seqs: list[torch.Tensor], batch_size: int, pad_id: int = 0) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (indices into ``seqs``, right-padded ids [batch, len], mask [batch, len] True on real tokens), ``batch_size``
    sequences at a time in order (see ``interp.models.pad_right``)."""
    for start in range(0, len(seqs), batch_size):
        idx = list(range(start, min(start + batch_size, len(seqs))))
        ids, mask = pad_right([seqs[i] for i in idx], pad_id)
        yield idx, ids, mask


def decoder_hash(model) -> str:
    """SHA-256 (hex, 16 chars) of the decoder weights: final norm and unembedding, as float32 on the CPU.

    Two models with the same hash decode residual vectors identically, so a lens trained on one fits the other.
    """
    h = hashlib.sha256()
    for module in (model.ln_final, model.unembed):
        for name, p in sorted(module.named_parameters()):
            h.update(name.encode())
            h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
