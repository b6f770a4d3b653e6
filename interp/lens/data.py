"""Corpus helpers shared by the tuned lens and LatentLens: tokenising texts and batching them."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch

from interp.errors import InterpError

__all__ = ["encode_texts", "pad_batches", "decoder_hash"]


def encode_texts(model, texts: list[str], max_len: int | None = None) -> list[torch.Tensor]:
    """Token ids [n] of each text as the model tokenises a prompt (BOS prepended when the model does),
    truncated to ``max_len`` (default: the model's context). Empty texts are skipped.

    Raises ``InterpError`` when no text is left.
    """
    if isinstance(texts, str):
        raise InterpError("texts must be a list of strings, not one string: wrap it in a list")
    max_len = max_len or model.cfg.n_ctx
    out = []
    for text in texts:
        if not text or not text.strip():
            continue
        ids = model.to_tokens(text, truncate=True, move_to_device=False)[0, :max_len].cpu()
        out.append(ids)
    if not out:
        raise InterpError("the corpus is empty: give at least one non-empty text")
    return out


def pad_batches(seqs: list[torch.Tensor], batch_size: int, pad_id: int = 0) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (indices into ``seqs``, right-padded ids [batch, len], mask [batch, len] True on real tokens).

    Right padding never changes the states of real tokens in a causal model, so padded batches need no
    attention mask as long as padded positions are ignored.
    """
    for start in range(0, len(seqs), batch_size):
        idx = list(range(start, min(start + batch_size, len(seqs))))
        width = max(len(seqs[i]) for i in idx)
        ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.bool)
        for row, i in enumerate(idx):
            ids[row, : len(seqs[i])] = seqs[i]
            mask[row, : len(seqs[i])] = True
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
