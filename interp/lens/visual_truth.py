"""The LatentLens paper's interpretability rate, judged by planted truth instead of an LLM judge.

A visual token is *interpretable* under a lens at a layer when one of its top-``k`` words names an attribute its patch
shows: the word, stripped and lower-cased, is one of ``interp.zoo.scenes.SYNONYMS`` of the patch's colour or shape.
Empty patches show no attribute and are left out. Floors: the same test on ``k`` words drawn uniformly from the
vocabulary (``random_word_rate``), and the **shuffled-patch control** (``patch_hits(..., shuffle_seed=s)``): each token's
words judged against another object patch's attributes. With six colours and four shapes a lens whose top words are
always attribute words scores high on both; only the gap between them says the words follow the patch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from interp.lens.visual import VisualLensResult
from interp.zoo import scenes as world

__all__ = ["names_attribute", "patch_hits", "rate", "random_word_rate"]

_WORDS = {w: attr for attr, ws in world.SYNONYMS.items() for w in ws}


def names_attribute(word: str, attributes: Sequence[str | None]) -> bool:
    """True when ``word`` (stripped, lower-cased) names one of ``attributes`` (colours or shapes)."""
    return _WORDS.get(word.strip().lower()) in {a for a in attributes if a}


def patch_hits(result: VisualLensResult, truth: list[world.Scene], k: int | None = None,
               shuffle_seed: int | None = None) -> torch.Tensor:
    """[layer, vis] bool: does a top-``k`` word (all stored words by default) name an attribute of the token's patch?
    ``truth[i]`` is the scene shown by image ``i`` of the prompt. Rows of empty patches are False (see ``shown``).
    ``shuffle_seed``: judge each object patch against the attributes of another object patch of the prompt, in a random
    cyclic order (the control; needs two object patches or more)."""
    cells = [truth[img].cells[r][c] for img, r, c in result.patches.tolist()]
    if shuffle_seed is not None:
        objs = [v for v, cell in enumerate(cells) if cell is not None]
        order = torch.randperm(len(objs), generator=torch.Generator().manual_seed(shuffle_seed)).tolist()
        moved = list(cells)
        for j, v in enumerate(order):  # each object patch takes the attributes of the next one in a random cycle
            moved[objs[v]] = cells[objs[order[(j + 1) % len(order)]]]
        cells = moved
    out = torch.zeros(len(result.layers), result.visual.numel(), dtype=torch.bool)
    for v, cell in enumerate(cells):
        if cell is None:
            continue
        for li in range(len(result.layers)):
            words = result.words[li][v][: k or None]
            out[li, v] = any(names_attribute(w, cell) for w in words)
    return out


def shown(result: VisualLensResult, truth: list[world.Scene]) -> torch.Tensor:
    """[vis] bool: the token's patch shows an object (the tokens the rate counts)."""
    return torch.tensor([truth[i].cells[r][c] is not None for i, r, c in result.patches.tolist()], dtype=torch.bool)


def rate(hits: torch.Tensor, keep: torch.Tensor) -> tuple[float, float]:
    """(share of kept tokens that are interpretable, its binomial standard error) for hits [..., vis] and keep [vis]."""
    x = hits[..., keep].float().flatten()
    n = x.numel()
    if n == 0:
        return float("nan"), float("nan")
    p = x.mean().item()
    return p, math.sqrt(p * (1 - p) / n)


def random_word_rate(vocab: list[str], truth: list[world.Scene], k: int = 5, seed: int = 0) -> tuple[float, float]:
    """(rate, standard error) of ``k`` words drawn uniformly from ``vocab`` per object patch: the chance floor."""
    g = torch.Generator().manual_seed(seed)
    hits = []
    for s in truth:
        for _, _, col, shp in s.patch_truth():
            if col is None:
                continue
            pick = torch.randint(len(vocab), (k,), generator=g).tolist()
            hits.append(any(names_attribute(vocab[i], (col, shp)) for i in pick))
    t = torch.tensor(hits, dtype=torch.bool)
    return rate(t, torch.ones_like(t))
