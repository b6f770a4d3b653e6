"""Batches of prompts: one call, one progress bar, one result that holds each prompt's result.

``logit_lens``, ``latent_lens``, ``inspect_prompt`` and ``attribute`` take a list of prompts where they take one
(``is_batch`` says which lists are batches) and hand it here: ``run_batch`` runs the analysis on each prompt in turn
under one tqdm bar and returns a ``BatchResult``, a list-like result (``len``, indexing, iteration) with ``save`` /
``load`` (one safetensors file, checksummed like every result) and a notebook view.

Each prompt is run alone, with its own forward pass at its own length, so ``batch[i]`` is bit for bit what the single
call on prompt ``i`` returns: no padding, no attention mask, nothing a shorter prompt could pick up from a longer one
(a padded forward changes the float rounding of every matmul, and analyses that read every position, such as the
scan's attention patterns or attribution's occlusion, would have to mask the padding out everywhere). The analyses
already batch what is independent inside one prompt (the layers of a lens, IG's path points, ReAGent's probes).

Options given as a list with one entry per prompt are spread over the prompts for the names an entry point declares
(``target`` for the lenses and attribution): ``logit_lens(model, ["... France is", "... Italy is"],
target=["Paris", "Rome"])``; any other value is used for every prompt.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm.auto import tqdm

from interp.errors import InterpError
from interp.results import FileEntries, Result

__all__ = ["BatchResult", "is_batch", "run_batch", "prompt_label"]


def _has_image(parts: Sequence) -> bool:
    from interp.models.vision import has_images

    return has_images(parts)


def is_batch(prompt: Any) -> bool:
    """True when ``prompt`` is a batch: a non-empty list or tuple each of whose items is a prompt on its own (text, a
    token-id tensor, or a list of text and image parts that holds an image). A list with an image directly in it is one
    image prompt, and a list of ints one prompt of ids, as before; a list of text only is a batch of texts (to give a
    vision-language model one text prompt, pass the string)."""
    if not isinstance(prompt, (list, tuple)) or not prompt:
        return False
    return all(isinstance(p, (str, torch.Tensor)) or (isinstance(p, (list, tuple)) and _has_image(p)) for p in prompt)


def prompt_label(prompt: Any, width: int = 80) -> str:
    """A short text naming one prompt of a batch: the text (cut to ``width`` characters), ``<N token ids>`` for ids,
    or the parts with ``<image>`` for each image."""
    if isinstance(prompt, str):
        text = prompt
    elif isinstance(prompt, torch.Tensor):
        text = f"<{prompt.numel()} token ids>"
    else:
        text = " ".join(p if isinstance(p, str) else "<image>" for p in prompt)
    return text if len(text) <= width else text[: width - 1] + "…"


def _spread(name: str, value: Any, n: int) -> list[Any]:
    """``value`` for each of ``n`` prompts: a list or tuple must have one entry per prompt; anything else is shared."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise InterpError(f"{name} is a list of {len(value)} but there are {n} prompts: give one {name} for every prompt "
                              f"(a list of {n}) or a single {name} for all of them")
        return list(value)
    return [value] * n


def run_batch(fn: Callable[..., Result], model, prompts: Sequence, *, spread: Sequence[str] = (), progress: bool = True,
              desc: str | None = None, **options: Any) -> BatchResult:
    """Run ``fn(model, prompt, **options)`` on every prompt of ``prompts`` under one tqdm bar; returns a
    ``BatchResult`` whose item ``i`` is the result for ``prompts[i]`` (exactly what the single call gives).

    ``spread``: names of ``options`` that may be a list with one entry per prompt (e.g. ``("target",)``); a list of
    another length is an ``InterpError``. A prompt that fails raises its own error, prefixed with its index.
    """
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise InterpError("the batch is empty: give a non-empty list of prompts")
    n = len(prompts)
    per = {k: _spread(k, options.pop(k), n) for k in spread if k in options}
    items = []
    for i, prompt in enumerate(tqdm(prompts, desc=desc or getattr(fn, "__name__", "batch"), unit="prompt", disable=not progress)):
        if is_batch(prompt):
            raise InterpError(f"prompt {i} of the batch is itself a list of prompts: give a flat list")
        try:
            items.append(fn(model, prompt, **options, **{k: v[i] for k, v in per.items()}))
        except InterpError as e:
            raise InterpError(f"prompt {i} of the batch ({prompt_label(prompt, 40)!r}): {e}") from None
    return BatchResult.of(items, [prompt_label(p) for p in prompts])


