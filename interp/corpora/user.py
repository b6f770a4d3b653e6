"""A user's own corpora through the same functions, plus splitting and cutting to a token budget."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from interp.corpora.split import split_docs
from interp.errors import InterpError

__all__ = ["load_corpus", "cut_to_tokens"]


def load_corpus(source, *, split: str = "all", field: str = "text", limit: int | None = None) -> list[str]:
    """Documents from ``source``: "prose" / "code", a list of strings, a ``.txt`` file (one document per
    blank-line-separated paragraph), a ``.jsonl`` file (``field`` of each line) or a ``datasets.Dataset``
    (its ``field`` column). ``split`` applies the deterministic hash split; ``limit`` keeps the first N.

    Returns a list of non-empty strings. Raises ``InterpError`` for an unknown name, a missing file, a
    JSONL line without ``field``, or an empty result.
    """
    from interp.corpora.builtin import DOMAINS

    if isinstance(source, str) and source in DOMAINS:
        docs = DOMAINS[source]("all")
    elif isinstance(source, (str, Path)):
        docs = _read_file(Path(source).expanduser(), field)
    elif hasattr(source, "column_names") and hasattr(source, "__getitem__"):  # datasets.Dataset
        if field not in source.column_names:
            raise InterpError(f"the dataset has no column {field!r} (columns: {', '.join(source.column_names)}); pass field=...")
        docs = [str(x) for x in source[field]]
    elif isinstance(source, Sequence) and all(isinstance(d, str) for d in source):
        docs = list(source)
    else:
        raise InterpError(
            f"cannot read a corpus from {type(source).__name__}: give 'prose', 'code', a list of strings, "
            "a .txt or .jsonl file, or a datasets.Dataset"
        )
    docs = [d for d in docs if d.strip()]
    docs = split_docs(docs, split, salt=str(source) if isinstance(source, str) and source in DOMAINS else "")
    if limit is not None:
        docs = docs[: max(int(limit), 0)]
    if not docs:
        raise InterpError(f"the corpus {source!r} has no documents" + (f" in split {split!r}" if split != "all" else ""))
    return docs


def _read_file(path: Path, field: str) -> list[str]:
    if not path.is_file():
        raise InterpError(f"no such corpus file: {path} (or use the built-in corpora 'prose' / 'code')")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() == ".jsonl":
        docs = []
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise InterpError(f"{path}:{i} is not valid JSON") from None
            if not isinstance(row, dict) or field not in row:
                raise InterpError(f"{path}:{i} has no field {field!r}; pass field=... naming the text field")
            docs.append(str(row[field]))
        return docs
    return [p.strip() for p in text.split("\n\n")]


def cut_to_tokens(docs: list[str], tokenizer, max_tokens: int) -> list[str]:
    """Each document cut at a token boundary to at most ``max_tokens`` tokens of ``tokenizer`` (a Hugging
    Face tokenizer, or a model with a ``.tokenizer``), special tokens not counted. Returns a list of strings."""
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    if max_tokens < 1:
        raise InterpError(f"max_tokens must be at least 1, got {max_tokens}")
    out = []
    for doc in docs:
        enc = tok(doc, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        out.append(doc if len(offsets) <= max_tokens else doc[: offsets[max_tokens - 1][1]])
    return out
