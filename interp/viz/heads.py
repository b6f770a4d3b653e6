"""Readable summaries of sets of attention heads at any scale (9 heads or 270): counts, layer ranges, top-N rows.

A real model names hundreds of sink heads; a list of their names is a wall of text. These helpers say how many,
where (which layers have none, which have all), and which stand out, and leave the full picture to a
layer x head heat-map.
"""

from __future__ import annotations

import torch

__all__ = ["head_set_text", "top_heads", "layer_ranges"]

LIST_UP_TO = 12
"""Sets of at most this many heads are listed by name; larger ones are counted."""


def layer_ranges(layers: list[int]) -> str:
    """Sorted layer indices as ranges: [0, 1, 2, 10, 11] -> "L0–L2, L10–L11"; [] -> "none"."""
    if not layers:
        return "none"
    xs, out, start = sorted(set(layers)), [], None
    for i, x in enumerate(xs):
        if start is None:
            start = x
        if i + 1 == len(xs) or xs[i + 1] != x + 1:
            out.append(f"L{start}" if start == x else f"L{start}–L{x}")
            start = None
    return ", ".join(out)


def head_set_text(heads: list[tuple[int, int]], n_layers: int, n_heads: int) -> str:
    """One line for a set of (layer, head): the names when there are at most ``LIST_UP_TO``, else
    "200 of 270 (74%); none in L0–L2; all 9 in L12–L20", always with the count. Returns "none" for no head."""
    if not heads:
        return "none"
    total = n_layers * n_heads
    if len(heads) <= LIST_UP_TO:
        return f"{len(heads)} of {total}: " + ", ".join(f"L{a}H{b}" for a, b in sorted(heads))
    per = [0] * n_layers
    for a, _ in heads:
        per[a] += 1
    parts = [f"{len(heads)} of {total} ({100 * len(heads) / total:.0f}%)"]
    parts.append(f"none in {layer_ranges([i for i, c in enumerate(per) if c == 0])}")
    full = [i for i, c in enumerate(per) if c == n_heads]
    if full:
        parts.append(f"all {n_heads} in {layer_ranges(full)}")
    return "; ".join(parts)


def top_heads(values: torch.Tensor, n: int = 10, *, largest: bool = True, among: torch.Tensor | None = None) -> list[list]:
    """Rows [rank, "L{l}H{h}", value] of the ``n`` heads with the largest (or smallest) ``values`` [layer, head],
    optionally only ``among`` a [layer, head] bool mask; NaN values are skipped; ties go to the lower (layer, head)."""
    v = values.float().flatten()
    keep = ~v.isnan() if among is None else (~v.isnan() & among.flatten())
    n_h = values.shape[1]
    idx = [i for i in range(v.numel()) if keep[i]]
    idx.sort(key=lambda i: (-float(v[i]) if largest else float(v[i]), i))
    return [[r + 1, f"L{i // n_h}H{i % n_h}", float(v[i])] for r, i in enumerate(idx[:n])]
