"""Corpora for corpus-scale jobs: whatever ``interp.corpora.load_corpus`` reads, plus Parquet files.

Documents are read in the driver, once: the LatentLens keep rules (dedup, per-token cap) are decided in corpus
order over the whole corpus, so every document needs a stable id (its position here) before any worker runs.
"""

from __future__ import annotations

from pathlib import Path

from interp.errors import InterpError

__all__ = ["read_corpus"]


def read_corpus(source, *, field: str = "text", limit: int | None = None) -> list[str]:
    """Documents of ``source``: "prose" / "code" (Python's own manual and standard library), a list of strings, a
    ``.txt`` / ``.jsonl`` / ``.parquet`` file (``field`` is the text column), or a ``datasets.Dataset``.

    Returns a list of non-empty strings (the first ``limit`` when given); ``InterpError`` for an unreadable source.
    """
    from interp.corpora import load_corpus

    if isinstance(source, (str, Path)) and Path(source).suffix.lower() == ".parquet":
        docs = _read_parquet(Path(source).expanduser(), field)
        docs = [d for d in docs if d.strip()][: limit if limit is not None else None]
        if not docs:
            raise InterpError(f"the corpus {source} has no documents")
        return docs
    return load_corpus(source, field=field, limit=limit)


def _read_parquet(path: Path, field: str) -> list[str]:
    if not path.is_file():
        raise InterpError(f"no such corpus file: {path}")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InterpError("reading Parquet needs pyarrow: pip install pyarrow (it comes with interp-workbench[scale])") from None
    try:
        names = pq.read_schema(path).names
        table = pq.read_table(path, columns=[field]) if field in names else None
    except Exception as e:  # pyarrow raises its own error types for damaged files
        raise InterpError(f"{path} is not a readable Parquet file ({type(e).__name__}: {str(e).splitlines()[0]})") from None
    if table is None:
        raise InterpError(f"{path} has no column {field!r} (columns: {', '.join(names)}); pass field=... (--field) naming the text column")
    return [str(x) for x in table.column(field).to_pylist() if x is not None]
