"""Texts to token ids, right-padded batches and the device a model runs on: the one copy of each.

Every analysis that turns a corpus into ids, or ids of different lengths into one batch, goes through here,
so BOS handling, truncation and the pad value are decided once. Right padding never changes the states of
real tokens in a causal model, so the batches need no attention mask as long as padded positions are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from interp.errors import InterpError

__all__ = ["model_device", "text_ids", "encode_texts", "pad_right", "greedy_ids"]


def model_device(model) -> torch.device:
    """The device of ``model``'s first parameter (where its inputs must go; right under ``device_map`` too)."""
    return next(model.parameters()).device


def text_ids(model, text: str, *, max_len: int | None = None, prepend_bos: bool | None = None) -> torch.Tensor:
    """[pos] int64 CPU ids of ``text`` as ``model.to_tokens`` gives them (BOS prepended when the model does;
    ``prepend_bos=False``: never), cut to the first ``max_len`` (default: the model's context)."""
    bos = {} if prepend_bos is None else {"prepend_bos": prepend_bos}
    limit = max_len or getattr(model.cfg, "n_ctx", None) or None
    return model.to_tokens(text, truncate=False, move_to_device=False, **bos)[0, :limit].cpu()


def encode_texts(model, texts: Iterable[str], max_len: int | None = None, *, min_tokens: int = 1) -> list[torch.Tensor]:
    """Token ids [pos] (int64, CPU) of each text, as ``text_ids`` gives them; texts that are not strings, are blank or
    give fewer than ``min_tokens`` ids are skipped.

    The tokenizer runs once on the whole list when it alone gives what ``model.to_tokens`` gives (checked on the first
    text); otherwise text by text. Raises ``InterpError`` when ``texts`` is one string, no text is left or one is not valid Unicode.
    """
    if isinstance(texts, str):
        raise InterpError("texts must be a list of strings, not one string: wrap it in a list")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise InterpError("the corpus is empty: give at least one non-empty text")
    for i, t in enumerate(texts):
        try:
            t.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate: what Python makes of bytes that are not UTF-8
            raise InterpError(f"text {i} of the corpus is not valid text (character {e.start} is U+{ord(t[e.start]):04X}, a "
                              "byte that is not UTF-8 or a lone surrogate): fix or drop it") from None
    limit = max_len or getattr(model.cfg, "n_ctx", None) or None
    first = text_ids(model, texts[0], max_len=limit)
    fast = _tokenizer_ids(model, texts)
    if fast is not None and fast[0][:limit] == first.tolist():
        seqs = [torch.tensor(ids[:limit], dtype=torch.long) for ids in fast]
    else:
        seqs = [first] + [text_ids(model, t, max_len=limit) for t in texts[1:]]
    out = [s for s in seqs if s.numel() >= min_tokens]
    if not out:
        raise InterpError(f"every text is shorter than {min_tokens} tokens: give longer texts")
    return out


def _tokenizer_ids(model, texts: list[str]) -> list[list[int]] | None:
    """The tokenizer's own ids of ``texts`` in one call, or None when it cannot batch them."""
    tok = getattr(model, "tokenizer", None)
    try:
        return tok(texts)["input_ids"] if tok is not None else None
    except Exception:  # any tokenizer that cannot batch plain strings: fall back to one text at a time
        return None


def pad_right(seqs: Sequence[torch.Tensor | Sequence[int]], pad_id: int = 0, *,
              width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id sequences into one batch: returns (ids [batch, width] int64 filled with ``pad_id`` after each
    sequence, mask [batch, width] bool, True on real tokens). ``width``: default the longest sequence; longer ones
    are cut to it."""
    if not seqs:
        raise InterpError("no sequences to batch")
    rows = [torch.as_tensor(s, dtype=torch.long).reshape(-1) for s in seqs]
    width = width if width is not None else max(r.numel() for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, r in enumerate(rows):
        n = min(r.numel(), width)
        ids[i, :n] = r[:n]
        mask[i, :n] = True
    return ids, mask


@torch.no_grad()
def greedy_ids(model, tokens: torch.Tensor, n: int = 1, k: int = 1) -> torch.Tensor:
    """The model's greedy continuation of ``tokens`` [1, T] (or [T]): [1, T + n], one forward per new token with only
    the last position's logits (hooks active around the call apply). With ``k > 1`` (and ``n == 1``): [k] the ids of
    the ``k`` most likely next tokens instead, best first. The one next-token helper of the workbench."""
    tokens = tokens.reshape(1, -1).to(model_device(model))
    if k > 1:
        return model(tokens, logits_to_keep=1)[0, -1].topk(k).indices.cpu()
    for _ in range(n):
        nxt = model(tokens, logits_to_keep=1)[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, nxt], dim=-1)
    return tokens
