"""The method registry and the one entry point ``attribute(model, prompt, target=None, method=...)``.

A method is a function ``fn(model, tokens [L], positions, **options) -> MethodOutput`` registered under a
name with ``@register("name")``. ``tokens`` is the full sequence (prompt followed by the target tokens),
``positions`` the index of each target token in it; the method scores, for target ``i``, the tokens
``tokens[:positions[i]]`` and returns ``scores`` [target, L - 1] with NaN at positions ``>= positions[i]``.

The built-in methods (``interp.attribution.methods``) register when ``interp.attribution`` is imported, which Python
does before any of its modules, this one included; this module never imports them (methods import the registry).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from interp.attribution.reduction import check_reduction
from interp.attribution.result import TokenAttribution
from interp.attribution.vision import encode_prompt, is_parts, visual_info, visual_inputs, visual_label
from interp.batch import BatchResult, is_batch, run_batch
from interp.errors import InterpError
from interp.models import model_name, str_tokens
from interp.validate import check_int, check_options, prompt_tokens

__all__ = ["MethodOutput", "register", "METHODS", "method_names", "attribute", "prepare_targets"]


@dataclass
class MethodOutput:
    """What a registered method returns: ``scores`` [target, source] (NaN after each target's position),
    optional ``completeness_error`` [target] and ``info`` (JSON-able diagnostics)."""

    scores: torch.Tensor
    completeness_error: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


Method = Callable[..., MethodOutput]
METHODS: dict[str, Method] = {}


def register(name: str) -> Callable[[Method], Method]:
    """Decorator: make ``fn`` available as ``attribute(..., method=name)``; its keyword-only parameters are its
    options, checked by ``check_method_options`` (annotate them: ``interp.validate.PositiveInt`` and friends add bounds)."""

    def deco(fn: Method) -> Method:
        METHODS[name] = fn
        return fn

    return deco


def method_names() -> list[str]:
    """Names of the registered methods."""
    return list(METHODS)


def masked_scores(rows: torch.Tensor, positions: list[int]) -> torch.Tensor:
    """[target, source] float32 copy of ``rows`` with NaN at source positions ``>= positions[i]``."""
    out = rows.detach().float().cpu().clone()
    for i, p in enumerate(positions):
        out[i, p:] = math.nan
    return out


@torch.no_grad()
def _greedy(model, tokens: torch.Tensor, n: int) -> torch.Tensor:
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx and tokens.shape[-1] + n > n_ctx:
        raise InterpError(f"prompt ({tokens.shape[-1]} tokens) plus generate={n} exceeds the model's context of {n_ctx}")
    for _ in range(n):
        nxt = model(tokens)[:, -1].argmax(-1, keepdim=True)
        tokens = torch.cat([tokens, nxt], dim=-1)
    return tokens


def prepare_targets(model, prompt: str | torch.Tensor, target: str | int | list[int] | None = None,
                    generate: int | None = None) -> tuple[torch.Tensor, list[int]]:
    """The full sequence [L] (prompt + targets) and the target positions.

    ``target=None`` and ``generate=None``: the greedy next token. ``target`` a string: its tokens (no BOS),
    each attributed over everything before it; an int or list of ints: token ids. ``generate=N``: the model's
    N greedy tokens. Raises ``InterpError`` for an empty target, ids outside the vocabulary, or both options.
    """
    tokens = prompt_tokens(model, prompt)
    P = tokens.shape[-1]
    if generate is not None:
        generate = check_int("generate", generate, minimum=1)
    if target is not None and generate:
        raise InterpError("give either target= or generate=, not both")
    if generate:
        full = _greedy(model, tokens, generate)
    else:
        if target is None:
            ids = _greedy(model, tokens, 1)[0, P:].tolist()
        elif isinstance(target, str):
            if not target:
                raise InterpError("the target is empty: give the text the model should continue with, e.g. ' Paris'")
            ids = model.tokenizer(target, add_special_tokens=False).input_ids
            if not ids:
                raise InterpError(f"the target {target!r} has no tokens")
        else:
            ids = _target_ids(target)
        bad = [i for i in ids if not 0 <= i < model.cfg.d_vocab]
        if bad:
            raise InterpError(f"target token ids {bad} are not in the model's vocabulary (size {model.cfg.d_vocab})")
        full = torch.cat([tokens, torch.tensor([ids], device=tokens.device, dtype=tokens.dtype)], dim=-1)
        n_ctx = getattr(model.cfg, "n_ctx", None)
        if n_ctx and full.shape[-1] > n_ctx:
            raise InterpError(f"prompt plus target is {full.shape[-1]} tokens but the model's context is {n_ctx}")
    return full[0], list(range(P, full.shape[-1]))


def _target_ids(target: Any) -> list[int]:
    """Token ids of a non-text target: one id or a non-empty list / 1-D tensor of ids (whole numbers)."""
    if isinstance(target, torch.Tensor):
        if target.ndim > 1:
            raise InterpError(f"target token ids must be one id or a 1-D list, got a tensor of shape {list(target.shape)}")
        target = target.reshape(-1).tolist()
    if isinstance(target, (list, tuple)):
        if not target:
            raise InterpError("the target list is empty: give at least one token id")
        return [check_int("each target token id", i) for i in target]
    if isinstance(target, bool) or not isinstance(target, int):
        raise InterpError(f"target must be text, a token id or a list of token ids, got {type(target).__name__} {target!r:.60}")
    return [int(target)]


def check_method_options(fn: Method, options: dict[str, Any], method: str) -> None:
    """Check ``options`` against ``fn``'s keyword-only signature (names, types, ``Range`` bounds; see
    ``interp.validate.check_options``); raises ``InterpError`` naming the option and the valid ones."""
    check_options(fn, options, what=f"attribution method {method!r}")


def _jsonable(options: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in options.items():
        if k == "progress" or callable(v) and not hasattr(v, "name"):
            continue
        try:
            json.dumps(v)
            out[k] = v
        except TypeError:
            out[k] = repr(v) if not hasattr(v, "name") else f"<{type(v).__name__} {v.name}>"
    return out


def _reduction(method: str, reduction: str | None) -> str | None:
    """The per-token reduction ``method`` runs with: ``reduction``, or the method's own default (None when it scores
    whole tokens). Raises ``InterpError`` for an unknown reduction, or any reduction given to a method without one."""
    param = inspect.signature(METHODS[method]).parameters.get("reduction")
    if param is None:
        if reduction is not None:
            takers = ", ".join(m for m in METHODS if "reduction" in inspect.signature(METHODS[m]).parameters)
            raise InterpError(f"attribution method {method!r} scores whole tokens, so reduction={reduction!r:.40} has no "
                              f"meaning for it: leave reduction out (it applies to {takers})")
        return None
    return check_reduction(param.default if reduction is None else reduction)


def attribute(model, prompt: str | torch.Tensor | list, target: str | int | list[int] | None = None, *, method: str = "reagent",
              generate: int | None = None, reduction: str | None = None, **options) -> TokenAttribution | BatchResult:
    """Attribute the target token(s) after ``prompt`` to the prompt's tokens with ``method``.

    ``target=None``: the model's greedy next token; a string of several tokens or ``generate=N`` gives a
    ``[target, source]`` matrix, each target attributed over everything before it. ``method``: one of
    ``method_names()`` ("reagent", "integrated_gradients", "attention_ig", "input_x_gradient", "gradient_norm",
    "attention_last_layer", "occlusion", "random"); ``options`` go to the method (see its docstring).
    ``reduction``: how a method that scores every embedding dimension makes one score per token ("sum": signed sum,
    "l2": L2 norm, "abs_sum"; ``interp.attribution.reduction``); None: the method's default (signed sum for IG and
    input x gradient, L2 for gradient norm). Methods that score whole tokens (occlusion, ReAGent, attention, random)
    refuse one. ``prompt`` for a vision-language model may be a list of text and image parts
    (``interp.models.vision``; a text-only model refuses images): every method then scores the visual tokens too, at
    the connector's output (``interp.attribution.vision``: what replaces a patch for occlusion and ReAGent); visual
    tokens are named ``<img R,C>`` and ``info["visual"]`` holds their positions and patches
    (``TokenAttribution.patch_scores``). Returns a ``TokenAttribution`` (scores [target, source], ``reduction`` recorded).
    A list of prompts (``interp.batch.is_batch``; ``target`` then a list with one target per prompt, or one for all)
    returns a ``BatchResult`` of one ``TokenAttribution`` per prompt.
    """
    if is_batch(prompt):  # a list of prompts: each run alone, one bar (interp.batch)
        return run_batch(attribute, model, prompt, spread=("target",), target=target, method=method, generate=generate,
                         reduction=reduction, **options)
    if not isinstance(method, str) or method not in METHODS:
        raise InterpError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if reduction is not None:  # given: the method gets it (and ``options`` records it); else its own default runs
        options = {**options, "reduction": _reduction(method, reduction)}
    reduction = _reduction(method, reduction)
    check_method_options(METHODS[method], options, method)
    vin = encode_prompt(model, prompt) if is_parts(prompt) else None
    with visual_inputs(model, vin):
        full, positions = prepare_targets(model, prompt if vin is None else vin.ids, target, generate)
        out = METHODS[method](model, full, positions, **options)
    names = str_tokens(model, full)
    info = out.info
    if vin is not None and vin.visual.numel():  # visual tokens named by their patch; which score is which patch
        for p, patch in zip(vin.visual.tolist(), vin.patches.tolist()):
            names[p] = visual_label(*patch)
        info = {**info, "visual": visual_info(vin)}
    return TokenAttribution(
        model=model_name(model),
        source_tokens=names[:-1],
        target_tokens=[names[p] for p in positions],
        scores=out.scores,
        method=method,
        options=_jsonable({**options, **({"generate": generate} if generate else {})}),
        target_positions=positions,
        target_ids=[int(full[p]) for p in positions],
        source_ids=[int(i) for i in full[:-1].tolist()],
        completeness_error=out.completeness_error,
        info=info,
        reduction=reduction,
    )
