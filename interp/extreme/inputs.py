"""Turn texts (or ready token ids) into right-padded batches for the extreme-token analyses.

Right padding is safe with causal attention: a real position never sees a later (padding) position, so
its activations equal those of the unpadded text; the statistics simply ignore positions ``>= length``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from interp.errors import InterpError
from interp.models import pad_right, text_ids

Texts = str | Sequence[str] | torch.Tensor | Sequence[torch.Tensor]


def encode(model, texts: Texts, max_len: int | None = None, min_len: int = 2) -> list[torch.Tensor]:
    """A list of 1-D token-id tensors (CPU), one per text, each cut to ``max_len`` (default: the model context).

    ``texts``: one string, a list of strings (BOS is prepended as the model does by default), a [n, pos]
    id tensor, or a list of 1-D id tensors (used as given: include the first/BOS token yourself).
    Raises ``InterpError`` for an empty corpus, a text with fewer than ``min_len`` tokens, ``None`` or another
    type, float or boolean ids, ids outside the vocabulary, or a ``max_len`` that is not a whole number >= 1.
    """
    from interp.validate import check_int

    if max_len is not None:
        max_len = check_int("max_len", max_len, minimum=1)
    if texts is None or not isinstance(texts, (str, torch.Tensor, Sequence)):
        raise InterpError(f"texts must be a string, a list of strings or a token-id tensor, got {type(texts).__name__}")
    n_ctx = int(getattr(model.cfg, "n_ctx", 0) or 0) or None
    limit = min(x for x in (max_len, n_ctx) if x) if (max_len or n_ctx) else None
    if isinstance(texts, str):
        texts = [texts]
    if isinstance(texts, torch.Tensor):
        if texts.ndim == 1:
            texts = texts[None]
        if texts.ndim != 2:
            raise InterpError(f"token ids must be a [n, pos] tensor, got shape {tuple(texts.shape)}")
        rows = list(_ids(model, texts, "token ids"))
    else:
        rows = []
        for i, t in enumerate(texts):
            if isinstance(t, torch.Tensor):
                rows.append(_ids(model, t, f"text {i}").reshape(-1))
            elif isinstance(t, str):
                if not t.strip():
                    raise InterpError(f"text {i} is empty: give at least one word")
                rows.append(text_ids(model, t, max_len=limit))
            elif isinstance(t, (list, tuple)):
                raise InterpError(f"text {i} is a list of parts (an image prompt): scan it with interp.extreme.scan, "
                                  "which takes image + text prompts of a vision-language model")
            else:
                raise InterpError(f"text {i} is a {type(t).__name__}; give strings or token-id tensors")
    if not rows:
        raise InterpError("no texts given: pass a prompt or a list of texts")
    out = []
    for i, r in enumerate(rows):
        r = r[:limit] if limit else r
        if r.numel() < min_len:
            raise InterpError(f"text {i} has {r.numel()} tokens; the extreme-token statistics need at least {min_len}")
        out.append(r)
    return out


def _ids(model, ids: torch.Tensor, name: str) -> torch.Tensor:
    """``ids`` as a long CPU tensor after checking its dtype (integer) and values (inside the vocabulary)."""
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise InterpError(f"{name}: token ids must be an integer tensor, got dtype {str(ids.dtype).replace('torch.', '')}")
    vocab = int(model.cfg.d_vocab)
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab):
        bad = ids[(ids < 0) | (ids >= vocab)][:3].tolist()
        raise InterpError(f"{name}: token ids {bad} are outside the vocabulary (0..{vocab - 1})")
    return ids.long().cpu()


def check_batch_size(batch_size) -> int:
    """``batch_size`` as an int; ``InterpError`` unless it is a whole number of at least 1."""
    from interp.validate import check_int

    return check_int("batch_size", batch_size, minimum=1)


def batches(rows: list[torch.Tensor], batch_size: int, pad_id: int = 0) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor]]:
    """Yield (text indices, ids [b, pos] right-padded, lengths [b]); texts of similar length go together."""
    batch_size = check_batch_size(batch_size)
    order = sorted(range(len(rows)), key=lambda i: (-rows[i].numel(), i))
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        lens = torch.tensor([rows[i].numel() for i in idx])
        yield idx, pad_right([rows[i] for i in idx], pad_id)[0], lens


def pad_id(model) -> int:
    """A token id to pad with (the tokenizer's pad id, else 0); its value never reaches a real position."""
    tok = getattr(model, "tokenizer", None)
    pid = getattr(tok, "pad_token_id", None) if tok is not None else None
    return int(pid) if pid is not None else 0