@dataclass(frozen=True)
class BatchResult(Result):
    """The results of one analysis on a list of prompts, in order; behaves as a list of them (``len(b)``, ``b[i]``,
    ``for r in b``). ``stack(field)`` stacks one tensor field over the prompts, padded where lengths differ."""

    kind: str
    "class name of every item (``LensResult``, ``LatentLensResult``, ``PromptView``, ``TokenAttribution``, ...)"
    module: str
    "the module that defines that class (``load`` imports it to rebuild the items)"
    prompts: list[str]
    "[prompt] a short label of each prompt (``prompt_label``)"
    items: list
    "[prompt] each prompt's result"
    _shapes = {"prompts": "prompt", "items": "prompt"}

    @classmethod
    def of(cls, items: Sequence[Result], prompts: Sequence[str]) -> BatchResult:
        """A batch of ``items`` (results of one class) labelled by ``prompts``."""
        if not items:
            raise InterpError("a batch needs at least one result")
        return cls(kind=type(items[0]).__name__, module=type(items[0]).__module__, prompts=list(prompts), items=list(items))

    def __post_init__(self) -> None:
        super().__post_init__()
        for i, item in enumerate(self.items):
            if not isinstance(item, Result) or type(item).__name__ != self.kind:
                raise ValueError(f"BatchResult.items[{i}] is a {type(item).__name__}, not a {self.kind}")

    # ---- list behaviour ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Result:
        return self.items[i]

    def __iter__(self) -> Iterator[Result]:
        return iter(self.items)

    def stack(self, field: str, fill: float | None = None) -> torch.Tensor:
        """Tensor field ``field`` of every item stacked into [prompt, ...], each dimension padded at its end to the
        largest size among the items (prompts of different lengths) with ``fill`` (default NaN for floating tensors,
        -1 for integer ones). Raises ``InterpError`` for a field that is not a tensor in every item."""
        values = [getattr(r, field, None) for r in self.items]
        if not all(isinstance(v, torch.Tensor) for v in values):
            tensors = [f.name for f in dataclasses.fields(self.items[0]) if isinstance(getattr(self.items[0], f.name), torch.Tensor)]
            raise InterpError(f"{self.kind}.{field} is not a tensor in every result: choose one of {', '.join(tensors)}")
        if len({v.ndim for v in values}) != 1:
            raise InterpError(f"{self.kind}.{field} has a different number of dimensions across the batch")
        shape = [max(s) for s in zip(*(v.shape for v in values))]
        dtype = values[0].dtype
        if fill is None:
            fill = float("nan") if dtype.is_floating_point else -1
        out = torch.full([len(values), *shape], fill, dtype=dtype)
        for i, v in enumerate(values):
            out[(i, *(slice(0, s) for s in v.shape))] = v
        return out

    # ---- persistence: the items' own entries, their tensors prefixed by the item's index ----------
    def _file_entries(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {}
        metas = []
        for i, item in enumerate(self.items):
            t, m = item._file_entries()
            tensors.update({f"{i}/{k}": v for k, v in t.items()})
            metas.append(m)
        return tensors, {"kind": self.kind, "module": self.module, "prompts": list(self.prompts), "items": metas}

    @classmethod
    def _from_entries(cls, entries: FileEntries) -> dict[str, Any]:
        kind, module, prompts, metas = (entries.take(k) for k in ("kind", "module", "prompts", "items"))
        item_cls = _result_class(module, kind)
        names = entries.left()
        items = []
        for i, meta in enumerate(metas):
            if not isinstance(meta, dict):
                raise ValueError(f"item {i}'s fields are not a JSON object")
            sub = FileEntries({n.split("/", 1)[1]: entries.take(n) for n in names if n.startswith(f"{i}/")}, meta)
            kwargs = item_cls._from_entries(sub)
            if sub.missing or sub.left():
                raise ValueError(f"item {i} has missing fields {sub.missing} or unknown entries {sub.left()}")
            items.append(item_cls(**kwargs))
        return {"kind": kind, "module": module, "prompts": prompts, "items": items}

    # ---- display ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, str]:
        return {"kind": self.kind, "prompts": str(len(self.items))}

    def _repr_html_(self) -> str:
        """A table of the prompts; each prompt's own view in a collapsed ``<details>`` below its row."""
        esc = html.escape
        rows = "".join(
            f"<tr><td>{i}</td><td><details><summary>{esc(p)}</summary>{item._repr_html_()}</details></td></tr>"
            for i, (p, item) in enumerate(zip(self.prompts, self.items)))
        return (f"<div><b>BatchResult</b> of {len(self.items)} {esc(self.kind)}"
                f"<table><tr><th>#</th><th>prompt</th></tr>{rows}</table></div>")


def _result_class(module: Any, kind: Any) -> type[Result]:
    """The ``Result`` subclass ``kind`` defined in ``module`` (an ``interp`` module); ``ValueError`` otherwise."""
    if not isinstance(module, str) or not isinstance(kind, str) or not (module == "interp" or module.startswith("interp.")):
        raise ValueError(f"the items' class {module!r}.{kind!r} is not an interp result class")
    try:
        cls = getattr(importlib.import_module(module), kind)
    except (ImportError, AttributeError):
        raise ValueError(f"no result class {kind!r} in {module!r} (written by another version of interp?)") from None
    if not (isinstance(cls, type) and issubclass(cls, Result)) or cls is BatchResult:
        raise ValueError(f"{module}.{kind} is not a result class")
    return cls
