"""Held-out text for the bundled zoo models: documents their training never saw, for evaluations and reports."""

from __future__ import annotations

from interp.zoo import bundled_name, stories

__all__ = ["heldout_stories", "heldout_texts"]

HELDOUT_SEED = 2
"""Document seed of the ``stories`` model's held-out split (``interp.zoo.train``: world seed 0, training documents seed 1,
held-out documents seed 2)."""


def heldout_stories(n: int = 32) -> list[str]:
    """The texts of ``n`` held-out ``stories`` documents (world seed 0, document seed 2), the same list on every call."""
    return [d.text for d in stories.generate(stories.World.from_seed(0), n, seed=HELDOUT_SEED)]


def heldout_texts(name: str, n: int = 32) -> list[str] | None:
    """``n`` held-out documents for the zoo model called ``name`` (a zoo name, or a folder whose last part is one,
    as ``interp.models.model_name`` gives), or None when the zoo has no held-out text for it (only ``stories`` has)."""
    if bundled_name(name) != "stories":
        return None
    return heldout_stories(n)
