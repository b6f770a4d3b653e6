"""The method registry and the one entry point ``attribute(model, prompt, target=None, method=..., objective=...)``.

A method is a function ``fn(model, tokens [L], positions, settings, objective, progress) -> MethodOutput`` registered
with its settings class (``interp.attribution.settings``) by ``@register("name", SettingsClass)``. ``tokens`` is the
full sequence (prompt followed by the target tokens), ``positions`` the index of each target token in it; the method
scores, for target ``i``, the tokens ``tokens[:positions[i]]`` and returns ``scores`` [target, L - 1] with NaN at
positions ``>= positions[i]``. ``objective``: (kind, contrasted token id or None) from
``interp.attribution.objectives.check_objective`` (kind "" for a method whose settings class names no objective). With
kind "answer" (``Answer``; only methods whose settings say ``takes_answers``) the targets are one answer: the method
returns ``scores`` [answer, P] over the prompt's P tokens (the target, then the ``against`` answer, its ids the pair's
second element), and ``attribute`` names the rows by the answers.

The built-in methods (``interp.attribution.methods``) register when ``interp.attribution`` is imported, which Python
does before any of its modules, this one included; this module never imports them (methods import the registry).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from interp.attribution.objectives import check_objective, objective_name, token_ids, vocabulary_ids
from interp.attribution.result import TokenAttribution
from interp.attribution.settings import Settings, settings_for
from interp.attribution.vision import encode_prompt, is_parts, visual_info, visual_inputs
from interp.batch import BatchResult, is_batch, run_batch
from interp.errors import InterpError
from interp.models import greedy_ids, model_name, str_tokens, text_ids
from interp.validate import check_int, prompt_tokens

__all__ = ["MethodOutput", "register", "METHODS", "SETTINGS", "DEFAULT_METHOD", "method_names", "attribute",
           "prepare_targets", "takes_reduction"]

DEFAULT_METHOD = "occlusion"
"""``attribute``'s method when none is named, chosen by measurement (issue 35; the numbers are in
bench/results/attribution_grid.md): occlusion by deletion (its default ``replacement``; one batched forward of L
sequences) is the one method that returns in a few seconds on SmolLM2 on two cores and puts a deciding position in its
top 3 on at least 80% of both the induction and the fact prompts of both real models."""


@dataclass
class MethodOutput:
    """What a registered method returns: ``scores`` [target, source] (NaN after each target's position),
    optional ``completeness_error`` [target] and ``info`` (JSON-able diagnostics)."""

    scores: torch.Tensor
    completeness_error: torch.Tensor | None = None
    info: dict[str, Any] = field(default_factory=dict)


Method = Callable[..., MethodOutput]
METHODS: dict[str, Method] = {}
SETTINGS: dict[str, type[Settings]] = {}
"""the settings class of each registered method"""


def register(name: str, settings: type[Settings] = Settings) -> Callable[[Method], Method]:
    """Decorator: make ``fn`` available as ``attribute(..., method=name)`` with ``settings`` (a frozen dataclass
    subclassing ``Settings``: its fields are the method's settings, annotated with ``interp.validate.PositiveInt`` and
    friends for bounds; its ``objective`` class variable the default objective, None for a method that takes none)."""

    def deco(fn: Method) -> Method:
        METHODS[name] = fn
        SETTINGS[name] = settings
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


def _greedy(model, tokens: torch.Tensor, n: int) -> torch.Tensor:
    n_ctx = getattr(model.cfg, "n_ctx", None)
    if n_ctx and tokens.shape[-1] + n > n_ctx:
        raise InterpError(f"prompt ({tokens.shape[-1]} tokens) plus generate={n} exceeds the model's context of {n_ctx}")
    return greedy_ids(model, tokens, n).to(tokens.device)


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
            ids = vocabulary_ids(model, ids, "target")
        else:
            ids = token_ids(model, target, "target")
        full = torch.cat([tokens, torch.tensor([ids], device=tokens.device, dtype=tokens.dtype)], dim=-1)
        n_ctx = getattr(model.cfg, "n_ctx", None)
        if n_ctx and full.shape[-1] > n_ctx:
            raise InterpError(f"prompt plus target is {full.shape[-1]} tokens but the model's context is {n_ctx}")
    return full[0], list(range(P, full.shape[-1]))


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


def takes_reduction(method: str) -> bool:
    """True when ``method`` scores every embedding dimension and so has a per-token ``reduction`` setting."""
    return SETTINGS[method].takes_reduction()


def _check_reduction_given(method: str, settings: dict) -> None:
    if "reduction" in settings and not takes_reduction(method):
        takers = ", ".join(m for m in METHODS if takes_reduction(m))
        raise InterpError(f"attribution method {method!r} scores whole tokens, so reduction={settings['reduction']!r:.40} "
                          f"has no meaning for it: leave reduction out (it applies to {takers})")


def attribute(model, prompt: str | torch.Tensor | list, target: str | int | list[int] | None = None, *,
              method: str = DEFAULT_METHOD, objective=None, generate: int | None = None,
              progress: Callable[[int, int], None] | None = None, **settings) -> TokenAttribution | BatchResult:
    """Attribute the target token(s) after ``prompt`` to the prompt's tokens with ``method``.

    ``target=None``: the model's greedy next token; a string of several tokens or ``generate=N`` gives a
    ``[target, source]`` matrix, each target attributed over everything before it. ``method``: one of
    ``method_names()`` ("reagent", "integrated_gradients", "attention_ig", "input_x_gradient", "gradient_norm",
    "attention_last_layer", "occlusion", "random"); default ``DEFAULT_METHOD``, occlusion. ``settings``: fields of
    the method's settings class (``interp.attribution.settings``; a preset such as ``REAGENT_FAST`` unpacks with ``**``), each checked: an
    unknown or mistyped one is an ``InterpError`` naming it. One of them, for the methods that score every embedding
    dimension (IG, input x gradient, gradient norm), is ``reduction``: how those make one score per token ("sum":
    signed sum, "l2": L2 norm, "abs_sum"; ``interp.attribution.reduction``); the others refuse one.
    ``objective``: what is explained, for the methods that take one (``interp.attribution.objectives``: "prob",
    "logprob", "logit" or ``Contrast(against)``; None: the method's default); ReAGent, attention and random refuse one.
    ``objective=Answer(against=None)`` (Integrated Gradients): the whole target's summed log-probability as one row
    over the prompt's tokens; with ``against`` (another answer), minus that answer's, GrAInS's contrast, rows
    [target, against] (``interp.attribution.answers``).
    ``progress(done, total)``: called by the methods that iterate (IG, ReAGent); an exception it raises stops the call.
    ``prompt`` for a vision-language model may be a list of text and image parts (``interp.models.vision``; a
    text-only model refuses images): every method then scores the visual tokens too, at the connector's output
    (``interp.attribution.vision``: what replaces a patch for occlusion and ReAGent); visual tokens are named
    ``<img R,C>`` and ``info["visual"]`` holds their positions and patches (``TokenAttribution.patch_scores``).
    Returns a ``TokenAttribution`` (scores [target, source]; the settings given, the objective and the reduction
    recorded). A list of prompts (``interp.batch.is_batch``; ``target`` then a list with one target per prompt, or one
    for all) returns a ``BatchResult`` of one ``TokenAttribution`` per prompt.
    """
    if is_batch(prompt):  # a list of prompts: each run alone, one bar (interp.batch)
        return run_batch(attribute, model, prompt, spread=("target",), target=target, method=method,
                         objective=objective, generate=generate, progress=progress, **settings)
    if not isinstance(method, str) or method not in METHODS:
        raise InterpError(f"unknown attribution method {method!r}; choose one of {', '.join(METHODS)}")
    if progress is not None and not callable(progress):
        raise InterpError(f"progress must be a function or None, got {type(progress).__name__} {progress!r:.40}")
    cls = SETTINGS[method]
    _check_reduction_given(method, settings)
    s = settings_for(cls, settings, method)
    kind, against = check_objective(model, objective, method, cls.objective, cls.takes_answers)
    vin = encode_prompt(model, prompt) if is_parts(prompt) else None
    answer_text = target if kind == "answer" and isinstance(target, str) and target else None
    if answer_text is not None:  # tokenised as the other answer is (interp.attribution.answers)
        target = text_ids(model, answer_text, prepend_bos=False).tolist() or answer_text
    with visual_inputs(model, vin):
        full, positions = prepare_targets(model, prompt if vin is None else vin.ids, target, generate)
        n_ctx = getattr(model.cfg, "n_ctx", None)
        if kind == "answer" and against is not None and n_ctx and positions[0] + len(against) > n_ctx:
            raise InterpError(f"prompt plus the other answer is {positions[0] + len(against)} tokens but the model's "
                              f"context is {n_ctx}")
        out = METHODS[method](model, full, positions, s, (kind, against), progress)
    names = str_tokens(model, full)
    info = out.info
    if vin is not None and vin.visual.numel():  # visual tokens named by their patch; which score is which patch
        for p, label in vin.labels().items():
            names[p] = label
        info = {**info, "visual": visual_info(vin)}
    given = dict(settings)
    if objective is not None:
        given["objective"] = objective_name(kind, against)
    if generate:
        given["generate"] = generate
    if kind == "answer":  # one row per answer over the prompt's tokens
        P = positions[0]
        shown = [answer_text or model.tokenizer.decode(full[P:].tolist())]
        if against is not None:
            shown.append(objective.against if isinstance(objective.against, str) else model.tokenizer.decode(against))
        names, positions, target_ids = names[: P + 1], [P] * len(shown), [int(full[P])] + ([against[0]] if against else [])
    else:
        shown, target_ids = [names[p] for p in positions], [int(full[p]) for p in positions]
    return TokenAttribution(
        model=model_name(model),
        source_tokens=names[:-1],
        target_tokens=shown,
        scores=out.scores,
        method=method,
        options=_jsonable(given),
        target_positions=positions,
        target_ids=target_ids,
        source_ids=[int(i) for i in full[: len(names) - 1].tolist()],
        completeness_error=out.completeness_error,
        info=info,
        reduction=s.reduction if cls.takes_reduction() else None,
    )
