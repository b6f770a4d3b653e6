"""Bigram target: next-token statistics counted on the model's own tokenization, with back-off.

``bigram_table(model, texts)`` tokenizes ``texts`` exactly as the model does (BOS prepended when the
model prepends it) and counts (current token, next token) pairs. The table is stored sparse (only seen
pairs), so it scales to 50k-token vocabularies. ``BigramTable.rows(ids)`` returns the dense target
P(. | id) for a batch of current tokens: the counted distribution of a seen context, the unigram (over
next tokens) for an unseen context, and the uniform distribution when nothing was counted at all. There
is no smoothing, as in Chang & Bergen (2025).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from interp.errors import InterpError
from interp.models import tokens

__all__ = ["BigramTable", "bigram_table", "encode_texts"]


def encode_texts(model, texts: Sequence[str], *, max_len: int | None = None) -> list[torch.Tensor]:
    """Token ids of each text as the model tokenizes it (BOS prepended as the model does), cut to the context
    (or ``max_len``): ``interp.models.encode_texts`` keeping texts of at least 2 tokens (one next-token pair).

    Returns a list of 1-D int64 CPU tensors. Raises ``InterpError`` when ``texts`` is a bare string, is empty, or
    every text is shorter than 2 tokens.
    """
    return tokens.encode_texts(model, texts, max_len, min_tokens=2)


@dataclass(frozen=True)
class BigramTable:
    """Sparse bigram counts over a vocabulary of ``vocab`` tokens.

    ``pairs``: [2, nnz] (current, next) token ids of the seen pairs; ``counts``: [nnz] their counts (float64);
    ``unigram``: [vocab] counts of each token as a *next* token (the back-off distribution).
    """

    vocab: int
    pairs: torch.Tensor
    counts: torch.Tensor
    unigram: torch.Tensor

    def __post_init__(self) -> None:
        if self.pairs.ndim != 2 or self.pairs.shape[0] != 2 or self.pairs.shape[1] != self.counts.shape[0]:
            raise ValueError("BigramTable: pairs must be [2, nnz] and counts [nnz]")
        if self.unigram.shape != (self.vocab,):
            raise ValueError(f"BigramTable: unigram must be [{self.vocab}]")

    # ---- construction ------------------------------------------------------------------------
    @classmethod
    def from_sequences(cls, seqs: Sequence[torch.Tensor], vocab: int) -> BigramTable:
        """Count the pairs of consecutive tokens in each id sequence of ``seqs``."""
        cur = torch.cat([s[:-1] for s in seqs]).long()
        nxt = torch.cat([s[1:] for s in seqs]).long()
        if int(torch.cat([cur, nxt]).max()) >= vocab:
            raise InterpError(f"a token id is outside the vocabulary of {vocab}")
        key = cur * vocab + nxt
        uniq, cnt = torch.unique(key, return_counts=True)
        pairs = torch.stack([uniq // vocab, uniq % vocab])
        unigram = torch.bincount(nxt, minlength=vocab).double()
        return cls(vocab, pairs, cnt.double(), unigram)

    # ---- lookups -----------------------------------------------------------------------------
    def _sparse(self) -> torch.Tensor:
        cached = self.__dict__.get("_sparse_cache")
        if cached is None:
            cached = torch.sparse_coo_tensor(self.pairs, self.counts, (self.vocab, self.vocab), check_invariants=True).coalesce()
            object.__setattr__(self, "_sparse_cache", cached)
        return cached

    def context_counts(self) -> torch.Tensor:
        """[vocab] how often each token was seen as a current token (with a next token)."""
        return torch.zeros(self.vocab, dtype=torch.float64).index_add_(0, self.pairs[0], self.counts)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """[*ids.shape, vocab] float32 P(next | current = ids) with unigram, then uniform, back-off."""
        flat = ids.reshape(-1).long().cpu()
        uniq, inv = torch.unique(flat, return_inverse=True)
        dense = self._sparse().index_select(0, uniq).to_dense()
        totals = dense.sum(-1, keepdim=True)
        uni = self.unigram / self.unigram.sum() if self.unigram.sum() > 0 else torch.full((self.vocab,), 1.0 / self.vocab)
        dense = torch.where(totals > 0, dense / totals.clamp_min(1e-300), uni.to(dense.dtype).expand_as(dense))
        return dense.float()[inv].reshape(*ids.shape, self.vocab)

    def prob(self, cur: torch.Tensor, nxt: torch.Tensor) -> torch.Tensor:
        """P(nxt | cur) elementwise (same back-off as ``rows``), float64, same shape as ``cur``."""
        rows = self.rows(cur)
        return rows.gather(-1, nxt.long().cpu().unsqueeze(-1)).squeeze(-1).double()

    def dense(self) -> torch.Tensor:
        """[vocab, vocab] the full table (only for small vocabularies: vocab**2 floats)."""
        if self.vocab > 8192:
            raise InterpError(f"a dense {self.vocab}x{self.vocab} table is too large; use rows(ids)")
        return self.rows(torch.arange(self.vocab))

    # ---- persistence (inside a Subnetwork file) ----------------------------------------------
    def tensors(self, prefix: str = "bigram.") -> dict[str, torch.Tensor]:
        """The tensors to store: pairs, counts, unigram (keys prefixed)."""
        return {f"{prefix}pairs": self.pairs.contiguous(), f"{prefix}counts": self.counts.contiguous(),
                f"{prefix}unigram": self.unigram.contiguous()}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], vocab: int, prefix: str = "bigram.") -> BigramTable:
        return cls(vocab, tensors[f"{prefix}pairs"], tensors[f"{prefix}counts"], tensors[f"{prefix}unigram"])

    @property
    def n_tokens(self) -> int:
        """Number of counted (current, next) pairs."""
        return int(self.counts.sum())


def bigram_table(model, texts: Sequence[str]) -> BigramTable:
    """Count next-token statistics of ``texts`` on the model's own tokenization; returns a sparse ``BigramTable``.

    Each text is tokenized as ``model.to_tokens`` does (BOS prepended when the model prepends it, so BOS is
    a context too) and cut to the model's context.
    """
    return BigramTable.from_sequences(encode_texts(model, texts), int(model.cfg.d_vocab))
