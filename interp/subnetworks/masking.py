"""Running a bridge with replaced weight matrices, without touching its parameters.

Two mechanisms, both leave every base ``Parameter`` object and its values exactly as they were:

- ``masked_forward(model, tokens, weights)``: one forward pass through ``torch.func.functional_call`` with
  ``{parameter name: replacement tensor}`` (``tie_weights=False``: with the default, the bridge, which
  reaches the same HF module under several paths, keeps the replacement after the call).
- ``swap_weights(model, weights)``: a context manager that rebinds the modules' weight slots to the
  replacement tensors for the duration of a ``with`` block (so hooks, ``run_with_cache`` and any other
  call inside see the masked model) and rebinds the original ``Parameter`` objects on exit, even on error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch.func import functional_call

__all__ = ["masked_forward", "swap_weights", "frozen_parameters"]


def masked_forward(model, tokens: torch.Tensor, weights: dict[str, torch.Tensor]) -> torch.Tensor:
    """[batch, pos, vocab] logits of ``model`` on ``tokens`` with ``weights`` replacing the named parameters."""
    return functional_call(model, weights, (tokens,), tie_weights=False, strict=False)


@contextlib.contextmanager
def swap_weights(model, weights: dict[str, torch.Tensor]) -> Iterator[None]:
    """Within the block, the named parameters of ``model`` read as ``weights``; restored on exit."""
    slots = []
    for name in weights:
        mod_name, _, attr = name.rpartition(".")
        module = model.get_submodule(mod_name)
        if attr not in module._parameters:
            raise KeyError(f"{name} is not a parameter of the model")
        slots.append((module, attr, module._parameters[attr]))
    try:
        for (module, attr, _), new in zip(slots, weights.values()):
            module._parameters[attr] = new
        yield
    finally:
        for module, attr, old in reversed(slots):
            module._parameters[attr] = old


@contextlib.contextmanager
def frozen_parameters(model) -> Iterator[None]:
    """Within the block no parameter of ``model`` requires grad (so no ``.grad`` is written); flags restored on exit."""
    params = list(model.parameters())
    flags = [p.requires_grad for p in params]
    try:
        for p in params:
            p.requires_grad_(False)
        yield
    finally:
        for p, f in zip(params, flags):
            p.requires_grad_(f)
