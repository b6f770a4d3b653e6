"""Which weight matrices of a bridge are maskable, and which layer and component each one is.

Maskable = the attention and MLP weight matrices of the transformer blocks, found by name and shape on
the bridge's own parameters (``model.named_parameters()``, the names ``functional_call`` accepts):

- GPT-2 (``attn.q/k/v`` split by the bridge from ``c_attn``, ``attn.o`` = ``c_proj``, ``mlp.c_fc``, ``mlp.c_proj``),
- Llama (``q/k/v/o_proj``, ``gate_proj``, ``up_proj``, ``down_proj``),
- NeoX (``attention.q/k/v`` split from ``query_key_value``, ``attention.o`` = ``dense``, ``dense_h_to_4h``, ``dense_4h_to_h``).

The bridge keeps the fused ``qkv`` matrix next to the split ``q``/``k``/``v`` ones but its forward pass
uses the split ones, so a fused matrix is skipped whenever split ones exist in the same block. Embeddings,
the unembedding, norms and biases are never maskable (they are not 2-D weights inside a block).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from interp.errors import InterpError

__all__ = ["MaskableWeight", "find_maskable", "COMPONENTS", "clean_name"]

COMPONENTS = ("Q", "K", "V", "O", "QKV", "MLP in", "MLP out", "other")

_LAYER = re.compile(r"(?:^|\.)(?:h|layers|layer|blocks|block)\.(\d+)\.")
# (component, pattern on the cleaned name); first match wins
_RULES: list[tuple[str, re.Pattern]] = [
    ("QKV", re.compile(r"\.(qkv|c_attn|query_key_value|qkv_proj|Wqkv|W_pack)\.weight$")),
    ("Q", re.compile(r"\.(q|q_proj|query)\.weight$")),
    ("K", re.compile(r"\.(k|k_proj|key)\.weight$")),
    ("V", re.compile(r"\.(v|v_proj|value)\.weight$")),
    ("O", re.compile(r"(attn|attention)\.(o|o_proj|c_proj|dense|out_proj)\.weight$")),
    ("MLP in", re.compile(r"mlp\.(c_fc|gate_proj|up_proj|dense_h_to_4h|fc1|fc_in|in|gate|w1|w3)\.weight$")),
    ("MLP out", re.compile(r"mlp\.(c_proj|down_proj|dense_4h_to_h|fc2|fc_out|out|w2)\.weight$")),
]
_NEVER = re.compile(r"(norm|ln_|\.ln\.|embed|wte|wpe|lm_head|unembed)", re.IGNORECASE)


def clean_name(name: str) -> str:
    """The HF-style name without the bridge's ``._original_component`` wrappers."""
    return name.replace("._original_component", "")


@dataclass(frozen=True)
class MaskableWeight:
    """One maskable matrix: ``name`` (bridge parameter name), ``short`` (clean HF-style name),
    ``layer`` (block index), ``component`` (one of ``COMPONENTS``), ``shape``."""

    name: str
    short: str
    layer: int
    component: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n


def _classify(short: str) -> str:
    for comp, pat in _RULES:
        if pat.search(short):
            return comp
    return "other"


def find_maskable(model, maskable: Iterable[str] | None = None) -> list[MaskableWeight]:
    """The maskable weight matrices of ``model`` in parameter order; returns a list of ``MaskableWeight``.

    ``maskable``: optional component names (e.g. ``["MLP in", "MLP out"]``) or substrings of parameter
    names to restrict the search to. Raises ``InterpError`` when nothing maskable is found.
    """
    found: list[MaskableWeight] = []
    for name, p in model.named_parameters():
        short = clean_name(name)
        m = _LAYER.search(short)
        if p.ndim != 2 or not short.endswith("weight") or m is None or _NEVER.search(short.split(".")[-2]):
            continue
        found.append(MaskableWeight(name, short, int(m.group(1)), _classify(short), tuple(p.shape)))
    # the bridge's forward uses split q/k/v; drop a fused matrix when its block has split ones
    split_layers = {w.layer for w in found if w.component in ("Q", "K", "V")}
    found = [w for w in found if not (w.component == "QKV" and w.layer in split_layers)]
    if maskable is not None:
        keys = list(maskable)
        found = [w for w in found if w.component in keys or any(k in w.name or k in w.short for k in keys)]
    if not found:
        raise InterpError(
            "no maskable weight matrices found (attention/MLP weights inside the blocks)"
            + (f" matching {list(maskable)!r}" if maskable is not None else "")
            + f"; choose among the components {COMPONENTS[:-1]} or parameter-name substrings"
        )
    return found
