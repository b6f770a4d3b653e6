"""What every LatentLens index offers once built, whatever its storage: facts, model checks, snippets, neighbours.

``LatentIndex`` (in memory) and ``ShardedIndex`` (memory-mapped shards) derive from ``IndexBase``; they
provide the row metadata (``_meta``) and a document's tokens (``_doc``).
"""

from __future__ import annotations

import torch

from interp.errors import InterpError
from interp.lens.data import decoder_hash
from interp.lens.latent.search import Neighbors
from interp.models import model_name

__all__ = ["IndexBase"]


class IndexBase:
    """Shared behaviour of the LatentLens indexes (see the module docstring)."""

    d_model: int
    layers: list[int]
    vocab: list[str]
    bos_id: int | None
    model_name: str
    decoder: str

    def __len__(self) -> int:  # pragma: no cover - both subclasses define it
        raise NotImplementedError

    def _meta(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(token ids, doc ids, positions) of ``rows`` (any shape), as int64 tensors of that shape."""
        raise NotImplementedError

    def _doc(self, doc: int) -> list[int] | None:
        """Token ids of stored document ``doc`` (``None`` when there is none)."""
        raise NotImplementedError

    def _layer_list(self, layers: list[int] | None) -> list[int]:
        if layers is None:
            return list(self.layers)
        if isinstance(layers, int) or not all(isinstance(x, int) and not isinstance(x, bool) for x in layers):
            raise InterpError(f"layers must be a list of layer numbers, got {layers!r}")
        bad = [x for x in layers if x not in self.layers]
        if bad:
            raise InterpError(f"layers {bad} are not stored in this index; it stores {self.layers}")
        return list(layers)

    def _check_model(self, model, strict: bool) -> None:
        if model.cfg.d_model != self.d_model:
            raise InterpError(f"the index stores d_model {self.d_model} vectors but {model_name(model)!r} has d_model {model.cfg.d_model}")
        if strict and self.decoder and decoder_hash(model) != self.decoder:
            raise InterpError(
                f"this index was built with {self.model_name!r}; {model_name(model)!r} has other weights: "
                "build a new index for it (LatentIndex.build)")

    def _token(self, t: int) -> str:
        return self.vocab[t] if 0 <= t < len(self.vocab) else "?"

    def context(self, row: int, before: int = 8, after: int = 4) -> tuple[str, str, str]:
        """(left context, token, right context) strings of stored row ``row`` in its corpus text."""
        return self._context(*self._row_meta(row), before, after)

    def _row_meta(self, row: int) -> tuple[int, int, int]:
        """(token id, document id, position) of stored row ``row``."""
        tok_id, doc, pos = (int(x) for x in self._meta(torch.tensor([row])))
        return tok_id, doc, pos

    def _context(self, tok_id: int, doc: int, pos: int, before: int, after: int) -> tuple[str, str, str]:
        tok = self._token(tok_id)
        ids = self._doc(doc) if doc >= 0 else None
        if ids is None:
            return "", tok, ""
        piece = lambda xs: "".join(self.vocab[i] for i in xs if i != self.bos_id and 0 <= i < len(self.vocab))
        left = piece(ids[max(0, pos - before) : pos])
        right = piece(ids[pos + 1 : pos + 1 + after]) + ("…" if pos + 1 + after < len(ids) else "")
        return ("…" if pos - before > 0 else "") + left, tok, right

    def snippet(self, row: int, before: int = 8, after: int = 4) -> str:
        """The context of row ``row`` as one string with the token in ⟨ ⟩."""
        return self._snippet(*self._row_meta(row), before, after)

    def _snippet(self, tok_id: int, doc: int, pos: int, before: int = 8, after: int = 4) -> str:
        left, tok, right = self._context(tok_id, doc, pos, before, after)
        return f"{left}⟨{tok}⟩{right}"

    def _neighbors(self, sims: torch.Tensor, gids: torch.Tensor, layer_list: list[int]) -> Neighbors:
        """``Neighbors`` of merged candidates: global ids ``gids`` [n, k] (layer position * rows + row)."""
        n = len(self)
        rows, li = gids % n, gids // n
        lay = torch.tensor(layer_list)[li]
        tok, doc, pos = self._meta(rows)  # one lookup for every neighbour
        tokens = [[self._token(t) for t in r] for r in tok.tolist()]
        snippets = [[self._snippet(t, d, p) for t, d, p in zip(*rr, strict=True)]
                    for rr in zip(tok.tolist(), doc.tolist(), pos.tolist(), strict=True)]
        return Neighbors(sims=sims, rows=rows, layers=lay, token_ids=tok, tokens=tokens, snippets=snippets)
