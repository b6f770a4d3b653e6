"""One validation layer for the public entry points: option types, numbers, seeds and token-id prompts.

Every check raises ``InterpError`` with a message that names the option, what it got and what to give
instead; valid values are returned unchanged (or normalised, as documented per function), so entry points
call these first and the analyses below them never see a wrong type.
"""

from __future__ import annotations

import collections.abc
import difflib
import functools
import inspect
import math
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import torch

from interp.errors import InterpError

__all__ = ["check_int", "check_float", "check_seed", "check_bool", "check_options", "check_known", "check_types",
           "checks_options", "option_names", "Range", "PositiveInt", "NonNegativeInt", "Seed", "NonNegativeFloat", "Share",
           "token_ids", "prompt_tokens", "check_text"]

F = TypeVar("F", bound=Callable[..., Any])


def _got(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (a real int or an integer-valued 0-d tensor / numpy integer; never a bool,
    float or string), within ``[minimum, maximum]``; returns the int."""
    if isinstance(value, bool) or not _is_integer(value):
        raise InterpError(f"{name} must be a whole number, got {_got(value)}")
    return _in_range(name, int(value), minimum, maximum)


def _in_range(name: str, v: Any, minimum: float | None, maximum: float | None) -> Any:
    """``v`` when it lies in ``[minimum, maximum]`` (either bound optional); ``InterpError`` naming ``name`` otherwise."""
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
    return _in_range(name, v, minimum, maximum)


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


# ---- options declared by a function's signature ---------------------------------------------------------
@dataclass(frozen=True)
class Range:
    """Bounds of a numeric option, declared in its annotation (``Annotated[int, Range(1)]``) and applied by
    ``check_options``: ``minimum`` / ``maximum`` inclusive, ``above`` an exclusive lower bound."""

    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None

    def check(self, name: str, value: Any) -> None:
        """Raise ``InterpError`` naming ``name`` when ``value`` is outside the bounds."""
        _in_range(name, value, self.minimum, self.maximum)
        if self.above is not None and value <= self.above:
            raise InterpError(f"{name} must be above {self.above}, got {value}")

    def describe(self) -> str:
        """The bounds in words, e.g. "at least 1"."""
        words = [f"{w} {b}" for w, b in (("at least", self.minimum), ("above", self.above), ("at most", self.maximum)) if b is not None]
        return ", ".join(words)


PositiveInt = Annotated[int, Range(1)]
"""A count or size: a whole number of at least 1."""
NonNegativeInt = Annotated[int, Range(0)]
Seed = Annotated[int, Range(0, 2**63 - 1)]
"""A random seed: a whole number in ``0..2**63 - 1``."""
NonNegativeFloat = Annotated[float, Range(0.0)]
Share = Annotated[float, Range(maximum=1.0, above=0.0)]
"""A share of something: a number in ``(0, 1]``."""


def _members(tp: Any) -> tuple[Any, ...]:
    """The alternatives of a union annotation (``tp`` itself otherwise)."""
    return typing.get_args(tp) if typing.get_origin(tp) in (typing.Union, types.UnionType) else (tp,)


def _accepts(value: Any, tp: Any) -> bool:
    """Whether ``value`` fits the annotation ``tp`` (one alternative of a union, ``Annotated`` stripped): int, float, str,
    bool, None, a list or tuple, a callable; classes and ``Any`` pass (the callee checks)."""
    if typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    origin = typing.get_origin(tp)
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
    if origin is collections.abc.Callable or tp is collections.abc.Callable:
        return callable(value)
    return True


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is typing.Annotated:
        base, *extra = typing.get_args(tp)
        bounds = ", ".join(r.describe() for r in extra if isinstance(r, Range))
        return _type_name(base) + (f" ({bounds})" if bounds else "")
    if tp is type(None):
        return "None"
    if typing.get_origin(tp) is collections.abc.Callable or tp is collections.abc.Callable:
        return "a function"
    return {int: "a whole number", float: "a number", str: "a string", bool: "True or False"}.get(tp, getattr(tp, "__name__", str(tp)))


def option_names(fn: Callable, exclude: Iterable[str] = (), *, open_ended: bool = False) -> list[str] | None:
    """The keyword-only parameters of ``fn`` (its options) minus ``exclude``; None when ``fn`` takes ``**kwargs``
    (then any name may be valid), unless ``open_ended=True``."""
    params = inspect.signature(fn).parameters.values()
    if not open_ended and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in set(exclude)]


def check_known(options: Iterable[str], known: Iterable[str], *, what: str) -> None:
    """Raise ``InterpError`` when a name in ``options`` is not in ``known``: the message names it, the closest valid
    name, and every valid one (``what``: who has the options, e.g. "attribution method 'reagent'")."""
    known = list(known)
    unknown = sorted(set(options) - set(known))
    if unknown:
        close = {u: difflib.get_close_matches(u, known, n=1) for u in unknown}
        hint = "".join(f" (did you mean {c[0]}?)" for c in close.values() if c)
        raise InterpError(f"{what} has no option {', '.join(unknown)}{hint}: its options are {', '.join(known) or 'none'}")


def check_options(fn: Callable, options: dict[str, Any], *, what: str, exclude: Iterable[str] = ()) -> None:
    """Check ``options`` against ``fn``'s signature: each must be one of its keyword-only parameters (unless ``fn`` takes
    ``**kwargs``; ``exclude``: names the caller sets itself) and pass ``check_types``. Raises ``InterpError`` naming
    ``what``, the option and what to give; returns None."""
    known = option_names(fn, exclude)
    if known is not None:
        check_known(options, known, what=what)
    check_types(fn, options, what=what)


def check_types(fn: Callable, options: dict[str, Any], *, what: str) -> None:
    """Check each of ``options`` that ``fn`` annotates: the value fits the annotation, is finite when a float, and lies
    inside an ``Annotated[..., Range(...)]`` bound. Options ``fn`` does not annotate pass. Raises ``InterpError``."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception:  # an annotation that cannot be resolved (a user's method): nothing to check against
        hints = {}
    for key, value in options.items():
        if key not in hints or key == "return":
            continue
        fits = [a for a in _members(hints[key]) if _accepts(value, a)]
        if not fits:
            raise InterpError(f"{what} option {key} must be {_type_name(hints[key])}, got {_got(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise InterpError(f"{what} option {key} must be a finite number, got {value}")
        if typing.get_origin(fits[0]) is typing.Annotated:
            base, *extra = typing.get_args(fits[0])
            for r in extra:
                if isinstance(r, Range):
                    r.check(f"{what} option {key}", int(value) if base is int else float(value))


def checks_options(*, forwards: Callable | None = None, exclude: Iterable[str] = ()) -> Callable[[F], F]:
    """Decorator for a public entry point whose options are keyword-only parameters: each call's keyword options are
    checked first (``check_known`` and ``check_types``), so a misspelt one raises ``InterpError`` listing the valid
    ones instead of Python's ``TypeError`` (or being swallowed by ``**kwargs``). ``forwards``: the function that
    receives the entry point's ``**kwargs``; its keyword-only options are valid too, minus ``exclude`` (those the
    entry point sets itself). Returns the wrapped function (same signature and docstring)."""

    def deco(fn: F) -> F:
        params = inspect.signature(fn).parameters
        positional = {n for n, p in params.items() if p.kind is not inspect.Parameter.KEYWORD_ONLY}
        own = option_names(fn, open_ended=True)
        passed = [n for n in option_names(forwards, exclude) or [] if n not in own] if forwards is not None else []
        open_ended = option_names(fn) is None and (forwards is None or option_names(forwards) is None)
        what = f"{fn.__name__}()"

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            options = {k: v for k, v in kwargs.items() if k not in positional}
            if not open_ended:
                check_known(options, own + passed, what=what)
            check_types(fn, {k: v for k, v in options.items() if k in own}, what=what)
            if forwards is not None:
                check_types(forwards, {k: v for k, v in options.items() if k in passed}, what=what)
            return fn(*args, **kwargs)

        return typing.cast(F, wrapper)

    return deco


# ---- prompts as token ids -------------------------------------------------------------------------------
def check_text(name: str, text: str) -> str:
    """``text`` when it is valid Unicode that UTF-8 can encode; ``InterpError`` naming ``name`` for a lone surrogate
    (what Python makes of a command-line argument or file that is not valid UTF-8, e.g. a byte 0xff). Returns ``text``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        bad = ord(text[e.start])
        what = f"the byte 0x{bad - 0xDC00:02x}, which is not UTF-8" if 0xDC80 <= bad <= 0xDCFF else f"a lone surrogate U+{bad:04X}"
        raise InterpError(f"{name} is not valid text: character {e.start} is {what}; give UTF-8 text") from None
    return text


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
    """[1, pos] token ids of a text prompt (BOS prepended, see ``interp.models.to_tokens``; checked by ``check_text``) or
    of a checked token-id tensor (see ``token_ids``). Raises ``InterpError`` for anything else."""
    from interp.models import to_tokens

    if isinstance(prompt, str):
        tokens = to_tokens(model, check_text("the prompt", prompt))
        if tokens.shape[-1] < min_len:
            raise InterpError(f"the prompt has {tokens.shape[-1]} tokens; give at least {min_len}")
        return tokens
    if prompt is None:
        raise InterpError("no prompt given: pass text or a token-id tensor")
    return token_ids(model, prompt, min_len=min_len)
