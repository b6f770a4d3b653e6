"""One validation layer for the public entry points: option types, numbers, seeds and token-id prompts.

Every check raises ``InterpError`` with a message that names the option, what it got and what to give
instead; valid values are returned unchanged (or normalised, as documented per function), so entry points
call these first and the analyses below them never see a wrong type.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable
from typing import Any

import torch

from interp.errors import InterpError

__all__ = ["check_int", "check_float", "check_seed", "check_bool", "check_options", "token_ids", "prompt_tokens"]


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (a real int or an integer-valued 0-d tensor / numpy integer; never a bool,
    float or string), within ``[minimum, maximum]``; returns the int."""
    if isinstance(value, bool) or not _is_integer(value):
        raise InterpError(f"{name} must be a whole number, got {_got(value)}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise InterpError(f"{name} must be at least {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise InterpError(f"{name} must be at most {maximum}, got {v}")
    return v


def _is_integer(value: Any) -> bool:
    if isinstance(value, int):
        return True
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and not value.is_floating_point() and not value.is_complex() and value.dtype != torch.bool
    return type(value).__module__ == "numpy" and hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"


def check_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                finite: bool = True) -> float:
    """``value`` (an int or float, not a bool or string) as a float; finite unless ``finite=False``, and
    within ``[minimum, maximum]``; returns the float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not _is_number_like(value):
        raise InterpError(f"{name} must be a number, got {_got(value)}")
    try:
        v = float(value)
    except OverflowError:
        raise InterpError(f"{name} must be a finite number, got {_got(value)}") from None
    if finite and not math.isfinite(v):
        raise InterpError(f"{name} must be a finite number, got {v}")
    if math.isnan(v):
        raise InterpError(f"{name} must be a number, got NaN")
    if minimum is not None and v < minimum:
        raise InterpError(f"{name} must be at least {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise InterpError(f"{name} must be at most {maximum}, got {v}")
    return v


def _is_number_like(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim == 0 and value.dtype != torch.bool and not value.is_complex()
    return type(value).__module__ == "numpy" and getattr(getattr(value, "dtype", None), "kind", "") in "iuf"


def check_seed(value: Any, name: str = "seed") -> int:
    """A random seed: a non-negative whole number below 2**63; returns it as an int."""
    return check_int(name, value, minimum=0, maximum=2**63 - 1)


def check_bool(name: str, value: Any) -> bool:
    """``value`` when it is a real bool (not 0/1 or a string); returns it."""
    if not isinstance(value, bool):
        raise InterpError(f"{name} must be True or False, got {_got(value)}")
    return value


# ---- option types from a function's signature ---------------------------------------------------------
def _accepts(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (int, float, str, bool, None, unions of them; anything else passes)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(value, a) for a in typing.get_args(tp))
    if tp is type(None) or tp is None:
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return not isinstance(value, bool) and _is_integer(value)
    if tp is float:
        return not isinstance(value, bool) and (isinstance(value, (int, float)) or _is_number_like(value))
    if tp is str:
        return isinstance(value, str)
    if origin in (list, tuple) or tp in (list, tuple):
        return isinstance(value, (list, tuple))
    return True  # classes, callables, Any: the callee checks


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    return {int: "a whole number", float: "a number", str: "a string", bool: "True or False"}.get(tp, getattr(tp, "__name__", str(tp)))


def check_options(fn: Callable, options: dict[str, Any], *, what: str) -> None:
    """Check each of ``options`` against the type annotation of ``fn``'s keyword of that name.

    Numbers must be finite; ``seed`` must be a non-negative whole number. Options ``fn`` does not name pass
    (``**kwargs`` sinks decide). Raises ``InterpError`` naming ``what`` (e.g. "ReAGent"), the option and its value.
    """
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # an annotation that cannot be resolved: nothing to check against
        hints = {}
    params = inspect.signature(fn).parameters
    for key, value in options.items():
        if key not in params or key not in hints:
            continue
        tp = hints[key]
        if not _accepts(value, tp):
            raise InterpError(f"{what} option {key}={_got(value)} has the wrong type: give {_type_name(tp)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InterpError(f"{what} option {key} must be a finite number, got {value}")
        if key == "seed" and value is not None:
            check_seed(value, f"{what} option seed")


# ---- prompts as token ids -------------------------------------------------------------------------------
def token_ids(model, ids: Any, name: str = "the prompt", *, min_len: int = 1) -> torch.Tensor:
    """Validate a token-id tensor for ``model``: integer dtype, one sequence (shape [pos] or [1, pos]), at
    least ``min_len`` ids, each in ``0..d_vocab-1``, no longer than the context. Returns it as [1, pos] long
    on the model's device."""
    if not isinstance(ids, torch.Tensor):
        raise InterpError(f"{name} must be text or a token-id tensor, got {_got(ids)}")
    if ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise InterpError(f"{name}: token ids must be an integer tensor, got dtype {str(ids.dtype).replace('torch.', '')}")
    if ids.ndim > 2 or ids.ndim == 2 and ids.shape[0] != 1 or ids.ndim == 0:
        raise InterpError(f"{name}: token ids must have shape [pos] or [1, pos], got {list(ids.shape)}")
    flat = ids.reshape(-1)
    if flat.numel() < min_len:
        raise InterpError(f"{name} has {flat.numel()} tokens; give at least {min_len}")
    vocab = int(model.cfg.d_vocab)
    if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= vocab):
        bad = flat[(flat < 0) | (flat >= vocab)][:3].tolist()
        raise InterpError(f"{name}: token ids {bad} are outside the vocabulary (0..{vocab - 1})")
    n_ctx = int(getattr(model.cfg, "n_ctx", 0) or 0)
    if n_ctx and flat.numel() > n_ctx:
        raise InterpError(f"{name} has {flat.numel()} tokens but the model's context is {n_ctx}: shorten it")
    return flat.long().reshape(1, -1).to(model.cfg.device)


def prompt_tokens(model, prompt: Any, *, min_len: int = 1) -> torch.Tensor:
    """[1, pos] token ids of a text prompt (BOS prepended, see ``interp.models.to_tokens``) or of a checked
    token-id tensor (see ``token_ids``). Raises ``InterpError`` for anything else."""
    from interp.models import to_tokens

    if isinstance(prompt, str):
        tokens = to_tokens(model, prompt)
        if tokens.shape[-1] < min_len:
            raise InterpError(f"the prompt has {tokens.shape[-1]} tokens; give at least {min_len}")
        return tokens
    if prompt is None:
        raise InterpError("no prompt given: pass text or a token-id tensor")
    return token_ids(model, prompt, min_len=min_len)
