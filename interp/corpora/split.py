"""The deterministic train / held-out split of a list of documents, by content hash."""

from __future__ import annotations

import hashlib

from interp.errors import InterpError

__all__ = ["split_docs", "SPLITS"]

SPLITS = ("train", "heldout", "all")


def split_docs(docs: list[str], split: str = "all", *, heldout_fraction: float = 0.1, salt: str = "") -> list[str]:
    """The ``split`` ("train", "heldout" or "all") of ``docs``, order kept.

    A document is held out when the hash of its text (with ``salt``) falls in the first ``heldout_fraction``
    of the hash range, so the split does not depend on the order or number of documents.
    """
    if split not in SPLITS:
        raise InterpError(f"unknown split {split!r}: use one of {', '.join(SPLITS)}")
    if not 0.0 <= heldout_fraction < 1.0:
        raise InterpError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    if split == "all":
        return list(docs)

    def held(doc: str) -> bool:
        h = int.from_bytes(hashlib.sha256((salt + "\0" + doc).encode()).digest()[:8], "big")
        return h / 2**64 < heldout_fraction

    return [d for d in docs if held(d) == (split == "heldout")]
