"""The two corpora every Python installation carries: reference-manual prose and standard-library code.

Both are deterministic for a given Python version: documents come in a fixed order (sorted topic keys,
sorted file paths) and the train / held-out split is by content hash (``split_docs``).
"""

from __future__ import annotations

import re
import sysconfig
from functools import lru_cache
from pathlib import Path

from interp.corpora.split import split_docs

__all__ = ["prose", "code", "DOMAINS"]

_DEF = re.compile(r"^(?:async def |def |class |@)", re.M)


def _is_prose(par: str) -> bool:
    lines = par.splitlines()
    if not lines or par.lstrip().startswith((">>>", "*", "-", "+", "=")):
        return False
    indented = sum(1 for line in lines if line.startswith((" ", "\t")))
    return indented <= len(lines) // 4 and len(par.split()) >= 25 and not set(lines[-1].strip()) <= set("*=-^~")


@lru_cache(maxsize=2)
def _prose_all(min_chars: int, max_chars: int) -> tuple[str, ...]:
    from pydoc_data.topics import topics

    out = []
    for key in sorted(topics):
        for par in re.split(r"\n\s*\n", topics[key]):
            par = par.strip()
            if _is_prose(par):
                text = " ".join(par.split())  # undo the manual's hard line wrap
                if min_chars <= len(text) <= max_chars:
                    out.append(text)
    return tuple(dict.fromkeys(out))  # drop repeats (topics share paragraphs), keep order


def prose(split: str = "train", *, min_chars: int = 200, max_chars: int = 1200, heldout_fraction: float = 0.1) -> list[str]:
    """Paragraphs of the Python reference manual (one document each, hard line breaks joined).

    ``split``: "train", "heldout" or "all". Returns a list of strings, in a fixed order.
    """
    return split_docs(list(_prose_all(min_chars, max_chars)), split, heldout_fraction=heldout_fraction, salt="prose")


@lru_cache(maxsize=2)
def _code_all(min_chars: int, max_chars: int, max_files: int) -> tuple[str, ...]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py") if not p.name.startswith(("_", "test")))[:max_files]
    out = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        starts = [m.start() for m in _DEF.finditer(text)]
        for a, b in zip(starts, starts[1:] + [len(text)]):
            chunk = text[a:b].strip("\n")
            if chunk.startswith("@") and "\ndef " not in chunk and "\nclass " not in chunk:
                continue
            if min_chars <= len(chunk) <= max_chars:
                out.append(chunk)
    return tuple(dict.fromkeys(out))


def code(
    split: str = "train", *, min_chars: int = 200, max_chars: int = 1500, max_files: int = 400, heldout_fraction: float = 0.1
) -> list[str]:
    """Top-level ``def`` / ``class`` chunks of the standard library's own ``.py`` files (not its tests).

    ``split``: "train", "heldout" or "all". Returns a list of source strings, in a fixed order.
    """
    return split_docs(list(_code_all(min_chars, max_chars, max_files)), split, heldout_fraction=heldout_fraction, salt="code")


DOMAINS = {"prose": prose, "code": code}
